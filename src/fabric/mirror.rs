//! Fabric core: traffic mirroring (aws-rules.md §10). Which session, if any, copies a packet an
//! ENI sends or receives, and the VXLAN copy that session sends to its target. Pure: no I/O, no
//! allocation; the caller owns the copy's buffer and decides the copy with
//! `decide_mirror_copy`.

use std::net::IpAddr;

use crate::scenario::{InstanceId, MirrorRule, MirrorSessionId};
use crate::wire::{encapsulate, FlowKey, Vxlan, PROTO_UDP, VXLAN_PORT};

use super::{Compiled, Direction};

/// The MTU of a target instance's interface: a copy is cut to fit it.
pub const TARGET_MTU: usize = 9001;
/// The TTL of a copy's outer header, as a Linux sender sets it.
const TTL: u8 = 64;

/// The session that mirrors a packet `eni` sends (`Outbound`) or receives (`Inbound`): the
/// sessions of `eni` by ascending session number, the first whose filter accepts the packet.
/// In a filter the lowest-numbered rule of that direction that matches decides: accept mirrors
/// with this session, reject leaves the packet to the next session; no match, or no rules,
/// mirror nothing with this session.
pub fn mirror_session(
    lab: &Compiled,
    eni: InstanceId,
    direction: Direction,
    key: &FlowKey,
) -> Option<MirrorSessionId> {
    lab.mirror_sessions_of(eni).iter().copied().find(|&s| {
        let filter = &lab.lab.mirror_filters[lab.lab.mirror_sessions[s].filter];
        let rules = match direction {
            Direction::Inbound => &filter.inbound,
            Direction::Outbound => &filter.outbound,
        };
        // The loader keeps the rules sorted by number.
        rules
            .iter()
            .find(|r| rule_matches(r, key))
            .is_some_and(|r| r.accept)
    })
}

fn rule_matches(r: &MirrorRule, key: &FlowKey) -> bool {
    // Port ranges are ALL unless the rule is tcp or udp (the loader guarantees it), so the
    // ICMP echo identifier that `FlowKey` keeps in the port fields never decides.
    r.protocol.matches(key.protocol)
        && super::lookup::net_contains(&r.source_cidr, key.src)
        && super::lookup::net_contains(&r.destination_cidr, key.dst)
        && r.source_ports.contains(key.src_port)
        && r.destination_ports.contains(key.dst_port)
}

/// A copy written by `write_copy`: its length in the buffer, the ENIs it goes between and the
/// outer header the fabric decides it on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MirrorCopy {
    pub len: usize,
    pub source: InstanceId,
    pub target: InstanceId,
    pub key: FlowKey,
}

/// Writes the copy of `packet` (whose header is `key`) that `session` sends: VXLAN over UDP
/// 4789 from the source ENI's primary address to the target ENI's, with the session's VNI,
/// cut to the session's packet length and to the target's MTU. `id` is the outer IPv4
/// identification. `out` should hold `TARGET_MTU` bytes; a shorter one cuts the copy shorter.
pub fn write_copy(
    lab: &Compiled,
    session: MirrorSessionId,
    packet: &[u8],
    key: &FlowKey,
    id: u16,
    out: &mut [u8],
) -> MirrorCopy {
    let s = &lab.lab.mirror_sessions[session];
    let target = lab.lab.mirror_targets[s.target].eni;
    let src = lab.lab.instances[s.source].private_ip;
    let dst = lab.lab.instances[target].private_ip;
    let src_port = flow_port(key);
    let vxlan = Vxlan {
        src,
        dst,
        src_port,
        vni: s.vni,
        id,
        ttl: TTL,
        inner_src_mac: mac(key.src),
        inner_dst_mac: mac(key.dst),
    };
    let inner_max = s.packet_length.map_or(usize::MAX, usize::from);
    let limit = out.len().min(TARGET_MTU);
    let len = encapsulate(&vxlan, packet, inner_max, &mut out[..limit]);
    MirrorCopy {
        len,
        source: s.source,
        target,
        key: FlowKey {
            src: src.into(),
            dst: dst.into(),
            protocol: PROTO_UDP,
            src_port,
            dst_port: VXLAN_PORT,
            icmp_type: 0,
            icmp_code: 0,
            tcp_flags: 0,
        },
    }
}

/// A fixed, locally administered MAC for an address (`02:00:` and its last four octets), so
/// the inner frame names each end the same way in every capture.
pub fn mac(addr: IpAddr) -> [u8; 6] {
    let [a, b, c, d] = match addr {
        IpAddr::V4(v4) => v4.octets(),
        IpAddr::V6(v6) => {
            let o = v6.octets();
            [o[12], o[13], o[14], o[15]]
        }
    };
    [0x02, 0x00, a, b, c, d]
}

/// An address's octets, 4 or 16 of them, without allocating.
fn octets(addr: IpAddr) -> impl Iterator<Item = u8> {
    let (bytes, len) = match addr {
        IpAddr::V4(v4) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&v4.octets());
            (b, 4)
        }
        IpAddr::V6(v6) => (v6.octets(), 16),
    };
    bytes.into_iter().take(len)
}

/// The outer UDP source port: a hash of the inner flow in 49152-65535, as VXLAN senders pick
/// it (RFC 7348 §5) so that one flow's copies keep one path and flows spread over several.
fn flow_port(key: &FlowKey) -> u16 {
    let mut hash: u32 = 0x811c_9dc5;
    let bytes = octets(key.src)
        .chain(octets(key.dst))
        .chain([key.protocol])
        .chain(key.src_port.to_be_bytes())
        .chain(key.dst_port.to_be_bytes());
    for b in bytes {
        hash = (hash ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    49152 + (hash % 16384) as u16
}

#[cfg(test)]
mod tests {
    use etherparse::{
        EtherType, LaxNetSlice, LaxSlicedPacket, LinkSlice, NetSlice, PacketBuilder, SlicedPacket,
        TransportSlice,
    };

    use super::*;
    use crate::scenario::load_str;
    use crate::wire::{INNER_ETHERNET_LEN, OUTER_LEN};

    /// `src` carries three sessions, declared out of order; `quiet` one whose filter is empty.
    const LAB: &str = r#"
name: t
vpcs:
  a:
    cidr: 10.0.0.0/16
    subnets: { a1: { cidr: 10.0.1.0/24 } }
    instances:
      src: { subnet: a1, private_ip: 10.0.1.10 }
      mon: { subnet: a1, private_ip: 10.0.1.20 }
      mon2: { subnet: a1, private_ip: 10.0.1.21 }
      quiet: { subnet: a1, private_ip: 10.0.1.30 }
traffic_mirroring:
  targets: { t1: { eni: mon }, t2: { eni: eni:mon2 } }
  filters:
    web-not-ssh:
      inbound:
        - { rule: 20, protocol: tcp, action: accept }
        - { rule: 10, protocol: tcp, destination_ports: 22, action: reject }
    everything:
      inbound: [{ rule: 1, action: accept }]
      outbound: [{ rule: 1, action: accept }]
    nothing: {}
  sessions:
    late: { source: eni:src, target: t2, filter: everything, session_number: 5, vni: 2 }
    early: { source: eni:src, target: t1, filter: web-not-ssh, session_number: 1, vni: 1,
             packet_length: 60 }
    middle: { source: src, target: t1, filter: nothing, session_number: 3 }
    silent: { source: eni:quiet, target: t1, filter: nothing, session_number: 1 }
"#;

    fn lab() -> Compiled {
        Compiled::new(load_str(LAB, "t.yaml").unwrap_or_else(|e| panic!("{e}")))
    }

    fn session_named(lab: &Compiled, name: &str) -> MirrorSessionId {
        lab.lab
            .mirror_sessions
            .iter()
            .position(|s| s.name == name)
            .unwrap()
    }

    /// A TCP packet from 10.0.1.99:40000 to src (10.0.1.10) with `payload` bytes of data.
    fn tcp_to_src(dst_port: u16, payload: usize) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ipv4([10, 0, 1, 99], [10, 0, 1, 10], 64)
            .tcp(40000, dst_port, 1, 1024)
            .write(&mut out, &vec![0xab; payload])
            .unwrap();
        out
    }

    fn key(packet: &[u8]) -> FlowKey {
        FlowKey::parse(packet).unwrap()
    }

    #[test]
    fn sessions_are_tried_by_session_number_and_rules_by_rule_number() {
        let lab = lab();
        let src = lab.lab.instance_by_name("src").unwrap();
        let name = |s: Option<MirrorSessionId>| s.map(|s| lab.lab.mirror_sessions[s].name.clone());
        let http = key(&tcp_to_src(80, 0));
        // Session 1 accepts tcp in, although `late` (declared first) would too.
        assert_eq!(
            name(mirror_session(&lab, src, Direction::Inbound, &http)).as_deref(),
            Some("early")
        );
        // Rule 10 (written second) rejects ssh before rule 20 accepts tcp: session 1 passes it
        // on, session 3 has no rules, session 5 takes it.
        let ssh = key(&tcp_to_src(22, 0));
        assert_eq!(
            name(mirror_session(&lab, src, Direction::Inbound, &ssh)).as_deref(),
            Some("late")
        );
        // No outbound rules in sessions 1 and 3: only session 5 mirrors what src sends.
        assert_eq!(
            name(mirror_session(
                &lab,
                src,
                Direction::Outbound,
                &http.reversed()
            ))
            .as_deref(),
            Some("late")
        );
    }

    #[test]
    fn a_filter_without_rules_mirrors_nothing() {
        let lab = lab();
        let quiet = lab.lab.instance_by_name("quiet").unwrap();
        let mon = lab.lab.instance_by_name("mon").unwrap();
        let k = key(&tcp_to_src(80, 0));
        for direction in [Direction::Inbound, Direction::Outbound] {
            assert_eq!(mirror_session(&lab, quiet, direction, &k), None);
            // An ENI that is no session's source mirrors nothing either.
            assert_eq!(mirror_session(&lab, mon, direction, &k), None);
        }
    }

    #[test]
    fn the_copy_is_vxlan_to_the_target_with_the_whole_packet() {
        let lab = lab();
        let packet = tcp_to_src(80, 200);
        let k = key(&packet);
        let mut out = vec![0u8; TARGET_MTU];
        let copy = write_copy(&lab, session_named(&lab, "late"), &packet, &k, 9, &mut out);
        assert_eq!(copy.len, OUTER_LEN + INNER_ETHERNET_LEN + packet.len());
        assert_eq!(copy.source, lab.lab.instance_by_name("src").unwrap());
        assert_eq!(copy.target, lab.lab.instance_by_name("mon2").unwrap());

        let outer = SlicedPacket::from_ip(&out[..copy.len]).expect("a valid IPv4/UDP packet");
        let Some(NetSlice::Ipv4(ip)) = &outer.net else {
            panic!("not IPv4: {:?}", outer.net)
        };
        let h = ip.header();
        assert_eq!(
            h.source(),
            [10, 0, 1, 10],
            "the source ENI's primary address"
        );
        assert_eq!(
            h.destination(),
            [10, 0, 1, 21],
            "the target ENI's primary address"
        );
        assert_eq!(
            (h.ttl(), h.dont_fragment(), h.identification()),
            (64, false, 9)
        );
        assert_eq!(h.header_checksum(), h.to_header().calc_header_checksum());
        let Some(TransportSlice::Udp(udp)) = &outer.transport else {
            panic!("not UDP: {:?}", outer.transport)
        };
        assert_eq!(udp.destination_port(), 4789);
        assert!((49152..=65535).contains(&udp.source_port()));
        assert_eq!(udp.checksum(), 0, "no UDP checksum");
        assert_eq!(
            copy.key,
            FlowKey {
                src: IpAddr::from([10, 0, 1, 10]),
                dst: IpAddr::from([10, 0, 1, 21]),
                protocol: 17,
                src_port: udp.source_port(),
                dst_port: 4789,
                icmp_type: 0,
                icmp_code: 0,
                tcp_flags: 0,
            }
        );

        let vxlan = udp.payload();
        assert_eq!(&vxlan[..8], &[0x08, 0, 0, 0, 0, 0, 2, 0], "flags I, VNI 2");
        let inner = SlicedPacket::from_ethernet(&vxlan[8..]).expect("a valid inner frame");
        let Some(LinkSlice::Ethernet2(eth)) = &inner.link else {
            panic!("no Ethernet II header: {:?}", inner.link)
        };
        assert_eq!(eth.source(), [2, 0, 10, 0, 1, 99]);
        assert_eq!(eth.destination(), [2, 0, 10, 0, 1, 10]);
        assert_eq!(eth.ether_type(), EtherType::IPV4);
        assert_eq!(
            &vxlan[8 + INNER_ETHERNET_LEN..],
            &packet[..],
            "the packet, unchanged"
        );
        let Some(TransportSlice::Tcp(tcp)) = &inner.transport else {
            panic!("no inner TCP: {:?}", inner.transport)
        };
        assert_eq!((tcp.source_port(), tcp.destination_port()), (40000, 80));
    }

    #[test]
    fn packet_length_and_the_target_mtu_truncate_the_copy() {
        let lab = lab();
        let packet = tcp_to_src(80, 500);
        let k = key(&packet);
        let mut out = vec![0u8; TARGET_MTU];
        // Session `early` keeps 60 bytes after the VXLAN header.
        let copy = write_copy(&lab, session_named(&lab, "early"), &packet, &k, 1, &mut out);
        assert_eq!(copy.len, OUTER_LEN + 60);
        // (A block: the parsed slices borrow `out` until they are dropped.)
        {
            let outer = SlicedPacket::from_ip(&out[..copy.len]).expect("the outer headers agree");
            let Some(TransportSlice::Udp(udp)) = &outer.transport else {
                panic!("not UDP")
            };
            assert_eq!(usize::from(udp.length()), 8 + 8 + 60);
            assert_eq!(&udp.payload()[..8], &[0x08, 0, 0, 0, 0, 0, 1, 0]);
            let inner = &udp.payload()[8..];
            assert_eq!(
                &inner[INNER_ETHERNET_LEN..],
                &packet[..60 - INNER_ETHERNET_LEN]
            );
            // The inner header still reads, and says the packet was longer than what came.
            let lax = LaxSlicedPacket::from_ethernet(inner).unwrap();
            let Some(LaxNetSlice::Ipv4(ip)) = &lax.net else {
                panic!("no inner IPv4")
            };
            assert_eq!(usize::from(ip.header().total_len()), packet.len());
        }

        // A jumbo packet is cut to the target's 9001-byte MTU.
        let jumbo = tcp_to_src(80, 8961);
        let copy = write_copy(
            &lab,
            session_named(&lab, "late"),
            &jumbo,
            &key(&jumbo),
            2,
            &mut out,
        );
        assert_eq!(copy.len, TARGET_MTU);
        let ip = etherparse::Ipv4HeaderSlice::from_slice(&out).unwrap();
        assert_eq!(usize::from(ip.total_len()), TARGET_MTU);
    }

    /// The source may send nothing at all; one target allows VXLAN in, the other does not.
    const GUARDED: &str = r#"
name: g
vpcs:
  a:
    cidr: 10.0.0.0/16
    subnets: { a1: { cidr: 10.0.1.0/24 }, a2: { cidr: 10.0.2.0/24 } }
    security_groups:
      mute: { ingress: [], egress: [] }
      vxlan: { ingress: [{ protocol: udp, ports: 4789, source: 10.0.0.0/16 }] }
      closed: { ingress: [] }
    instances:
      src: { subnet: a1, private_ip: 10.0.1.10, security_groups: [mute] }
      open-mon: { subnet: a2, private_ip: 10.0.2.20, security_groups: [vxlan] }
      closed-mon: { subnet: a2, private_ip: 10.0.2.21, security_groups: [closed] }
traffic_mirroring:
  targets: { open: { eni: open-mon }, closed: { eni: closed-mon } }
  filters: { all: { inbound: [{ rule: 1, action: accept }] } }
  sessions:
    to-open: { source: eni:src, target: open, filter: all, session_number: 1 }
    to-closed: { source: eni:src, target: closed, filter: all, session_number: 2 }
"#;

    #[test]
    fn the_copy_skips_the_source_sg_but_meets_the_target_sg() {
        use super::super::{decide, decide_mirror_copy, Conntrack, DropCode, Hop, Outcome};
        use std::time::Duration;

        let lab = Compiled::new(load_str(GUARDED, "g.yaml").unwrap_or_else(|e| panic!("{e}")));
        let packet = tcp_to_src(80, 0);
        let k = key(&packet);
        let mut out = vec![0u8; TARGET_MTU];
        let flows = Conntrack::scratch();
        let copy = write_copy(
            &lab,
            session_named(&lab, "to-open"),
            &packet,
            &k,
            1,
            &mut out,
        );
        let mut hops = Vec::new();
        let outcome = decide_mirror_copy(
            &lab,
            &flows,
            Duration::ZERO,
            copy.source,
            &copy.key,
            &mut hops,
        );
        assert_eq!(outcome, Outcome::Deliver(copy.target), "{hops:?}");
        assert!(
            !hops
                .iter()
                .any(|h| matches!(h, Hop::SecurityGroup { eni, .. } if *eni == copy.source)),
            "the source's groups are not evaluated: {hops:?}"
        );
        // The same header sent as an ordinary packet meets src's empty egress.
        let plain = decide(
            &lab,
            &flows,
            Duration::ZERO,
            copy.source,
            &copy.key,
            &mut (),
        );
        assert_eq!(plain, Outcome::Drop(DropCode::EniSgRulesMismatch));

        let copy = write_copy(
            &lab,
            session_named(&lab, "to-closed"),
            &packet,
            &k,
            2,
            &mut out,
        );
        let outcome = decide_mirror_copy(
            &lab,
            &flows,
            Duration::ZERO,
            copy.source,
            &copy.key,
            &mut (),
        );
        assert_eq!(outcome, Outcome::Drop(DropCode::EniSgRulesMismatch));
    }

    #[test]
    fn explain_names_the_session_that_copies_each_leg() {
        let l = lab();
        let (from, to) = (
            l.lab.instance_by_name("mon").unwrap(),
            l.lab.instance_by_name("src").unwrap(),
        );
        let probe = crate::fabric::probe_key(
            l.lab.instances[from].private_ip.into(),
            l.lab.instances[to].private_ip.into(),
            crate::scenario::Probe::Tcp,
            80,
        );
        let x = crate::fabric::explain(&l, from, probe);
        // Arriving at src, tcp/80 is copied by `early` (number 1) before `late` (number 5);
        // src's answer leaves by `late`, the only session with outbound rules.
        let forward: Vec<_> = x.forward.mirrored.iter().map(|m| m.session).collect();
        assert_eq!(forward, vec![session_named(&l, "early")]);
        let reply = x.reply.as_ref().unwrap();
        let back: Vec<_> = reply.mirrored.iter().map(|m| m.session).collect();
        assert_eq!(back, vec![session_named(&l, "late")]);
        assert!(x
            .render(&l)
            .contains("mirrored: session early (number 1, VNI 1)"));
    }
}
