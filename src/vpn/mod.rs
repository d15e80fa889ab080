//! Site-to-Site VPN: the AWS end of each tunnel. AWS runs IPsec; the lab runs WireGuard
//! (boringtun's `Tunn`, no I/O of its own), since this kernel has no ESP. The customer's end is
//! real WireGuard (wireguard-go) in the site's router, configured by the files `config` writes,
//! with BIRD for BGP configured by `bird`.

pub mod bird;
pub mod config;
mod tunnel;

pub use tunnel::{KeyPair, Tunnel, TunnelError, TunnelStats, Wrapped, MIN_BUFFER, OVERHEAD};
