//! Tier 1: the internet edge in the decision function, no root. The internet gateway's 1:1
//! NAT both ways, a NAT gateway's source NAT and its refusal of inbound initiation, and every
//! drop code of the edge.

use std::net::IpAddr;
use std::time::Duration;

use super::test_support::*;
use super::*;
use crate::scenario::load_str;
use crate::wire::FlowKey;

const LAB: &str = r#"
name: edge
internet:
  hosts:
    ex: { ip: 198.51.100.10, dns: example.com }
vpcs:
  a:
    cidr: 10.0.0.0/16
    internet_gateway: true
    subnets:
      pub: { cidr: 10.0.0.0/24, route_table: pub-rt }
      priv: { cidr: 10.0.1.0/24, route_table: priv-rt }
    route_tables:
      pub-rt:
        routes:
          - { destination: 0.0.0.0/0, target: igw:a }
          - { destination: 192.168.0.0/16, target: igw:a }
      priv-rt:
        routes: [{ destination: 0.0.0.0/0, target: nat:gw }]
    nat_gateways:
      gw: { subnet: pub }
    security_groups:
      web: { ingress: [{ protocol: tcp, ports: 80, source: 0.0.0.0/0 }] }
    instances:
      web: { subnet: pub, private_ip: 10.0.0.10, public_ip: eip, security_groups: [web] }
      nopub: { subnet: pub, private_ip: 10.0.0.11 }
      app: { subnet: priv, private_ip: 10.0.1.10 }
      spoof: { subnet: priv, private_ip: 10.0.1.11, source_dest_check: false }
  loop:
    cidr: 10.9.0.0/16
    internet_gateway: true
    subnets:
      l1: { cidr: 10.9.0.0/24 }
    route_tables:
      loop-rt:
        main: true
        routes: [{ destination: 0.0.0.0/0, target: nat:loop-gw }]
    nat_gateways:
      loop-gw: { subnet: l1 }
    instances:
      l: { subnet: l1, private_ip: 10.9.0.10 }
"#;

fn lab() -> Compiled {
    Compiled::new(load_str(LAB, "edge.yaml").unwrap_or_else(|e| panic!("{e}")))
}

const EX: [u8; 4] = [198, 51, 100, 10];

#[test]
fn the_internet_gateway_translates_one_to_one_both_ways() {
    let l = lab();
    let flows = Conntrack::scratch();
    let public = l.lab.instances[host(&l, "web")].public_ip.unwrap().addr;
    // In: the destination public IP becomes the private address; the SG allows tcp/80.
    let (out, got) = send(&l, &flows, "ex", tcp(EX, 5000, public.octets(), 80, SYN));
    assert_eq!(out, Outcome::Deliver(host(&l, "web")));
    assert_eq!(got.dst, IpAddr::from([10, 0, 0, 10]));
    // The reply leaves from the private address and reaches the internet from the public one.
    let (out, got) = send(
        &l,
        &flows,
        "web",
        tcp([10, 0, 0, 10], 80, EX, 5000, SYN_ACK),
    );
    assert_eq!(out, Outcome::Deliver(host(&l, "ex")));
    assert_eq!((got.src, got.dst), (IpAddr::from(public), IpAddr::from(EX)));
}

#[test]
fn no_public_ip_means_no_internet() {
    let l = lab();
    let (out, _) = send(
        &l,
        &Conntrack::scratch(),
        "nopub",
        tcp([10, 0, 0, 11], 5000, EX, 80, SYN),
    );
    assert_eq!(
        out,
        Outcome::Drop(DropCode::IgwPublicIpAssociationForEgress)
    );
}

#[test]
fn the_gateway_never_routes_to_private_addresses() {
    let l = lab();
    let key = tcp([10, 0, 0, 10], 5000, [192, 168, 1, 1], 80, SYN);
    let (out, _) = send(&l, &Conntrack::scratch(), "web", key);
    assert_eq!(
        out,
        Outcome::Drop(DropCode::IgwDestinationAddressNotInRfc1918Egress)
    );
}

#[test]
fn an_unassigned_public_ip_has_no_interface_behind_it() {
    let l = lab();
    let key = tcp(EX, 5000, [203, 0, 113, 200], 80, SYN);
    let (out, _) = send(&l, &Conntrack::scratch(), "ex", key);
    assert_eq!(
        out,
        Outcome::Drop(DropCode::IgwPrivateIpAssociationForIngress)
    );
    // An address outside the lab's public pool is simply not on this internet.
    let key = tcp(EX, 5000, [10, 0, 1, 10], 80, SYN);
    let (out, _) = send(&l, &Conntrack::scratch(), "ex", key);
    assert_eq!(out, Outcome::Drop(DropCode::NoRouteToDestination));
}

#[test]
fn a_nat_gateway_translates_the_source_and_only_replies_come_back() {
    let l = lab();
    let flows = Conntrack::scratch();
    let gw = &l.lab.nat_gateways[0];
    let (out, got) = send(&l, &flows, "app", tcp([10, 0, 1, 10], 40000, EX, 80, SYN));
    assert_eq!(out, Outcome::Deliver(host(&l, "ex")));
    // Two translations: the NAT gateway's own address, then its Elastic IP at the gateway.
    assert_eq!((got.src, got.src_port), (IpAddr::from(gw.public_ip), 40000));
    let d = decide_packet(
        &l,
        &flows,
        Duration::ZERO,
        host(&l, "app"),
        &tcp([10, 0, 1, 10], 40000, EX, 80, 0x10),
        None,
        &mut (),
    );
    assert_eq!(
        d.metered,
        Some(Metered::NatGateway(0)),
        "a NAT gateway bills what it processes"
    );
    let reply = tcp(EX, 80, gw.public_ip.octets(), 40000, SYN_ACK);
    let (out, back) = send(&l, &flows, "ex", reply);
    assert_eq!(out, Outcome::Deliver(host(&l, "app")));
    assert_eq!(
        (back.dst, back.dst_port),
        (IpAddr::from([10, 0, 1, 10]), 40000)
    );
    // Nothing opens a connection in: another port of the Elastic IP maps to nothing.
    let knock = tcp(EX, 5000, gw.public_ip.octets(), 22, SYN);
    let (out, _) = send(&l, &flows, "ex", knock);
    assert_eq!(out, Outcome::Drop(DropCode::NgwNoInboundInitiation));
}

#[test]
fn a_nat_gateway_translates_only_sources_of_its_vpc() {
    let l = lab();
    // An appliance without source/destination check forwards someone else's packet.
    let key = tcp([172, 16, 0, 1], 40000, EX, 80, SYN);
    let (out, _) = send(&l, &Conntrack::scratch(), "spoof", key);
    assert_eq!(out, Outcome::Drop(DropCode::NgwRequiresSourceInVpc));
}

#[test]
fn a_nat_gateway_routing_into_itself_is_a_loop() {
    let l = lab();
    let key = tcp([10, 9, 0, 10], 40000, EX, 80, SYN);
    let (out, _) = send(&l, &Conntrack::scratch(), "l", key);
    assert_eq!(out, Outcome::Drop(DropCode::NoPath));
}

#[test]
fn a_nat_gateway_answers_a_connection_idle_past_its_timeout_with_a_reset() {
    let l = lab();
    let flows = Conntrack::scratch();
    let from = host(&l, "app");
    let syn = tcp([10, 0, 1, 10], 40000, EX, 80, SYN);
    let ack = tcp([10, 0, 1, 10], 40000, EX, 80, 0x10);
    let at = |secs| Duration::from_secs(secs);
    assert!(matches!(
        decide(&l, &flows, at(0), from, &syn, &mut ()),
        Outcome::Deliver(_)
    ));
    let late = at(1) + nat::IDLE_TIMEOUT;
    assert_eq!(
        decide(&l, &flows, late, from, &ack, &mut ()),
        Outcome::Drop(DropCode::NgwIdleTimeout)
    );
    // The code of a full destination (55,000 connections, shown in nat.rs) is named too.
    assert_eq!(
        DropCode::NgwErrorPortAllocation.as_str(),
        "NGW_ERROR_PORT_ALLOCATION"
    );
}

const ENDPOINT_LAB: &str = r#"
name: vpce
services: { s3: { region: us-east-1 } }
vpcs:
  a:
    cidr: 10.0.0.0/16
    subnets: { s: { cidr: 10.0.1.0/24, route_table: rt } }
    route_tables: { rt: {} }
    endpoints: { e: { service: s3, type: gateway, route_tables: [rt] } }
    instances: { app: { subnet: s, private_ip: 10.0.1.10 } }
"#;

#[test]
fn a_gateway_endpoint_carries_tcp_to_its_service_untranslated_and_the_reply_back() {
    let l = Compiled::new(load_str(ENDPOINT_LAB, "vpce.yaml").unwrap_or_else(|e| panic!("{e}")));
    let flows = Conntrack::scratch();
    let s3 = l.lab.services[0].prefix_list.network();
    let request = tcp([10, 0, 1, 10], 40000, s3.octets(), 80, SYN);
    let (out, got) = send(&l, &flows, "app", request);
    assert_eq!(out, Outcome::Deliver(host(&l, "s3")));
    assert_eq!(got, request, "the service sees the private address");
    let reply = tcp(s3.octets(), 80, [10, 0, 1, 10], 40000, SYN_ACK);
    let mut hops = Vec::new();
    let out = decide(
        &l,
        &flows,
        Duration::ZERO,
        host(&l, "s3"),
        &reply,
        &mut hops,
    );
    assert_eq!(out, Outcome::Deliver(host(&l, "app")));
    assert!(hops.contains(&Hop::GatewayEndpoint {
        endpoint: 0,
        direction: Direction::Inbound
    }));
    // The service cannot open a connection into the VPC: private addresses are not on the
    // internet, and only replies come back through the endpoint.
    let knock = tcp(s3.octets(), 5000, [10, 0, 1, 10], 22, SYN);
    let (out, _) = send(&l, &flows, "s3", knock);
    assert_eq!(out, Outcome::Drop(DropCode::NoRouteToDestination));
    let udp = FlowKey {
        protocol: 17,
        tcp_flags: 0,
        ..tcp([10, 0, 1, 10], 40000, s3.octets(), 53, 0)
    };
    let (out, _) = send(&l, &flows, "app", udp);
    assert_eq!(out, Outcome::Drop(DropCode::VpceGatewayProtocolRestriction));
}

const INTERFACE_LAB: &str = r#"
name: iface
services: { sqs: { region: us-east-1 } }
vpcs:
  a:
    cidr: 10.0.0.0/16
    subnets: { s: { cidr: 10.0.1.0/24 }, ep: { cidr: 10.0.2.0/24 } }
    security_groups:
      ep-sg: { ingress: [{ protocol: tcp, ports: 80, source: 10.0.1.10/32 }] }
    endpoints: { e: { service: sqs, type: interface, subnets: [ep], security_groups: [ep-sg] } }
    instances:
      app: { subnet: s, private_ip: 10.0.1.10 }
      other: { subnet: s, private_ip: 10.0.1.11 }
"#;

#[test]
fn an_interface_endpoint_is_an_address_with_a_security_group_that_only_answers() {
    let l = Compiled::new(load_str(INTERFACE_LAB, "iface.yaml").unwrap_or_else(|e| panic!("{e}")));
    let flows = Conntrack::scratch();
    let eni = l.lab.endpoints[0].interfaces[0].private_ip;
    assert_eq!(
        eni,
        IpAddr::from([10, 0, 2, 4]),
        "the subnet's first free address"
    );
    let request = tcp([10, 0, 1, 10], 40000, eni.octets(), 80, SYN);
    let d = decide_packet(
        &l,
        &flows,
        Duration::ZERO,
        host(&l, "app"),
        &request,
        None,
        &mut (),
    );
    assert_eq!(d.outcome, Outcome::Deliver(host(&l, "sqs")));
    assert_eq!(
        d.delivered, request,
        "the service answers on the endpoint's own address"
    );
    assert_eq!(d.metered, Some(Metered::InterfaceEndpoint(0)));
    let reply = tcp(eni.octets(), 80, [10, 0, 1, 10], 40000, SYN_ACK);
    let (out, _) = send(&l, &flows, "sqs", reply);
    assert_eq!(out, Outcome::Deliver(host(&l, "app")));
    // Its group admits app only.
    let (out, _) = send(
        &l,
        &flows,
        "other",
        tcp([10, 0, 1, 11], 40000, eni.octets(), 80, SYN),
    );
    assert_eq!(out, Outcome::Drop(DropCode::EniSgRulesMismatch));
    // The endpoint never opens a connection into its VPC.
    let (out, _) = send(
        &l,
        &flows,
        "sqs",
        tcp(eni.octets(), 5000, [10, 0, 1, 11], 22, SYN),
    );
    assert_eq!(out, Outcome::Drop(DropCode::VpceIntraVpcTraffic));
}

const NAT_INSTANCE_LAB: &str = r#"
name: natinst
internet: { hosts: { ex: { ip: 198.51.100.10 } } }
vpcs:
  a:
    cidr: 10.0.0.0/16
    internet_gateway: true
    subnets:
      pub: { cidr: 10.0.0.0/24, route_table: pub-rt }
      priv: { cidr: 10.0.1.0/24, route_table: priv-rt }
      chk: { cidr: 10.0.2.0/24, route_table: chk-rt }
    route_tables:
      pub-rt: { routes: [{ destination: 0.0.0.0/0, target: igw:a }] }
      priv-rt: { routes: [{ destination: 0.0.0.0/0, target: eni:nat }] }
      chk-rt: { routes: [{ destination: 0.0.0.0/0, target: eni:checked }] }
    security_groups:
      nat-sg: { ingress: [{ protocol: all, source: 10.0.0.0/16 }] }
    instances:
      nat: { subnet: pub, private_ip: 10.0.0.10, public_ip: true, source_dest_check: false,
             forwarding: masquerade, security_groups: [nat-sg] }
      checked: { subnet: pub, private_ip: 10.0.0.11, public_ip: true, forwarding: masquerade,
                 security_groups: [nat-sg] }
      app: { subnet: priv, private_ip: 10.0.1.10 }
      app2: { subnet: chk, private_ip: 10.0.2.10 }
"#;

#[test]
fn a_route_to_an_instance_hands_it_the_packet_and_the_model_plays_its_kernel() {
    let l = Compiled::new(load_str(NAT_INSTANCE_LAB, "n.yaml").unwrap_or_else(|e| panic!("{e}")));
    let syn = tcp([10, 0, 1, 10], 40000, EX, 80, SYN);
    // The data plane hands the packet, unchanged, to the NAT instance's interface: its
    // kernel does the rest.
    let (out, got) = send(&l, &Conntrack::scratch(), "app", syn);
    assert_eq!(out, Outcome::Deliver(host(&l, "nat")));
    assert_eq!(got, syn);
    // The model decides the kernel's part too: masquerade, then the internet gateway.
    let mut hops = Vec::new();
    let d = decide_model(
        &l,
        &Conntrack::scratch(),
        Duration::ZERO,
        host(&l, "app"),
        &syn,
        None,
        &mut hops,
    );
    assert_eq!(d.outcome, Outcome::Deliver(host(&l, "ex")));
    let public = l.lab.instances[host(&l, "nat")].public_ip.unwrap().addr;
    assert_eq!(d.delivered.src, public);
    assert!(hops.iter().any(|h| matches!(h, Hop::Forwarded { .. })));
    // With the check on, the VPC never hands it a packet for someone else.
    let (out, _) = send(
        &l,
        &Conntrack::scratch(),
        "app2",
        tcp([10, 0, 2, 10], 40000, EX, 80, SYN),
    );
    assert_eq!(out, Outcome::Drop(DropCode::EniSourceDestCheckRestriction));
}
