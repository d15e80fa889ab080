//! The packet path: a packet thread (`packet_threads`) reads a packet from a host's
//! interface, asks the decision function, and writes it to the destination's interface, then
//! the copies traffic mirror sessions make of it (`mirror`); a query to the VPC's DNS resolver
//! is answered on the spot instead (`resolver`). No allocation and no global lock per packet:
//! the compiled lab is read through an `ArcSwap` and replaced whole on change; the connection
//! table is sharded, reserved up front, and outlives recompiles (tracked flows survive a rule
//! change, as in AWS). Nothing here waits: a TUN takes a write at once or drops it.

use std::io::IoSlice;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tun_rs::{AsyncDevice, SyncDevice};

use super::costs::Meters;
use super::flowlogs::{observe_decision, FlowLogSink, FlowTrace};
use super::mirror::Mirror;
use super::resolver::Resolver;
use super::segmenter::Segmenter;
use super::vpn::{VpnEnds, VpnIo, DATAGRAM_BUFFER};
use crate::fabric::mirror::mirror_session;
use crate::fabric::Direction::{Inbound, Outbound};
use crate::fabric::{decide_packet, read_packet, Compiled, Conntrack, DropCode, Outcome};
use crate::scenario::HostId;
use crate::wire::L4Checksum::Complete;
use crate::wire::{
    complete_checksum, rewrite, rewrite_with, tcp_reset, VnetHdr, PLAIN_VNET_HDR, PROTO_UDP,
    RESET_LEN, VNET_HDR_LEN,
};

/// What the packet threads read: the compiled lab and the interface of each host.
pub struct Runtime {
    pub compiled: Compiled,
    /// Per host slot (stable for the daemon's life): the host it is in this version.
    pub slot_host: Vec<Option<HostId>>,
    /// Bytes through the metered gateways of this version (carried over by name on change).
    pub meters: Meters,
    /// Per host id of this version: its interface.
    pub devices: Vec<Arc<SyncDevice>>,
    /// The AWS ends of the VPN tunnels of this version, if it has any.
    pub vpn: Option<Arc<VpnEnds>>,
}

impl Runtime {
    /// The same version with `compiled` instead (new routes learned by BGP): the hosts, the
    /// meters' counts and the VPN sessions carry over.
    pub fn with_compiled(&self, compiled: Compiled) -> Runtime {
        let lab = &compiled.lab;
        let meters = Meters::carry_over(lab, Some((&self.meters, &self.compiled.lab)));
        Runtime {
            meters,
            slot_host: self.slot_host.clone(),
            devices: self.devices.clone(),
            vpn: self.vpn.clone(),
            compiled,
        }
    }
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

/// Largest read: the virtio-net header and a GSO super-packet of up to 64 KiB.
const BUFFER: usize = VNET_HDR_LEN + 65536;
const _: () = assert!(VNET_HDR_LEN == tun_rs::VIRTIO_NET_HDR_LEN);

/// What every packet thread shares: the lab as compiled, the counters, the flow table and the
/// flow logs.
#[derive(Clone)]
pub struct Shared {
    pub runtime: Arc<ArcSwap<Runtime>>,
    pub counters: Arc<Counters>,
    pub tracking: Arc<Tracking>,
    pub flow_logs: Arc<FlowLogSink>,
}

/// One packet thread's working state, allocated once: the read buffer and what handling a
/// packet may need (mirror copies, DNS answers, a NAT gateway's reset, segments, datagrams).
pub struct PacketLoop {
    shared: Shared,
    buf: Vec<u8>,
    mirror: Mirror,
    resolver: Resolver,
    reset: [u8; RESET_LEN],
    segmenter: Segmenter,
    // Made on first need: only a site router's packets and VPC hosts talking to a site use them.
    datagram: Vec<u8>,
    spare: Vec<u8>,
}

impl PacketLoop {
    /// The state of packet thread `index`.
    pub fn new(index: usize, shared: Shared) -> PacketLoop {
        PacketLoop {
            shared,
            buf: vec![0u8; BUFFER],
            mirror: Mirror::new(index),
            resolver: Resolver::default(),
            reset: [0u8; RESET_LEN],
            segmenter: Segmenter::default(),
            datagram: Vec::new(),
            spare: Vec::new(),
        }
    }

    /// Carries up to `budget` packets that the host of `slot` sent on `dev`; returns how many
    /// it read (fewer: the interface has nothing more for now).
    pub fn drain(&mut self, slot: usize, dev: &SyncDevice, budget: usize) -> usize {
        for done in 0..budget {
            match dev.recv(&mut self.buf) {
                Ok(n) => self.carry(slot, dev, n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // WouldBlock, or the interface is going away.
                Err(_) => return done,
            }
        }
        budget
    }

    /// Carries the packet of `n` bytes just read from `dev`, the interface of host `slot`.
    /// Every read starts with a virtio-net header (offloads are on, `netns::host`): a GSO
    /// super-packet is decided once on its header, rewritten once (its transport checksum is
    /// partial) and written whole with the same header, so the kernels on both sides do the
    /// segmenting, as a hypervisor's virtual NIC lets them.
    fn carry(&mut self, slot: usize, dev: &SyncDevice, n: usize) {
        let Shared {
            runtime: shared,
            counters,
            tracking,
            flow_logs,
        } = &self.shared;
        let Some((head, packet)) = self.buf[..n].split_at_mut_checked(VNET_HDR_LEN) else {
            counters.count_drop(DropCode::UnsupportedPacket);
            return;
        };
        let Some(mut vnet) = VnetHdr::parse(head) else {
            return;
        };
        let runtime = shared.load();
        let Some(from) = runtime.slot_host.get(slot).copied().flatten() else {
            return;
        };
        let compiled = &runtime.compiled;
        // The VPC's DNS resolver answers before the decision: in AWS no SG or NACL filters
        // what goes to it, no flow log records it, no mirror session copies it.
        if !vnet.is_gso() {
            if let Some(reply) = self.resolver.answer(&compiled.lab, from, packet) {
                let _ = send_plain(dev, reply);
                return;
            }
        }
        let input = match read_packet(packet) {
            Ok(input) => input,
            Err(code) => {
                counters.count_drop(code);
                return;
            }
        };
        // A customer gateway's datagram to a tunnel's AWS end is the VPN's, not traffic.
        if let Some(t) = compiled.vpn_endpoint(&input.key) {
            let io = VpnIo::new(&runtime, &self.shared);
            self.datagram.resize(DATAGRAM_BUFFER, 0);
            self.spare.resize(DATAGRAM_BUFFER, 0);
            io.unwrap_datagram(t, packet, &mut self.datagram, &mut self.spare);
            return;
        }
        // A super-packet counts as the segments it stands for, headers and all.
        let Some(segments) = vnet.segments(packet) else {
            counters.count_drop(DropCode::UnsupportedPacket);
            return;
        };
        let wire_bytes = vnet.wire_bytes(packet);
        let now = tracking.now();
        let (flows, key, quoted) = (&tracking.flows, &input.key, input.quoted.as_ref());
        let decision = if compiled.lab.flow_logs.is_empty() {
            decide_packet(compiled, flows, now, from, key, quoted, &mut ())
        } else {
            // Same decision, with the few facts the flow logs need recorded on the way.
            let mut trace = FlowTrace::default();
            let decided = decide_packet(compiled, flows, now, from, key, quoted, &mut trace);
            let bytes = wire_bytes as u32;
            observe_decision(
                flow_logs,
                compiled,
                Some(from),
                key,
                &decided,
                bytes,
                &trace,
            );
            decided
        };
        let (outcome, arrived) = (decision.outcome, decision.delivered);
        if let (Outcome::Deliver(_), Some(metered)) = (outcome, decision.metered) {
            runtime.meters.add(metered, wire_bytes);
        }
        let to = match (outcome, decision.tunnel) {
            (Outcome::Deliver(_), Some(t)) => {
                let io = VpnIo::new(&runtime, &self.shared);
                self.datagram.resize(DATAGRAM_BUFFER, 0);
                let read = &mut self.buf[..n];
                if !io.wrap_read(t, &mut vnet, read, &mut self.segmenter, &mut self.datagram) {
                    counters.count_drop(DropCode::UnsupportedPacket);
                }
                return;
            }
            (Outcome::Deliver(to), None) => to,
            (Outcome::Drop(code), _) => {
                counters.count_drop(code);
                if code == DropCode::NgwIdleTimeout {
                    // The NAT gateway forgot the connection: it answers with a RST.
                    if let Some(len) = tcp_reset(packet, &mut self.reset) {
                        let _ = send_plain(dev, &self.reset[..len]);
                    }
                }
                return;
            }
        };
        let target = &*runtime.devices[to];
        let (r, t, c) = (&*runtime, &**tracking, &**counters);
        let mirrored = vnet.is_offloaded()
            && (mirror_session(compiled, from, Outbound, key).is_some()
                || mirror_session(compiled, to, Inbound, &arrived).is_some());
        if mirrored && vnet.is_gso() {
            // A GSO super-packet that a mirror session copies: cut into its segments here, so
            // that each copy is of a packet as on a wire (complete checksums, one MTU at most).
            let Some(count) = self.segmenter.split(&vnet, packet) else {
                counters.count_drop(DropCode::UnsupportedPacket);
                return;
            };
            for i in 0..count {
                let segment = self.segmenter.segment(i);
                let packet = &mut segment[VNET_HDR_LEN..];
                let sent = self.mirror.copy(r, t, c, now, from, Outbound, key, packet);
                if arrived != *key {
                    rewrite(packet, key, &arrived);
                }
                let received = self
                    .mirror
                    .copy(r, t, c, now, to, Inbound, &arrived, packet);
                if target.send(segment).is_ok() {
                    counters.delivered.fetch_add(1, Ordering::Relaxed);
                }
                self.mirror.send([sent, received]);
            }
            return;
        }
        // A copy shows the checksum as on a wire, and so does a packet whose partial checksum
        // is not the transport one (not from Linux).
        let l4 = vnet.l4_checksum(packet, key.protocol);
        let must_settle = mirrored || (l4.is_none() && arrived != *key);
        if must_settle && (vnet.is_gso() || !settle(&mut vnet, head, packet)) {
            counters.count_drop(DropCode::UnsupportedPacket);
            return;
        }
        // Traffic mirroring: what `from` sent as it sent it, what `to` receives as it arrives.
        let sent = self.mirror.copy(r, t, c, now, from, Outbound, key, packet);
        if arrived != *key {
            // A gateway translated it: the packet now says what the decision says.
            let l4 = vnet.l4_checksum(packet, key.protocol);
            rewrite_with(packet, key, &arrived, l4.unwrap_or(Complete));
        }
        let received = self
            .mirror
            .copy(r, t, c, now, to, Inbound, &arrived, packet);
        if target.send(&self.buf[..n]).is_ok() {
            counters
                .delivered
                .fetch_add(segments.count as u64, Ordering::Relaxed);
        }
        self.mirror.send([sent, received]);
    }
}

/// An interface the daemon writes to: a host's (read by the packet threads) or a BGP
/// speaker's (read by a tokio task). Never waits: a TUN takes a write at once or drops it.
pub(super) trait Port {
    fn send_parts(&self, parts: &[IoSlice<'_>]) -> std::io::Result<usize>;
}

impl Port for SyncDevice {
    fn send_parts(&self, parts: &[IoSlice<'_>]) -> std::io::Result<usize> {
        self.send_vectored(parts)
    }
}

impl Port for AsyncDevice {
    fn send_parts(&self, parts: &[IoSlice<'_>]) -> std::io::Result<usize> {
        self.try_send_vectored(parts)
    }
}

/// Writes `packet`, which the daemon made (complete checksums, one MTU), to `dev` behind the
/// virtio-net header that says so.
pub(super) fn send_plain(dev: &impl Port, packet: &[u8]) -> std::io::Result<usize> {
    dev.send_parts(&[IoSlice::new(&PLAIN_VNET_HDR), IoSlice::new(packet)])
}

/// Finishes the partial checksum of a packet that is not a GSO super-packet, and makes its
/// header (`head`, read as `vnet`) say so. False when the checksum field is not in the packet.
pub(super) fn settle(vnet: &mut VnetHdr, head: &mut [u8], packet: &mut [u8]) -> bool {
    if vnet.needs_csum() {
        let (start, offset) = (vnet.csum_start.into(), vnet.csum_offset.into());
        let udp = packet.get(9) == Some(&PROTO_UDP);
        if complete_checksum(packet, start, offset, udp).is_none() {
            return false;
        }
    }
    *vnet = VnetHdr::default();
    head.copy_from_slice(&PLAIN_VNET_HDR);
    true
}
