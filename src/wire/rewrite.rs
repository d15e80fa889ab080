//! Rewriting a packet's addresses and ports in place, as a NAT does, with the checksums
//! updated incrementally (RFC 1624): only the changed 16-bit words are folded in, so the cost
//! does not grow with the payload.

use super::ipv4::{FlowKey, PROTO_ICMP, PROTO_TCP, PROTO_UDP};

/// Rewrites `packet`, whose header `from` describes, so that it reads as `to`: addresses,
/// TCP/UDP ports or the ICMP echo identifier. The caller parsed `packet` into `from`, so its
/// headers are there; a non-first fragment only gets its addresses changed.
pub fn rewrite(packet: &mut [u8], from: &FlowKey, to: &FlowKey) {
    let header_len = usize::from(packet[0] & 0x0f) * 4;
    let first_fragment = u16::from_be_bytes([packet[6], packet[7]]) & 0x1fff == 0;
    // Where the transport checksum is, and whether the addresses are part of it.
    let l4_check = match (first_fragment, from.protocol) {
        (true, PROTO_TCP) => Some((header_len + 16, true)),
        (true, PROTO_UDP) if word(packet, header_len + 6) != 0 => Some((header_len + 6, true)),
        (true, PROTO_ICMP) => Some((header_len + 2, false)),
        _ => None,
    };
    // (offset, new word): at most four address words and two port words; no allocation.
    let mut changes: [(usize, u16); 6] = [(0, 0); 6];
    let mut n = 0;
    let change = |changes: &mut [(usize, u16); 6], n: &mut usize, offset: usize, new: u16| {
        changes[*n] = (offset, new);
        *n += 1;
    };
    let (s, d) = (from.src.octets(), to.src.octets());
    if s != d {
        change(&mut changes, &mut n, 12, u16::from_be_bytes([d[0], d[1]]));
        change(&mut changes, &mut n, 14, u16::from_be_bytes([d[2], d[3]]));
    }
    let (s, d) = (from.dst.octets(), to.dst.octets());
    if s != d {
        change(&mut changes, &mut n, 16, u16::from_be_bytes([d[0], d[1]]));
        change(&mut changes, &mut n, 18, u16::from_be_bytes([d[2], d[3]]));
    }
    // The first `addresses` changes are address words, the rest ports.
    let addresses = n;
    if first_fragment {
        match from.protocol {
            PROTO_TCP | PROTO_UDP => {
                if from.src_port != to.src_port {
                    change(&mut changes, &mut n, header_len, to.src_port);
                }
                if from.dst_port != to.dst_port {
                    change(&mut changes, &mut n, header_len + 2, to.dst_port);
                }
            }
            // Echo request and reply: the identifier, which a NAT maps like a port.
            PROTO_ICMP if matches!(from.icmp_type, 0 | 8) && from.src_port != to.src_port => {
                change(&mut changes, &mut n, header_len + 4, to.src_port);
            }
            _ => {}
        }
    }
    for (i, &(offset, new)) in changes[..n].iter().enumerate() {
        let old = word(packet, offset);
        if i < addresses {
            let ip_check = word(packet, 10);
            set_word(packet, 10, update(ip_check, old, new));
        }
        if let Some((at, pseudo)) = l4_check {
            // Addresses count in TCP and UDP checksums through the pseudo-header; ports and
            // the ICMP identifier are inside the checksummed data.
            if i >= addresses || pseudo {
                let check = word(packet, at);
                let mut next = update(check, old, new);
                if from.protocol == PROTO_UDP && next == 0 {
                    // 0 means "no checksum" in UDP: the same sum is written as all ones.
                    next = 0xffff;
                }
                set_word(packet, at, next);
            }
        }
        set_word(packet, offset, new);
    }
}

fn word(packet: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([packet[at], packet[at + 1]])
}

fn set_word(packet: &mut [u8], at: usize, value: u16) {
    packet[at..at + 2].copy_from_slice(&value.to_be_bytes());
}

/// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), in one's complement arithmetic.
fn update(check: u16, old: u16, new: u16) -> u16 {
    let mut sum = u32::from(!check) + u32::from(!old) + u32::from(new);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn tcp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ipv4(src, dst, 64)
            .tcp(sport, dport, 7, 1000)
            .syn()
            .write(&mut out, b"payload bytes")
            .unwrap();
        out
    }

    fn udp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ipv4(src, dst, 64)
            .udp(sport, dport)
            .write(&mut out, b"a datagram")
            .unwrap();
        out
    }

    fn echo(src: [u8; 4], dst: [u8; 4], id: u16) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ipv4(src, dst, 64)
            .icmpv4_echo_request(id, 3)
            .write(&mut out, b"ping data")
            .unwrap();
        out
    }

    /// Rewriting must give exactly the packet built from scratch with the new header.
    fn check(mut packet: Vec<u8>, expected: Vec<u8>) {
        let from = FlowKey::parse(&packet).unwrap();
        let to = FlowKey::parse(&expected).unwrap();
        rewrite(&mut packet, &from, &to);
        assert_eq!(packet, expected);
    }

    #[test]
    fn source_nat_of_tcp_matches_a_fresh_packet() {
        check(
            tcp([10, 0, 2, 10], 40000, [198, 51, 100, 10], 80),
            tcp([10, 0, 0, 5], 1024, [198, 51, 100, 10], 80),
        );
    }

    #[test]
    fn destination_nat_of_tcp_matches_a_fresh_packet() {
        check(
            tcp([198, 51, 100, 10], 80, [203, 0, 113, 10], 40000),
            tcp([198, 51, 100, 10], 80, [10, 0, 1, 10], 40000),
        );
    }

    #[test]
    fn udp_and_icmp_echo_match_fresh_packets() {
        check(
            udp([10, 0, 2, 10], 5353, [198, 51, 100, 10], 53),
            udp([203, 0, 113, 11], 2000, [198, 51, 100, 10], 53),
        );
        check(
            echo([10, 0, 2, 10], [198, 51, 100, 10], 9),
            echo([10, 0, 0, 5], [198, 51, 100, 10], 1024),
        );
    }

    #[test]
    fn the_update_is_rfc_1624s() {
        // RFC 1624 §4's example: HC 0xdd2f, m 0x5555 -> m' 0x3285 gives HC' 0x0000.
        assert_eq!(update(0xdd2f, 0x5555, 0x3285), 0x0000);
    }
}
