//! What the VGW's sessions learned, together: per VPN connection its prefixes (the best of its
//! two tunnels' sessions, by AS path length), and what each session announces back: the VPC's
//! CIDRs, and with VPN CloudHub the prefixes of the other sites of the same gateway.

use std::collections::BTreeMap;

use ipnet::Ipv4Net;

pub use crate::fabric::LearnedRoute;
use crate::scenario::{Lab, VpnConnectionId, VpnRouting};

use super::session::PathInfo;

/// A session's announcements: each prefix with its AS path after the VGW's own AS.
pub type Advertised = BTreeMap<Ipv4Net, Vec<u32>>;

/// Everything the VGWs' sessions learned, by connection and tunnel.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Rib {
    sessions: BTreeMap<(VpnConnectionId, usize), BTreeMap<Ipv4Net, PathInfo>>,
}

impl Rib {
    /// Replaces what the session of `tunnel` of `connection` learned; true when it changed.
    pub fn set(
        &mut self,
        connection: VpnConnectionId,
        tunnel: usize,
        learned: &BTreeMap<Ipv4Net, PathInfo>,
    ) -> bool {
        let key = (connection, tunnel);
        if self.sessions.get(&key) == Some(learned) {
            return false;
        }
        if learned.is_empty() {
            self.sessions.remove(&key);
        } else {
            self.sessions.insert(key, learned.clone());
        }
        true
    }

    /// The prefixes `connection` learned over either tunnel, each once, with the shorter AS
    /// path (then the lower MED) of the two.
    pub fn learned(&self, connection: VpnConnectionId) -> Vec<LearnedRoute> {
        let mut best: BTreeMap<Ipv4Net, &PathInfo> = BTreeMap::new();
        for ((c, _), routes) in &self.sessions {
            if *c != connection {
                continue;
            }
            for (prefix, info) in routes {
                let better = best.get(prefix).is_none_or(|b| rank(info) < rank(b));
                if better {
                    best.insert(*prefix, info);
                }
            }
        }
        best.into_iter()
            .map(|(prefix, info)| LearnedRoute {
                prefix,
                as_path_len: info.as_path.len(),
                med: info.med,
            })
            .collect()
    }

    /// Per connection of `lab`: what it learned (empty for static ones).
    pub fn all_learned(&self, lab: &Lab) -> Vec<Vec<LearnedRoute>> {
        (0..lab.vpn_connections.len())
            .map(|c| self.learned(c))
            .collect()
    }

    /// What the sessions of `connection` announce: the CIDRs of its gateway's VPC, and the
    /// prefixes the gateway's other BGP connections learned (VPN CloudHub), with their paths.
    pub fn advertised(&self, lab: &Lab, connection: VpnConnectionId) -> Advertised {
        let c = &lab.vpn_connections[connection];
        let vpc = &lab.vpcs[lab.vpn_gateways[c.gateway].vpc];
        let mut out: Advertised = vpc.cidrs.iter().map(|n| (*n, Vec::new())).collect();
        for (other, oc) in lab.vpn_connections.iter().enumerate() {
            if other == connection || oc.gateway != c.gateway || oc.routing != VpnRouting::Bgp {
                continue;
            }
            for ((c2, _), routes) in &self.sessions {
                if *c2 != other {
                    continue;
                }
                for (prefix, info) in routes {
                    let shorter = out.get(prefix).is_none_or(|p| info.as_path.len() < p.len());
                    if shorter {
                        out.insert(*prefix, info.as_path.clone());
                    }
                }
            }
        }
        out
    }
}

/// AWS's order among equal prefixes learned by BGP: shorter AS path, then lower MED.
fn rank(info: &PathInfo) -> (usize, u32) {
    (info.as_path.len(), info.med.unwrap_or(0))
}
