//! A TCP reset answering a segment, as a NAT gateway sends one for a connection it forgot:
//! from the segment's destination to its source, acknowledging what it sent, written into a
//! caller's buffer (no allocation).

use super::flow::PROTO_TCP;

/// Bytes of the reset: an IPv4 header and a TCP header, no options, no payload.
pub const RESET_LEN: usize = 40;

const RST: u8 = 0x04;
const ACK: u8 = 0x10;

/// Writes into `out` the RST that answers TCP segment `segment` (an IPv4 packet) and
/// returns its length; None when `segment` is no TCP segment to answer (or itself a RST).
pub fn tcp_reset(segment: &[u8], out: &mut [u8; RESET_LEN]) -> Option<usize> {
    let ihl = usize::from(*segment.first()? & 0x0f) * 4;
    if segment.len() < ihl + 20 || segment[9] != PROTO_TCP || segment[0] >> 4 != 4 {
        return None;
    }
    let tcp = &segment[ihl..];
    let flags = tcp[13];
    if flags & RST != 0 {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([segment[2], segment[3]])).min(segment.len());
    let data = total.saturating_sub(ihl + usize::from(tcp[12] >> 4) * 4) as u32;
    let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
    let ack = u32::from_be_bytes([tcp[8], tcp[9], tcp[10], tcp[11]]);
    // RFC 793: to a segment with ACK, RST with seq = its ack; else RST+ACK of what it holds.
    let syn_fin = u32::from(flags & 0x03 != 0);
    let (out_seq, out_ack, out_flags) = if flags & ACK != 0 {
        (ack, 0, RST)
    } else {
        (0, seq.wrapping_add(data + syn_fin), RST | ACK)
    };
    out.fill(0);
    out[0] = 0x45;
    out[2..4].copy_from_slice(&(RESET_LEN as u16).to_be_bytes());
    out[6] = 0x40; // DF
    out[8] = 64;
    out[9] = PROTO_TCP;
    out[12..16].copy_from_slice(&segment[16..20]);
    out[16..20].copy_from_slice(&segment[12..16]);
    let ip_sum = checksum(0, &out[..20]);
    out[10..12].copy_from_slice(&ip_sum.to_be_bytes());
    let t = &mut out[20..];
    t[0..2].copy_from_slice(&tcp[2..4]);
    t[2..4].copy_from_slice(&tcp[0..2]);
    t[4..8].copy_from_slice(&out_seq.to_be_bytes());
    t[8..12].copy_from_slice(&out_ack.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = out_flags;
    let mut pseudo = [0u8; 12];
    pseudo[0..4].copy_from_slice(&segment[16..20]);
    pseudo[4..8].copy_from_slice(&segment[12..16]);
    pseudo[9] = PROTO_TCP;
    pseudo[10..12].copy_from_slice(&20u16.to_be_bytes());
    let sum = checksum(sum_words(0, &pseudo), &out[20..]);
    out[36..38].copy_from_slice(&sum.to_be_bytes());
    Some(RESET_LEN)
}

fn sum_words(mut sum: u32, bytes: &[u8]) -> u32 {
    for pair in bytes.chunks(2) {
        let hi = u32::from(pair[0]) << 8;
        sum += hi | pair.get(1).map_or(0, |&b| u32::from(b));
    }
    sum
}

/// The Internet checksum of `bytes`, starting from a partial sum.
fn checksum(start: u32, bytes: &[u8]) -> u16 {
    let mut sum = sum_words(start, bytes);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};

    #[test]
    fn a_segment_with_ack_is_reset_at_its_acknowledgement() {
        let mut seg = Vec::new();
        PacketBuilder::ipv4([10, 0, 1, 10], [198, 51, 100, 10], 64)
            .tcp(40000, 80, 1000, 512)
            .ack(777)
            .write(&mut seg, b"late data")
            .unwrap();
        let mut out = [0u8; RESET_LEN];
        assert_eq!(tcp_reset(&seg, &mut out), Some(RESET_LEN));
        let p = SlicedPacket::from_ip(&out).unwrap();
        let Some(TransportSlice::Tcp(t)) = p.transport else {
            panic!("not tcp")
        };
        assert!(t.rst() && !t.ack());
        assert_eq!((t.source_port(), t.destination_port()), (80, 40000));
        assert_eq!(t.sequence_number(), 777);
        // The checksums are right: etherparse computes the same.
        let ip = p.net.unwrap();
        let etherparse::NetSlice::Ipv4(v4) = ip else {
            panic!("not ipv4")
        };
        assert_eq!(v4.header().source(), [198, 51, 100, 10]);
        let expected = t
            .to_header()
            .calc_checksum_ipv4(&v4.header().to_header(), &[])
            .unwrap();
        assert_eq!(t.checksum(), expected);
        assert_eq!(
            v4.header().header_checksum(),
            v4.header().to_header().calc_header_checksum()
        );
    }

    #[test]
    fn a_reset_is_never_answered() {
        let mut seg = Vec::new();
        PacketBuilder::ipv4([10, 0, 1, 10], [198, 51, 100, 10], 64)
            .tcp(40000, 80, 1000, 512)
            .rst()
            .write(&mut seg, b"")
            .unwrap();
        assert_eq!(tcp_reset(&seg, &mut [0u8; RESET_LEN]), None);
    }
}
