//! Daemon layer: the virtual private gateways' BGP speakers. Each VGW with BGP connections gets
//! a namespace of its own (`vl-LAB-vgw-NAME`) whose `eth0`, a TUN, holds the AWS inside address
//! of each of its tunnels (169.254.x.1/30): a real kernel TCP stack terminates the sessions,
//! and `bgp::speaker` speaks BGP on them. What the speaker's kernel sends goes into the tunnel
//! whose customer inside address it is for; what comes out of a tunnel for an AWS inside
//! address is written to this TUN (`vpn::VpnIo`). A controller gathers what the sessions
//! learned: it recompiles the lab's routes with it (route propagation, CloudHub) and tells
//! each session what to announce.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tun_rs::AsyncDevice;

use super::dataplane::Shared;
use super::segmenter::Segmenter;
use super::state::LabState;
use super::vpn::{VpnIo, DATAGRAM_BUFFER};
use crate::bgp::speaker::{self, Peering, Report};
use crate::bgp::{Advertised, Rib};
use crate::fabric::tunnels::TunnelRef;
use crate::fabric::Compiled;
use crate::netns;
use crate::scenario::{Lab, VpnRouting};
use crate::wire::{FlowKey, VnetHdr, VNET_HDR_LEN};

/// The MTU of a speaker's interface: the tunnels'.
const SPEAKER_MTU: u16 = 1420;

/// Per tunnel: its BGP session's state and the prefixes it learned, as `vpclab status` shows
/// them.
pub type BgpStatus = Arc<Mutex<BTreeMap<TunnelRef, (String, Vec<String>)>>>;

/// What the daemon keeps of the speakers it built.
#[derive(Default)]
pub struct Bgp {
    namespaces: Vec<String>,
    tasks: Vec<JoinHandle<()>>,
    /// Per VGW: its speaker's interface.
    pub devices: Vec<Option<Arc<AsyncDevice>>>,
    /// Per BGP tunnel: its listener, until `start` serves it.
    listeners: Vec<(Peering, std::net::TcpListener)>,
    pub status: BgpStatus,
    /// How many sessions the speakers serve.
    pub sessions: usize,
}

/// The namespace of VGW `name`'s speaker.
fn speaker_ns(lab: &Lab, name: &str) -> String {
    format!("vl-{}-vgw-{name}", lab.name)
}

/// The BGP tunnels of `lab`, each with who it is and who it expects.
fn peerings(lab: &Lab) -> Vec<Peering> {
    let mut out = Vec::new();
    for (connection, c) in lab.vpn_connections.iter().enumerate() {
        if c.routing != VpnRouting::Bgp {
            continue;
        }
        let Some(peer_asn) = lab.sites[c.site].customer_gateway.asn else {
            continue;
        };
        for (index, t) in c.tunnels.iter().enumerate() {
            out.push(Peering {
                tunnel: TunnelRef { connection, index },
                local_asn: lab.vpn_gateways[c.gateway].asn,
                peer_asn,
                local: t.aws_inside(),
                peer: t.customer_inside(),
            });
        }
    }
    out
}

/// Builds the speakers' namespaces, interfaces and listeners (blocking; records each
/// namespace before it is made, for a rollback or `down`).
pub fn build(state: &mut LabState, lab: &Lab) -> (Bgp, Option<anyhow::Error>) {
    let mut bgp = Bgp {
        devices: vec![None; lab.vpn_gateways.len()],
        ..Bgp::default()
    };
    let error = tokio::task::block_in_place(|| build_into(&mut bgp, state, lab)).err();
    (bgp, error)
}

fn build_into(bgp: &mut Bgp, state: &mut LabState, lab: &Lab) -> anyhow::Result<()> {
    let all = peerings(lab);
    for (g, gateway) in lab.vpn_gateways.iter().enumerate() {
        let mine: Vec<Peering> = all
            .iter()
            .copied()
            .filter(|p| lab.vpn_connections[p.tunnel.connection].gateway == g)
            .collect();
        let Some(first) = mine.first() else { continue };
        let ns = speaker_ns(lab, &gateway.name);
        state.namespaces.push(ns.clone());
        state.save()?;
        netns::create(&ns)
            .with_context(|| format!("create the BGP speaker of vgw {}", gateway.name))?;
        bgp.namespaces.push(ns.clone());
        let sync = netns::setup_host(&ns, first.local, 30, first.peer, SPEAKER_MTU, None)
            .with_context(|| format!("set up the BGP speaker of vgw {}", gateway.name))?;
        for p in &mine[1..] {
            netns::add_address(&ns, netns::IFNAME, p.local, 30)
                .with_context(|| format!("give the speaker of vgw {} {}", gateway.name, p.local))?;
        }
        let device = AsyncDevice::new(sync).context("register the BGP speaker's interface")?;
        bgp.devices[g] = Some(Arc::new(device));
        for p in mine {
            let listener = netns::run_in(&ns, || {
                let l = std::net::TcpListener::bind(speaker::address(p.local))?;
                l.set_nonblocking(true)?;
                Ok::<_, std::io::Error>(l)
            })?
            .with_context(|| format!("listen for BGP on {}:179", p.local))?;
            bgp.listeners.push((p, listener));
            bgp.sessions += 1;
        }
    }
    Ok(())
}

/// Waits until every session is established and has learned something (or `limit` passes),
/// so that `up` returns a lab whose routes are in place. False on timeout.
pub async fn wait_established(bgp: &Bgp, limit: std::time::Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let ready = bgp.status.lock().is_ok_and(|s| {
            s.len() == bgp.sessions
                && s.values()
                    .all(|(state, learned)| state == "Established" && !learned.is_empty())
        });
        if ready {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Starts the sessions, the speakers' packet loops and the controller.
pub fn start(bgp: &mut Bgp, lab: &Lab, wiring: Shared) {
    let (reports_tx, reports_rx) = mpsc::channel(64);
    let mut senders = BTreeMap::new();
    for (peering, listener) in std::mem::take(&mut bgp.listeners) {
        let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
            continue;
        };
        let (tx, rx) = watch::channel(Advertised::new());
        senders.insert(peering.tunnel, tx);
        bgp.tasks.push(tokio::spawn(speaker::serve(
            listener,
            peering,
            reports_tx.clone(),
            rx,
        )));
    }
    let wiring = Arc::new(wiring);
    for device in bgp.devices.iter().flatten() {
        bgp.tasks
            .push(tokio::spawn(speaker_pump(device.clone(), wiring.clone())));
    }
    if senders.is_empty() {
        return;
    }
    let rib = Rib::default();
    // What each session announces from the start: the VPC's CIDRs.
    for (t, tx) in &senders {
        let _ = tx.send(rib.advertised(lab, t.connection));
    }
    bgp.tasks.push(tokio::spawn(control(
        reports_rx,
        senders,
        wiring,
        bgp.status.clone(),
    )));
}

/// Gathers the sessions' reports: status, learned routes into the RIB, the lab's routes
/// recompiled when they change, and each session's announcements updated.
async fn control(
    mut reports: mpsc::Receiver<Report>,
    senders: BTreeMap<TunnelRef, watch::Sender<Advertised>>,
    wiring: Arc<Shared>,
    status: BgpStatus,
) {
    let mut rib = Rib::default();
    while let Some(report) = reports.recv().await {
        let t = report.tunnel;
        let prefixes: Vec<String> = report.learned.keys().map(|p| p.to_string()).collect();
        if let Ok(mut s) = status.lock() {
            s.insert(t, (report.state.clone(), prefixes));
        }
        if !rib.set(t.connection, t.index, &report.learned) {
            continue;
        }
        // New routes: every later decision sees them (the sessions and tunnels stay).
        let learned_rib = rib.clone();
        wiring.runtime.rcu(|old| {
            let lab = old.compiled.lab.clone();
            let learned = learned_rib.all_learned(&lab);
            let compiled = Compiled::with_learned(lab, learned, old.compiled.tunnels.clone());
            Arc::new(old.with_compiled(compiled))
        });
        let lab = wiring.runtime.load().compiled.lab.clone();
        for (t, tx) in &senders {
            let now = rib.advertised(&lab, t.connection);
            tx.send_if_modified(|old| {
                let changed = *old != now;
                *old = now.clone();
                changed
            });
        }
    }
}

/// Carries what a speaker's kernel sends (its BGP segments) into the tunnel whose customer
/// inside address each is for.
async fn speaker_pump(device: Arc<AsyncDevice>, wiring: Arc<Shared>) {
    let mut buf = vec![0u8; VNET_HDR_LEN + 65536];
    let mut datagram = vec![0u8; DATAGRAM_BUFFER];
    let mut segmenter = Segmenter::default();
    loop {
        let n = match device.recv(&mut buf).await {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        let Some(mut vnet) = VnetHdr::parse(&buf[..n]) else {
            continue;
        };
        let runtime = wiring.runtime.load_full();
        let io = VpnIo::new(&runtime, &wiring);
        let Some(t) = FlowKey::parse(&buf[VNET_HDR_LEN..n])
            .ok()
            .and_then(|k| tunnel_of_peer(&runtime.compiled.lab, k.dst))
        else {
            continue;
        };
        let read = &mut buf[..n];
        io.wrap_read(t, &mut vnet, read, &mut segmenter, &mut datagram);
    }
}

/// The tunnel whose customer inside address is `dst`.
fn tunnel_of_peer(lab: &Lab, dst: std::net::IpAddr) -> Option<TunnelRef> {
    let std::net::IpAddr::V4(dst) = dst else {
        return None;
    };
    lab.vpn_connections
        .iter()
        .enumerate()
        .find_map(|(connection, c)| {
            let index = c.tunnels.iter().position(|t| t.customer_inside() == dst)?;
            Some(TunnelRef { connection, index })
        })
}

/// Takes the speakers down (for an edit of the sites): their tasks, then their namespaces.
pub fn remove(state: &mut LabState, bgp: Bgp) -> anyhow::Result<()> {
    for task in &bgp.tasks {
        task.abort();
    }
    tokio::task::block_in_place(|| {
        for ns in &bgp.namespaces {
            netns::kill_all_in(ns);
            netns::delete(ns).with_context(|| format!("remove {ns}"))?;
        }
        state.namespaces.retain(|n| !bgp.namespaces.contains(n));
        state.save()
    })
}
