//! GSO super-packets cut into their segments in userspace, for what must see one packet as on
//! a wire: a mirror session's copies and a VPN tunnel's inner packets.

use crate::wire::{VnetHdr, PLAIN_VNET_HDR, VNET_HDR_LEN};

/// The segments of a super-packet cut in userspace (tun-rs's port of wireguard-go's
/// `gsoSplit`: IPv4 identification, TCP sequence numbers and flags, complete checksums), each
/// after a plain virtio-net header. Its buffers are made on first need and grow to the
/// largest super-packet seen: nothing is allocated per packet after that, and hosts whose
/// traffic is never mirrored never pay for them.
#[derive(Default)]
pub struct Segmenter {
    bufs: Vec<Vec<u8>>,
    sizes: Vec<usize>,
}

impl Segmenter {
    /// Cuts `packet` (header `vnet`) and returns how many segments it made; None when the
    /// header does not describe the packet.
    pub fn split(&mut self, vnet: &VnetHdr, packet: &mut [u8]) -> Option<usize> {
        let segments = vnet.segments(packet)?;
        let hdr = tun_rs::VirtioNetHdr {
            flags: vnet.flags,
            gso_type: vnet.gso_type,
            hdr_len: u16::try_from(segments.header_len).ok()?,
            gso_size: vnet.gso_size,
            csum_start: vnet.csum_start,
            csum_offset: vnet.csum_offset,
        };
        let need = VNET_HDR_LEN + segments.header_len + usize::from(vnet.gso_size);
        if self.bufs.len() < segments.count {
            self.bufs.resize_with(segments.count, Vec::new);
            self.sizes.resize(segments.count, 0);
        }
        for buf in &mut self.bufs[..segments.count] {
            if buf.len() < need {
                buf.resize(need, 0);
            }
        }
        let (bufs, sizes) = (
            &mut self.bufs[..segments.count],
            &mut self.sizes[..segments.count],
        );
        tun_rs::gso_split(packet, hdr, bufs, sizes, VNET_HDR_LEN, false).ok()
    }

    /// Segment `i` of the last split, its plain virtio-net header in front.
    pub fn segment(&mut self, i: usize) -> &mut [u8] {
        let segment = &mut self.bufs[i][..VNET_HDR_LEN + self.sizes[i]];
        segment[..VNET_HDR_LEN].copy_from_slice(&PLAIN_VNET_HDR);
        segment
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};

    #[test]
    fn a_super_packet_is_cut_into_segments_with_complete_checksums() {
        let payload: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        let mut packet = Vec::new();
        PacketBuilder::ipv4([192, 0, 2, 1], [198, 51, 100, 2], 64)
            .tcp(40000, 5201, 1000, 64240)
            .ack(1)
            .psh()
            .write(&mut packet, &payload)
            .unwrap();
        // As a TUN with TSO hands it over: the checksum field is a partial sum, left to others.
        packet[36..38].copy_from_slice(&[0x12, 0x34]);
        let vnet = VnetHdr {
            flags: 1,
            gso_type: 1,
            hdr_len: 40,
            gso_size: 1448,
            csum_start: 20,
            csum_offset: 16,
        };
        let mut segmenter = Segmenter::default();
        assert_eq!(segmenter.split(&vnet, &mut packet), Some(3));
        let mut data = Vec::new();
        for i in 0..3 {
            let segment = segmenter.segment(i);
            assert_eq!(segment[..VNET_HDR_LEN], PLAIN_VNET_HDR);
            let bytes = &segment[VNET_HDR_LEN..];
            let sliced = SlicedPacket::from_ip(bytes).unwrap();
            let Some(etherparse::NetSlice::Ipv4(ip)) = sliced.net else {
                panic!("not IPv4");
            };
            let header = ip.header().to_header();
            assert_eq!(header.header_checksum, header.calc_header_checksum());
            assert_eq!(usize::from(header.total_len), bytes.len());
            let Some(TransportSlice::Tcp(tcp)) = sliced.transport else {
                panic!("not TCP");
            };
            let expected = tcp
                .to_header()
                .calc_checksum_ipv4(&header, tcp.payload())
                .unwrap();
            assert_eq!(tcp.checksum(), expected, "segment {i}");
            assert_eq!(tcp.sequence_number(), 1000 + 1448 * i as u32);
            assert_eq!(tcp.psh(), i == 2, "PSH on the last segment only");
            data.extend_from_slice(tcp.payload());
        }
        assert_eq!(data, payload);
        // A header that does not fit the packet is not cut.
        let bad = VnetHdr {
            gso_size: 0,
            ..vnet
        };
        assert_eq!(segmenter.split(&bad, &mut packet), None);
    }
}
