//! The packet loop: one task per host interface reads a packet, asks the decision function,
//! and writes it to the destination's interface, then the copies traffic mirror sessions make
//! of it (`mirror`); a query to the VPC's DNS resolver is answered on the spot instead
//! (`resolver`). No allocation and no global lock per packet:
//! the compiled lab is read through an `ArcSwap` and replaced whole on change; the connection
//! table is sharded, reserved up front, and outlives recompiles (tracked flows survive a rule
//! change, as in AWS).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tun_rs::AsyncDevice;

use super::costs::Meters;
use super::flowlogs::{observe, FlowLogSink, FlowTrace};
use super::mirror::Mirror;
use super::resolver::Resolver;
use crate::fabric::Direction::{Inbound, Outbound};
use crate::fabric::{decide_packet, read_packet, Compiled, Conntrack, DropCode, Outcome};
use crate::scenario::HostId;
use crate::wire::rewrite;

/// What the packet loops read: the compiled lab and the interface of each instance.
pub struct Runtime {
    pub compiled: Compiled,
    /// Per host slot (stable for the daemon's life): the host it is in this version.
    pub slot_host: Vec<Option<HostId>>,
    /// Bytes through the metered gateways of this version (carried over by name on change).
    pub meters: Meters,
    /// Per host id of this version: its interface.
    pub devices: Vec<Arc<AsyncDevice>>,
}

/// Packet counters, updated with relaxed atomics.
#[derive(Default)]
pub struct Counters {
    pub delivered: AtomicU64,
    pub dropped: [AtomicU64; DropCode::ALL.len()],
}

impl Counters {
    pub fn count_drop(&self, code: DropCode) {
        self.dropped[code as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> super::control::Counters {
        super::control::Counters {
            delivered: self.delivered.load(Ordering::Relaxed),
            dropped: DropCode::ALL
                .iter()
                .map(|c| {
                    (
                        c.as_str().to_string(),
                        self.dropped[*c as usize].load(Ordering::Relaxed),
                    )
                })
                .filter(|(_, n)| *n > 0)
                .collect(),
        }
    }
}

/// The data plane's connection tracking and the epoch its `now` counts from (monotonic).
pub struct Tracking {
    pub flows: Conntrack,
    epoch: Instant,
}

impl Tracking {
    pub fn new() -> Tracking {
        Tracking {
            flows: Conntrack::for_dataplane(),
            epoch: Instant::now(),
        }
    }

    /// The time the fabric decides at: elapsed since the daemon started.
    pub fn now(&self) -> Duration {
        self.epoch.elapsed()
    }
}

impl Default for Tracking {
    fn default() -> Self {
        Tracking::new()
    }
}

/// How often idle tracked flows are forgotten (lookups also drop them lazily).
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// Forgets idle flows every `SWEEP_EVERY`, for the daemon's life.
pub async fn sweep(tracking: Arc<Tracking>) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    loop {
        tick.tick().await;
        tracking.flows.sweep(tracking.now());
    }
}

/// Largest packet a TUN hands us (no offload: at most the MTU, 9001).
const BUFFER: usize = 65536;

/// Carries every packet that host `slot` sends until its interface is closed.
pub async fn pump(
    slot: usize,
    dev: Arc<AsyncDevice>,
    shared: Arc<ArcSwap<Runtime>>,
    counters: Arc<Counters>,
    tracking: Arc<Tracking>,
    flow_logs: Arc<FlowLogSink>,
) {
    let mut buf = vec![0u8; BUFFER];
    let mut mirror = Mirror::new(slot);
    let mut resolver = Resolver::default();
    loop {
        let n = match dev.recv(&mut buf).await {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        let packet = &mut buf[..n];
        // The VPC's DNS resolver answers before the decision: in AWS no SG or NACL filters
        // what goes to it, no flow log records it, no mirror session copies it.
        if let Some(reply) = resolver.answer(&shared, slot, packet) {
            let _ = dev.send(reply).await;
            continue;
        }
        let (target, copies) = {
            let runtime = shared.load();
            let Some(from) = runtime.slot_host.get(slot).copied().flatten() else {
                continue;
            };
            let input = match read_packet(packet) {
                Ok(input) => input,
                Err(code) => {
                    counters.count_drop(code);
                    continue;
                }
            };
            let now = tracking.now();
            let (flows, key, quoted) = (&tracking.flows, &input.key, input.quoted.as_ref());
            let compiled = &runtime.compiled;
            let decision = if compiled.lab.flow_logs.is_empty() {
                decide_packet(compiled, flows, now, from, key, quoted, &mut ())
            } else {
                // Same decision, with the few facts the flow logs need recorded on the way.
                let mut trace = FlowTrace::default();
                let decided = decide_packet(compiled, flows, now, from, key, quoted, &mut trace);
                let instances = compiled.lab.instances.len();
                let delivered = match decided.outcome {
                    Outcome::Deliver(to) => Some(to).filter(|&to| to < instances),
                    Outcome::Drop(_) => None,
                };
                let sender = Some(from).filter(|&from| from < instances);
                let bytes = n as u32;
                let arrived = &decided.delivered;
                observe(
                    &flow_logs, compiled, sender, key, arrived, bytes, delivered, &trace,
                );
                decided
            };
            let (outcome, arrived) = (decision.outcome, decision.delivered);
            if let (Outcome::Deliver(_), Some(metered)) = (outcome, decision.metered) {
                runtime.meters.add(metered, n);
            }
            match outcome {
                Outcome::Deliver(to) => {
                    // Traffic mirroring: what `from` sent as it sent it, what `to` receives as
                    // it arrives.
                    let (r, t, c) = (&*runtime, &*tracking, &*counters);
                    let sent = mirror.copy(r, t, c, now, from, Outbound, key, packet);
                    if arrived != *key {
                        // A gateway translated it: the packet now says what the decision says.
                        rewrite(packet, key, &arrived);
                    }
                    let received = mirror.copy(r, t, c, now, to, Inbound, &arrived, packet);
                    (runtime.devices[to].clone(), [sent, received])
                }
                Outcome::Drop(code) => {
                    counters.count_drop(code);
                    continue;
                }
            }
        };
        if target.send(packet).await.is_ok() {
            counters.delivered.fetch_add(1, Ordering::Relaxed);
        }
        mirror.send(copies).await;
    }
}
