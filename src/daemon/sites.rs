//! On-premises sites, built after the hosts. Each site's router is an internet host, already
//! made (a namespace whose `eth0` is a TUN into the fabric, on the customer gateway's public
//! IP); here it gets its LAN (`br0` with the site's first address, forwarding on, see
//! `netns/site.rs`) and a veth per site host. Each site host is a namespace of its own that
//! runs its services and `run:` command as an instance does. Then the customer side of every
//! VPN connection comes up in its site's router: the very files `vpclab vpn config` prints,
//! written to the lab's state folder, brought up by wg-quick with wireguard-go.
//!
//! Everything is recorded in the lab state before it is made: the hosts' namespaces and
//! `/etc/netns` folders, and wireguard-go's control sockets (`state.files`), which live
//! outside the lab's folders. wireguard-go daemonizes, but inside the router's namespace:
//! `down` kills it with every other process there, then removes the sockets.

use std::collections::HashSet;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::task::JoinHandle;

use super::hosts::start_command;
use super::state::{lab_dir, HostRecord, LabState};
use crate::netns::{self, NetnsError};
use crate::scenario::{Lab, Site};
use crate::vpn::bird;
use crate::vpn::config::{file_name, tunnel_file};

/// How long taking a tunnel down waits for its wireguard-go to exit.
const WIREGUARD_EXIT_WAIT: Duration = Duration::from_secs(2);

/// What the daemon keeps of the sites it built, to take them down on an edit.
#[derive(Default)]
pub struct Sites {
    hosts: Vec<SiteHost>,
    /// Routers whose LAN was set up.
    routers: Vec<String>,
    /// Customer sides up: (router namespace, wg-quick file, control socket).
    tunnels: Vec<(String, PathBuf, String)>,
}

struct SiteHost {
    name: String,
    netns: String,
    /// Its services.
    tasks: Vec<JoinHandle<()>>,
}

/// The namespace of site `s`'s router.
fn router_ns(lab: &Lab, s: &Site) -> String {
    lab.netns_name(&lab.internet.hosts[s.customer_gateway.router].name)
}

/// Where the customer sides' wg-quick files go.
pub fn wireguard_dir(lab: &str) -> PathBuf {
    lab_dir(lab).join("wireguard")
}

/// True when the two labs' sites and VPN are the same (the VPCs' CIDRs included: the
/// tunnels carry them), so that an edit keeps them running.
pub fn same(a: &Lab, b: &Lab) -> bool {
    let cidrs = |l: &Lab| -> Vec<_> {
        l.vpcs
            .iter()
            .map(|v| (v.name.clone(), v.cidrs.clone()))
            .collect()
    };
    a.sites == b.sites
        && a.vpn_gateways == b.vpn_gateways
        && a.vpn_connections == b.vpn_connections
        && cidrs(a) == cidrs(b)
}

/// Builds every site of `lab` (its routers exist). Returns what was built, and the first
/// error if a step failed; what that step made is recorded, for the caller to roll back.
/// Blocking; called within the daemon's runtime (the services' tasks start on it).
pub fn build(state: &mut LabState, lab: &Lab) -> (Sites, Option<anyhow::Error>) {
    let mut sites = Sites::default();
    let error = tokio::task::block_in_place(|| build_into(&mut sites, state, lab)).err();
    (sites, error)
}

fn build_into(sites: &mut Sites, state: &mut LabState, lab: &Lab) -> anyhow::Result<()> {
    if lab.sites.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = lab
        .sites
        .iter()
        .flat_map(|s| s.hosts.iter().map(|h| lab.netns_name(&h.name)))
        .collect();
    if let Some(ns) = names.iter().find(|ns| netns::exists(ns)) {
        return Err(NetnsError::AlreadyExists { name: ns.clone() }.into());
    }
    state.namespaces.extend(names.iter().cloned());
    state.etc_dirs.extend(names.iter().cloned());
    state.save()?;
    for s in &lab.sites {
        let router = router_ns(lab, s);
        netns::site::setup_router_lan(&router, s.lan_ip, s.cidr.prefix_len())
            .with_context(|| format!("set up the LAN of site {}", s.name))?;
        sites.routers.push(router.clone());
        if s.customer_gateway.behind_nat {
            netns::site::put_behind_nat(&router, s.customer_gateway.public_ip)
                .with_context(|| format!("put the router of site {} behind a NAT", s.name))?;
        }
        mark_router(state, lab, s);
        for (n, h) in s.hosts.iter().enumerate() {
            let ns = lab.netns_name(&h.name);
            netns::create(&ns).with_context(|| format!("create host {}", h.name))?;
            // Tasks first, so that a failure below still stops them with the host.
            sites.hosts.push(SiteHost {
                name: h.name.clone(),
                netns: ns.clone(),
                tasks: Vec::new(),
            });
            netns::site::attach_host(
                &router,
                &format!("v{n}"),
                &ns,
                h.ip,
                s.cidr.prefix_len(),
                s.lan_ip,
            )
            .with_context(|| format!("wire host {} to the LAN of site {}", h.name, s.name))?;
            let bound = netns::bind_services(&ns, &h.name, &h.services, false)
                .with_context(|| format!("start services of host {}", h.name))?;
            if let Some(last) = sites.hosts.last_mut() {
                last.tasks = netns::spawn_all(bound);
            }
            if let Some(command) = &h.run {
                start_command(&lab.name, &ns, &h.name, command)?;
            }
            state.hosts.push(HostRecord {
                name: h.name.clone(),
                netns: ns,
                ip: h.ip.to_string(),
                vpc: format!("site:{}", s.name),
                subnet: s.cidr.to_string(),
                az: "-".to_string(),
                public_ip: None,
            });
        }
    }
    write_host_files(lab)?;
    state.save()?;
    customer_sides(sites, state, lab)
}

/// `vpclab status` shows a router as its site's, not as an internet host.
fn mark_router(state: &mut LabState, lab: &Lab, s: &Site) {
    let name = &lab.internet.hosts[s.customer_gateway.router].name;
    if let Some(r) = state.hosts.iter_mut().find(|h| &h.name == name) {
        r.vpc = format!("site:{}", s.name);
        r.subnet = "router".to_string();
    }
}

/// `/etc/netns/NS/{hosts,resolv.conf}` of every site host and router: every host of the lab
/// by name, site hosts included, and the internet's DNS names (no resolver, as on an internet
/// host). Site hosts' folders are recorded by `build`, routers' as internet hosts'.
pub fn write_host_files(lab: &Lab) -> anyhow::Result<()> {
    let mut names: Vec<(String, Ipv4Addr)> = (0..lab.all_host_count())
        .map(|id| (lab.host_name(id).to_string(), lab.host_ip(id)))
        .collect();
    names.extend(
        lab.internet
            .hosts
            .iter()
            .filter_map(|h| Some((h.dns.clone()?, h.ip))),
    );
    let text = netns::hosts_text(&names);
    let routers = lab
        .sites
        .iter()
        .map(|s| &lab.internet.hosts[s.customer_gateway.router].name);
    let hosts = lab
        .sites
        .iter()
        .flat_map(|s| s.hosts.iter().map(|h| &h.name));
    for name in routers.chain(hosts) {
        let ns = lab.netns_name(name);
        netns::write_host_files_text(&ns, &text, None, None)
            .with_context(|| format!("write /etc/netns/{ns}"))?;
    }
    Ok(())
}

/// Each connection's two tunnels, up in its site's router from their exported files.
fn customer_sides(sites: &mut Sites, state: &mut LabState, lab: &Lab) -> anyhow::Result<()> {
    if lab.vpn_connections.is_empty() {
        return Ok(());
    }
    let dir = wireguard_dir(&lab.name);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("create {}", dir.display()))?;
    for (id, c) in lab.vpn_connections.iter().enumerate() {
        let router = router_ns(lab, &lab.sites[c.site]);
        for t in &c.tunnels {
            let file = dir.join(file_name(t));
            write_secret(&file, &tunnel_file(lab, id, t.number))?;
            let socket = netns::wireguard::socket(&t.interface);
            let socket = socket.display().to_string();
            if netns::wireguard::socket(&t.interface).exists() {
                anyhow::bail!(
                    "WireGuard interface {} of VPN connection {} exists already on this machine ({socket})",
                    t.interface,
                    c.name
                );
            }
            state.files.push(socket.clone());
            state.save()?;
            netns::wireguard::quick_up(&router, &file).with_context(|| {
                format!(
                    "bring up tunnel {} of VPN connection {} in {}",
                    t.number, c.name, router
                )
            })?;
            sites.tunnels.push((router.clone(), file, socket));
        }
    }
    for (site, s) in lab.sites.iter().enumerate() {
        if bird::runs_bgp(lab, site) {
            start_bird(lab, site, &router_ns(lab, s))
                .with_context(|| format!("start BIRD in the router of site {}", s.name))?;
        }
    }
    Ok(())
}

/// Where a site's BIRD keeps its configuration, control socket and log.
pub fn bird_dir(lab: &str) -> PathBuf {
    lab_dir(lab).join("bird")
}

/// Starts BIRD in router namespace `router` with site `site`'s configuration. It daemonizes
/// inside the namespace, so `down` ends it with the namespace's other processes.
fn start_bird(lab: &Lab, site: usize, router: &str) -> anyhow::Result<()> {
    let dir = bird_dir(&lab.name);
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let name = &lab.sites[site].name;
    let conf = dir.join(format!("{name}.conf"));
    let log = dir.join(format!("{name}.log"));
    std::fs::write(&conf, bird::config(lab, site, &log))
        .with_context(|| format!("write {}", conf.display()))?;
    let socket = dir.join(format!("{name}.ctl"));
    let pid = dir.join(format!("{name}.pid"));
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", router, "bird", "-c"])
        .arg(&conf)
        .arg("-s")
        .arg(&socket)
        .arg("-P")
        .arg(&pid)
        .output()
        .context("run bird (is the bird2 package installed? scripts/setup.sh installs it)")?;
    if !out.status.success() {
        anyhow::bail!(
            "bird -c {}: {}",
            conf.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Writes a file only root can read (it holds a private key).
fn write_secret(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("create {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("write {}", path.display()))
}

/// Takes down what `build` made (for an edit): the customer sides, the site hosts, the
/// routers' LANs; their records go in one save. The first error is returned; what could not
/// be removed stays recorded, for `down`.
pub fn remove(state: &mut LabState, sites: Sites) -> anyhow::Result<()> {
    tokio::task::block_in_place(|| remove_all(state, sites))
}

fn remove_all(state: &mut LabState, sites: Sites) -> anyhow::Result<()> {
    let mut first_error: Option<anyhow::Error> = None;
    let mut gone_files = HashSet::new();
    for (router, file, socket) in sites.tunnels {
        // wg-quick down ends wireguard-go, which removes its socket; a socket left by a
        // wireguard-go that died goes here.
        if let Err(e) = netns::wireguard::quick_down(&router, &file) {
            first_error.get_or_insert(e.into());
        }
        // wireguard-go removes its socket as it exits, just after its interface went.
        let deadline = Instant::now() + WIREGUARD_EXIT_WAIT;
        while Path::new(&socket).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        match std::fs::remove_file(&socket) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                first_error.get_or_insert(anyhow::anyhow!("remove {socket}: {e}"));
            }
            _ => {
                gone_files.insert(socket);
            }
        }
    }
    let names: Vec<String> = sites.hosts.iter().map(|h| h.netns.clone()).collect();
    for h in &sites.hosts {
        for task in &h.tasks {
            task.abort();
        }
    }
    netns::kill_all_in_each(&names);
    let mut gone = HashSet::new();
    for h in &sites.hosts {
        let removed = netns::delete(&h.netns)
            .and_then(|()| netns::remove_host_files(&h.netns))
            .with_context(|| format!("remove site host {}", h.name));
        match removed {
            Ok(()) => {
                gone.insert(h.netns.clone());
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    for router in &sites.routers {
        // BIRD, if the site ran it: the router stays (an internet host), its processes go.
        netns::kill_all_in(router);
        // The veths went with their hosts' namespaces; the bridge stays with the router
        // unless removed (a router rebuilt since has none).
        if let Err(e) = netns::site::remove_router_lan(router) {
            first_error.get_or_insert(e.into());
        }
    }
    state.files.retain(|f| !gone_files.contains(f));
    state.namespaces.retain(|n| !gone.contains(n));
    state.etc_dirs.retain(|n| !gone.contains(n));
    state.hosts.retain(|h| !gone.contains(&h.netns));
    let saved = state.save();
    match first_error {
        Some(e) => Err(e),
        None => saved,
    }
}
