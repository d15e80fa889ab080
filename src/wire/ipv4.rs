//! The header fields the fabric decides on, read from an IPv4 packet without copying it.

use std::net::Ipv4Addr;

pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;

/// What a packet is, as far as routing and filtering care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    /// tcp/udp source port; ICMP echo identifier; 0 otherwise.
    pub src_port: u16,
    /// tcp/udp destination port; ICMP echo identifier; 0 otherwise.
    pub dst_port: u16,
    /// ICMP type and code; 0 for other protocols.
    pub icmp_type: u8,
    pub icmp_code: u8,
    /// TCP flags byte (SYN 0x02, ACK 0x10, RST 0x04, FIN 0x01); 0 otherwise.
    pub tcp_flags: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("not an IPv4 packet (version {0})")]
    NotIpv4(u8),
    #[error("packet of {len} bytes is shorter than its header needs ({need})")]
    Truncated { len: usize, need: usize },
}

impl FlowKey {
    /// Reads the IPv4 header and, for the first fragment, the transport ports.
    pub fn parse(packet: &[u8]) -> Result<FlowKey, ParseError> {
        if packet.len() < 20 {
            return Err(ParseError::Truncated {
                len: packet.len(),
                need: 20,
            });
        }
        let version = packet[0] >> 4;
        if version != 4 {
            return Err(ParseError::NotIpv4(version));
        }
        let header_len = usize::from(packet[0] & 0x0f) * 4;
        if header_len < 20 || packet.len() < header_len {
            return Err(ParseError::Truncated {
                len: packet.len(),
                need: header_len.max(20),
            });
        }
        let protocol = packet[9];
        let src = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
        let dst = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
        let fragment_offset = u16::from_be_bytes([packet[6], packet[7]]) & 0x1fff;
        let mut key = FlowKey {
            src,
            dst,
            protocol,
            src_port: 0,
            dst_port: 0,
            icmp_type: 0,
            icmp_code: 0,
            tcp_flags: 0,
        };
        // Later fragments carry no transport header; they are decided on addresses alone.
        if fragment_offset != 0 {
            return Ok(key);
        }
        let l4 = &packet[header_len..];
        match protocol {
            PROTO_TCP | PROTO_UDP => {
                if l4.len() < 4 {
                    return Err(ParseError::Truncated {
                        len: packet.len(),
                        need: header_len + 4,
                    });
                }
                key.src_port = u16::from_be_bytes([l4[0], l4[1]]);
                key.dst_port = u16::from_be_bytes([l4[2], l4[3]]);
                if protocol == PROTO_TCP && l4.len() >= 14 {
                    key.tcp_flags = l4[13];
                }
            }
            PROTO_ICMP => {
                if l4.len() < 2 {
                    return Err(ParseError::Truncated {
                        len: packet.len(),
                        need: header_len + 2,
                    });
                }
                key.icmp_type = l4[0];
                key.icmp_code = l4[1];
                // Echo request/reply: the identifier plays the role of a port for tracking.
                if matches!(key.icmp_type, 0 | 8) && l4.len() >= 6 {
                    let id = u16::from_be_bytes([l4[4], l4[5]]);
                    key.src_port = id;
                    key.dst_port = id;
                }
            }
            _ => {}
        }
        Ok(key)
    }

    /// The same flow seen from the other end.
    pub fn reversed(&self) -> FlowKey {
        FlowKey {
            src: self.dst,
            dst: self.src,
            src_port: self.dst_port,
            dst_port: self.src_port,
            icmp_type: match self.icmp_type {
                8 if self.protocol == PROTO_ICMP => 0,
                0 if self.protocol == PROTO_ICMP => 8,
                t => t,
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
        assert_eq!(key.src, Ipv4Addr::new(10, 0, 1, 4));
        assert_eq!(key.dst, Ipv4Addr::new(10, 1, 1, 4));
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
    fn rejects_short_and_ipv6_input() {
        assert!(matches!(
            FlowKey::parse(&[0x45; 10]),
            Err(ParseError::Truncated { .. })
        ));
        let mut v6 = vec![0u8; 40];
        v6[0] = 0x60;
        assert_eq!(FlowKey::parse(&v6), Err(ParseError::NotIpv4(6)));
        let mut tcp = build_tcp();
        tcp.truncate(22);
        assert!(matches!(
            FlowKey::parse(&tcp),
            Err(ParseError::Truncated { .. })
        ));
    }
}
