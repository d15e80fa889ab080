//! Tier 1: IPv6 in the decision function, no root. Dual-stack addresses, the local route of
//! the /56, the egress-only internet gateway (out and replies only), the internet gateway
//! without translation, and rules that keep the two families apart (`0.0.0.0/0` is not `::/0`).

use std::net::IpAddr;
use std::time::Duration;

use super::test_support::*;
use super::*;
use crate::scenario::load_str;

const LAB: &str = r#"
name: six
internet:
  hosts:
    ex: { ip: 198.51.100.10, ipv6: "2001:db8:ffff::10", dns: example.com }
vpcs:
  e:
    cidr: 10.0.0.0/16
    ipv6: true
    egress_only_internet_gateway: true
    subnets:
      app: { cidr: 10.0.1.0/24, route_table: app-rt }
      db: { cidr: 10.0.2.0/24, network_acl: v4-only }
      old: { cidr: 10.0.3.0/24, ipv6: false }
    route_tables:
      app-rt:
        routes: [{ destination: "::/0", target: eigw:e }]
    network_acls:
      v4-only:
        inbound: [{ rule: 100, protocol: all, cidr: 0.0.0.0/0, action: allow }]
        outbound: [{ rule: 100, protocol: all, cidr: 0.0.0.0/0, action: allow }]
    security_groups:
      open6:
        ingress:
          - { protocol: tcp, ports: 80, source: "::/0" }
          - { protocol: icmpv6, source: "::/0" }
      v4-rule:
        ingress: [{ protocol: tcp, ports: 80, source: 0.0.0.0/0 }]
      by-ref:
        ingress: [{ protocol: tcp, ports: 80, source: sg:open6 }]
    instances:
      app: { subnet: app, private_ip: 10.0.1.10, security_groups: [open6] }
      db: { subnet: db, private_ip: 10.0.2.10, security_groups: [by-ref] }
      legacy: { subnet: old, private_ip: 10.0.3.10 }
  g:
    cidr: 10.1.0.0/16
    ipv6: true
    internet_gateway: true
    subnets:
      pub: { cidr: 10.1.0.0/24, route_table: pub-rt }
      v4: { cidr: 10.1.1.0/24, route_table: v4-rt }
    route_tables:
      pub-rt:
        routes:
          - { destination: 0.0.0.0/0, target: igw:g }
          - { destination: "::/0", target: igw:g }
      v4-rt:
        routes: [{ destination: 0.0.0.0/0, target: igw:g }]
    security_groups:
      web6:
        ingress: [{ protocol: tcp, ports: 80, source: "::/0" }]
      web4:
        ingress: [{ protocol: tcp, ports: 80, source: 0.0.0.0/0 }]
    instances:
      web: { subnet: pub, private_ip: 10.1.0.10, security_groups: [web6] }
      web4: { subnet: pub, private_ip: 10.1.0.11, security_groups: [web4] }
      only4: { subnet: v4, private_ip: 10.1.1.10 }
"#;

fn lab() -> Compiled {
    Compiled::new(load_str(LAB, "six.yaml").unwrap_or_else(|e| panic!("{e}")))
}

fn v6(lab: &Compiled, name: &str) -> IpAddr {
    let id = host(lab, name);
    IpAddr::V6(
        lab.lab
            .host(id)
            .ipv6()
            .unwrap_or_else(|| panic!("{name} has no IPv6")),
    )
}

#[test]
fn vpcs_get_a_56_subnets_a_64_and_instances_an_address_from_it() {
    let l = lab();
    let e = &l.lab.vpcs[0];
    assert_eq!(e.ipv6_cidr.unwrap().to_string(), "2001:db8:0:100::/56");
    assert_eq!(
        l.lab.vpcs[1].ipv6_cidr.unwrap().to_string(),
        "2001:db8:0:200::/56"
    );
    let app = &l.lab.subnets[0];
    assert_eq!(app.ipv6_cidr.unwrap().to_string(), "2001:db8:0:100::/64");
    assert_eq!(v6(&l, "app").to_string(), "2001:db8:0:100::a");
    assert_eq!(v6(&l, "db").to_string(), "2001:db8:0:101::a");
    // IPv4 stays (it cannot be turned off); a subnet may stay IPv4-only.
    assert_eq!(
        l.lab.instances[host(&l, "app")].private_ip.to_string(),
        "10.0.1.10"
    );
    assert_eq!(l.lab.host(host(&l, "legacy")).ipv6(), None);
}

#[test]
fn the_egress_only_gateway_lets_flows_out_and_their_replies_in() {
    let l = lab();
    let flows = Conntrack::scratch();
    let (app, ex) = (v6(&l, "app"), v6(&l, "ex"));
    let mut hops = Vec::new();
    let d = decide_packet(
        &l,
        &flows,
        Duration::ZERO,
        host(&l, "app"),
        &tcp(app, 40000, ex, 80, SYN),
        None,
        &mut hops,
    );
    assert_eq!(d.outcome, Outcome::Deliver(host(&l, "ex")));
    // No translation: the internet sees the instance's own address.
    assert_eq!((d.delivered.src, d.delivered.dst), (app, ex));
    assert!(hops.iter().any(|h| matches!(
        h,
        Hop::EgressOnlyInternetGateway {
            direction: Direction::Outbound,
            ..
        }
    )));
    let (out, got) = send(&l, &flows, "ex", tcp(ex, 80, app, 40000, SYN_ACK));
    assert_eq!(out, Outcome::Deliver(host(&l, "app")));
    assert_eq!(got.dst, app);
}

#[test]
fn eigw_no_inbound_initiation() {
    let l = lab();
    let flows = Conntrack::scratch();
    // The security group would allow it: the gateway refuses first.
    let (out, _) = send(
        &l,
        &flows,
        "ex",
        tcp(v6(&l, "ex"), 5000, v6(&l, "app"), 80, SYN),
    );
    assert_eq!(out, Outcome::Drop(DropCode::EigwNoInboundInitiation));
}

#[test]
fn a_route_for_one_family_never_matches_the_other() {
    let l = lab();
    let flows = Conntrack::scratch();
    // only4's table has 0.0.0.0/0 -> igw, nothing for IPv6... but only4 has an IPv6 address
    // (its VPC is dual stack): its IPv6 packets find no route.
    let (out, _) = send(
        &l,
        &flows,
        "only4",
        tcp(v6(&l, "only4"), 40000, v6(&l, "ex"), 80, SYN),
    );
    assert_eq!(out, Outcome::Drop(DropCode::NoRouteToDestination));
    // app's table has ::/0 -> eigw only: its IPv4 packets to the internet find no route.
    let app4 = IpAddr::from([10, 0, 1, 10]);
    let (out, _) = send(
        &l,
        &flows,
        "app",
        tcp(app4, 40000, IpAddr::from([198, 51, 100, 10]), 80, SYN),
    );
    assert_eq!(out, Outcome::Drop(DropCode::NoRouteToDestination));
}

#[test]
fn the_internet_gateway_carries_ipv6_both_ways_untranslated() {
    let l = lab();
    let flows = Conntrack::scratch();
    let (web, ex) = (v6(&l, "web"), v6(&l, "ex"));
    let (out, got) = send(&l, &flows, "ex", tcp(ex, 5000, web, 80, SYN));
    assert_eq!(out, Outcome::Deliver(host(&l, "web")));
    assert_eq!((got.src, got.dst), (ex, web));
    let (out, got) = send(&l, &flows, "web", tcp(web, 80, ex, 5000, SYN_ACK));
    assert_eq!(out, Outcome::Deliver(host(&l, "ex")));
    assert_eq!(got.src, web);
}

#[test]
fn an_ipv4_rule_does_not_admit_ipv6() {
    let l = lab();
    let flows = Conntrack::scratch();
    let (out, _) = send(
        &l,
        &flows,
        "ex",
        tcp(v6(&l, "ex"), 5000, v6(&l, "web4"), 80, SYN),
    );
    assert_eq!(out, Outcome::Drop(DropCode::EniSgRulesMismatch));
    // The default egress rules of a dual-stack VPC's groups include ::/0: out it goes.
    let (out, _) = send(
        &l,
        &flows,
        "web4",
        tcp(v6(&l, "web4"), 40000, v6(&l, "ex"), 80, SYN),
    );
    assert_eq!(out, Outcome::Deliver(host(&l, "ex")));
}

#[test]
fn inside_the_vpc_the_local_route_covers_the_56_and_nacls_judge_each_family() {
    let l = lab();
    let flows = Conntrack::scratch();
    let mut hops = Vec::new();
    let key = tcp(v6(&l, "app"), 40000, v6(&l, "db"), 80, SYN);
    let d = decide_packet(
        &l,
        &flows,
        Duration::ZERO,
        host(&l, "app"),
        &key,
        None,
        &mut hops,
    );
    // db's NACL allows IPv4 only: the IPv6 packet meets the final deny.
    assert_eq!(d.outcome, Outcome::Drop(DropCode::SubnetAclRestriction));
    assert!(hops.iter().any(|h| matches!(
        h,
        Hop::Route {
            route: RouteRef::Local(1),
            ..
        }
    )));
    // The same over IPv4 passes the NACL, and the SG reference (members of open6) admits both
    // families of app's addresses.
    let key = tcp(
        IpAddr::from([10, 0, 1, 10]),
        40000,
        IpAddr::from([10, 0, 2, 10]),
        80,
        SYN,
    );
    let (out, _) = send(&l, &flows, "app", key);
    assert_eq!(out, Outcome::Deliver(host(&l, "db")));
    let open6 = l
        .lab
        .security_groups
        .iter()
        .position(|g| g.name == "open6")
        .unwrap();
    assert!(
        l.is_member(open6, v6(&l, "app")),
        "open6 has app's IPv6 address"
    );
    let key = tcp(v6(&l, "app"), 40000, v6(&l, "web"), 80, SYN);
    let (out, _) = send(&l, &flows, "app", key);
    // Another VPC's instance is on the internet: out by the EIGW, in by g's IGW, untranslated.
    assert_eq!(out, Outcome::Deliver(host(&l, "web")));
}

#[test]
fn an_instance_may_send_only_from_its_own_ipv6_address() {
    let l = lab();
    let flows = Conntrack::scratch();
    let other: IpAddr = "2001:db8:0:100::99".parse().unwrap();
    let (out, _) = send(&l, &flows, "app", tcp(other, 40000, v6(&l, "ex"), 80, SYN));
    assert_eq!(out, Outcome::Drop(DropCode::EniSourceDestCheckRestriction));
}

#[test]
fn link_local_and_multicast_stay_on_their_link() {
    let mut rs = Vec::new();
    let src: std::net::Ipv6Addr = "fe80::1".parse().unwrap();
    let dst: std::net::Ipv6Addr = "ff02::2".parse().unwrap();
    etherparse::PacketBuilder::ipv6(src.octets(), dst.octets(), 255)
        .icmpv6_raw(133, 0, [0; 4])
        .write(&mut rs, &[])
        .unwrap();
    assert_eq!(read_packet(&rs), Err(DropCode::UnsupportedPacket));
}
