//! The daemon's life: build the lab, start the packet threads, serve the control socket, apply
//! edits, and roll back everything it made if building fails.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Mutex;

use super::batch::{create_hosts, remove_hosts};
use super::control::{Reply, Request};
use super::costs::Meters;
use super::dataplane::{sweep, Counters, Runtime, Shared, Tracking};
use super::flowlogs::FlowLogSink;
use super::hosts::{write_all_host_files, Host, HostSpec};
use super::packet_threads::{PacketThreads, Tuning};
use super::ssh;
use super::state::{control_socket, process_start_time, scenario_copy, LabState};
use super::teardown::{remove_recorded, Removed};
use super::vpn::VpnEnds;
use crate::fabric::tunnels::TunnelStates;
use crate::fabric::{explain, probe_key, Compiled};
use crate::scenario::{self, HostId, Lab, Probe};

/// What the control socket handlers share.
struct Daemon {
    lab: Lab,
    state: LabState,
    hosts: HashMap<String, Host>,
    next_slot: usize,
    /// What the packet threads share (tracked flows are kept across edits of the lab).
    plane: Shared,
    packets: PacketThreads,
    /// When the lab came up: gateways are billed per started hour from then.
    started: std::time::Instant,
    /// On-premises sites: their hosts and the customer sides of VPN connections.
    sites: super::sites::Sites,
    /// The AWS ends of the VPN tunnels (kept while the sites are).
    vpn: Option<Arc<VpnEnds>>,
    /// The VGWs' BGP speakers.
    bgp: super::bgp::Bgp,
}

/// Runs the daemon of the lab whose scenario copy is in its state folder, its data plane
/// tuned by `tuning`. Returns only on error.
pub fn run_daemon(lab_name: &str, source: &str, tuning: Tuning) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start the tokio runtime")?;
    runtime.block_on(serve(lab_name, source, tuning))
}

async fn serve(lab_name: &str, source: &str, tuning: Tuning) -> anyhow::Result<()> {
    let lab = load_copy(lab_name, source)?;
    let pid = std::process::id() as i32;
    let state = LabState {
        lab: lab.name.clone(),
        source: source.to_string(),
        daemon_pid: Some(pid),
        daemon_start: process_start_time(pid),
        ..LabState::default()
    };
    state.save()?;
    let daemon = match build(lab, state, tuning).await {
        Ok(daemon) => daemon,
        Err((error, state)) => {
            let mut removed = Removed::default();
            let rollback = remove_recorded(&state, &mut removed);
            let _ = std::fs::remove_file(super::state::state_file(lab_name));
            if let Err(e) = rollback {
                return Err(error.context(format!("and the rollback failed: {e}")));
            }
            return Err(error.context("nothing of the lab was left behind"));
        }
    };
    let daemon = Arc::new(Mutex::new(daemon));
    let socket = control_socket(lab_name);
    let _ = std::fs::remove_file(&socket);
    let listener =
        UnixListener::bind(&socket).with_context(|| format!("bind {}", socket.display()))?;
    loop {
        let (stream, _) = listener
            .accept()
            .await
            .context("accept on the control socket")?;
        let daemon = daemon.clone();
        tokio::spawn(async move {
            let _ = handle_client(stream, daemon).await;
        });
    }
}

fn load_copy(lab_name: &str, source: &str) -> anyhow::Result<Lab> {
    let path = scenario_copy(lab_name);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    let mut lab = scenario::load_str(&text, source).map_err(|e| anyhow::anyhow!("{e}"))?;
    // The VPN keys of the lab's first load, for its whole life.
    super::vpn_keys::keep(&mut lab)?;
    Ok(lab)
}

/// Creates every host and has the packet threads carry its packets; on error returns the
/// partial state to undo.
async fn build(
    lab: Lab,
    mut state: LabState,
    tuning: Tuning,
) -> Result<Daemon, (anyhow::Error, LabState)> {
    let jobs: Vec<(HostId, usize)> = (0..lab.host_count()).map(|id| (id, id)).collect();
    let (built, error) = create_hosts(&mut state, &lab, &jobs);
    if let Some(e) = error {
        return Err((e, state));
    }
    let hosts: HashMap<String, Host> = built.into_iter().map(|h| (h.name.clone(), h)).collect();
    if let Err(e) = write_all_host_files(&mut state, &lab) {
        return Err((e, state));
    }
    if let Err(e) = ssh::set_up(&mut state, &lab, 0..lab.host_count()).await {
        return Err((e, state));
    }
    let (sites, error) = super::sites::build(&mut state, &lab);
    if let Some(e) = error {
        return Err((e, state));
    }
    let (mut bgp, error) = super::bgp::build(&mut state, &lab);
    if let Some(e) = error {
        return Err((e, state));
    }
    let vpn = vpn_ends(&lab, &bgp);
    let runtime = runtime_for(&lab, &hosts, None, vpn.clone(), Vec::new());
    let plane = Shared {
        runtime: Arc::new(ArcSwap::from_pointee(runtime)),
        counters: Arc::new(Counters::default()),
        tracking: Arc::new(Tracking::new()),
        flow_logs: Arc::new(FlowLogSink::start(&lab)),
    };
    tokio::spawn(sweep(plane.tracking.clone()));
    tokio::spawn(super::vpn::timers(
        plane.runtime.clone(),
        plane.tracking.clone(),
    ));
    let packets = match PacketThreads::start(&plane, tuning) {
        Ok(packets) => packets,
        Err(e) => return Err((e, state)),
    };
    super::bgp::start(&mut bgp, &lab, plane.clone());
    let next_slot = lab.host_count();
    let mut daemon = Daemon {
        lab,
        state,
        hosts,
        next_slot,
        plane,
        packets,
        started: std::time::Instant::now(),
        sites,
        vpn,
        bgp,
    };
    let names: Vec<String> = daemon.hosts.keys().cloned().collect();
    for name in names {
        if let Err(e) = attach_host(&mut daemon, &name) {
            return Err((e, daemon.state));
        }
    }
    // `up` returns once the BGP sessions have brought their routes (as `vpclab check` needs);
    // they run over the packet threads just started.
    let bgp = &daemon.bgp;
    if bgp.sessions > 0 && !super::bgp::wait_established(bgp, BGP_WAIT).await {
        eprintln!(
            "vpclab: BGP sessions of lab {} not all established after {BGP_WAIT:?}",
            daemon.lab.name
        );
    }
    Ok(daemon)
}

/// Has a packet thread read host `name`'s interface, and starts an instance's metadata
/// service.
fn attach_host(daemon: &mut Daemon, name: &str) -> anyhow::Result<()> {
    let Some(host) = daemon.hosts.get_mut(name) else {
        return Ok(());
    };
    if let Some(listener) = host.metadata.take() {
        let shared = daemon.plane.runtime.clone();
        host.tasks
            .push(super::metadata::spawn(listener, name.to_string(), shared));
    }
    let attached = daemon.packets.attach(host.slot, host.device.clone());
    host.attached = Some(attached.with_context(|| format!("carry the packets of {name}"))?);
    Ok(())
}

/// How long `up` waits for the BGP sessions to come up.
const BGP_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The AWS ends of `lab`'s VPN tunnels, with its VGWs' speakers.
fn vpn_ends(lab: &Lab, bgp: &super::bgp::Bgp) -> Option<Arc<VpnEnds>> {
    (!lab.vpn_connections.is_empty()).then(|| Arc::new(VpnEnds::new(lab, bgp.devices.clone())))
}

/// The runtime view for `lab`: slot → host id and host id → interface, the VPN's AWS ends, and
/// the routes BGP learned (per connection).
fn runtime_for(
    lab: &Lab,
    hosts: &HashMap<String, Host>,
    previous: Option<(&Runtime, &Lab)>,
    vpn: Option<Arc<VpnEnds>>,
    learned: Vec<Vec<crate::fabric::LearnedRoute>>,
) -> Runtime {
    let slots = hosts.values().map(|h| h.slot + 1).max().unwrap_or(0);
    let mut slot_host = vec![None; slots];
    let mut devices = Vec::with_capacity(lab.host_count());
    for id in 0..lab.host_count() {
        // Every host of `lab` exists by construction (build/apply create them first).
        let host = &hosts[lab.host(id).name()];
        slot_host[host.slot] = Some(id);
        devices.push(host.device.clone());
    }
    let meters = Meters::carry_over(lab, previous.map(|(r, l)| (&r.meters, l)));
    let tunnels = vpn.as_ref().map(|v| v.states.clone());
    let tunnels = tunnels.unwrap_or_else(|| TunnelStates::new(lab.vpn_connections.len()));
    Runtime {
        compiled: Compiled::with_learned(lab.clone(), learned, tunnels),
        meters,
        slot_host,
        devices,
        vpn,
    }
}

async fn handle_client(stream: UnixStream, daemon: Arc<Mutex<Daemon>>) -> anyhow::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Some(line) = lines.next_line().await? {
        let reply = match serde_json::from_str::<Request>(&line) {
            Ok(request) => answer(request, &daemon).await,
            Err(e) => Reply::Error {
                message: format!("bad request: {e}"),
            },
        };
        let mut text = serde_json::to_string(&reply)?;
        text.push('\n');
        write.write_all(text.as_bytes()).await?;
    }
    Ok(())
}

async fn answer(request: Request, daemon: &Mutex<Daemon>) -> Reply {
    let mut daemon = daemon.lock().await;
    match request {
        Request::Status => Reply::Status {
            lab: daemon.lab.name.clone(),
            hosts: daemon.state.hosts.clone(),
            counters: daemon.plane.counters.snapshot(),
            costs: daemon
                .plane
                .runtime
                .load()
                .meters
                .report(&daemon.lab, daemon.started.elapsed()),
            gateways: super::gateways::gateways(&daemon.lab),
            tunnels: super::vpn_status::tunnels(&daemon.plane.runtime.load(), &daemon.bgp.status),
        },
        Request::Explain {
            from,
            to,
            protocol,
            port,
        } => explain_request(&daemon, &from, &to, &protocol, port),
        Request::Fault { fault } => {
            match super::fault::inject(&daemon.lab, &daemon.plane.runtime.load_full(), &fault) {
                Ok(message) => Reply::Faulted { message },
                Err(e) => Reply::Error {
                    message: format!("{e:#}"),
                },
            }
        }
        Request::Apply => match apply(&mut daemon).await {
            Ok(changes) => Reply::Applied { changes },
            Err(e) => Reply::Error {
                message: format!("{e:#}"),
            },
        },
    }
}

fn explain_request(
    daemon: &Daemon,
    from: &str,
    to: &str,
    protocol: &str,
    port: Option<u16>,
) -> Reply {
    let runtime = daemon.plane.runtime.load();
    let compiled = &runtime.compiled;
    let lab = &compiled.lab;
    let Some(src) = lab
        .host_by_name(from)
        .or_else(|| lab.site_host_by_name(from))
    else {
        return Reply::Error {
            message: format!("no host named {from} in lab {}", lab.name),
        };
    };
    let dst = match destination(lab, src, to) {
        Some(addr) => addr,
        None => {
            return Reply::Error {
                message: format!(
                "{to} is not a host (NAME, NAME.public, NAME.ipv6), a DNS name or an IP address of lab {}",
                lab.name
            ),
            }
        }
    };
    let probe = match protocol {
        "icmp" => Probe::Icmp,
        "tcp" => Probe::Tcp,
        "udp" => Probe::Udp,
        "http" => Probe::Http,
        other => {
            return Reply::Error {
                message: format!("protocol {other}: expected icmp, tcp, udp or http"),
            }
        }
    };
    let port = port.unwrap_or(if probe == Probe::Http { 80 } else { 0 });
    let Some(source) = lab.host_source_for(src, dst) else {
        return Reply::Error {
            message: format!("{from} has no IPv6 address, so it cannot send to {dst}"),
        };
    };
    let key = probe_key(source, dst, probe, port);
    let explanation = explain(compiled, src, key);
    Reply::Explained {
        text: explanation.render(compiled),
        reachable: explanation.reachable(),
        code: explanation.drop_code().map(|c| c.as_str().to_string()),
        components: explanation.components(compiled),
    }
}

/// `to` of `vpclab explain`: a host (its own address), `NAME.public` (an instance's public IP
/// or a NAT gateway's Elastic IP), `vpce:NAME` (an interface endpoint), a DNS name (as the
/// source instance's resolver answers it), `NAME.ipv6` (a host's IPv6), or an IP address.
fn destination(lab: &Lab, src: HostId, to: &str) -> Option<std::net::IpAddr> {
    if let Some(id) = lab.host_by_name(to).or_else(|| lab.site_host_by_name(to)) {
        return Some(lab.host_ip(id).into());
    }
    if let Ok(ip) = to.parse() {
        return Some(ip);
    }
    if src < lab.instances.len() && to.contains('.') {
        if let Some(ip) = lab.resolve_dns(src, &to.to_ascii_lowercase()) {
            return Some(ip.into());
        }
    }
    if let Some(name) = to.strip_prefix("vpce:") {
        let e = lab.endpoints.iter().find(|e| e.name == name)?;
        return e.interfaces.first().map(|i| i.private_ip.into());
    }
    if let Some(name) = to.strip_suffix(".ipv6") {
        return lab.host_ipv6(lab.host_by_name(name)?).map(Into::into);
    }
    if let Some(name) = to.strip_suffix(".public") {
        if let Some(id) = lab.instance_by_name(name) {
            return lab.instances[id].public_ip.map(|p| p.addr.into());
        }
        return lab
            .nat_gateways
            .iter()
            .find(|g| g.name == name)
            .map(|g| g.public_ip.into());
    }
    let dns = lab
        .internet
        .hosts
        .iter()
        .find(|h| h.dns.as_deref() == Some(to));
    dns.map(|h| h.ip.into())
}

/// Re-reads the scenario copy and applies the difference: hosts whose definition changed are
/// rebuilt, new ones created, removed ones deleted; the rest keep running untouched.
async fn apply(daemon: &mut Daemon) -> anyhow::Result<Vec<String>> {
    let source = daemon.state.source.clone();
    let lab = load_copy(&daemon.lab.name, &source)?;
    if lab.name != daemon.lab.name {
        anyhow::bail!(
            "the file names lab {}, but this is lab {}",
            lab.name,
            daemon.lab.name
        );
    }
    let mut changes = Vec::new();
    // Sites hang off their routers' namespaces: an edit of them rebuilds them all, first
    // taken down while the routers are still there.
    let sites_changed = !super::sites::same(&lab, &daemon.lab);
    if sites_changed {
        let bgp = std::mem::take(&mut daemon.bgp);
        super::bgp::remove(&mut daemon.state, bgp)?;
        let sites = std::mem::take(&mut daemon.sites);
        super::sites::remove(&mut daemon.state, sites)?;
    }
    let wanted: HashMap<String, HostSpec> = (0..lab.host_count())
        .map(|id| {
            let spec = HostSpec::of(&lab, id);
            (spec.name.clone(), spec)
        })
        .collect();
    let stale: Vec<String> = daemon
        .hosts
        .values()
        .filter(|h| wanted.get(&h.name).is_none_or(|w| *w != h.spec))
        .map(|h| h.name.clone())
        .collect();
    let stale: Vec<Host> = stale
        .iter()
        .filter_map(|name| daemon.hosts.remove(name))
        .collect();
    let removed: Vec<String> = stale.iter().map(|h| h.name.clone()).collect();
    remove_hosts(&mut daemon.state, stale)?;
    changes.extend(removed.iter().map(|name| format!("removed host {name}")));
    let mut created = Vec::new();
    let mut jobs = Vec::new();
    for id in 0..lab.host_count() {
        if daemon.hosts.contains_key(lab.host(id).name()) {
            continue;
        }
        created.push(id);
        jobs.push((id, daemon.next_slot));
        daemon.next_slot += 1;
    }
    let (built, mut error) = create_hosts(&mut daemon.state, &lab, &jobs);
    for host in built {
        let name = host.name.clone();
        daemon.hosts.insert(name.clone(), host);
        match attach_host(daemon, &name) {
            Ok(()) => changes.push(format!("created host {name}")),
            Err(e) => {
                error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = error {
        return Err(e);
    }
    write_all_host_files(&mut daemon.state, &lab)?;
    ssh::set_up(&mut daemon.state, &lab, created).await?;
    if sites_changed {
        let (sites, error) = super::sites::build(&mut daemon.state, &lab);
        daemon.sites = sites;
        if let Some(e) = error {
            return Err(e);
        }
        let (bgp, error) = super::bgp::build(&mut daemon.state, &lab);
        daemon.bgp = bgp;
        if let Some(e) = error {
            return Err(e);
        }
        daemon.vpn = vpn_ends(&lab, &daemon.bgp);
        changes.push("rebuilt sites and VPN connections".to_string());
    } else {
        super::sites::write_host_files(&lab)?;
    }
    if lab != daemon.lab {
        changes.push("updated routes and rules".to_string());
    }
    daemon.plane.flow_logs.reload(&lab).await;
    // What BGP learned stays while the sites do.
    let learned = if sites_changed {
        Vec::new()
    } else {
        daemon.plane.runtime.load().compiled.all_learned()
    };
    let runtime = runtime_for(
        &lab,
        &daemon.hosts,
        Some((&daemon.plane.runtime.load(), &daemon.lab)),
        daemon.vpn.clone(),
        learned,
    );
    daemon.plane.runtime.store(Arc::new(runtime));
    if sites_changed {
        super::bgp::start(&mut daemon.bgp, &lab, daemon.plane.clone());
        if daemon.bgp.sessions > 0 {
            super::bgp::wait_established(&daemon.bgp, BGP_WAIT).await;
        }
    }
    daemon.lab = lab;
    Ok(changes)
}
