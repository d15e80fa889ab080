//! The header fields the fabric decides on, read from an IPv4 or IPv6 packet without copying it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_ICMPV6: u8 = 58;

/// IPv6 next-header value of a fragment header.
const IPV6_FRAGMENT: u8 = 44;
const IPV6_HEADER_LEN: usize = 40;

/// What a packet is, as far as routing and filtering care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 protocol, or the IPv6 upper-layer header (after a fragment header, if any).
    pub protocol: u8,
    /// tcp/udp source port; ICMP echo identifier; 0 otherwise.
    pub src_port: u16,
    /// tcp/udp destination port; ICMP echo identifier; 0 otherwise.
    pub dst_port: u16,
    /// ICMP (or ICMPv6) type and code; 0 for other protocols.
    pub icmp_type: u8,
    pub icmp_code: u8,
    /// TCP flags byte (SYN 0x02, ACK 0x10, RST 0x04, FIN 0x01); 0 otherwise.
    pub tcp_flags: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("not an IP packet (version {0})")]
    NotIp(u8),
    #[error("packet of {len} bytes is shorter than its header needs ({need})")]
    Truncated { len: usize, need: usize },
}

impl FlowKey {
    /// Reads the IP header and, for the first fragment, the transport ports.
    pub fn parse(packet: &[u8]) -> Result<FlowKey, ParseError> {
        let Some(&first) = packet.first() else {
            return Err(ParseError::Truncated { len: 0, need: 20 });
        };
        match first >> 4 {
            4 => Self::parse_v4(packet),
            6 => Self::parse_v6(packet),
            version => Err(ParseError::NotIp(version)),
        }
    }

    fn parse_v4(packet: &[u8]) -> Result<FlowKey, ParseError> {
        if packet.len() < 20 {
            return Err(ParseError::Truncated {
                len: packet.len(),
                need: 20,
            });
        }
        let header_len = usize::from(packet[0] & 0x0f) * 4;
        if header_len < 20 || packet.len() < header_len {
            return Err(ParseError::Truncated {
                len: packet.len(),
                need: header_len.max(20),
            });
        }
        let src = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
        let dst = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
        let fragment_offset = u16::from_be_bytes([packet[6], packet[7]]) & 0x1fff;
        let key = FlowKey::addresses(src.into(), dst.into(), packet[9]);
        // Later fragments carry no transport header; they are decided on addresses alone.
        if fragment_offset != 0 {
            return Ok(key);
        }
        key.with_transport(packet, header_len)
    }

    fn parse_v6(packet: &[u8]) -> Result<FlowKey, ParseError> {
        if packet.len() < IPV6_HEADER_LEN {
            return Err(ParseError::Truncated {
                len: packet.len(),
                need: IPV6_HEADER_LEN,
            });
        }
        let octets = |at: usize| -> [u8; 16] {
            let mut a = [0u8; 16];
            a.copy_from_slice(&packet[at..at + 16]);
            a
        };
        let src = Ipv6Addr::from(octets(8));
        let dst = Ipv6Addr::from(octets(24));
        let mut next = packet[6];
        let mut header_len = IPV6_HEADER_LEN;
        // A fragment header (8 bytes) is the one extension the lab's hosts send; a later
        // fragment has no transport header.
        if next == IPV6_FRAGMENT {
            let Some(fragment) = packet.get(header_len..header_len + 8) else {
                return Err(ParseError::Truncated {
                    len: packet.len(),
                    need: header_len + 8,
                });
            };
            next = fragment[0];
            header_len += 8;
            let offset = u16::from_be_bytes([fragment[2], fragment[3]]) >> 3;
            if offset != 0 {
                return Ok(FlowKey::addresses(src.into(), dst.into(), next));
            }
        }
        FlowKey::addresses(src.into(), dst.into(), next).with_transport(packet, header_len)
    }

    /// A key with addresses and protocol only.
    fn addresses(src: IpAddr, dst: IpAddr, protocol: u8) -> FlowKey {
        FlowKey {
            src,
            dst,
            protocol,
            src_port: 0,
            dst_port: 0,
            icmp_type: 0,
            icmp_code: 0,
            tcp_flags: 0,
        }
    }

    /// Reads ports, flags or ICMP type from the transport header at `header_len`.
    fn with_transport(mut self, packet: &[u8], header_len: usize) -> Result<FlowKey, ParseError> {
        let l4 = &packet[header_len..];
        let need = |n: usize| ParseError::Truncated {
            len: packet.len(),
            need: header_len + n,
        };
        match self.protocol {
            PROTO_TCP | PROTO_UDP => {
                if l4.len() < 4 {
                    return Err(need(4));
                }
                self.src_port = u16::from_be_bytes([l4[0], l4[1]]);
                self.dst_port = u16::from_be_bytes([l4[2], l4[3]]);
                if self.protocol == PROTO_TCP && l4.len() >= 14 {
                    self.tcp_flags = l4[13];
                }
            }
            PROTO_ICMP | PROTO_ICMPV6 => {
                if l4.len() < 2 {
                    return Err(need(2));
                }
                self.icmp_type = l4[0];
                self.icmp_code = l4[1];
                // Echo request/reply: the identifier plays the role of a port for tracking.
                if self.is_echo() && l4.len() >= 6 {
                    let id = u16::from_be_bytes([l4[4], l4[5]]);
                    self.src_port = id;
                    self.dst_port = id;
                }
            }
            _ => {}
        }
        Ok(self)
    }

    /// ICMP or ICMPv6.
    pub fn is_icmp(&self) -> bool {
        matches!(self.protocol, PROTO_ICMP | PROTO_ICMPV6)
    }

    /// An ICMP or ICMPv6 echo request.
    pub fn is_echo_request(&self) -> bool {
        matches!(
            (self.protocol, self.icmp_type),
            (PROTO_ICMP, 8) | (PROTO_ICMPV6, 128)
        )
    }

    /// An ICMP or ICMPv6 echo request or reply.
    pub fn is_echo(&self) -> bool {
        matches!(
            (self.protocol, self.icmp_type),
            (PROTO_ICMP, 0 | 8) | (PROTO_ICMPV6, 128 | 129)
        )
    }

    /// An ICMP error that quotes the packet it reports on: destination unreachable, time
    /// exceeded (and for ICMPv6, packet too big).
    pub fn is_icmp_error(&self) -> bool {
        matches!(
            (self.protocol, self.icmp_type),
            (PROTO_ICMP, 3 | 11) | (PROTO_ICMPV6, 1..=3)
        )
    }

    pub fn is_ipv6(&self) -> bool {
        self.dst.is_ipv6()
    }

    /// The length of the IP header of `packet` as `parse` read it (without IPv6 extensions).
    pub fn ip_header_len(packet: &[u8]) -> usize {
        match packet.first().map(|b| b >> 4) {
            Some(6) => IPV6_HEADER_LEN,
            _ => usize::from(packet.first().copied().unwrap_or(0x45) & 0x0f) * 4,
        }
    }

    /// The same flow seen from the other end.
    pub fn reversed(&self) -> FlowKey {
        FlowKey {
            src: self.dst,
            dst: self.src,
            src_port: self.dst_port,
            dst_port: self.src_port,
            icmp_type: match (self.protocol, self.icmp_type) {
                (PROTO_ICMP, 8) => 0,
                (PROTO_ICMP, 0) => 8,
                (PROTO_ICMPV6, 128) => 129,
                (PROTO_ICMPV6, 129) => 128,
                (_, t) => t,
            },
            ..*self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn build_tcp() -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ipv4([10, 0, 1, 4], [10, 1, 1, 4], 64)
            .tcp(40000, 80, 1, 1000)
            .syn()
            .write(&mut out, b"")
            .unwrap();
        out
    }

    #[test]
    fn parses_tcp_ports_and_flags() {
        let key = FlowKey::parse(&build_tcp()).unwrap();
        assert_eq!(key.src, IpAddr::from([10, 0, 1, 4]));
        assert_eq!(key.dst, IpAddr::from([10, 1, 1, 4]));
        assert_eq!((key.protocol, key.src_port, key.dst_port), (6, 40000, 80));
        assert_eq!(key.tcp_flags & 0x02, 0x02);
    }

    #[test]
    fn parses_icmp_echo_identifier() {
        let mut out = Vec::new();
        PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
            .icmpv4_echo_request(77, 1)
            .write(&mut out, b"ping")
            .unwrap();
        let key = FlowKey::parse(&out).unwrap();
        assert_eq!((key.protocol, key.icmp_type, key.src_port), (1, 8, 77));
        let back = key.reversed();
        assert_eq!((back.src, back.icmp_type), (key.dst, 0));
    }

    #[test]
    fn parses_ipv6_tcp_and_icmpv6_echo() {
        let a: [u8; 16] = "2001:db8:0:100::a".parse::<Ipv6Addr>().unwrap().octets();
        let b: [u8; 16] = "2001:db8:ffff::10".parse::<Ipv6Addr>().unwrap().octets();
        let mut out = Vec::new();
        PacketBuilder::ipv6(a, b, 64)
            .tcp(40000, 443, 1, 1000)
            .syn()
            .write(&mut out, b"")
            .unwrap();
        let key = FlowKey::parse(&out).unwrap();
        assert_eq!(key.src, IpAddr::from(a));
        assert_eq!((key.protocol, key.src_port, key.dst_port), (6, 40000, 443));
        assert!(key.is_ipv6());
        assert_eq!(FlowKey::ip_header_len(&out), 40);
        let mut ping = Vec::new();
        PacketBuilder::ipv6(a, b, 64)
            .icmpv6_echo_request(9, 1)
            .write(&mut ping, b"ping")
            .unwrap();
        let key = FlowKey::parse(&ping).unwrap();
        assert_eq!((key.protocol, key.icmp_type, key.src_port), (58, 128, 9));
        assert!(key.is_echo_request());
        assert_eq!(key.reversed().icmp_type, 129);
    }

    #[test]
    fn rejects_short_and_unknown_input() {
        assert!(matches!(
            FlowKey::parse(&[0x45; 10]),
            Err(ParseError::Truncated { .. })
        ));
        let mut v6 = vec![0u8; 30];
        v6[0] = 0x60;
        assert!(matches!(
            FlowKey::parse(&v6),
            Err(ParseError::Truncated { .. })
        ));
        assert_eq!(FlowKey::parse(&[0x50; 40]), Err(ParseError::NotIp(5)));
        let mut tcp = build_tcp();
        tcp.truncate(22);
        assert!(matches!(
            FlowKey::parse(&tcp),
            Err(ParseError::Truncated { .. })
        ));
    }
}
