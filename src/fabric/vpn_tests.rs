//! Tier 1: Site-to-Site VPN in the decision function, no root. Static routes propagated from
//! the VGW, the active tunnel and failover to the other, both tunnels down, the traffic
//! selectors of a tunnel, and a site host's packets in the model.

use std::net::IpAddr;
use std::time::Duration;

use super::test_support::*;
use super::tunnels::TunnelRef;
use super::*;
use crate::scenario::load_str;

const LAB: &str = r#"
name: vpn
vpcs:
  a:
    cidr: 10.0.0.0/16
    subnets:
      app: { cidr: 10.0.1.0/24, route_table: app-rt }
      plain: { cidr: 10.0.2.0/24 }
    route_tables:
      app-rt:
        propagate: [vgw:vgw1]
    security_groups:
      from-site:
        ingress: [{ protocol: all, source: 192.168.0.0/16 }]
    instances:
      app1: { subnet: app, private_ip: 10.0.1.10, security_groups: [from-site] }
      app3: { subnet: plain, private_ip: 10.0.2.30, security_groups: [from-site] }
sites:
  hq:
    cidr: 192.168.0.0/16
    customer_gateway: { public_ip: 198.51.100.20, asn: 65000 }
    hosts:
      pc1: { ip: 192.168.1.10 }
vpn_gateways:
  vgw1: { vpc: a }
vpn_connections:
  hq-vpn: { site: hq, gateway: vgw:vgw1, routing: static, static_routes: [192.168.0.0/16] }
"#;

fn lab() -> Compiled {
    Compiled::new(load_str(LAB, "vpn.yaml").unwrap_or_else(|e| panic!("{e}")))
}

fn site_host(lab: &Compiled, name: &str) -> crate::scenario::HostId {
    lab.lab.site_host_by_name(name).unwrap()
}

const PC1: [u8; 4] = [192, 168, 1, 10];
const APP1: [u8; 4] = [10, 0, 1, 10];
const TUNNEL1: TunnelRef = TunnelRef {
    connection: 0,
    index: 0,
};
const TUNNEL2: TunnelRef = TunnelRef {
    connection: 0,
    index: 1,
};

#[test]
fn a_propagated_route_sends_replies_into_the_active_tunnel_and_fails_over() {
    let l = lab();
    let flows = Conntrack::scratch();
    let key = tcp(APP1, 80, PC1, 40000, SYN_ACK);
    let mut hops = Vec::new();
    let d = decide_packet(
        &l,
        &flows,
        Duration::ZERO,
        host(&l, "app1"),
        &key,
        None,
        &mut hops,
    );
    assert_eq!(d.outcome, Outcome::Deliver(site_host(&l, "pc1")));
    assert_eq!(d.tunnel, Some(TUNNEL1));
    assert!(hops.iter().any(|h| matches!(
        h,
        Hop::Route {
            route: RouteRef::Propagated {
                connection: 0,
                index: 0
            },
            ..
        }
    )));
    // Tunnel 1 down: tunnel 2 carries it. Both down: BAD_STATE_VPN.
    l.tunnels.set(TUNNEL1, false);
    let (_, _) = send(&l, &flows, "app1", key);
    let d = decide_packet(
        &l,
        &flows,
        Duration::ZERO,
        host(&l, "app1"),
        &key,
        None,
        &mut (),
    );
    assert_eq!(d.tunnel, Some(TUNNEL2));
    l.tunnels.set(TUNNEL2, false);
    let (out, _) = send(&l, &flows, "app1", key);
    assert_eq!(out, Outcome::Drop(DropCode::BadStateVpn));
}

#[test]
fn without_propagation_the_subnet_has_no_route_to_the_site() {
    let l = lab();
    let flows = Conntrack::scratch();
    let (out, _) = send(
        &l,
        &flows,
        "app3",
        tcp([10, 0, 2, 30], 80, PC1, 40000, SYN_ACK),
    );
    assert_eq!(out, Outcome::Drop(DropCode::NoRouteToDestination));
}

#[test]
fn a_tunnel_carries_only_the_sites_prefixes_into_the_vpc() {
    let l = lab();
    let flows = Conntrack::scratch();
    let d = decide_from_tunnel(
        &l,
        &flows,
        Duration::ZERO,
        TUNNEL1,
        &tcp(PC1, 40000, APP1, 80, SYN),
        &mut (),
    );
    assert_eq!(d.outcome, Outcome::Deliver(host(&l, "app1")));
    let spoofed = tcp([172, 16, 0, 1], 40000, APP1, 80, SYN);
    let d = decide_from_tunnel(&l, &flows, Duration::ZERO, TUNNEL1, &spoofed, &mut ());
    assert_eq!(
        d.outcome,
        Outcome::Drop(DropCode::VgwPrivateIpAssociationForIngress)
    );
}

#[test]
fn in_the_model_a_site_host_goes_through_its_router_and_the_tunnel() {
    let l = lab();
    let flows = Conntrack::scratch();
    let pc1 = site_host(&l, "pc1");
    let mut hops = Vec::new();
    let key = tcp(PC1, 40000, APP1, 80, SYN);
    let d = decide_model(&l, &flows, Duration::ZERO, pc1, &key, None, &mut hops);
    assert_eq!(d.outcome, Outcome::Deliver(host(&l, "app1")));
    assert!(matches!(hops[0], Hop::FromSite(h) if h == pc1));
    assert!(hops.iter().any(|h| matches!(
        h,
        Hop::VpnGateway {
            direction: Direction::Inbound,
            tunnel: 0,
            ..
        }
    )));
    // A site host's packet for the internet leaves by its router, untranslated: its private
    // source gets no answer back.
    let internet = IpAddr::from([198, 51, 100, 99]);
    let d = decide_model(
        &l,
        &flows,
        Duration::ZERO,
        pc1,
        &tcp(PC1, 40000, internet, 80, SYN),
        None,
        &mut (),
    );
    assert_eq!(d.outcome, Outcome::Drop(DropCode::NoRouteToDestination));
}

/// Two sites on one VGW, both static or both BGP, to compare what AWS prefers among equal
/// prefixes: static over BGP, then the shorter AS path, then the lower MED.
const TWO_SITES: &str = r#"
name: pref
vpcs:
  a:
    cidr: 10.0.0.0/16
    subnets: { app: { cidr: 10.0.1.0/24, route_table: app-rt } }
    route_tables: { app-rt: { propagate: [vgw:vgw1] } }
    instances: { app1: { subnet: app, private_ip: 10.0.1.10 } }
sites:
  one:
    cidr: 192.168.0.0/16
    customer_gateway: { public_ip: 198.51.100.20, asn: 65001 }
    hosts: { h1: { ip: 192.168.1.10 } }
  two:
    cidr: 172.16.0.0/16
    customer_gateway: { public_ip: 198.51.100.21, asn: 65002 }
    hosts: { h2: { ip: 172.16.1.10 } }
vpn_gateways:
  vgw1: { vpc: a }
vpn_connections:
  one-vpn: { site: one, gateway: vgw:vgw1, routing: bgp }
  two-vpn: { site: two, gateway: vgw:vgw1, routing: static, static_routes: [172.16.0.0/16, 10.200.0.0/16] }
"#;

/// The connection the route to `dst` from app1 goes by, with the routes both learned.
fn chosen(learned_by_one: Vec<LearnedRoute>, dst: [u8; 4]) -> Option<usize> {
    let lab = load_str(TWO_SITES, "pref.yaml").unwrap();
    let tunnels = super::tunnels::TunnelStates::new(2);
    let l = Compiled::with_learned(lab, vec![learned_by_one, Vec::new()], tunnels);
    route_connection(&l, dst)
}

/// The VPN connection whose propagated route app1's packet to `dst` matched.
fn route_connection(l: &Compiled, dst: [u8; 4]) -> Option<usize> {
    let key = tcp(APP1, 80, dst, 40000, SYN_ACK);
    let mut hops = Vec::new();
    let app1 = host(l, "app1");
    decide_packet(
        l,
        &Conntrack::scratch(),
        Duration::ZERO,
        app1,
        &key,
        None,
        &mut hops,
    );
    hops.iter().find_map(|h| match h {
        Hop::Route {
            route: RouteRef::Propagated { connection, .. },
            ..
        } => Some(*connection),
        _ => None,
    })
}

fn learned(prefix: &str, as_path_len: usize, med: Option<u32>) -> LearnedRoute {
    LearnedRoute {
        prefix: prefix.parse().unwrap(),
        as_path_len,
        med,
    }
}

#[test]
fn among_equal_prefixes_a_static_route_beats_bgp_and_longest_prefix_beats_both() {
    // Both connections have 10.200.0.0/16: two-vpn's static route wins.
    assert_eq!(
        chosen(vec![learned("10.200.0.0/16", 1, None)], [10, 200, 1, 1]),
        Some(1)
    );
    // A longer prefix learned by BGP beats the static /16.
    assert_eq!(
        chosen(vec![learned("10.200.1.0/24", 1, None)], [10, 200, 1, 1]),
        Some(0)
    );
}

#[test]
fn among_learned_routes_the_shorter_as_path_then_the_lower_med_wins() {
    let lab = load_str(TWO_SITES, "pref.yaml").unwrap();
    let mut lab = lab;
    // Make both connections BGP, each learning 10.9.0.0/16.
    lab.vpn_connections[1].routing = crate::scenario::VpnRouting::Bgp;
    lab.vpn_connections[1].static_routes.clear();
    let pick = |one: LearnedRoute, two: LearnedRoute| {
        let tunnels = super::tunnels::TunnelStates::new(2);
        let l = Compiled::with_learned(lab.clone(), vec![vec![one], vec![two]], tunnels);
        route_connection(&l, [10, 9, 0, 1])
    };
    let p = "10.9.0.0/16";
    assert_eq!(pick(learned(p, 3, None), learned(p, 2, None)), Some(1));
    assert_eq!(pick(learned(p, 2, None), learned(p, 3, None)), Some(0));
    assert_eq!(
        pick(learned(p, 2, Some(50)), learned(p, 2, Some(10))),
        Some(1)
    );
}
