//! Which VPN tunnels are up: one flag per tunnel of the lab (connection `c`, tunnel `t` at
//! `2c + t`), read by every decision and written by the daemon when a tunnel's peer goes
//! quiet or comes back, or when a fault is injected. Shared (an `Arc`) by every copy of a
//! compiled lab, so that `vpclab explain` sees the data plane's tunnels. All up at first.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::scenario::VpnConnectionId;

/// One of the two tunnels of a VPN connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TunnelRef {
    pub connection: VpnConnectionId,
    /// 0 for tunnel 1, 1 for tunnel 2.
    pub index: usize,
}

impl TunnelRef {
    /// Its place among all the lab's tunnels.
    pub fn slot(self) -> usize {
        self.connection * 2 + self.index
    }

    /// Tunnel number as AWS shows it (1 or 2).
    pub fn number(self) -> usize {
        self.index + 1
    }
}

#[derive(Debug, Clone)]
pub struct TunnelStates(Arc<[AtomicBool]>);

impl TunnelStates {
    /// `connections` connections, every tunnel up.
    pub fn new(connections: usize) -> TunnelStates {
        TunnelStates(
            (0..connections * 2)
                .map(|_| AtomicBool::new(true))
                .collect(),
        )
    }

    pub fn is_up(&self, t: TunnelRef) -> bool {
        self.0
            .get(t.slot())
            .is_some_and(|f| f.load(Ordering::Relaxed))
    }

    pub fn set(&self, t: TunnelRef, up: bool) {
        if let Some(f) = self.0.get(t.slot()) {
            f.store(up, Ordering::Relaxed);
        }
    }

    /// The tunnel of `connection` that carries traffic: tunnel 1 while it is up, else tunnel
    /// 2 (AWS's VGW uses one tunnel at a time); None when both are down.
    pub fn active(&self, connection: VpnConnectionId) -> Option<TunnelRef> {
        (0..2)
            .map(|index| TunnelRef { connection, index })
            .find(|&t| self.is_up(t))
    }
}
