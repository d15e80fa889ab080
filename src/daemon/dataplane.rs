//! The packet loop: one task per host interface reads a packet, asks the decision function,
//! and writes it to the destination's interface, then the copies traffic mirror sessions make
//! of it (`mirror`); a query to the VPC's DNS resolver is answered on the spot instead
//! (`resolver`). No allocation and no global lock per packet:
//! the compiled lab is read through an `ArcSwap` and replaced whole on change; the connection
//! table is sharded, reserved up front, and outlives recompiles (tracked flows survive a rule
//! change, as in AWS).

use std::io::IoSlice;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tun_rs::AsyncDevice;

use super::costs::Meters;
use super::flowlogs::{observe, FlowLogSink, FlowTrace};
use super::mirror::{Mirror, Ready};
use super::resolver::Resolver;
use super::vpn::{VpnEnds, VpnIo, DATAGRAM_BUFFER};
use crate::fabric::mirror::mirror_session;
use crate::fabric::tunnels::TunnelRef;
use crate::fabric::Direction::{Inbound, Outbound};
use crate::fabric::{decide_packet, read_packet, Compiled, Conntrack, DropCode, Outcome};
use crate::scenario::HostId;
use crate::wire::L4Checksum::Complete;
use crate::wire::{
    complete_checksum, rewrite, rewrite_with, tcp_reset, FlowKey, VnetHdr, PLAIN_VNET_HDR,
    PROTO_UDP, RESET_LEN, VNET_HDR_LEN,
};

/// What the packet loops read: the compiled lab and the interface of each instance.
pub struct Runtime {
    pub compiled: Compiled,
    /// Per host slot (stable for the daemon's life): the host it is in this version.
    pub slot_host: Vec<Option<HostId>>,
    /// Bytes through the metered gateways of this version (carried over by name on change).
    pub meters: Meters,
    /// Per host id of this version: its interface.
    pub devices: Vec<Arc<AsyncDevice>>,
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

/// What the decision leaves the loop to do once the compiled lab is let go.
enum Next {
    /// Write the buffer as read (header included, addresses rewritten) to this interface,
    /// where it counts as this many packets, then send the mirror copies.
    Send(Arc<AsyncDevice>, usize, [Ready; 2]),
    /// A datagram for the AWS end of a VPN tunnel.
    FromCustomer(Arc<Runtime>, TunnelRef),
    /// A packet the decision sends into a VPN tunnel toward a site.
    ToCustomer(Arc<Runtime>, TunnelRef),
    /// A GSO super-packet that a mirror session copies: cut it into its segments here, so
    /// that each copy is of a packet as on a wire (complete checksums, one MTU at most).
    Segments {
        runtime: Arc<Runtime>,
        from: HostId,
        to: HostId,
        key: FlowKey,
        arrived: FlowKey,
        now: Duration,
    },
}

/// Carries every packet that host `slot` sends until its interface is closed. Every read
/// starts with a virtio-net header (offloads are on, `netns::host`): a GSO super-packet is
/// decided once on its header, rewritten once (its transport checksum is partial) and written
/// whole with the same header, so the kernels on both sides do the segmenting, as a
/// hypervisor's virtual NIC lets them.
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
    let mut reset = [0u8; RESET_LEN];
    let mut segmenter = Segmenter::default();
    // Made on first need: only a site router's loop and VPC hosts talking to a site use it.
    let mut datagram: Vec<u8> = Vec::new();
    let mut spare: Vec<u8> = Vec::new();
    loop {
        let n = match dev.recv(&mut buf).await {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        let Some((head, packet)) = buf[..n].split_at_mut_checked(VNET_HDR_LEN) else {
            counters.count_drop(DropCode::UnsupportedPacket);
            continue;
        };
        let Some(mut vnet) = VnetHdr::parse(head) else {
            continue;
        };
        // The VPC's DNS resolver answers before the decision: in AWS no SG or NACL filters
        // what goes to it, no flow log records it, no mirror session copies it.
        if !vnet.is_gso() {
            if let Some(reply) = resolver.answer(&shared, slot, packet) {
                let _ = send_plain(&dev, reply).await;
                continue;
            }
        }
        let next = {
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
            // A customer gateway's datagram to a tunnel's AWS end is the VPN's, not traffic.
            if let Some(t) = runtime.compiled.vpn_endpoint(&input.key) {
                Next::FromCustomer(Arc::clone(&runtime), t)
            } else {
                // A super-packet counts as the segments it stands for, headers and all.
                let Some(segments) = vnet.segments(packet) else {
                    counters.count_drop(DropCode::UnsupportedPacket);
                    continue;
                };
                let wire_bytes = vnet.wire_bytes(packet);
                let now = tracking.now();
                let (flows, key, quoted) = (&tracking.flows, &input.key, input.quoted.as_ref());
                let compiled = &runtime.compiled;
                let decision = if compiled.lab.flow_logs.is_empty() {
                    decide_packet(compiled, flows, now, from, key, quoted, &mut ())
                } else {
                    // Same decision, with the few facts the flow logs need recorded on the way.
                    let mut trace = FlowTrace::default();
                    let decided =
                        decide_packet(compiled, flows, now, from, key, quoted, &mut trace);
                    let instances = compiled.lab.instances.len();
                    let delivered = match decided.outcome {
                        Outcome::Deliver(to) => Some(to).filter(|&to| to < instances),
                        Outcome::Drop(_) => None,
                    };
                    let sender = Some(from).filter(|&from| from < instances);
                    let bytes = wire_bytes as u32;
                    let arrived = &decided.delivered;
                    observe(
                        &flow_logs, compiled, sender, key, arrived, bytes, delivered, &trace,
                    );
                    decided
                };
                let (outcome, arrived) = (decision.outcome, decision.delivered);
                if let (Outcome::Deliver(_), Some(metered)) = (outcome, decision.metered) {
                    runtime.meters.add(metered, wire_bytes);
                }
                match (outcome, decision.tunnel) {
                    (Outcome::Deliver(_), Some(t)) => Next::ToCustomer(Arc::clone(&runtime), t),
                    (Outcome::Deliver(to), None) => {
                        let mirrored = vnet.is_offloaded()
                            && (mirror_session(compiled, from, Outbound, key).is_some()
                                || mirror_session(compiled, to, Inbound, &arrived).is_some());
                        if mirrored && vnet.is_gso() {
                            let key = *key;
                            Next::Segments {
                                runtime: Arc::clone(&runtime),
                                from,
                                to,
                                key,
                                arrived,
                                now,
                            }
                        } else {
                            // A copy shows the checksum as on a wire, and so does a packet
                            // whose partial checksum is not the transport one (not from Linux).
                            let l4 = vnet.l4_checksum(packet, key.protocol);
                            let must_settle = mirrored || (l4.is_none() && arrived != *key);
                            if must_settle && (vnet.is_gso() || !settle(&mut vnet, head, packet)) {
                                counters.count_drop(DropCode::UnsupportedPacket);
                                continue;
                            }
                            // Traffic mirroring: what `from` sent as it sent it, what `to`
                            // receives as it arrives.
                            let (r, t, c) = (&*runtime, &*tracking, &*counters);
                            let sent = mirror.copy(r, t, c, now, from, Outbound, key, packet);
                            if arrived != *key {
                                // A gateway translated it: the packet now says what the decision
                                // says.
                                let l4 = vnet.l4_checksum(packet, key.protocol);
                                rewrite_with(packet, key, &arrived, l4.unwrap_or(Complete));
                            }
                            let received = mirror.copy(r, t, c, now, to, Inbound, &arrived, packet);
                            let target = runtime.devices[to].clone();
                            Next::Send(target, segments.count, [sent, received])
                        }
                    }
                    (Outcome::Drop(code), _) => {
                        counters.count_drop(code);
                        if code == DropCode::NgwIdleTimeout {
                            // The NAT gateway forgot the connection: it answers with a RST.
                            if let Some(len) = tcp_reset(packet, &mut reset) {
                                let _ = send_plain(&dev, &reset[..len]).await;
                            }
                        }
                        continue;
                    }
                }
            }
        };
        match next {
            Next::FromCustomer(runtime, t) => {
                let io = VpnIo::new(&runtime, &tracking, &counters, &flow_logs);
                datagram.resize(DATAGRAM_BUFFER, 0);
                spare.resize(DATAGRAM_BUFFER, 0);
                let read = &buf[VNET_HDR_LEN..n];
                io.unwrap_datagram(t, read, &mut datagram, &mut spare).await;
            }
            Next::ToCustomer(runtime, t) => {
                let io = VpnIo::new(&runtime, &tracking, &counters, &flow_logs);
                datagram.resize(DATAGRAM_BUFFER, 0);
                let read = &mut buf[..n];
                if !io
                    .wrap_read(t, &mut vnet, read, &mut segmenter, &mut datagram)
                    .await
                {
                    counters.count_drop(DropCode::UnsupportedPacket);
                }
            }
            Next::Send(target, packets, copies) => {
                if target.send(&buf[..n]).await.is_ok() {
                    counters
                        .delivered
                        .fetch_add(packets as u64, Ordering::Relaxed);
                }
                mirror.send(copies).await;
            }
            Next::Segments {
                runtime,
                from,
                to,
                key,
                arrived,
                now,
            } => {
                let Some(count) = segmenter.split(&vnet, &mut buf[VNET_HDR_LEN..n]) else {
                    counters.count_drop(DropCode::UnsupportedPacket);
                    continue;
                };
                let target = runtime.devices[to].clone();
                for i in 0..count {
                    let segment = segmenter.segment(i);
                    let packet = &mut segment[VNET_HDR_LEN..];
                    let (r, t, c) = (&*runtime, &*tracking, &*counters);
                    let sent = mirror.copy(r, t, c, now, from, Outbound, &key, packet);
                    if arrived != key {
                        rewrite(packet, &key, &arrived);
                    }
                    let received = mirror.copy(r, t, c, now, to, Inbound, &arrived, packet);
                    if target.send(segment).await.is_ok() {
                        counters.delivered.fetch_add(1, Ordering::Relaxed);
                    }
                    mirror.send([sent, received]).await;
                }
            }
        }
    }
}

/// Writes `packet`, which the daemon made (complete checksums, one MTU), to `dev` behind the
/// virtio-net header that says so.
pub(super) async fn send_plain(dev: &AsyncDevice, packet: &[u8]) -> std::io::Result<usize> {
    let parts = [IoSlice::new(&PLAIN_VNET_HDR), IoSlice::new(packet)];
    dev.send_vectored(&parts).await
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

/// The segments of a super-packet cut in userspace (tun-rs's port of wireguard-go's
/// `gsoSplit`: IPv4 identification, TCP sequence numbers and flags, complete checksums), each
/// after a plain virtio-net header. Its buffers are made on first need and grow to the
/// largest super-packet seen: nothing is allocated per packet after that, and hosts whose
/// traffic is never mirrored never pay for them.
#[derive(Default)]
pub(super) struct Segmenter {
    bufs: Vec<Vec<u8>>,
    sizes: Vec<usize>,
}

impl Segmenter {
    /// Cuts `packet` (header `vnet`) and returns how many segments it made; None when the
    /// header does not describe the packet.
    pub(super) fn split(&mut self, vnet: &VnetHdr, packet: &mut [u8]) -> Option<usize> {
        let segments = vnet.segments(packet)?;
        let hdr = tun_rs::VirtioNetHdr {
            flags: vnet.flags,
            gso_type: vnet.gso_type,
            hdr_len: u16::try_from(segments.header_len).ok()?,
            gso_size: vnet.gso_size,
            csum_start: vnet.csum_start,
            csum_offset: vnet.csum_offset,
        };
        let need = VNET_HDR_LEN + segments.header_len + usize::from(vnet.gso_size);
        if self.bufs.len() < segments.count {
            self.bufs.resize_with(segments.count, Vec::new);
            self.sizes.resize(segments.count, 0);
        }
        for buf in &mut self.bufs[..segments.count] {
            if buf.len() < need {
                buf.resize(need, 0);
            }
        }
        let (bufs, sizes) = (
            &mut self.bufs[..segments.count],
            &mut self.sizes[..segments.count],
        );
        tun_rs::gso_split(packet, hdr, bufs, sizes, VNET_HDR_LEN, false).ok()
    }

    /// Segment `i` of the last split, its plain virtio-net header in front.
    pub(super) fn segment(&mut self, i: usize) -> &mut [u8] {
        let segment = &mut self.bufs[i][..VNET_HDR_LEN + self.sizes[i]];
        segment[..VNET_HDR_LEN].copy_from_slice(&PLAIN_VNET_HDR);
        segment
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};

    #[test]
    fn a_super_packet_is_cut_into_segments_with_complete_checksums() {
        let payload: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        let mut packet = Vec::new();
        PacketBuilder::ipv4([192, 0, 2, 1], [198, 51, 100, 2], 64)
            .tcp(40000, 5201, 1000, 64240)
            .ack(1)
            .psh()
            .write(&mut packet, &payload)
            .unwrap();
        // As a TUN with TSO hands it over: the checksum field is a partial sum, left to others.
        packet[36..38].copy_from_slice(&[0x12, 0x34]);
        let vnet = VnetHdr {
            flags: 1,
            gso_type: 1,
            hdr_len: 40,
            gso_size: 1448,
            csum_start: 20,
            csum_offset: 16,
        };
        let mut segmenter = Segmenter::default();
        assert_eq!(segmenter.split(&vnet, &mut packet), Some(3));
        let mut data = Vec::new();
        for i in 0..3 {
            let segment = segmenter.segment(i);
            assert_eq!(segment[..VNET_HDR_LEN], PLAIN_VNET_HDR);
            let bytes = &segment[VNET_HDR_LEN..];
            let sliced = SlicedPacket::from_ip(bytes).unwrap();
            let Some(etherparse::NetSlice::Ipv4(ip)) = sliced.net else {
                panic!("not IPv4");
            };
            let header = ip.header().to_header();
            assert_eq!(header.header_checksum, header.calc_header_checksum());
            assert_eq!(usize::from(header.total_len), bytes.len());
            let Some(TransportSlice::Tcp(tcp)) = sliced.transport else {
                panic!("not TCP");
            };
            let expected = tcp
                .to_header()
                .calc_checksum_ipv4(&header, tcp.payload())
                .unwrap();
            assert_eq!(tcp.checksum(), expected, "segment {i}");
            assert_eq!(tcp.sequence_number(), 1000 + 1448 * i as u32);
            assert_eq!(tcp.psh(), i == 2, "PSH on the last segment only");
            data.extend_from_slice(tcp.payload());
        }
        assert_eq!(data, payload);
        // A header that does not fit the packet is not cut.
        let bad = VnetHdr {
            gso_size: 0,
            ..vnet
        };
        assert_eq!(segmenter.split(&bad, &mut packet), None);
    }
}
