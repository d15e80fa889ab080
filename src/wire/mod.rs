//! Wire layer: zero-copy views of packets. Nothing here allocates per packet.

pub mod dns;
mod ipv4;
mod rewrite;
mod udp;
mod vxlan;

pub use ipv4::{FlowKey, ParseError, PROTO_ICMP, PROTO_TCP, PROTO_UDP};
pub use rewrite::rewrite;
pub use udp::{write_udp_headers, UdpView, UDP_HEADERS_LEN};
pub use vxlan::{encapsulate, Vxlan, INNER_ETHERNET_LEN, OUTER_LEN, VXLAN_PORT};
