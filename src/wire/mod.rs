//! Wire layer: zero-copy views of packets. Nothing here allocates per packet.

mod ipv4;

pub use ipv4::{FlowKey, ParseError, PROTO_ICMP, PROTO_TCP, PROTO_UDP};
