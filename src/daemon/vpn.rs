//! Daemon layer: the AWS ends of the VPN tunnels in the data plane. Datagrams a site's router
//! sends to a tunnel's outside address are unwrapped here (boringtun, in `vpn::Tunnel`) and
//! their inner packets decided as entering through the virtual private gateway; packets the
//! decision sends into a tunnel are wrapped here and written to the router as UDP from the
//! outside address. A timer runs WireGuard's timers and tells the fabric which tunnels are up:
//! one whose customer end has sent nothing (not even a keepalive) for three keepalive periods
//! is down, as dead peer detection declares it, and so is one a fault took down.

use std::net::{IpAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use boringtun::x25519::PublicKey;
use tun_rs::{AsyncDevice, SyncDevice};

use super::dataplane::{send_plain, settle, Counters, Runtime, Shared, Tracking};
use super::flowlogs::{observe_decision, FlowLogSink, FlowTrace};
use super::segmenter::Segmenter;
use crate::fabric::tunnels::{TunnelRef, TunnelStates};
use crate::fabric::{decide_from_tunnel, read_packet, Outcome};
use crate::scenario::Lab;
use crate::vpn::config::{DEAD_AFTER_KEEPALIVES, KEEPALIVE};
use crate::vpn::{KeyPair, Tunnel, TunnelStats, Wrapped};
use crate::wire::{rewrite, write_udp_headers, UdpView, VnetHdr, UDP_HEADERS_LEN, VNET_HDR_LEN};

/// How often WireGuard's timers run and tunnel states are looked at.
const TICK: Duration = Duration::from_millis(250);

/// How long after the daemon starts a tunnel never heard from still counts as up.
const GRACE_MS: u64 = 15_000;

/// TTL of the datagrams the AWS end sends.
const TTL: u8 = 64;

/// Room for one wrapped packet behind the UDP/IPv4 headers: an inner packet of one MTU at
/// most (the customer side's is 1420, an instance's 9001 before segmenting) and WireGuard's
/// overhead.
pub const DATAGRAM_BUFFER: usize = UDP_HEADERS_LEN + 9001 + 64;

/// The AWS end of every tunnel of a lab's sites (kept while the sites are; a recompile of
/// the routes keeps it, so sessions survive).
pub struct VpnEnds {
    tunnels: Vec<Mutex<Tunnel>>,
    /// Which tunnels are up: the fabric's view, shared with every compiled version.
    pub states: TunnelStates,
    /// Per VGW: the interface of its BGP speaker's namespace, if it has BGP connections.
    speakers: Vec<Option<Arc<AsyncDevice>>>,
    /// Per tunnel: when its customer end was last heard from (ms of the data plane's clock,
    /// plus one; 0 = never).
    heard: Vec<AtomicU64>,
    /// Per tunnel: the UDP port the customer end was last heard from (0: not yet). Behind a
    /// NAT it is not the configured one; the AWS end answers where it hears from, as
    /// WireGuard does.
    peer_port: Vec<AtomicU16>,
    /// Per tunnel: taken down by `vpclab fault`.
    faulted: Vec<AtomicBool>,
}

impl VpnEnds {
    pub fn new(lab: &Lab, speakers: Vec<Option<Arc<AsyncDevice>>>) -> VpnEnds {
        let mut tunnels = Vec::new();
        for c in &lab.vpn_connections {
            let site = &lab.sites[c.site];
            // WireGuard's allowed-IPs check lets in the site's network, the static routes and
            // the tunnels' inside addresses (BGP); with BGP a site may announce any prefix,
            // which the decision checks against what it learned.
            let allowed = match c.routing {
                crate::scenario::VpnRouting::Bgp => vec![ipnet::Ipv4Net::default()],
                crate::scenario::VpnRouting::Static => {
                    let insides = c.tunnels.iter().map(|t| t.inside);
                    let mut allowed = c.static_routes.clone();
                    allowed.push(site.cidr);
                    allowed.extend(insides);
                    allowed
                }
            };
            for (n, t) in c.tunnels.iter().enumerate() {
                let secret = t.aws_key.secret();
                let own = KeyPair {
                    public: PublicKey::from(&secret),
                    secret,
                };
                let peer = t.customer_key.public_key();
                let index = u32::try_from(tunnels.len() * 2 + n).unwrap_or(0);
                tunnels.push(Mutex::new(Tunnel::new(
                    &own,
                    peer,
                    index,
                    None,
                    allowed.clone(),
                )));
            }
        }
        let count = tunnels.len();
        VpnEnds {
            tunnels,
            states: TunnelStates::new(lab.vpn_connections.len()),
            speakers,
            heard: (0..count).map(|_| AtomicU64::new(0)).collect(),
            peer_port: (0..count).map(|_| AtomicU16::new(0)).collect(),
            faulted: (0..count).map(|_| AtomicBool::new(false)).collect(),
        }
    }

    /// The BGP speaker's interface for a packet out of tunnel `t` to `dst`: when `dst` is the
    /// tunnel's AWS inside address (the VGW's end of the session).
    fn speaker_for(&self, lab: &Lab, t: TunnelRef, dst: IpAddr) -> Option<&Arc<AsyncDevice>> {
        let c = lab.vpn_connections.get(t.connection)?;
        if dst != IpAddr::V4(c.tunnels[t.index].aws_inside()) {
            return None;
        }
        self.speakers.get(c.gateway)?.as_ref()
    }

    /// The UDP port tunnel `t`'s customer end was last heard from, once it was.
    pub fn peer_port(&self, t: TunnelRef) -> Option<u16> {
        let port = self.peer_port.get(t.slot())?.load(Ordering::Relaxed);
        (port != 0).then_some(port)
    }

    fn lock(&self, t: TunnelRef) -> Option<std::sync::MutexGuard<'_, Tunnel>> {
        let m = self.tunnels.get(t.slot())?;
        Some(m.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Takes tunnel `t`'s AWS end down (`vpclab fault`: it ignores what the customer end
    /// sends and sends nothing itself) or brings it back.
    pub fn set_faulted(&self, t: TunnelRef, faulted: bool) {
        if let Some(f) = self.faulted.get(t.slot()) {
            f.store(faulted, Ordering::Relaxed);
        }
    }

    pub fn is_faulted(&self, t: TunnelRef) -> bool {
        self.faulted
            .get(t.slot())
            .is_some_and(|f| f.load(Ordering::Relaxed))
    }

    /// Tunnel `t`'s session counters, for `vpclab status`.
    pub fn stats(&self, t: TunnelRef) -> Option<TunnelStats> {
        self.lock(t).map(|tunnel| tunnel.stats())
    }
}

/// What one call into a tunnel left in the buffer.
enum Step {
    ToPeer(usize),
    Inner(usize),
    Nothing,
}

impl From<Result<Wrapped<'_>, crate::vpn::TunnelError>> for Step {
    fn from(r: Result<Wrapped<'_>, crate::vpn::TunnelError>) -> Step {
        match r {
            Ok(Wrapped::ToPeer(d)) => Step::ToPeer(d.len()),
            Ok(Wrapped::Inner(d)) => Step::Inner(d.len()),
            _ => Step::Nothing,
        }
    }
}

/// The outside ends of tunnel `t`: AWS's address and port, the customer gateway's.
fn ends(lab: &Lab, t: TunnelRef) -> (SocketAddrV4, SocketAddrV4) {
    let c = &lab.vpn_connections[t.connection];
    let tunnel = &c.tunnels[t.index];
    let cgw = lab.sites[c.site].customer_gateway.public_ip;
    (
        SocketAddrV4::new(tunnel.outside_ip, tunnel.aws_port),
        SocketAddrV4::new(cgw, tunnel.customer_port),
    )
}

/// The site router's interface (its port on the fabric) for tunnel `t`.
fn router_device(runtime: &Runtime, t: TunnelRef) -> Option<&SyncDevice> {
    let lab = &runtime.compiled.lab;
    let site = lab.vpn_connections.get(t.connection)?.site;
    let router = lab.internet_host_id(lab.sites[site].customer_gateway.router);
    runtime.devices.get(router).map(|d| &**d)
}

/// Sends the wrapped bytes at `buf[UDP_HEADERS_LEN..][..len]` from AWS's end of `t` to the
/// customer's, through the router's interface.
fn send_to_customer(runtime: &Runtime, t: TunnelRef, buf: &mut [u8], len: usize) {
    let (aws, mut customer) = ends(&runtime.compiled.lab, t);
    // Where the customer end was heard from last (its NAT's port), once it was.
    let heard = runtime.vpn.as_ref().and_then(|v| v.peer_port.get(t.slot()));
    match heard.map(|p| p.load(Ordering::Relaxed)) {
        Some(0) | None => {}
        Some(port) => customer.set_port(port),
    }
    let Some(total) = write_udp_headers(aws, customer, TTL, len, buf) else {
        return;
    };
    if let Some(dev) = router_device(runtime, t) {
        let _ = send_plain(dev, &buf[..total]);
    }
}

/// The packet loops' part: what they need to hand packets to and from tunnels.
pub struct VpnIo<'a> {
    pub runtime: &'a Arc<Runtime>,
    pub tracking: &'a Tracking,
    pub counters: &'a Counters,
    pub flow_logs: &'a FlowLogSink,
}

impl<'a> VpnIo<'a> {
    /// For a packet decided with `runtime`, this version of what `shared` holds.
    pub fn new(runtime: &'a Arc<Runtime>, shared: &'a Shared) -> VpnIo<'a> {
        VpnIo {
            runtime,
            tracking: &shared.tracking,
            counters: &shared.counters,
            flow_logs: &shared.flow_logs,
        }
    }

    /// A datagram from a customer gateway to tunnel `t`'s AWS end (`packet`, IPv4/UDP, as
    /// read from the router's interface): unwrapped into `buf`, answered, and its inner packet
    /// decided (`spare` takes it wrapped again when it goes on to another site).
    pub fn unwrap_datagram(&self, t: TunnelRef, packet: &[u8], buf: &mut [u8], spare: &mut [u8]) {
        let Some(udp) = UdpView::parse(packet) else {
            return;
        };
        let Some(vpn) = self.runtime.vpn.as_ref() else {
            return;
        };
        if vpn.faulted[t.slot()].load(Ordering::Relaxed) {
            return;
        }
        let now_ms = self.tracking.now().as_millis() as u64 + 1;
        vpn.heard[t.slot()].store(now_ms, Ordering::Relaxed);
        vpn.peer_port[t.slot()].store(udp.src.port(), Ordering::Relaxed);
        let from = Some(*udp.src.ip());
        let mut input = udp.payload;
        loop {
            let step = match vpn.lock(t) {
                Some(mut tunnel) => {
                    Step::from(tunnel.unwrap(from, input, &mut buf[UDP_HEADERS_LEN..]))
                }
                None => Step::Nothing,
            };
            match step {
                Step::ToPeer(len) => {
                    send_to_customer(self.runtime, t, buf, len);
                    // Packets queued during a handshake go out now.
                    input = &[];
                }
                Step::Inner(len) => {
                    let inner = &mut buf[UDP_HEADERS_LEN..UDP_HEADERS_LEN + len];
                    self.deliver_inner(t, inner, spare);
                    return;
                }
                Step::Nothing => return,
            }
        }
    }

    /// An inner packet out of tunnel `t`: decided as entering through the VGW.
    fn deliver_inner(&self, t: TunnelRef, packet: &mut [u8], spare: &mut [u8]) {
        let runtime = self.runtime;
        let compiled = &runtime.compiled;
        let Ok(input) = read_packet(packet) else {
            self.counters
                .count_drop(crate::fabric::DropCode::UnsupportedPacket);
            return;
        };
        // The VGW's own end of a BGP session: its speaker, not the VPC.
        if let Some(vpn) = runtime.vpn.as_ref() {
            if let Some(dev) = vpn.speaker_for(&compiled.lab, t, input.key.dst) {
                let _ = send_plain(&**dev, packet);
                return;
            }
        }
        let (flows, now, key) = (&self.tracking.flows, self.tracking.now(), &input.key);
        let mut trace = FlowTrace::default();
        let decision = decide_from_tunnel(compiled, flows, now, t, key, &mut trace);
        if !compiled.lab.flow_logs.is_empty() {
            let bytes = packet.len() as u32;
            observe_decision(
                self.flow_logs,
                compiled,
                None,
                key,
                &decision,
                bytes,
                &trace,
            );
        }
        match decision.outcome {
            Outcome::Drop(code) => self.counters.count_drop(code),
            Outcome::Deliver(to) => {
                if decision.delivered != *key {
                    rewrite(packet, key, &decision.delivered);
                }
                if let Some(other) = decision.tunnel {
                    // CloudHub: on to another site, wrapped for its tunnel.
                    self.wrap_packet(other, packet, spare);
                } else if let Some(dev) = runtime.devices.get(to) {
                    if send_plain(&**dev, packet).is_ok() {
                        self.counters.delivered.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }

    /// What a TUN read (`read`: the virtio-net header `vnet`, then the packet) into tunnel `t`:
    /// a super-packet cut into its segments (a tunnel carries one MTU at a time), a partial
    /// checksum finished. False when the header does not fit the packet.
    pub fn wrap_read(
        &self,
        t: TunnelRef,
        vnet: &mut VnetHdr,
        read: &mut [u8],
        segmenter: &mut Segmenter,
        datagram: &mut [u8],
    ) -> bool {
        if vnet.is_gso() {
            let Some(count) = segmenter.split(vnet, &mut read[VNET_HDR_LEN..]) else {
                return false;
            };
            for i in 0..count {
                let segment = segmenter.segment(i);
                self.wrap_packet(t, &segment[VNET_HDR_LEN..], datagram);
            }
            return true;
        }
        let (head, packet) = read.split_at_mut(VNET_HDR_LEN);
        if !settle(vnet, head, packet) {
            return false;
        }
        self.wrap_packet(t, packet, datagram);
        true
    }

    /// `packet` (one whole IPv4 packet, complete checksums) into tunnel `t` toward its site.
    pub fn wrap_packet(&self, t: TunnelRef, packet: &[u8], buf: &mut [u8]) {
        let Some(vpn) = self.runtime.vpn.as_ref() else {
            return;
        };
        let step = match vpn.lock(t) {
            Some(mut tunnel) => Step::from(tunnel.wrap(packet, &mut buf[UDP_HEADERS_LEN..])),
            None => Step::Nothing,
        };
        if let Step::ToPeer(len) = step {
            send_to_customer(self.runtime, t, buf, len);
            self.counters.delivered.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Runs WireGuard's timers every `TICK` and marks each tunnel up or down in the fabric, for
/// the daemon's life.
pub async fn timers(shared: Arc<ArcSwap<Runtime>>, tracking: Arc<Tracking>) {
    let mut tick = tokio::time::interval(TICK);
    let mut buf = vec![0u8; DATAGRAM_BUFFER];
    let dead_after = u64::from(KEEPALIVE) * u64::from(DEAD_AFTER_KEEPALIVES) * 1000;
    loop {
        tick.tick().await;
        let runtime = shared.load_full();
        let Some(vpn) = runtime.vpn.as_ref() else {
            continue;
        };
        let now_ms = tracking.now().as_millis() as u64 + 1;
        for connection in 0..runtime.compiled.lab.vpn_connections.len() {
            for index in 0..2 {
                let t = TunnelRef { connection, index };
                let faulted = vpn.faulted[t.slot()].load(Ordering::Relaxed);
                let step = match vpn.lock(t) {
                    Some(mut tunnel) => Step::from(tunnel.tick(&mut buf[UDP_HEADERS_LEN..])),
                    None => Step::Nothing,
                };
                // A faulted end sends nothing, not even a handshake retry; its timers still
                // run, so that its clock is right when it comes back.
                if let (Step::ToPeer(len), false) = (step, faulted) {
                    send_to_customer(&runtime, t, &mut buf, len);
                }
                let heard = vpn.heard[t.slot()].load(Ordering::Relaxed);
                // Never heard yet: up for a while after the daemon starts, so that the first
                // packets may start the handshake; down after that.
                let alive = match heard {
                    0 => now_ms <= GRACE_MS,
                    _ => now_ms.saturating_sub(heard) <= dead_after,
                };
                runtime.compiled.tunnels.set(t, alive && !faulted);
            }
        }
    }
}
