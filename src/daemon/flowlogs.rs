//! Daemon layer: VPC Flow Logs in the running lab. Packet loops report what each interface saw
//! through a bounded channel (no lock, no allocation per packet); one task aggregates and, when
//! a capture window closes, writes the records under the lab's folder (`flowlogs/`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use super::state::lab_dir;
use crate::fabric::{Compiled, Direction as SgDirection, Hop, SgVerdict, Trace};
use crate::flowlog::{write_batch, Aggregator, Direction, Observation};
use crate::scenario::{InstanceId, Lab};
use crate::wire::FlowKey;

/// Observations queued between the packet loops and the writer; beyond it records are skipped
/// (AWS's SKIPDATA), never the packets.
const QUEUE: usize = 65536;

enum Message {
    Observe(Observation),
    Reload(Box<Lab>),
}

/// The packet loops' end of the flow-log pipeline.
pub struct FlowLogSink {
    tx: mpsc::Sender<Message>,
    pub skipped: AtomicU64,
}

/// Where a lab's flow logs are written.
pub fn output_dir(lab: &str) -> PathBuf {
    lab_dir(lab).join("flowlogs")
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl FlowLogSink {
    /// Starts the writer task for `lab`; must be called inside the runtime.
    pub fn start(lab: &Lab) -> FlowLogSink {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(lab.clone(), rx));
        FlowLogSink {
            tx,
            skipped: AtomicU64::new(0),
        }
    }

    pub fn report(&self, observation: Observation) {
        if self.tx.try_send(Message::Observe(observation)).is_err() {
            self.skipped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// After an edit: close the open windows of the old lab and go on with the new one.
    pub async fn reload(&self, lab: &Lab) {
        let _ = self.tx.send(Message::Reload(Box::new(lab.clone()))).await;
    }
}

async fn writer(mut lab: Lab, mut rx: mpsc::Receiver<Message>) {
    let out = output_dir(&lab.name);
    let mut aggregator = Aggregator::new(&lab);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            message = rx.recv() => match message {
                Some(Message::Observe(o)) => aggregator.observe(unix_now(), &o),
                Some(Message::Reload(new)) => {
                    // Everything of the old version is written out, whatever its window.
                    write_all(&out, &lab, aggregator.flush(u64::MAX / 2));
                    lab = *new;
                    aggregator = Aggregator::new(&lab);
                }
                None => return,
            },
            _ = tick.tick() => write_all(&out, &lab, aggregator.flush(unix_now())),
        }
    }
}

fn write_all(out: &std::path::Path, lab: &Lab, batches: Vec<crate::flowlog::Batch>) {
    for batch in batches {
        if let Err(e) = write_batch(out, lab, &batch) {
            eprintln!(
                "flow logs of lab {}: write under {}: {e}",
                lab.name,
                out.display()
            );
        }
    }
}

/// Records, while a packet is decided, what the flow logs need: whether its source interface
/// let it out, which interface it reached or was refused at, and the path it took.
#[derive(Default)]
pub struct FlowTrace {
    /// Refused by the source's security groups or its subnet's NACL on the way out.
    pub rejected_out: bool,
    /// Refused at the destination (its subnet's NACL or its security groups) in that subnet.
    pub rejected_in_subnet: Option<usize>,
    /// The destination's interface when its security groups refused the packet.
    pub rejected_at: Option<InstanceId>,
    /// Crossed a peering: Some(true) for inter-Region.
    pub peering_inter_region: Option<bool>,
    pub peering: Option<usize>,
}

impl Trace for FlowTrace {
    fn hop(&mut self, hop: Hop) {
        match hop {
            Hop::SecurityGroup {
                eni,
                direction,
                verdict: SgVerdict::NoRule,
            } => match direction {
                SgDirection::Outbound => self.rejected_out = true,
                SgDirection::Inbound => self.rejected_at = Some(eni),
            },
            Hop::NetworkAcl {
                subnet,
                direction,
                allow: false,
                ..
            } => match direction {
                SgDirection::Outbound => self.rejected_out = true,
                SgDirection::Inbound => self.rejected_in_subnet = Some(subnet),
            },
            Hop::Peering { peering, .. } => self.peering = Some(peering),
            _ => {}
        }
    }
}

/// The observations of one decided packet: egress at the sender, ingress at the receiver
/// (or at the interface that refused it).
pub fn observe(
    sink: &FlowLogSink,
    lab: &Compiled,
    from: InstanceId,
    key: &FlowKey,
    bytes: u32,
    delivered_to: Option<InstanceId>,
    trace: &FlowTrace,
) {
    let icmp = key.protocol == crate::wire::PROTO_ICMP;
    let (src_port, dst_port) = if icmp {
        (0, 0)
    } else {
        (key.src_port, key.dst_port)
    };
    let traffic_path = match trace.peering {
        Some(p) if lab.lab.peerings[p].cross_region => 5,
        Some(_) => 4,
        None => 1,
    };
    let base = Observation {
        eni: from,
        direction: Direction::Egress,
        src: key.src,
        dst: key.dst,
        src_port,
        dst_port,
        protocol: key.protocol,
        tcp_flags: key.tcp_flags,
        bytes,
        accepted: !trace.rejected_out,
        traffic_path: Some(traffic_path),
    };
    sink.report(base);
    if trace.rejected_out {
        return;
    }
    let receiver = delivered_to.or(trace.rejected_at).or_else(|| {
        // Refused by the destination subnet's NACL: the interface it was for.
        let subnet = trace.rejected_in_subnet?;
        lab.lab
            .instances
            .iter()
            .position(|i| i.subnet == subnet && i.private_ip == key.dst)
    });
    if let Some(eni) = receiver {
        sink.report(Observation {
            eni,
            direction: Direction::Ingress,
            accepted: delivered_to.is_some(),
            traffic_path: None,
            ..base
        });
    }
}
