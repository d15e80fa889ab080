//! Wire layer: VXLAN encapsulation (RFC 7348) of an IPv4 packet over UDP/IPv4, written into a
//! buffer the caller owns, truncated on request. No allocation.

use std::net::Ipv4Addr;

use super::PROTO_UDP;

/// IANA's VXLAN port, the one AWS Traffic Mirroring sends to.
pub const VXLAN_PORT: u16 = 4789;
/// Outer IPv4 (20), UDP (8) and VXLAN (8) headers.
pub const OUTER_LEN: usize = 36;
/// The inner Ethernet II header that VXLAN carries before the packet.
pub const INNER_ETHERNET_LEN: usize = 14;
/// VXLAN flags: the I bit, "the VNI is valid".
const FLAG_VNI: u8 = 0x08;
const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
const ETHERTYPE_IPV6: [u8; 2] = [0x86, 0xdd];

/// What the outer headers and the inner Ethernet header carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vxlan {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub src_port: u16,
    /// 24 bits; higher bits are ignored.
    pub vni: u32,
    /// The outer IPv4 identification.
    pub id: u16,
    pub ttl: u8,
    pub inner_src_mac: [u8; 6],
    pub inner_dst_mac: [u8; 6],
}

/// Writes the outer IPv4/UDP/VXLAN headers, an inner Ethernet header and `packet` into `out`.
/// Keeps at most `inner_max` bytes after the VXLAN header and at most `out.len()` bytes in
/// all, so a truncated copy ends mid-packet (its inner lengths and checksums then promise more
/// than it holds, as AWS's truncated copies do). Returns the length written: 0 when `out`
/// cannot hold the outer headers.
pub fn encapsulate(v: &Vxlan, packet: &[u8], inner_max: usize, out: &mut [u8]) -> usize {
    if out.len() < OUTER_LEN {
        return 0;
    }
    let inner_len = (INNER_ETHERNET_LEN + packet.len())
        .min(inner_max)
        .min(out.len() - OUTER_LEN)
        // The outer IPv4 total length is 16 bits.
        .min(usize::from(u16::MAX) - OUTER_LEN);
    let total = OUTER_LEN + inner_len;
    let (outer, rest) = out.split_at_mut(OUTER_LEN);
    let inner = &mut rest[..inner_len];

    // IPv4: version 4, IHL 5, no options; DF off so a router may still fragment the copy.
    let ip = &mut outer[..20];
    ip[0] = 0x45;
    ip[1] = 0;
    ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&v.id.to_be_bytes());
    ip[6..8].copy_from_slice(&[0, 0]);
    ip[8] = v.ttl;
    ip[9] = PROTO_UDP;
    ip[10..12].copy_from_slice(&[0, 0]);
    ip[12..16].copy_from_slice(&v.src.octets());
    ip[16..20].copy_from_slice(&v.dst.octets());
    let checksum = header_checksum(ip);
    ip[10..12].copy_from_slice(&checksum.to_be_bytes());

    // UDP: checksum 0 means "none", which IPv4 allows and VXLAN recommends (RFC 7348 §5).
    let udp = &mut outer[20..28];
    udp[0..2].copy_from_slice(&v.src_port.to_be_bytes());
    udp[2..4].copy_from_slice(&VXLAN_PORT.to_be_bytes());
    udp[4..6].copy_from_slice(&((total - 20) as u16).to_be_bytes());
    udp[6..8].copy_from_slice(&[0, 0]);

    // VXLAN: flags, 24 reserved bits, the 24-bit VNI, 8 reserved bits.
    let vni = v.vni.to_be_bytes();
    outer[28..36].copy_from_slice(&[FLAG_VNI, 0, 0, 0, vni[1], vni[2], vni[3], 0]);

    let mut ethernet = [0u8; INNER_ETHERNET_LEN];
    ethernet[0..6].copy_from_slice(&v.inner_dst_mac);
    ethernet[6..12].copy_from_slice(&v.inner_src_mac);
    let ethertype = match packet.first().map(|b| b >> 4) {
        Some(6) => ETHERTYPE_IPV6,
        _ => ETHERTYPE_IPV4,
    };
    ethernet[12..14].copy_from_slice(&ethertype);
    let head = inner_len.min(INNER_ETHERNET_LEN);
    inner[..head].copy_from_slice(&ethernet[..head]);
    inner[head..].copy_from_slice(&packet[..inner_len - head]);
    total
}

/// The one's complement sum of a header whose checksum field is zero (RFC 1071).
fn header_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks_exact(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vxlan() -> Vxlan {
        Vxlan {
            src: Ipv4Addr::new(192, 0, 2, 1),
            dst: Ipv4Addr::new(192, 0, 2, 2),
            src_port: 50000,
            vni: 0x12_3456,
            id: 7,
            ttl: 64,
            inner_src_mac: [2, 0, 192, 0, 2, 10],
            inner_dst_mac: [2, 0, 192, 0, 2, 20],
        }
    }

    #[test]
    fn header_bytes_are_vxlan_over_udp_4789() {
        let packet = [0x45u8; 40];
        let mut out = [0u8; 200];
        let n = encapsulate(&vxlan(), &packet, usize::MAX, &mut out);
        assert_eq!(n, OUTER_LEN + INNER_ETHERNET_LEN + 40);
        let ip = etherparse::Ipv4HeaderSlice::from_slice(&out[..n]).unwrap();
        assert_eq!(usize::from(ip.total_len()), n);
        assert!(!ip.dont_fragment());
        assert_eq!(ip.header_checksum(), ip.to_header().calc_header_checksum());
        assert_eq!(&out[22..24], &[0x12, 0xb5], "destination port 4789");
        assert_eq!(&out[28..36], &[0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0]);
        assert_eq!(&out[36..42], &[2, 0, 192, 0, 2, 20]);
        assert_eq!(&out[48..50], &[0x08, 0x00]);
        assert_eq!(&out[50..n], &packet[..]);
    }

    #[test]
    fn truncation_may_cut_into_the_inner_ethernet_header() {
        let packet = [1u8; 100];
        let mut out = [0u8; 200];
        let n = encapsulate(&vxlan(), &packet, 10, &mut out);
        assert_eq!(n, OUTER_LEN + 10);
        assert_eq!(&out[36..46], &[2, 0, 192, 0, 2, 20, 2, 0, 192, 0]);
        // The buffer bounds it too, and a buffer too small for the headers gets nothing.
        assert_eq!(
            encapsulate(&vxlan(), &packet, usize::MAX, &mut out[..60]),
            60
        );
        assert_eq!(
            encapsulate(&vxlan(), &packet, usize::MAX, &mut out[..35]),
            0
        );
    }
}
