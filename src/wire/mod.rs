//! Wire layer: zero-copy views of packets. Nothing here allocates per packet.

pub mod dns;
mod flow;
mod reset;
mod rewrite;
mod udp;
mod virtio;
mod vxlan;

pub use flow::{FlowKey, ParseError, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};
pub use reset::{tcp_reset, RESET_LEN};
pub use rewrite::{complete_checksum, rewrite, rewrite_with, L4Checksum};
pub use udp::{write_udp_headers, UdpView, UDP_HEADERS_LEN};
pub use virtio::{Segments, VnetHdr, PLAIN_VNET_HDR, VNET_HDR_LEN};
pub use vxlan::{encapsulate, Vxlan, INNER_ETHERNET_LEN, OUTER_LEN, VXLAN_PORT};
