//! Daemon layer: traffic mirroring in the packet loop. For a delivered packet, the copies its
//! source ENI (outbound) and destination ENI (inbound) mirror are written into one buffer the
//! loop owns (a slot per direction), decided by the fabric like any packet the source ENI
//! sends except for the source's security groups, and sent to the target's interface. Copies
//! are never flow-logged (AWS's flow logs do not see mirrored traffic) and never mirrored
//! again: they do not pass through a packet loop's decision.

use std::sync::Arc;
use std::time::Duration;

use tun_rs::SyncDevice;

use super::dataplane::{send_plain, Counters, Runtime, Tracking};
use crate::fabric::mirror::{mirror_session, write_copy, TARGET_MTU};
use crate::fabric::{decide_mirror_copy, Direction, Outcome};
use crate::scenario::HostId;
use crate::wire::FlowKey;

/// A copy decided and ready to send: the target's interface and the copy's length in its slot.
pub type Ready = Option<(Arc<SyncDevice>, usize)>;

/// One packet thread's mirroring state: a slot per direction, allocated once.
pub struct Mirror {
    buf: Vec<u8>,
    /// The outer IPv4 identification of the next copy.
    id: u16,
}

impl Mirror {
    /// For packet thread `index`: each thread counts its copies' identifications from its
    /// own starting point, so two threads seldom show the same ones side by side.
    pub fn new(index: usize) -> Mirror {
        Mirror {
            buf: vec![0u8; 2 * TARGET_MTU],
            id: (index as u16).wrapping_mul(0x2000),
        }
    }

    /// Writes and decides the copy of `packet` (header `key`) that `eni` mirrors in
    /// `direction`, if a session of it accepts the packet: `Outbound` for what it sent, as it
    /// sent it; `Inbound` for what it receives, as it arrives (after any translation). Only
    /// delivered packets come here, a simplification: AWS also mirrors what the source's SG and
    /// NACL let out but something further on drops (and never what they drop). A copy the
    /// fabric drops (say, the target's SG lacks UDP 4789) is counted under its reason.
    #[allow(clippy::too_many_arguments)]
    pub fn copy(
        &mut self,
        runtime: &Runtime,
        tracking: &Tracking,
        counters: &Counters,
        now: Duration,
        eni: HostId,
        direction: Direction,
        key: &FlowKey,
        packet: &[u8],
    ) -> Ready {
        let compiled = &runtime.compiled;
        let session = mirror_session(compiled, eni, direction, key)?;
        let out = match direction {
            Direction::Outbound => &mut self.buf[..TARGET_MTU],
            Direction::Inbound => &mut self.buf[TARGET_MTU..],
        };
        self.id = self.id.wrapping_add(1);
        let copy = write_copy(compiled, session, packet, key, self.id, out);
        let flows = &tracking.flows;
        match decide_mirror_copy(compiled, flows, now, copy.source, &copy.key, &mut ()) {
            Outcome::Deliver(target) => Some((runtime.devices[target].clone(), copy.len)),
            Outcome::Drop(code) => {
                counters.count_drop(code);
                None
            }
        }
    }

    /// Sends what `copy` returned: `[outbound, inbound]`.
    pub fn send(&self, ready: [Ready; 2]) {
        for (slot, copy) in ready.into_iter().enumerate() {
            if let Some((device, len)) = copy {
                let start = slot * TARGET_MTU;
                // A lost copy is not retried, as AWS drops copies under congestion.
                let _ = send_plain(&*device, &self.buf[start..start + len]);
            }
        }
    }
}
