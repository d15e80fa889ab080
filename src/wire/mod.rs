//! Wire layer: zero-copy views of packets. Nothing here allocates per packet.
