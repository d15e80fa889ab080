//! The VPN tunnels as `vpclab status` lists them, as AWS's console shows a connection's
//! "Tunnel details": addresses, state, and, from the AWS end's WireGuard session, the last
//! handshake and the bytes each way, so a learner sees which tunnel carries the traffic.

use serde::{Deserialize, Serialize};

use super::bgp::BgpStatus;
use super::dataplane::Runtime;
use crate::fabric::tunnels::TunnelRef;

/// One tunnel of a VPN connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TunnelRecord {
    pub connection: String,
    /// 1 or 2.
    pub number: u8,
    /// AWS's outside address and port.
    pub outside: String,
    /// The customer gateway's public IP and port.
    pub customer: String,
    /// The inside /30 (AWS .1, customer .2).
    pub inside: String,
    /// As the fabric counts it (heard from lately, not faulted).
    pub up: bool,
    /// Taken down by `vpclab fault`.
    #[serde(default)]
    pub faulted: bool,
    /// Seconds since the last completed handshake; None before the first.
    pub since_handshake_s: Option<u64>,
    /// Inner bytes the AWS end sent into the tunnel and received out of it.
    pub bytes_to_site: u64,
    pub bytes_from_site: u64,
    /// The BGP session's state, with BGP routing (filled by the BGP speaker; None: static).
    #[serde(default)]
    pub bgp: Option<String>,
    /// Prefixes learned over BGP from the customer gateway.
    #[serde(default)]
    pub learned: Vec<String>,
}

/// Every tunnel of the lab version `runtime` carries, in connection order, with its BGP
/// session from `bgp`.
pub fn tunnels(runtime: &Runtime, bgp: &BgpStatus) -> Vec<TunnelRecord> {
    let sessions = bgp.lock().map(|s| s.clone()).unwrap_or_default();
    let lab = &runtime.compiled.lab;
    let mut out = Vec::new();
    for (connection, c) in lab.vpn_connections.iter().enumerate() {
        let cgw = lab.sites[c.site].customer_gateway.public_ip;
        for (index, t) in c.tunnels.iter().enumerate() {
            let r = TunnelRef { connection, index };
            let vpn = runtime.vpn.as_deref();
            let stats = vpn.and_then(|v| v.stats(r)).unwrap_or_default();
            out.push(TunnelRecord {
                connection: c.name.clone(),
                number: t.number,
                outside: format!("{}:{}", t.outside_ip, t.aws_port),
                // Where the customer end is heard from (behind a NAT, its NAT's port).
                customer: format!(
                    "{cgw}:{}",
                    vpn.and_then(|v| v.peer_port(r)).unwrap_or(t.customer_port)
                ),
                inside: t.inside.to_string(),
                up: runtime.compiled.tunnels.is_up(r),
                faulted: vpn.is_some_and(|v| v.is_faulted(r)),
                since_handshake_s: stats.since_handshake.map(|d| d.as_secs()),
                bytes_to_site: stats.wrapped_bytes,
                bytes_from_site: stats.unwrapped_bytes,
                bgp: sessions.get(&r).map(|(state, _)| state.clone()),
                learned: sessions.get(&r).map(|(_, l)| l.clone()).unwrap_or_default(),
            });
        }
    }
    out
}
