//! Rewriting a packet's addresses and ports in place, as a NAT does, with the checksums
//! updated incrementally (RFC 1624): only the changed 16-bit words are folded in, so the cost
//! does not grow with the payload. Packets from a TUN with offloads may carry a *partial*
//! TCP/UDP checksum (Linux's CHECKSUM_PARTIAL, virtio-net's NEEDS_CSUM): the field then holds
//! only the pseudo-header's sum, and whoever finally sends the packet (or each segment of a
//! GSO super-packet) adds the data; `rewrite_with` keeps such a field right too.

use std::net::IpAddr;

use super::flow::{FlowKey, PROTO_ICMP, PROTO_TCP, PROTO_UDP};

/// What the TCP/UDP checksum field of a packet holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4Checksum {
    /// The finished checksum (or, in UDP, 0 for none), as on a wire.
    Complete,
    /// The one's complement sum of the pseudo-header alone, not complemented: the data are
    /// summed in later (virtio-net `NEEDS_CSUM` with `csum_start` at the transport header).
    /// Only addresses count in it; ports and the ICMP identifier are data.
    Partial,
}

/// Rewrites `packet`, whose header `from` describes, so that it reads as `to`: addresses,
/// TCP/UDP ports or the ICMP echo identifier. The caller parsed `packet` into `from`, so its
/// headers are there; a non-first fragment only gets its addresses changed.
pub fn rewrite(packet: &mut [u8], from: &FlowKey, to: &FlowKey) {
    rewrite_with(packet, from, to, L4Checksum::Complete);
}

/// As `rewrite`, for a packet whose TCP/UDP checksum field holds `l4` (a GSO super-packet's
/// header too: its IPv4 checksum is complete, its transport checksum partial).
pub fn rewrite_with(packet: &mut [u8], from: &FlowKey, to: &FlowKey, l4: L4Checksum) {
    let (IpAddr::V4(from_src), IpAddr::V4(from_dst), IpAddr::V4(to_src), IpAddr::V4(to_dst)) =
        (from.src, from.dst, to.src, to.dst)
    else {
        // IPv6 addresses are globally unique and never translated (aws-rules.md §3.1).
        debug_assert_eq!(from, to, "an IPv6 packet was translated");
        return;
    };
    let header_len = usize::from(packet[0] & 0x0f) * 4;
    let first_fragment = u16::from_be_bytes([packet[6], packet[7]]) & 0x1fff == 0;
    let partial = l4 == L4Checksum::Partial;
    // Where the transport checksum is, and whether the addresses are part of it.
    let l4_check = match (first_fragment, from.protocol) {
        (true, PROTO_TCP) => Some((header_len + 16, true)),
        // A complete UDP checksum of 0 means none; a partial one is always there.
        (true, PROTO_UDP) if partial || word(packet, header_len + 6) != 0 => {
            Some((header_len + 6, true))
        }
        (true, PROTO_ICMP) if !partial => Some((header_len + 2, false)),
        _ => None,
    };
    // (offset, new word): at most four address words and two port words; no allocation.
    let mut changes: [(usize, u16); 6] = [(0, 0); 6];
    let mut n = 0;
    let change = |changes: &mut [(usize, u16); 6], n: &mut usize, offset: usize, new: u16| {
        changes[*n] = (offset, new);
        *n += 1;
    };
    let (s, d) = (from_src.octets(), to_src.octets());
    if s != d {
        change(&mut changes, &mut n, 12, u16::from_be_bytes([d[0], d[1]]));
        change(&mut changes, &mut n, 14, u16::from_be_bytes([d[2], d[3]]));
    }
    let (s, d) = (from_dst.octets(), to_dst.octets());
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
            if partial && pseudo && i < addresses {
                // The field is the sum itself: add the new word, take the old one away.
                let sum = word(packet, at);
                set_word(packet, at, !update(!sum, old, new));
            } else if !partial && (i >= addresses || pseudo) {
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

/// Finishes a partial checksum in place, as the kernel would before sending: sums
/// `packet[start..]` into the partial sum at `start + offset` and writes the complement there
/// (all ones for a UDP sum of zero, `udp`). None, and nothing changed, when the field is not
/// inside the packet.
pub fn complete_checksum(packet: &mut [u8], start: usize, offset: usize, udp: bool) -> Option<()> {
    let at = start.checked_add(offset)?;
    if at + 2 > packet.len() {
        return None;
    }
    let seed = word(packet, at);
    set_word(packet, at, 0);
    let mut sum = u64::from(seed);
    let mut chunks = packet[start..].chunks_exact(8);
    for chunk in &mut chunks {
        // Eight bytes at a time: four 16-bit words added at once, carries kept in the top.
        let v = u64::from_be_bytes(chunk.try_into().unwrap_or([0; 8]));
        sum += (v >> 48) + ((v >> 32) & 0xffff) + ((v >> 16) & 0xffff) + (v & 0xffff);
    }
    let rest = chunks.remainder();
    for pair in rest.chunks(2) {
        let hi = u64::from(pair[0]) << 8;
        sum += hi | pair.get(1).map_or(0, |&lo| u64::from(lo));
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let mut check = !(sum as u16);
    if udp && check == 0 {
        check = 0xffff;
    }
    set_word(packet, at, check);
    Some(())
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

    /// `packet` as a TUN with offloads hands it over: the transport checksum field holds the
    /// folded, uncomplemented pseudo-header sum (what Linux leaves for CHECKSUM_PARTIAL).
    fn partial(mut packet: Vec<u8>) -> Vec<u8> {
        let header_len = usize::from(packet[0] & 0x0f) * 4;
        let protocol = packet[9];
        let l4_len = packet.len() - header_len;
        let mut sum: u32 = (12..20)
            .step_by(2)
            .map(|at| u32::from(word(&packet, at)))
            .sum();
        sum += u32::from(protocol) + l4_len as u32;
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        let at = header_len + if protocol == PROTO_TCP { 16 } else { 6 };
        set_word(&mut packet, at, sum as u16);
        packet
    }

    /// Rewriting a partial packet, then finishing its checksum, must give the fresh packet.
    fn check_partial(packet: Vec<u8>, expected: Vec<u8>) {
        let from = FlowKey::parse(&packet).unwrap();
        let to = FlowKey::parse(&expected).unwrap();
        let mut packet = partial(packet);
        rewrite_with(&mut packet, &from, &to, L4Checksum::Partial);
        assert_eq!(
            packet,
            partial(expected.clone()),
            "the partial sum follows the addresses"
        );
        let header_len = usize::from(packet[0] & 0x0f) * 4;
        let udp = from.protocol == PROTO_UDP;
        let offset = if udp { 6 } else { 16 };
        complete_checksum(&mut packet, header_len, offset, udp).unwrap();
        assert_eq!(packet, expected);
    }

    #[test]
    fn finishing_a_partial_checksum_gives_the_complete_one() {
        for packet in [
            tcp([10, 0, 2, 10], 40000, [198, 51, 100, 10], 80),
            udp([10, 0, 2, 10], 5353, [198, 51, 100, 10], 53),
        ] {
            let mut p = partial(packet.clone());
            let udp = p[9] == PROTO_UDP;
            complete_checksum(&mut p, 20, if udp { 6 } else { 16 }, udp).unwrap();
            assert_eq!(p, packet);
        }
        // An odd length sums its last byte as the high half of a word.
        let mut fresh = Vec::new();
        PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
            .udp(1, 2)
            .write(&mut fresh, b"odd")
            .unwrap();
        assert_eq!(fresh.len() % 2, 1);
        let mut odd = partial(fresh.clone());
        complete_checksum(&mut odd, 20, 6, true).unwrap();
        assert_eq!(odd, fresh);
        assert_eq!(complete_checksum(&mut odd, 20, 60, true), None);
    }

    #[test]
    fn partial_checksums_follow_source_and_destination_nat() {
        check_partial(
            tcp([10, 0, 2, 10], 40000, [198, 51, 100, 10], 80),
            tcp([10, 0, 0, 5], 1024, [198, 51, 100, 10], 80),
        );
        check_partial(
            tcp([198, 51, 100, 10], 80, [203, 0, 113, 10], 40000),
            tcp([198, 51, 100, 10], 80, [10, 0, 1, 10], 40000),
        );
        check_partial(
            udp([10, 0, 2, 10], 5353, [198, 51, 100, 10], 53),
            udp([203, 0, 113, 11], 2000, [198, 51, 100, 10], 53),
        );
    }

    #[test]
    fn a_port_change_leaves_a_partial_sum_alone() {
        let from = tcp([10, 0, 2, 10], 40000, [198, 51, 100, 10], 80);
        let to = tcp([10, 0, 2, 10], 1024, [198, 51, 100, 10], 80);
        let (kf, kt) = (FlowKey::parse(&from).unwrap(), FlowKey::parse(&to).unwrap());
        let mut p = partial(from.clone());
        rewrite_with(&mut p, &kf, &kt, L4Checksum::Partial);
        assert_eq!(word(&p, 36), word(&partial(from), 36));
        assert_eq!(p, partial(to));
    }

    #[test]
    fn the_update_is_rfc_1624s() {
        // RFC 1624 §4's example: HC 0xdd2f, m 0x5555 -> m' 0x3285 gives HC' 0x0000.
        assert_eq!(update(0xdd2f, 0x5555, 0x3285), 0x0000);
    }
}
