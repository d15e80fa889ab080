//! Wire layer: the virtio-net header in front of every packet a TUN with offloads (IFF_VNET_HDR)
//! hands over or takes (Linux `include/uapi/linux/virtio_net.h`, `struct virtio_net_hdr`,
//! fields in host byte order). It says whether the packet is a GSO super-packet (one TCP or
//! UDP header in front of up to 64 KiB that the kernel cuts into `gso_size` segments) and
//! whether its transport checksum is partial. Read in place; no allocation.

use super::flow::{FlowKey, PROTO_TCP, PROTO_UDP};
use super::rewrite::L4Checksum;

/// The header's length (`struct virtio_net_hdr`, without `num_buffers`): TUN's default.
pub const VNET_HDR_LEN: usize = 10;
/// The header of a packet that asks nothing of the kernel: one packet, checksums complete.
/// The daemon writes it in front of what it makes itself (DNS answers, mirror copies).
pub const PLAIN_VNET_HDR: [u8; VNET_HDR_LEN] = [0; VNET_HDR_LEN];

const F_NEEDS_CSUM: u8 = 1;
const GSO_NONE: u8 = 0;
const GSO_TCPV4: u8 = 1;
const GSO_TCPV6: u8 = 4;
const GSO_UDP_L4: u8 = 5;
const GSO_ECN: u8 = 0x80;

/// A virtio-net header, as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VnetHdr {
    pub flags: u8,
    pub gso_type: u8,
    pub hdr_len: u16,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

/// How a GSO super-packet is cut: its segments and the headers each one repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segments {
    pub count: usize,
    /// IPv4 and TCP/UDP headers, options included.
    pub header_len: usize,
}

impl VnetHdr {
    /// Reads the header from the first `VNET_HDR_LEN` bytes of `bytes`.
    pub fn parse(bytes: &[u8]) -> Option<VnetHdr> {
        let b = bytes.get(..VNET_HDR_LEN)?;
        let u16_at = |at: usize| u16::from_ne_bytes([b[at], b[at + 1]]);
        Some(VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u16_at(2),
            gso_size: u16_at(4),
            csum_start: u16_at(6),
            csum_offset: u16_at(8),
        })
    }

    /// Writes the header into `out[..VNET_HDR_LEN]`.
    pub fn write(&self, out: &mut [u8; VNET_HDR_LEN]) {
        out[0] = self.flags;
        out[1] = self.gso_type;
        out[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        out[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        out[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        out[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
    }

    /// A GSO super-packet, which the receiving kernel (or `gso_split`) cuts into segments.
    pub fn is_gso(&self) -> bool {
        self.gso_type != GSO_NONE
    }

    /// The transport checksum is left for the kernel to finish (CHECKSUM_PARTIAL).
    pub fn needs_csum(&self) -> bool {
        self.flags & F_NEEDS_CSUM != 0
    }

    /// Anything other than one packet with complete checksums.
    pub fn is_offloaded(&self) -> bool {
        self.is_gso() || self.needs_csum()
    }

    /// What the TCP/UDP checksum field of `packet` (IPv4, protocol `protocol`) holds, for
    /// `rewrite_with`: `Partial` when this header leaves exactly that field to the kernel,
    /// `Complete` when it leaves nothing. None when it leaves some other field (not what
    /// Linux sends for IPv4 TCP or UDP): finish it with `complete_checksum` first.
    pub fn l4_checksum(&self, packet: &[u8], protocol: u8) -> Option<L4Checksum> {
        if !self.needs_csum() {
            return Some(L4Checksum::Complete);
        }
        let header_len = FlowKey::ip_header_len(packet);
        let field = match protocol {
            PROTO_TCP => 16,
            PROTO_UDP => 6,
            _ => return None,
        };
        (usize::from(self.csum_start) == header_len && usize::from(self.csum_offset) == field)
            .then_some(L4Checksum::Partial)
    }

    /// How the kernel would cut `packet`: 1 segment unless this is a GSO header; None for a
    /// GSO header that does not fit the packet (an unknown type, a TCP header cut short, a
    /// `gso_size` of 0). The header length is read from the packet, not taken from
    /// `hdr_len`, which a forwarding kernel may set to the whole first segment.
    pub fn segments(&self, packet: &[u8]) -> Option<Segments> {
        if !self.is_gso() {
            return Some(Segments {
                count: 1,
                header_len: packet.len(),
            });
        }
        packet.first()?;
        let ip_len = FlowKey::ip_header_len(packet);
        let header_len = match self.gso_type & !GSO_ECN {
            GSO_TCPV4 | GSO_TCPV6 => ip_len + usize::from(*packet.get(ip_len + 12)? >> 4) * 4,
            GSO_UDP_L4 => ip_len + 8,
            _ => return None,
        };
        let payload = packet.len().checked_sub(header_len)?;
        let size = usize::from(self.gso_size);
        if size == 0 || payload == 0 || usize::from(self.csum_start) != ip_len {
            return None;
        }
        Some(Segments {
            count: payload.div_ceil(size),
            header_len,
        })
    }

    /// The bytes `packet` stands for on a wire: each segment with its own headers.
    pub fn wire_bytes(&self, packet: &[u8]) -> usize {
        match self.segments(packet) {
            Some(s) if self.is_gso() => packet.len() + (s.count - 1) * s.header_len,
            _ => packet.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn tcp(payload: usize) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ipv4([192, 0, 2, 1], [198, 51, 100, 2], 64)
            .tcp(40000, 5201, 1, 1000)
            .ack(1)
            .write(&mut out, &vec![7u8; payload])
            .unwrap();
        out
    }

    fn gso(gso_size: u16) -> VnetHdr {
        VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV4,
            hdr_len: 40,
            gso_size,
            csum_start: 20,
            csum_offset: 16,
        }
    }

    #[test]
    fn round_trips_in_host_byte_order() {
        let hdr = gso(1448);
        let mut bytes = [0u8; VNET_HDR_LEN];
        hdr.write(&mut bytes);
        assert_eq!(VnetHdr::parse(&bytes), Some(hdr));
        assert_eq!(VnetHdr::parse(&PLAIN_VNET_HDR), Some(VnetHdr::default()));
        assert_eq!(VnetHdr::parse(&bytes[..9]), None);
        assert!(!VnetHdr::default().is_offloaded());
    }

    #[test]
    fn a_super_packet_counts_every_segments_headers() {
        let packet = tcp(3 * 1448 + 100);
        let hdr = gso(1448);
        let s = hdr.segments(&packet).unwrap();
        assert_eq!((s.count, s.header_len), (4, 40));
        assert_eq!(hdr.wire_bytes(&packet), packet.len() + 3 * 40);
        // One segment's worth, or no GSO at all: the packet as it is.
        assert_eq!(gso(1448).wire_bytes(&tcp(1448)), 1488);
        assert_eq!(VnetHdr::default().wire_bytes(&packet), packet.len());
        // Nonsense is not cut: no size, no payload, an unknown type.
        assert_eq!(gso(0).segments(&packet), None);
        assert_eq!(gso(1448).segments(&tcp(0)), None);
        let odd = VnetHdr {
            gso_type: 3,
            ..gso(1448)
        };
        assert_eq!(odd.segments(&packet), None);
    }

    #[test]
    fn the_partial_field_must_be_the_transport_checksum() {
        let packet = tcp(10);
        assert_eq!(
            gso(1448).l4_checksum(&packet, PROTO_TCP),
            Some(L4Checksum::Partial)
        );
        assert_eq!(
            VnetHdr::default().l4_checksum(&packet, PROTO_TCP),
            Some(L4Checksum::Complete)
        );
        let elsewhere = VnetHdr {
            csum_offset: 6,
            ..gso(1448)
        };
        assert_eq!(elsewhere.l4_checksum(&packet, PROTO_TCP), None);
        assert_eq!(gso(1448).l4_checksum(&packet, 1), None);
    }
}
