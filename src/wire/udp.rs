//! Wire layer: the UDP payload of an IPv4 packet read in place, and an IPv4/UDP datagram's
//! headers written around a payload in the caller's buffer (for a service the fabric itself
//! answers). No allocation.

use std::net::{Ipv4Addr, SocketAddrV4};

use super::PROTO_UDP;

/// IPv4 header without options (20) and UDP header (8).
pub const UDP_HEADERS_LEN: usize = 28;

/// An unfragmented UDP datagram inside an IPv4 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpView<'a> {
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub payload: &'a [u8],
}

impl UdpView<'_> {
    /// Reads `packet` if it is a whole UDP datagram over IPv4 (not a fragment), bounded by its
    /// UDP length; None otherwise.
    pub fn parse(packet: &[u8]) -> Option<UdpView<'_>> {
        if packet.len() < UDP_HEADERS_LEN || packet[0] >> 4 != 4 || packet[9] != PROTO_UDP {
            return None;
        }
        let header_len = usize::from(packet[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
        // More fragments, or not the first: not a whole datagram.
        if u16::from_be_bytes([packet[6], packet[7]]) & 0x3fff != 0 || header_len < 20 {
            return None;
        }
        let ip = packet.get(..total.min(packet.len()))?;
        let udp = ip.get(header_len..header_len + 8)?;
        let udp_len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
        let payload = ip.get(header_len + 8..header_len + udp_len.max(8))?;
        let addr = |at: usize| Ipv4Addr::new(ip[at], ip[at + 1], ip[at + 2], ip[at + 3]);
        let port = |at: usize| u16::from_be_bytes([udp[at], udp[at + 1]]);
        Some(UdpView {
            src: SocketAddrV4::new(addr(12), port(0)),
            dst: SocketAddrV4::new(addr(16), port(2)),
            payload,
        })
    }
}

/// Writes IPv4 (no options, DF set, TTL `ttl`) and UDP headers from `src` to `dst` into
/// `out[..28]`, for the `payload_len` bytes already at `out[28..]`, checksums included.
/// Returns the datagram's length, or None when `out` does not hold the payload or the
/// datagram would exceed 65535 bytes.
pub fn write_udp_headers(
    src: SocketAddrV4,
    dst: SocketAddrV4,
    ttl: u8,
    payload_len: usize,
    out: &mut [u8],
) -> Option<usize> {
    let total = UDP_HEADERS_LEN + payload_len;
    let total16 = u16::try_from(total).ok()?;
    let out = out.get_mut(..total)?;
    let (ip, rest) = out.split_at_mut(20);
    ip.copy_from_slice(&[
        0x45, 0, 0, 0, 0, 0, 0x40, 0, ttl, PROTO_UDP, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    ip[2..4].copy_from_slice(&total16.to_be_bytes());
    ip[12..16].copy_from_slice(&src.ip().octets());
    ip[16..20].copy_from_slice(&dst.ip().octets());
    let checksum = !fold(sum(ip));
    ip[10..12].copy_from_slice(&checksum.to_be_bytes());

    let udp_len = total16 - 20;
    rest[0..2].copy_from_slice(&src.port().to_be_bytes());
    rest[2..4].copy_from_slice(&dst.port().to_be_bytes());
    rest[4..6].copy_from_slice(&udp_len.to_be_bytes());
    rest[6..8].fill(0);
    // The pseudo-header (RFC 768): addresses, protocol, UDP length.
    let pseudo = sum(&src.ip().octets())
        + sum(&dst.ip().octets())
        + u32::from(PROTO_UDP)
        + u32::from(udp_len);
    let checksum = match !fold(pseudo + sum(rest)) {
        0 => 0xffff, // 0 would mean "no checksum"
        c => c,
    };
    rest[6..8].copy_from_slice(&checksum.to_be_bytes());
    Some(total)
}

/// The one's complement sum of big-endian 16-bit words (an odd last byte padded with zero),
/// not yet folded (RFC 1071). Fits: 65535 bytes of 0xff sum below 2^32.
fn sum(bytes: &[u8]) -> u32 {
    let mut words = bytes.chunks_exact(2);
    let mut total: u32 = words
        .by_ref()
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    if let [last] = words.remainder() {
        total += u32::from(*last) << 8;
    }
    total
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};

    #[test]
    fn a_written_datagram_parses_with_valid_checksums() {
        let src = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 53);
        let dst = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 10), 40000);
        let mut out = [0u8; 100];
        out[28..33].copy_from_slice(b"hello"); // odd length: the last byte is padded
        let n = write_udp_headers(src, dst, 64, 5, &mut out).unwrap();
        assert_eq!(n, 33);
        let sliced = SlicedPacket::from_ip(&out[..n]).unwrap();
        let Some(etherparse::NetSlice::Ipv4(ip)) = &sliced.net else {
            panic!("not IPv4");
        };
        let header = ip.header().to_header();
        assert_eq!(header.header_checksum, header.calc_header_checksum());
        assert!(header.dont_fragment);
        let Some(TransportSlice::Udp(udp)) = &sliced.transport else {
            panic!("not UDP");
        };
        let expected = udp
            .to_header()
            .calc_checksum_ipv4(&header, b"hello")
            .unwrap();
        assert_eq!(udp.checksum(), expected);
        assert_eq!((udp.source_port(), udp.destination_port()), (53, 40000));

        let view = UdpView::parse(&out[..n]).unwrap();
        assert_eq!(
            (view.src, view.dst, view.payload),
            (src, dst, &b"hello"[..])
        );
        assert_eq!(write_udp_headers(src, dst, 64, 80, &mut [0u8; 100]), None);
    }

    #[test]
    fn reads_only_whole_udp_datagrams() {
        let mut packet = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 10], [10, 0, 0, 2], 64)
            .udp(40000, 53)
            .write(&mut packet, b"query")
            .unwrap();
        // Padding after the datagram (as a short frame might carry) is not payload.
        packet.extend([0u8; 3]);
        let view = UdpView::parse(&packet).unwrap();
        assert_eq!(view.payload, b"query");
        assert_eq!(view.dst, SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 53));
        let mut fragment = packet.clone();
        fragment[6] |= 0x20; // more fragments
        assert_eq!(UdpView::parse(&fragment), None);
        let mut tcp = packet.clone();
        tcp[9] = 6;
        assert_eq!(UdpView::parse(&tcp), None);
        let mut lying = packet.clone();
        lying[25] = 200; // a UDP length past the packet's end
        assert_eq!(UdpView::parse(&lying), None);
        for len in 0..packet.len() - 3 {
            assert_eq!(UdpView::parse(&packet[..len]), None, "{len} bytes");
        }
    }
}
