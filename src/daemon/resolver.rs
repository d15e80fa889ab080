//! The Amazon DNS resolver of each VPC with `dns: true`, answered by the packet loop itself:
//! a UDP query an instance sends to port 53 of its VPC's base + 2 or of 169.254.169.253 gets
//! its response written straight back to the instance's interface, before the fabric's
//! decision, so no security group or NACL filters it, no flow log records it and no mirror
//! session copies it (aws-rules.md §2.1, §6.6). What the names mean is `Lab::resolve_dns`.
//! Each packet loop owns one `Resolver` and its buffer: nothing is allocated per query.

use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};

use crate::scenario::{HostId, HostRef, InstanceId, Lab};
use crate::wire::dns::{self, Query, Rcode};
use crate::wire::{write_udp_headers, UdpView, PROTO_UDP, UDP_HEADERS_LEN};

/// The resolver's link-local address, the same in every VPC.
pub const LINK_LOCAL: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 253);
const PORT: u16 = 53;
/// Seconds a client may keep an answer.
const TTL: u32 = 60;
/// Hops left in the responses, as a host one hop away would leave them.
const RESPONSE_TTL: u8 = 64;

/// A packet loop's resolver: where it writes its responses.
pub struct Resolver {
    out: Box<[u8; UDP_HEADERS_LEN + dns::MAX_UDP_MESSAGE]>,
}

impl Default for Resolver {
    fn default() -> Self {
        Resolver {
            out: Box::new([0; UDP_HEADERS_LEN + dns::MAX_UDP_MESSAGE]),
        }
    }
}

impl Resolver {
    /// If `packet`, sent by host `from` of `lab`, is a DNS query for its VPC's resolver, the
    /// response to write back to that host's interface. None for every other packet, which
    /// the fabric then decides (a query to a VPC with `dns: false` finds nobody there). Other
    /// traffic pays a few byte comparisons.
    pub fn answer(&mut self, lab: &Lab, from: HostId, packet: &[u8]) -> Option<&[u8]> {
        if !looks_like_query(packet) {
            return None;
        }
        self.answer_from(lab, from, packet)
    }

    /// The response to `packet` from host `from` of `lab`, if it is a query for its resolver.
    fn answer_from(&mut self, lab: &Lab, from: HostId, packet: &[u8]) -> Option<&[u8]> {
        let udp = UdpView::parse(packet)?;
        let HostRef::Instance(asker, instance) = lab.host(from) else {
            return None;
        };
        let resolver = lab.vpcs[instance.vpc].resolver()?;
        let to = *udp.dst.ip();
        if udp.dst.port() != PORT || (to != resolver && to != LINK_LOCAL) {
            return None;
        }
        let len = respond(lab, asker, udp.payload, &mut self.out[UDP_HEADERS_LEN..])?;
        // From the address the query went to, so the client takes it for the answer.
        let back = SocketAddrV4::new(to, PORT);
        let total = write_udp_headers(back, udp.src, RESPONSE_TTL, len, &mut self.out[..])?;
        Some(&self.out[..total])
    }
}

/// IPv4, UDP, destination port 53: read straight from the bytes, so that other packets cost
/// next to nothing.
fn looks_like_query(packet: &[u8]) -> bool {
    let Some(&first) = packet.first() else {
        return false;
    };
    let port_at = usize::from(first & 0x0f) * 4 + 2;
    first >> 4 == 4
        && packet.get(9) == Some(&PROTO_UDP)
        && packet.get(port_at..port_at + 2) == Some(&PORT.to_be_bytes()[..])
}

/// Writes the response to the DNS message `query` from instance `asker` into `out`; None
/// when the message is no query (garbage gets no answer, as from any resolver).
fn respond(lab: &Lab, asker: InstanceId, query: &[u8], out: &mut [u8]) -> Option<usize> {
    let query = dns::parse_query(query).ok()?;
    let mut name = [0u8; dns::MAX_NAME];
    let (rcode, address) = decide(lab, asker, &query, &mut name);
    dns::write_response(&query, rcode, address.as_slice(), TTL, out)
}

/// The response code and the record, if any: NOTIMP for other opcodes, FORMERR for a query
/// without a question, REFUSED for classes other than IN, NXDOMAIN for names the lab does not
/// have, and for a name it has, its IPv4 address when asked for A (or ANY), its IPv6 address
/// when asked for AAAA and it has one, and no answer (NODATA) otherwise.
fn decide(
    lab: &Lab,
    asker: InstanceId,
    query: &Query<'_>,
    name: &mut [u8; dns::MAX_NAME],
) -> (Rcode, Option<IpAddr>) {
    if query.opcode != 0 {
        return (Rcode::NotImp, None);
    }
    let Some(question) = query.question else {
        return (Rcode::FormErr, None);
    };
    if !matches!(question.qclass, dns::CLASS_IN | dns::CLASS_ANY) {
        return (Rcode::Refused, None);
    }
    let Some(text) = question.name_text(name) else {
        return (Rcode::NxDomain, None);
    };
    match lab.resolve_dns(asker, text) {
        None => (Rcode::NxDomain, None),
        Some(addr) if matches!(question.qtype, dns::TYPE_A | dns::TYPE_ANY) => {
            (Rcode::NoError, Some(addr.into()))
        }
        Some(_) if question.qtype == dns::TYPE_AAAA => {
            (Rcode::NoError, lab.resolve_dns_ipv6(text).map(IpAddr::V6))
        }
        Some(_) => (Rcode::NoError, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::load_str;
    use etherparse::PacketBuilder;

    const LAB: &str = r#"
name: res
vpcs:
  a:
    cidr: 10.0.0.0/16
    subnets:
      s1: { cidr: 10.0.1.0/24 }
    instances:
      web1: { subnet: s1, private_ip: 10.0.1.10 }
  off:
    cidr: 10.5.0.0/16
    dns: false
    subnets:
      s5: { cidr: 10.5.1.0/24 }
    instances:
      quiet: { subnet: s5, private_ip: 10.5.1.10 }
"#;

    fn lab() -> Lab {
        load_str(LAB, "res.yaml").unwrap_or_else(|e| panic!("{e}"))
    }

    /// A query for `name` of type `qtype`, from `src`:40000 to `dst`:`port`.
    fn query(src: [u8; 4], dst: [u8; 4], port: u16, name: &str, qtype: u16) -> Vec<u8> {
        let mut msg = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            msg.push(label.len() as u8);
            msg.extend(label.as_bytes());
        }
        msg.extend([0]);
        msg.extend(qtype.to_be_bytes());
        msg.extend(dns::CLASS_IN.to_be_bytes());
        let mut packet = Vec::new();
        PacketBuilder::ipv4(src, dst, 64)
            .udp(40000, port)
            .write(&mut packet, &msg)
            .unwrap();
        packet
    }

    #[test]
    fn answers_at_base_plus_two_and_link_local_from_the_address_asked() {
        let lab = lab();
        let mut resolver = Resolver::default();
        for server in [[10, 0, 0, 2], [169, 254, 169, 253]] {
            let packet = query([10, 0, 1, 10], server, 53, "WEB1", dns::TYPE_A);
            let reply = resolver.answer_from(&lab, 0, &packet).expect("an answer");
            let udp = UdpView::parse(reply).unwrap();
            assert_eq!(udp.src, SocketAddrV4::new(server.into(), 53));
            assert_eq!(udp.dst, SocketAddrV4::new([10, 0, 1, 10].into(), 40000));
            let msg = udp.payload;
            assert_eq!(&msg[..4], &[0x12, 0x34, 0x81, 0x80]);
            assert_eq!(&msg[6..8], &[0, 1], "one answer");
            assert_eq!(&msg[msg.len() - 4..], &[10, 0, 1, 10]);
        }
    }

    #[test]
    fn unknown_names_are_nxdomain_and_aaaa_is_nodata() {
        let lab = lab();
        let mut resolver = Resolver::default();
        let packet = query(
            [10, 0, 1, 10],
            [10, 0, 0, 2],
            53,
            "nope.example",
            dns::TYPE_A,
        );
        let msg = UdpView::parse(resolver.answer_from(&lab, 0, &packet).unwrap())
            .unwrap()
            .payload
            .to_vec();
        assert_eq!((msg[3] & 0x0f, &msg[6..8]), (3, &[0u8, 0][..]));
        let packet = query([10, 0, 1, 10], [10, 0, 0, 2], 53, "web1", dns::TYPE_AAAA);
        let msg = UdpView::parse(resolver.answer_from(&lab, 0, &packet).unwrap())
            .unwrap()
            .payload
            .to_vec();
        assert_eq!((msg[3] & 0x0f, &msg[6..8]), (0, &[0u8, 0][..]));
    }

    #[test]
    fn other_packets_go_to_the_fabric() {
        let lab = lab();
        let mut resolver = Resolver::default();
        // Another address, another port, a VPC without DNS, garbage.
        let elsewhere = query([10, 0, 1, 10], [10, 0, 1, 2], 53, "web1", dns::TYPE_A);
        assert!(resolver.answer_from(&lab, 0, &elsewhere).is_none());
        let other_port = query([10, 0, 1, 10], [10, 0, 0, 2], 5353, "web1", dns::TYPE_A);
        assert!(resolver.answer_from(&lab, 0, &other_port).is_none());
        let off = query([10, 5, 1, 10], [10, 5, 0, 2], 53, "web1", dns::TYPE_A);
        assert!(resolver.answer_from(&lab, 1, &off).is_none());
        let link_local = query(
            [10, 5, 1, 10],
            [169, 254, 169, 253],
            53,
            "web1",
            dns::TYPE_A,
        );
        assert!(resolver.answer_from(&lab, 1, &link_local).is_none());
        let ok = query([10, 0, 1, 10], [10, 0, 0, 2], 53, "web1", dns::TYPE_A);
        assert!(looks_like_query(&ok) && !looks_like_query(&other_port));
        assert!(!looks_like_query(&[]) && !looks_like_query(&[0x45]));
        let mut garbage = ok.clone();
        garbage.truncate(30);
        garbage[3] = 30; // a consistent IPv4 length
        garbage[25] = 10; // and UDP length, for 2 bytes of DNS
        assert!(resolver.answer_from(&lab, 0, &garbage).is_none());
        assert!(resolver.answer_from(&lab, 0, &[]).is_none());
    }
}
