//! The data plane's path without root: real packet bytes (as a TUN hands them over) read by
//! `read_packet` and decided against one shared connection table on a virtual clock, on the
//! scenario that teaches stateful security groups.

use std::path::Path;
use std::time::Duration;

use etherparse::PacketBuilder;
use vpclab::fabric::{
    decide_quoting, read_packet, timeout, Compiled, Conntrack, DropCode, Outcome,
};
use vpclab::scenario::{self, InstanceId};

fn lab() -> Compiled {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/sg-stateful.yaml");
    Compiled::new(scenario::load_file(&file).unwrap_or_else(|e| panic!("{e}")))
}

fn host(lab: &Compiled, name: &str) -> (InstanceId, [u8; 4]) {
    let id = lab.lab.instance_by_name(name).unwrap();
    (id, lab.lab.instances[id].private_ip.octets())
}

fn tcp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, syn: bool, ack: bool) -> Vec<u8> {
    let mut b = PacketBuilder::ipv4(src, dst, 64).tcp(sport, dport, 1, 1000);
    if syn {
        b = b.syn();
    }
    if ack {
        b = b.ack(1);
    }
    let mut out = Vec::new();
    b.write(&mut out, b"").unwrap();
    out
}

fn send(lab: &Compiled, flows: &Conntrack, secs: u64, from: InstanceId, bytes: &[u8]) -> Outcome {
    let p = match read_packet(bytes) {
        Ok(p) => p,
        Err(code) => return Outcome::Drop(code),
    };
    let now = Duration::from_secs(secs);
    decide_quoting(lab, flows, now, from, &p.key, p.quoted.as_ref(), &mut ())
}

#[test]
fn a_connection_lives_by_state_and_dies_when_idle() {
    let lab = lab();
    let flows = Conntrack::for_dataplane();
    let (client, c) = host(&lab, "client");
    let (server, s) = host(&lab, "server");
    // client's group has no inbound rule: the server cannot open a connection to it.
    let syn_in = tcp(s, 45000, c, 9000, true, false);
    assert_eq!(
        send(&lab, &flows, 0, server, &syn_in),
        Outcome::Drop(DropCode::EniSgRulesMismatch)
    );
    // The client's own connection: its replies come in by state.
    let syn = tcp(c, 51000, s, 80, true, false);
    let syn_ack = tcp(s, 80, c, 51000, true, true);
    let ack = tcp(c, 51000, s, 80, false, true);
    assert_eq!(
        send(&lab, &flows, 0, client, &syn),
        Outcome::Deliver(server)
    );
    assert_eq!(
        send(&lab, &flows, 0, server, &syn_ack),
        Outcome::Deliver(client)
    );
    assert_eq!(
        send(&lab, &flows, 1, client, &ack),
        Outcome::Deliver(server)
    );
    // Five days of silence keep it; a day more forgets it on the next sweep.
    let later = 1 + timeout::TCP_ESTABLISHED;
    assert_eq!(
        send(&lab, &flows, later, server, &syn_ack),
        Outcome::Deliver(client)
    );
    flows.sweep(Duration::from_secs(later + timeout::TCP_ESTABLISHED + 1));
    assert_eq!(
        send(
            &lab,
            &flows,
            later + timeout::TCP_ESTABLISHED + 1,
            server,
            &syn_ack
        ),
        Outcome::Drop(DropCode::EniSgRulesMismatch)
    );
}

#[test]
fn a_port_unreachable_error_about_a_tracked_flow_comes_back() {
    let lab = lab();
    let flows = Conntrack::for_dataplane();
    let (client, c) = host(&lab, "client");
    let (server, s) = host(&lab, "server");
    let mut datagram = Vec::new();
    PacketBuilder::ipv4(c, s, 64)
        .udp(52000, 9999)
        .write(&mut datagram, b"probe")
        .unwrap();
    assert_eq!(
        send(&lab, &flows, 0, client, &datagram),
        Outcome::Deliver(server)
    );
    let mut error = Vec::new();
    PacketBuilder::ipv4(s, c, 64)
        .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::Port,
        ))
        .write(&mut error, &datagram[..28])
        .unwrap();
    assert_eq!(
        send(&lab, &flows, 1, server, &error),
        Outcome::Deliver(client)
    );
    // Without the tracked flow the same error meets client's rules, which admit nothing.
    let fresh = Conntrack::for_dataplane();
    assert_eq!(
        send(&lab, &fresh, 1, server, &error),
        Outcome::Drop(DropCode::EniSgRulesMismatch)
    );
}

#[test]
fn ipv6_from_an_ipv4_only_instance_is_not_its_own() {
    let lab = lab();
    let (client, _) = host(&lab, "client");
    let mut v6 = Vec::new();
    PacketBuilder::ipv6(
        [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
        64,
    )
    .udp(1, 2)
    .write(&mut v6, b"")
    .unwrap();
    // The client's subnet has no IPv6: no IPv6 address is the client's own.
    assert_eq!(
        send(&lab, &Conntrack::scratch(), 0, client, &v6),
        Outcome::Drop(DropCode::EniSourceDestCheckRestriction)
    );
    // What is not IP at all is not carried.
    let mut garbage = v6.clone();
    garbage[0] = 0x50;
    assert_eq!(
        send(&lab, &Conntrack::scratch(), 0, client, &garbage),
        Outcome::Drop(DropCode::UnsupportedPacket)
    );
}
