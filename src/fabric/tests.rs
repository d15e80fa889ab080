//! Tier 1: the decision function on small labs, no root. Every drop code is produced here,
//! and the stateful/stateless behaviour of security groups and NACLs is shown on a virtual clock.

use std::net::IpAddr;
use std::time::Duration;

use super::*;
use crate::scenario::load_str;
use crate::wire::FlowKey;

/// Three VPCs in a chain a-b-c (peered a-b and b-c), with groups and NACLs for every case.
const LAB: &str = r#"
name: t
vpcs:
  a:
    cidr: 10.0.0.0/16
    subnets:
      a1: { cidr: 10.0.1.0/24 }
      a2: { cidr: 10.0.2.0/24, network_acl: strict }
      a3: { cidr: 10.0.3.0/24, network_acl: deny-all }
      a4: { cidr: 10.0.4.0/24, network_acl: ephemeral }
    route_tables:
      a-rt:
        main: true
        routes:
          - { destination: 10.1.0.0/16, target: pcx:ab }
          - { destination: 10.1.9.0/24, target: blackhole }
          - { destination: 10.2.0.0/16, target: pcx:ab }
    security_groups:
      open: { ingress: [{ protocol: all, source: 10.0.0.0/8 }] }
      ssh: { ingress: [{ protocol: tcp, ports: 22, source: 10.0.0.0/8 }] }
      web: { ingress: [{ protocol: tcp, ports: 80, source: 10.0.0.0/8 }] }
      closed: { ingress: [] }
      mute: { ingress: [{ protocol: all, source: 10.0.0.0/8 }], egress: [] }
    network_acls:
      strict:
        inbound:
          - { rule: 100, protocol: tcp, ports: 1-1000, cidr: 0.0.0.0/0, action: allow }
          - { rule: 90, protocol: tcp, ports: 23, cidr: 0.0.0.0/0, action: deny }
        outbound:
          - { rule: 100, protocol: tcp, ports: 80, cidr: 0.0.0.0/0, action: allow }
      ephemeral:
        inbound:
          - { rule: 100, protocol: tcp, ports: 80, cidr: 0.0.0.0/0, action: allow }
        outbound:
          - { rule: 100, protocol: tcp, ports: 80, cidr: 0.0.0.0/0, action: allow }
          - { rule: 110, protocol: tcp, ports: 1024-65535, cidr: 0.0.0.0/0, action: allow }
      deny-all: {}
    instances:
      c1: { subnet: a1, private_ip: 10.0.1.10, security_groups: [closed] }
      both: { subnet: a1, private_ip: 10.0.1.11, security_groups: [ssh, web] }
      mute1: { subnet: a1, private_ip: 10.0.1.12, security_groups: [mute] }
      o1: { subnet: a1, private_ip: 10.0.1.13, security_groups: [open] }
      s2: { subnet: a2, private_ip: 10.0.2.10, security_groups: [open] }
      l1: { subnet: a3, private_ip: 10.0.3.10, security_groups: [open] }
      l2: { subnet: a3, private_ip: 10.0.3.11, security_groups: [open] }
      e4: { subnet: a4, private_ip: 10.0.4.10, security_groups: [open] }
  b:
    cidr: 10.1.0.0/16
    subnets:
      b1: { cidr: 10.1.1.0/24 }
      b9: { cidr: 10.1.9.0/24 }
    route_tables:
      b-rt:
        main: true
        routes:
          - { destination: 10.0.0.0/16, target: pcx:ab }
          - { destination: 10.2.0.0/16, target: pcx:bc }
    security_groups:
      db: { ingress: [{ protocol: tcp, ports: 5432, source: sg:ssh }] }
      open-b: { ingress: [{ protocol: all, source: 10.0.0.0/8 }] }
    instances:
      db1: { subnet: b1, private_ip: 10.1.1.10, security_groups: [db] }
      b9h: { subnet: b9, private_ip: 10.1.9.10, security_groups: [open-b] }
  c:
    cidr: 10.2.0.0/16
    subnets:
      c1: { cidr: 10.2.1.0/24 }
    route_tables:
      c-rt:
        main: true
        routes:
          - { destination: 10.0.0.0/16, target: pcx:bc }
          - { destination: 10.1.0.0/16, target: pcx:bc }
    security_groups:
      open-c: { ingress: [{ protocol: all, source: 10.0.0.0/8 }] }
    instances:
      ch: { subnet: c1, private_ip: 10.2.1.10, security_groups: [open-c] }
peering_connections:
  ab: { requester: a, accepter: b }
  bc: { requester: b, accepter: c }
"#;

fn lab() -> Compiled {
    Compiled::new(load_str(LAB, "t.yaml").unwrap_or_else(|e| panic!("{e}")))
}

fn host(lab: &Compiled, name: &str) -> InstanceId {
    lab.lab
        .instance_by_name(name)
        .unwrap_or_else(|| panic!("no host {name}"))
}

fn ip(lab: &Compiled, name: &str) -> IpAddr {
    lab.lab.instances[host(lab, name)].private_ip.into()
}

use crate::scenario::InstanceId;

fn tcp(src: IpAddr, sport: u16, dst: IpAddr, dport: u16, flags: u8) -> FlowKey {
    FlowKey {
        src,
        dst,
        protocol: 6,
        src_port: sport,
        dst_port: dport,
        icmp_type: 0,
        icmp_code: 0,
        tcp_flags: flags,
    }
}

fn udp(src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> FlowKey {
    FlowKey {
        protocol: 17,
        tcp_flags: 0,
        ..tcp(src, sport, dst, dport, 0)
    }
}

fn ping(src: IpAddr, dst: IpAddr) -> FlowKey {
    FlowKey {
        src,
        dst,
        protocol: 1,
        src_port: 7,
        dst_port: 7,
        icmp_type: 8,
        icmp_code: 0,
        tcp_flags: 0,
    }
}

const SYN: u8 = 0x02;
const SYN_ACK: u8 = 0x12;
const ACK: u8 = 0x10;

/// One packet from `from` at `now` seconds with a trace.
fn run(
    lab: &Compiled,
    flows: &Conntrack,
    now: u64,
    from: &str,
    key: FlowKey,
) -> (Outcome, Vec<Hop>) {
    let mut hops = Vec::new();
    let out = decide(
        lab,
        flows,
        Duration::from_secs(now),
        host(lab, from),
        &key,
        &mut hops,
    );
    (out, hops)
}

/// One packet on a fresh table.
fn once(lab: &Compiled, from: &str, key: FlowKey) -> (Outcome, Vec<Hop>) {
    run(lab, &Conntrack::scratch(), 0, from, key)
}

fn dropped(out: Outcome) -> Option<DropCode> {
    match out {
        Outcome::Drop(c) => Some(c),
        Outcome::Deliver(_) => None,
    }
}

fn sg_hop(hops: &[Hop], direction: Direction) -> Option<(InstanceId, SgVerdict)> {
    hops.iter().find_map(|h| match *h {
        Hop::SecurityGroup {
            eni,
            direction: d,
            verdict,
        } if d == direction => Some((eni, verdict)),
        _ => None,
    })
}

fn acl_hops(hops: &[Hop]) -> Vec<(String, Direction, AclRuleRef, bool)> {
    let l = lab();
    hops.iter()
        .filter_map(|h| match *h {
            Hop::NetworkAcl {
                acl,
                direction,
                rule,
                allow,
                ..
            } => Some((l.lab.network_acls[acl].name.clone(), direction, rule, allow)),
            _ => None,
        })
        .collect()
}

// ---- every drop code ----

#[test]
fn no_route_to_destination() {
    let l = lab();
    let (out, _) = once(&l, "o1", ping(ip(&l, "o1"), IpAddr::from([192, 0, 2, 1])));
    assert_eq!(dropped(out), Some(DropCode::NoRouteToDestination));
}

#[test]
fn bad_state_route_and_longest_prefix_match() {
    let l = lab();
    // 10.1.9.0/24 (blackhole) is longer than 10.1.0.0/16 (pcx:ab): it wins.
    let (out, hops) = once(&l, "o1", ping(ip(&l, "o1"), ip(&l, "b9h")));
    assert_eq!(dropped(out), Some(DropCode::BadStateRoute));
    let route = hops.iter().find_map(|h| match *h {
        Hop::Route { route, .. } => Some(route),
        _ => None,
    });
    assert_eq!(route, Some(RouteRef::Declared(1)));
    // Elsewhere in 10.1.0.0/16 the /16 carries it; inside the VPC the local route does.
    let (out, _) = once(&l, "o1", tcp(ip(&l, "o1"), 40000, ip(&l, "db1"), 5432, SYN));
    assert_ne!(dropped(out), Some(DropCode::BadStateRoute));
    let (out, hops) = once(&l, "o1", tcp(ip(&l, "o1"), 40000, ip(&l, "s2"), 80, SYN));
    assert_eq!(out, Outcome::Deliver(host(&l, "s2")));
    assert!(hops.contains(&Hop::Route {
        table: l.lab.subnets[l.lab.instances[host(&l, "o1")].subnet].route_table,
        route: RouteRef::Local(0)
    }));
}

#[test]
fn pcx_requires_address_in_vpc_cidr() {
    let l = lab();
    let (out, _) = once(&l, "o1", ping(ip(&l, "o1"), ip(&l, "ch")));
    assert_eq!(dropped(out), Some(DropCode::PcxRequiresAddressInVpcCidr));
}

#[test]
fn eni_source_dest_check_restriction() {
    let l = lab();
    let spoofed = ping(IpAddr::from([10, 0, 1, 99]), ip(&l, "s2"));
    let (out, hops) = once(&l, "o1", spoofed);
    assert_eq!(dropped(out), Some(DropCode::EniSourceDestCheckRestriction));
    assert_eq!(hops, vec![Hop::SourceEni(host(&l, "o1"))]);
}

#[test]
fn no_possible_destination() {
    let l = lab();
    let (out, _) = once(&l, "o1", ping(ip(&l, "o1"), IpAddr::from([10, 0, 2, 77])));
    assert_eq!(dropped(out), Some(DropCode::NoPossibleDestination));
}

#[test]
fn unsupported_packet() {
    let mut v6 = vec![0u8; 39];
    v6[0] = 0x60;
    assert_eq!(read_packet(&v6), Err(DropCode::UnsupportedPacket));
    assert_eq!(read_packet(&[0x50; 40]), Err(DropCode::UnsupportedPacket));
    assert_eq!(read_packet(&[0x45; 8]), Err(DropCode::UnsupportedPacket));
}

#[test]
fn eni_sg_rules_mismatch_inbound_names_the_eni() {
    let l = lab();
    let (out, hops) = once(&l, "o1", tcp(ip(&l, "o1"), 40000, ip(&l, "c1"), 22, SYN));
    assert_eq!(dropped(out), Some(DropCode::EniSgRulesMismatch));
    assert_eq!(
        sg_hop(&hops, Direction::Inbound),
        Some((host(&l, "c1"), SgVerdict::NoRule))
    );
}

#[test]
fn eni_sg_rules_mismatch_outbound_when_egress_is_empty() {
    let l = lab();
    let (out, hops) = once(&l, "mute1", ping(ip(&l, "mute1"), ip(&l, "o1")));
    assert_eq!(dropped(out), Some(DropCode::EniSgRulesMismatch));
    assert_eq!(
        sg_hop(&hops, Direction::Outbound),
        Some((host(&l, "mute1"), SgVerdict::NoRule))
    );
    // Nothing after the source's groups: it never left the interface.
    assert!(!hops.iter().any(|h| matches!(h, Hop::SameSubnet(_))));
}

#[test]
fn subnet_acl_restriction_first_match_and_default_rule() {
    let l = lab();
    // strict inbound: rule 90 denies tcp/23 before rule 100 (1-1000) would allow it.
    let (out, hops) = once(&l, "o1", tcp(ip(&l, "o1"), 40000, ip(&l, "s2"), 23, SYN));
    assert_eq!(dropped(out), Some(DropCode::SubnetAclRestriction));
    let acls = acl_hops(&hops);
    let last = acls.last().unwrap();
    assert_eq!(
        (last.0.as_str(), last.1, last.2, last.3),
        ("strict", Direction::Inbound, AclRuleRef::Numbered(0), false)
    );
    assert_eq!(
        l.lab.network_acls[l.lab.subnets[1].network_acl].inbound[0].number,
        90
    );
    // Nothing matches udp: the final `*` rule denies.
    let (out, hops) = once(&l, "o1", udp(ip(&l, "o1"), 40000, ip(&l, "s2"), 53));
    assert_eq!(dropped(out), Some(DropCode::SubnetAclRestriction));
    assert_eq!(acl_hops(&hops).last().unwrap().2, AclRuleRef::Default);
    // Outbound from s2: only tcp/80 is allowed out.
    let (out, hops) = once(&l, "s2", ping(ip(&l, "s2"), ip(&l, "o1")));
    assert_eq!(dropped(out), Some(DropCode::SubnetAclRestriction));
    assert_eq!(
        acl_hops(&hops),
        vec![(
            "strict".into(),
            Direction::Outbound,
            AclRuleRef::Default,
            false
        )]
    );
}

#[test]
fn every_drop_code_has_a_name_a_meaning_and_a_test_above() {
    for code in DropCode::ALL {
        assert_eq!(DropCode::from_name(code.as_str()), Some(code));
        assert!(!code.meaning().is_empty());
        assert_eq!(
            DropCode::ALL[code as usize],
            code,
            "counters index by discriminant"
        );
    }
    // The internet edge's codes are produced in internet_tests.rs, IPv6's in ipv6_tests.rs,
    // the VPN's in vpn_tests.rs, the transit gateway's in tgw_tests.rs.
    assert_eq!(DropCode::ALL.len(), 25);
}

// ---- security groups ----

#[test]
fn security_groups_of_an_interface_are_a_union() {
    let l = lab();
    let both = ip(&l, "both");
    let src = ip(&l, "o1");
    let (out, hops) = once(&l, "o1", tcp(src, 40000, both, 22, SYN));
    assert_eq!(out, Outcome::Deliver(host(&l, "both")));
    let ssh = l.lab.instances[host(&l, "both")].security_groups[0];
    let web = l.lab.instances[host(&l, "both")].security_groups[1];
    assert_eq!(
        sg_hop(&hops, Direction::Inbound).map(|x| x.1),
        Some(SgVerdict::Rule {
            group: ssh,
            rule: 0
        })
    );
    let (out, hops) = once(&l, "o1", tcp(src, 40000, both, 80, SYN));
    assert_eq!(out, Outcome::Deliver(host(&l, "both")));
    assert_eq!(
        sg_hop(&hops, Direction::Inbound).map(|x| x.1),
        Some(SgVerdict::Rule {
            group: web,
            rule: 0
        })
    );
    let (out, _) = once(&l, "o1", tcp(src, 40000, both, 443, SYN));
    assert_eq!(dropped(out), Some(DropCode::EniSgRulesMismatch));
    let x = explain(&l, host(&l, "o1"), tcp(src, 40000, both, 443, SYN));
    let text = x.render(&l);
    assert!(
        text.contains("no rule of sg:ssh, sg:web allows inbound tcp/443 from 10.0.1.13"),
        "{text}"
    );
}

#[test]
fn sg_reference_across_a_same_region_peering() {
    let l = lab();
    // db admits tcp/5432 from members of sg:ssh (VPC a): `both` is one, o1 is not.
    let (out, hops) = once(
        &l,
        "both",
        tcp(ip(&l, "both"), 40000, ip(&l, "db1"), 5432, SYN),
    );
    assert_eq!(out, Outcome::Deliver(host(&l, "db1")));
    assert!(hops.iter().any(|h| matches!(h, Hop::Peering { .. })));
    let (out, hops) = once(&l, "o1", tcp(ip(&l, "o1"), 40000, ip(&l, "db1"), 5432, SYN));
    assert_eq!(dropped(out), Some(DropCode::EniSgRulesMismatch));
    assert_eq!(
        sg_hop(&hops, Direction::Inbound),
        Some((host(&l, "db1"), SgVerdict::NoRule))
    );
    // The reference matches member addresses, not the member's CIDR.
    assert!(l.is_member(
        l.lab.instances[host(&l, "both")].security_groups[0],
        ip(&l, "both")
    ));
    assert!(!l.is_member(
        l.lab.instances[host(&l, "both")].security_groups[0],
        ip(&l, "o1")
    ));
}

// ---- connection tracking ----

#[test]
fn reply_of_a_tracked_connection_passes_without_an_inbound_rule() {
    let l = lab();
    let flows = Conntrack::scratch();
    let (c1, s) = (ip(&l, "c1"), ip(&l, "o1"));
    // c1's group has no inbound rule: o1 cannot open a connection to it...
    let (out, _) = run(&l, &flows, 0, "o1", tcp(s, 22, c1, 50000, SYN));
    assert_eq!(dropped(out), Some(DropCode::EniSgRulesMismatch));
    // ...but the replies of c1's own connection come in.
    let (out, _) = run(&l, &flows, 0, "c1", tcp(c1, 50000, s, 22, SYN));
    assert_eq!(out, Outcome::Deliver(host(&l, "o1")));
    let (out, hops) = run(&l, &flows, 1, "o1", tcp(s, 22, c1, 50000, SYN_ACK));
    assert_eq!(out, Outcome::Deliver(host(&l, "c1")));
    assert_eq!(
        sg_hop(&hops, Direction::Inbound),
        Some((host(&l, "c1"), SgVerdict::Tracked))
    );
    // The explanation shows the same on its reply leg.
    let x = explain(&l, host(&l, "c1"), tcp(c1, 50000, s, 22, SYN));
    assert!(x.reachable(), "{}", x.render(&l));
    assert!(x.render(&l).contains("belongs to a tracked connection"));
}

#[test]
fn nacls_are_stateless_replies_need_ephemeral_ports() {
    let l = lab();
    // s2's NACL allows tcp/80 in and only tcp/80 out: the request arrives, the reply (to the
    // client's ephemeral port) is denied on its way out, tracked or not.
    let x = explain(
        &l,
        host(&l, "o1"),
        tcp(ip(&l, "o1"), 40000, ip(&l, "s2"), 80, SYN),
    );
    assert!(matches!(x.forward.outcome, Outcome::Deliver(_)));
    assert!(!x.reachable());
    assert_eq!(x.drop_code(), Some(DropCode::SubnetAclRestriction));
    let reply = x.reply.as_ref().unwrap();
    assert_eq!(
        sg_hop(&reply.hops, Direction::Outbound).map(|x| x.1),
        Some(SgVerdict::Tracked)
    );
    let text = x.render(&l);
    assert!(
        text.contains("network acl strict (subnet a2) outbound: rule * deny"),
        "{text}"
    );
    // The twin subnet allows 1024-65535 out: the same exchange works.
    let x = explain(
        &l,
        host(&l, "o1"),
        tcp(ip(&l, "o1"), 40000, ip(&l, "e4"), 80, SYN),
    );
    assert!(x.reachable(), "{}", x.render(&l));
    assert!(x
        .render(&l)
        .contains("network acl ephemeral (subnet a4) outbound: rule 110 allow"));
}

#[test]
fn inside_one_subnet_no_nacl_applies() {
    let l = lab();
    let (out, hops) = once(&l, "l1", tcp(ip(&l, "l1"), 40000, ip(&l, "l2"), 7000, SYN));
    assert_eq!(out, Outcome::Deliver(host(&l, "l2")));
    assert!(acl_hops(&hops).is_empty());
    let (out, hops) = once(&l, "o1", tcp(ip(&l, "o1"), 40000, ip(&l, "l2"), 7000, SYN));
    assert_eq!(dropped(out), Some(DropCode::SubnetAclRestriction));
    assert_eq!(
        acl_hops(&hops).last().unwrap(),
        &(
            "deny-all".into(),
            Direction::Inbound,
            AclRuleRef::Default,
            false
        )
    );
}

#[test]
fn tracked_flows_expire_on_a_virtual_clock() {
    let l = lab();
    let (c1, s) = (ip(&l, "c1"), ip(&l, "o1"));
    let reply_passes = |flows: &Conntrack, t: u64, key: FlowKey| {
        run(&l, flows, t, "o1", key).0 == Outcome::Deliver(host(&l, "c1"))
    };
    // UDP seen one way: 30 s.
    let flows = Conntrack::scratch();
    run(&l, &flows, 100, "c1", udp(c1, 5000, s, 53));
    assert!(reply_passes(
        &flows,
        100 + timeout::UDP,
        udp(s, 53, c1, 5000)
    ));
    let flows = Conntrack::scratch();
    run(&l, &flows, 100, "c1", udp(c1, 5000, s, 53));
    assert!(!reply_passes(
        &flows,
        101 + timeout::UDP,
        udp(s, 53, c1, 5000)
    ));
    // UDP both ways ("stream"): 180 s.
    assert!(!reply_passes(&flows, 0, udp(s, 53, c1, 5001)));
    let flows = Conntrack::scratch();
    run(&l, &flows, 0, "c1", udp(c1, 5000, s, 53));
    assert!(reply_passes(&flows, 1, udp(s, 53, c1, 5000)));
    assert!(reply_passes(
        &flows,
        1 + timeout::UDP_STREAM,
        udp(s, 53, c1, 5000)
    ));
    assert!(!reply_passes(
        &flows,
        2 + 2 * timeout::UDP_STREAM,
        udp(s, 53, c1, 5000)
    ));
    // TCP established: 5 days of silence is fine, a second more is not.
    let flows = Conntrack::scratch();
    run(&l, &flows, 0, "c1", tcp(c1, 50000, s, 22, SYN));
    assert!(reply_passes(&flows, 0, tcp(s, 22, c1, 50000, SYN_ACK)));
    assert!(reply_passes(
        &flows,
        timeout::TCP_ESTABLISHED,
        tcp(s, 22, c1, 50000, ACK)
    ));
    let t = 2 * timeout::TCP_ESTABLISHED + 1;
    assert!(!reply_passes(&flows, t, tcp(s, 22, c1, 50000, ACK)));
    // ICMP: 30 s; other protocols: 600 s.
    let flows = Conntrack::scratch();
    run(&l, &flows, 0, "c1", ping(c1, s));
    let echo_reply = ping(c1, s).reversed();
    assert!(reply_passes(&flows, timeout::ICMP, echo_reply));
    assert!(!reply_passes(&flows, 2 * timeout::ICMP + 1, echo_reply));
    let gre = FlowKey {
        protocol: 47,
        src_port: 0,
        dst_port: 0,
        icmp_type: 0,
        ..ping(c1, s)
    };
    let flows = Conntrack::scratch();
    run(&l, &flows, 0, "c1", gre);
    assert!(reply_passes(&flows, timeout::OTHER, gre.reversed()));
    assert!(!reply_passes(
        &flows,
        2 * timeout::OTHER + 1,
        gre.reversed()
    ));
}

#[test]
fn sweep_forgets_idle_flows_only() {
    let l = lab();
    let (c1, s) = (ip(&l, "c1"), ip(&l, "o1"));
    let flows = Conntrack::new(4, 64);
    run(&l, &flows, 0, "c1", udp(c1, 5000, s, 53));
    run(&l, &flows, 0, "c1", tcp(c1, 50000, s, 22, SYN));
    run(&l, &flows, 0, "o1", tcp(s, 22, c1, 50000, SYN_ACK));
    // Each flow is tracked at both interfaces.
    assert_eq!(flows.len(), 4);
    assert_eq!(flows.sweep(Duration::from_secs(timeout::UDP + 1)), 2);
    assert_eq!(
        flows.sweep(Duration::from_secs(timeout::TCP_ESTABLISHED + 1)),
        0
    );
    assert!(flows.is_empty());
}

const FIN_ACK: u8 = 0x11;
const RST: u8 = 0x04;

#[test]
fn a_tcp_flow_ends_after_a_fin_from_each_end() {
    let l = lab();
    let flows = Conntrack::scratch();
    let (c1, s) = (ip(&l, "c1"), ip(&l, "o1"));
    // c1's group admits nothing inbound: only tracking lets o1's packets in.
    let from_o1 = |t: u64, flags: u8| {
        run(&l, &flows, t, "o1", tcp(s, 22, c1, 50000, flags)).0 == Outcome::Deliver(host(&l, "c1"))
    };
    run(&l, &flows, 0, "c1", tcp(c1, 50000, s, 22, SYN));
    assert!(from_o1(0, SYN_ACK));
    // c1 closes its half; o1 may go on sending for as long as an established flow lives.
    run(&l, &flows, 1, "c1", tcp(c1, 50000, s, 22, FIN_ACK));
    assert!(from_o1(1000, ACK));
    // o1 closes too: what is left of the flow lives TCP_CLOSED idle seconds.
    assert!(from_o1(1000, FIN_ACK));
    run(&l, &flows, 1000, "c1", tcp(c1, 50000, s, 22, ACK));
    assert!(
        from_o1(1000 + timeout::TCP_CLOSED, FIN_ACK),
        "a retransmitted FIN"
    );
    let gone = 1001 + 2 * timeout::TCP_CLOSED;
    // Both interfaces forget it...
    assert_eq!(flows.sweep(Duration::from_secs(gone)), 0);
    // ...so o1's packets meet c1's rules, which admit nothing.
    assert!(!from_o1(gone, ACK));
    assert!(!from_o1(gone, SYN), "a new connection from o1 needs a rule");
}

#[test]
fn a_rst_ends_a_tcp_flow_and_a_new_syn_meets_the_rules() {
    let l = lab();
    let flows = Conntrack::scratch();
    let (c1, s) = (ip(&l, "c1"), ip(&l, "o1"));
    let from_o1 = |t: u64, flags: u8| {
        run(&l, &flows, t, "o1", tcp(s, 22, c1, 50000, flags)).0 == Outcome::Deliver(host(&l, "c1"))
    };
    run(&l, &flows, 0, "c1", tcp(c1, 50000, s, 22, SYN));
    assert!(from_o1(0, SYN_ACK));
    assert!(from_o1(5, RST));
    // The tail of the connection still passes for a while...
    assert!(from_o1(5 + timeout::TCP_CLOSED, ACK));
    // ...but a SYN from o1 is a new connection at once, and c1 admits none.
    assert!(!from_o1(6, SYN));
    // c1 may open the same 5-tuple again (its outbound rules allow it); it is tracked afresh.
    let (out, _) = run(&l, &flows, 7, "c1", tcp(c1, 50000, s, 22, SYN));
    assert_eq!(out, Outcome::Deliver(host(&l, "o1")));
    assert!(from_o1(7, SYN_ACK));
    assert!(from_o1(7 + timeout::TCP_ESTABLISHED, ACK));
}

#[test]
fn a_full_table_stops_tracking_new_flows_but_keeps_live_ones() {
    let l = lab();
    let (c1, s) = (ip(&l, "c1"), ip(&l, "o1"));
    let flows = Conntrack::new(1, 2);
    let tag = l.eni_tag(host(&l, "c1"));
    let at = Duration::from_secs(5);
    assert!(flows.track(tag, &udp(c1, 1, s, 53), at));
    assert!(flows.track(tag, &udp(c1, 2, s, 53), at));
    assert!(!flows.track(tag, &udp(c1, 3, s, 53), at));
    assert!(flows.refresh(tag, &udp(s, 53, c1, 1), at));
    // Once the others are idle, room is made lazily.
    assert!(flows.track(tag, &udp(c1, 3, s, 53), at + Duration::from_secs(100)));
}

#[test]
fn a_rule_change_applies_to_new_flows_and_tracked_flows_survive() {
    let before = lab();
    let after = Compiled::new(
        load_str(
            &LAB.replace(
                "ssh: { ingress: [{ protocol: tcp, ports: 22, source: 10.0.0.0/8 }] }",
                "ssh: { ingress: [] }",
            ),
            "t.yaml",
        )
        .unwrap(),
    );
    let flows = Conntrack::scratch();
    let (o1, both) = (ip(&before, "o1"), ip(&before, "both"));
    let (out, _) = run(&before, &flows, 0, "o1", tcp(o1, 40000, both, 22, SYN));
    assert_eq!(out, Outcome::Deliver(host(&before, "both")));
    // With the rule gone, the tracked connection still passes both ways...
    let (out, _) = run(&after, &flows, 1, "o1", tcp(o1, 40000, both, 22, ACK));
    assert_eq!(out, Outcome::Deliver(host(&after, "both")));
    let (out, _) = run(&after, &flows, 1, "both", tcp(both, 22, o1, 40000, ACK));
    assert_eq!(out, Outcome::Deliver(host(&after, "o1")));
    // ...and a new connection is refused.
    let (out, _) = run(&after, &flows, 1, "o1", tcp(o1, 40001, both, 22, SYN));
    assert_eq!(dropped(out), Some(DropCode::EniSgRulesMismatch));
}

#[test]
fn icmp_errors_about_a_tracked_flow_pass_as_related() {
    let l = lab();
    let flows = Conntrack::scratch();
    let (c1, s) = (ip(&l, "c1"), ip(&l, "o1"));
    let request = udp(c1, 5000, s, 9);
    run(&l, &flows, 0, "c1", request);
    let unreachable = FlowKey {
        src: s,
        dst: c1,
        protocol: 1,
        src_port: 0,
        dst_port: 0,
        icmp_type: 3,
        icmp_code: 3,
        tcp_flags: 0,
    };
    let mut hops = Vec::new();
    let out = decide_quoting(
        &l,
        &flows,
        Duration::from_secs(1),
        host(&l, "o1"),
        &unreachable,
        Some(&request),
        &mut hops,
    );
    assert_eq!(out, Outcome::Deliver(host(&l, "c1")));
    assert_eq!(
        sg_hop(&hops, Direction::Inbound),
        Some((host(&l, "c1"), SgVerdict::Related))
    );
    // An error quoting a flow nobody tracks meets the rules (c1 has none).
    let other = udp(c1, 5001, s, 9);
    let out = decide_quoting(
        &l,
        &Conntrack::scratch(),
        Duration::ZERO,
        host(&l, "o1"),
        &unreachable,
        Some(&other),
        &mut (),
    );
    assert_eq!(dropped(out), Some(DropCode::EniSgRulesMismatch));
}

#[test]
fn read_packet_finds_the_header_an_icmp_error_quotes() {
    let mut inner = Vec::new();
    etherparse::PacketBuilder::ipv4([192, 0, 2, 1], [198, 51, 100, 2], 64)
        .udp(5000, 9)
        .write(&mut inner, b"hello")
        .unwrap();
    let mut error = Vec::new();
    etherparse::PacketBuilder::ipv4([198, 51, 100, 2], [192, 0, 2, 1], 64)
        .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::Port,
        ))
        .write(&mut error, &inner[..28])
        .unwrap();
    let p = read_packet(&error).unwrap();
    assert_eq!((p.key.icmp_type, p.key.icmp_code), (3, 3));
    let q = p.quoted.unwrap();
    assert_eq!(
        (q.src, q.src_port, q.dst, q.dst_port),
        (
            IpAddr::from([192, 0, 2, 1]),
            5000,
            IpAddr::from([198, 51, 100, 2]),
            9
        )
    );
    assert_eq!(read_packet(&inner).unwrap().quoted, None);
}

#[test]
fn explanation_renders_rules_and_nacls() {
    let l = lab();
    let x = explain(
        &l,
        host(&l, "o1"),
        tcp(ip(&l, "o1"), 40000, ip(&l, "s2"), 80, SYN),
    );
    let text = x.render(&l);
    for needle in [
        "security group sg:open outbound (eni:o1): rule 1 (all to 0.0.0.0/0) allows tcp/80 to 10.0.2.10",
        "network acl default (subnet a1) outbound: rule 100 allow (all to 0.0.0.0/0)",
        "network acl strict (subnet a2) inbound: rule 100 allow (tcp 1-1000 from 0.0.0.0/0)",
        "security group sg:open inbound (eni:s2): rule 1 (all from 10.0.0.0/8) allows tcp/80 from 10.0.1.13",
        "rule * deny (no numbered rule matches; rule 32767)",
        "NOT REACHABLE: SUBNET_ACL_RESTRICTION",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in\n{text}");
    }
    assert_eq!(
        x.components(&l),
        [
            "eni:o1",
            "sg:open",
            "subnet:a1",
            "acl:default",
            "rtb:a-rt",
            "acl:strict",
            "subnet:a2",
            "sg:open",
            "eni:s2"
        ]
    );
}
