//! Building one host: its namespace, its `eth0`, its services, an instance's metadata
//! listener, its `run:` command; and every host's `/etc/netns` files. `batch` records the
//! hosts in the lab state before they are built and removes them.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::Arc;

use anyhow::Context as _;
use tokio::task::JoinHandle;
use tun_rs::SyncDevice;

use super::aws_services;
use super::metadata;
use super::state::{lab_dir, HostRecord, LabState};
use crate::netns;
use crate::scenario::dns::internal_domain;
use crate::scenario::{Forwarding, HostId, HostRef, Lab, Service};

/// Instances get AWS's jumbo MTU inside a VPC.
pub const INSTANCE_MTU: u16 = 9001;

/// Internet hosts get the internet's MTU (an internet gateway carries 1500 bytes at most).
pub const INTERNET_MTU: u16 = 1500;

/// What a host's namespace is built from; a change means rebuild.
#[derive(Debug, Clone, PartialEq)]
pub struct HostSpec {
    pub name: String,
    pub ip: Ipv4Addr,
    /// Its IPv6 address, on a dual-stack host.
    pub ipv6: Option<std::net::Ipv6Addr>,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub mtu: u16,
    pub services: Vec<Service>,
    pub run: Option<String>,
    /// Serves a simulated AWS service: `up` waits until it listens.
    pub service_host: bool,
    /// More addresses it answers on, on `lo`: its interface endpoints' interfaces.
    pub lo_addresses: Vec<Ipv4Addr>,
    /// Its OS forwards (a NAT instance or an appliance).
    pub forwarding: Option<Forwarding>,
}

impl HostSpec {
    /// Host `id` of `lab`: an instance in its subnet (the router at .1), or an internet host
    /// alone on a /32 with a default route through the fabric.
    pub fn of(lab: &Lab, id: HostId) -> HostSpec {
        let host = lab.host(id);
        let (prefix, gateway, mtu) = match host {
            HostRef::Instance(_, i) => {
                let cidr = lab.subnets[i.subnet].cidr;
                let router = Ipv4Addr::from(u32::from(cidr.network()) + 1);
                (cidr.prefix_len(), router, INSTANCE_MTU)
            }
            // No neighbour on its link: every packet goes to the fabric, which decides it.
            HostRef::Internet(..) => (32, INTERNET_GATEWAY_HINT, INTERNET_MTU),
        };
        let service_host = match host {
            HostRef::Internet(n, _) => lab.services.iter().any(|s| s.host == n),
            HostRef::Instance(..) => false,
        };
        let (services, run) = if service_host {
            aws_services::server()
        } else {
            (host.services().to_vec(), host.run().map(str::to_string))
        };
        let lo_addresses = match host {
            HostRef::Internet(n, _) => lab
                .endpoints
                .iter()
                .filter(|e| lab.services[e.service].host == n)
                .flat_map(|e| e.interfaces.iter().map(|i| i.private_ip))
                .collect(),
            HostRef::Instance(..) => Vec::new(),
        };
        HostSpec {
            name: host.name().to_string(),
            ip: host.ip(),
            ipv6: host.ipv6(),
            prefix,
            gateway,
            mtu,
            services,
            run,
            service_host,
            lo_addresses,
            forwarding: match host {
                HostRef::Instance(_, i) => i.forwarding,
                HostRef::Internet(..) => None,
            },
        }
    }
}

/// The next hop an internet host's default route names (on-link; a TUN has no neighbours, so
/// it is never resolved). Link-local, so it can be nobody's address.
const INTERNET_GATEWAY_HINT: Ipv4Addr = Ipv4Addr::new(169, 254, 0, 1);

/// A host the daemon runs.
pub struct Host {
    pub name: String,
    pub netns: String,
    /// Stable index of this host in the packet threads' table for the daemon's lifetime.
    pub slot: usize,
    pub device: Arc<SyncDevice>,
    /// Read by a packet thread while this is kept.
    pub attached: Option<super::packet_threads::Attached>,
    /// What it was built from; a change means rebuild.
    pub spec: HostSpec,
    /// Its service tasks.
    pub tasks: Vec<JoinHandle<()>>,
    /// An instance's metadata listener (169.254.169.254:80 on its `lo`), until it is served.
    pub metadata: Option<std::net::TcpListener>,
}

/// Builds host `id` of `lab` and returns it with its record for the lab state. Its namespace
/// must already be recorded in the lab state (`batch::create_hosts` records it before), so
/// that whatever part of it exists is removed by a rollback or by `down` after a crash.
/// Blocking; runs within the daemon's runtime context (its sockets and TUN register there).
pub fn build_host(lab: &Lab, id: HostId, slot: usize) -> anyhow::Result<(Host, HostRecord)> {
    let spec = HostSpec::of(lab, id);
    let name = &spec.name;
    let ns = lab.netns_name(name);
    netns::create(&ns).with_context(|| format!("create host {name}"))?;
    let sync = netns::setup_host(&ns, spec.ip, spec.prefix, spec.gateway, spec.mtu, spec.ipv6)
        .with_context(|| format!("set up eth0 of host {name}"))?;
    // Persistent, so that closing it (the daemon's exit) does not unregister it: that costs
    // an RCU barrier per device, and a daemon of a thousand hosts took 20 s to exit. It goes
    // with its namespace instead, which the kernel cleans up in batches after `down`.
    sync.persist()
        .with_context(|| format!("make eth0 of host {name} persistent"))?;
    // Read and written by the packet threads, which never wait on it.
    sync.set_nonblocking(true)
        .with_context(|| format!("make eth0 of host {name} non-blocking"))?;
    let device = Arc::new(sync);
    let bound = netns::bind_services(&ns, name, &spec.services, spec.ipv6.is_some())
        .with_context(|| format!("start services of host {name}"))?;
    let tasks = netns::spawn_all(bound);
    if let Some(forwarding) = spec.forwarding {
        netns::enable_forwarding(&ns, forwarding == Forwarding::Masquerade)
            .with_context(|| format!("make host {name} forward"))?;
    }
    for &addr in &spec.lo_addresses {
        netns::add_lo_address(&ns, addr)
            .with_context(|| format!("add endpoint address {addr} to host {name}"))?;
    }
    // Bound before `run:` starts, so the metadata service is there when it looks.
    let metadata = match lab.host(id) {
        HostRef::Instance(..) => Some(
            netns::listen_on_lo(&ns, metadata::ADDRESS, metadata::PORT)
                .with_context(|| format!("start the metadata service of {name}"))?,
        ),
        HostRef::Internet(..) => None,
    };
    if let Some(command) = &spec.run {
        start_command(&lab.name, &ns, name, command)?;
    }
    if spec.service_host {
        wait_listening(&ns, name, spec.ip)?;
    }
    let record = record(lab, id, &ns);
    let host = Host {
        name: name.clone(),
        netns: ns,
        slot,
        device,
        attached: None,
        spec,
        tasks,
        metadata,
    };
    Ok((host, record))
}

/// How `status` and `up` show a host.
fn record(lab: &Lab, id: HostId, ns: &str) -> HostRecord {
    match lab.host(id) {
        HostRef::Instance(_, i) => {
            let subnet = &lab.subnets[i.subnet];
            HostRecord {
                name: i.name.clone(),
                netns: ns.to_string(),
                ip: i.private_ip.to_string(),
                vpc: lab.vpcs[i.vpc].name.clone(),
                subnet: subnet.name.clone(),
                az: subnet.az.clone(),
                public_ip: i.public_ip.map(|p| p.addr.to_string()),
            }
        }
        HostRef::Internet(_, h) => HostRecord {
            name: h.name.clone(),
            netns: ns.to_string(),
            ip: h.ip.to_string(),
            vpc: "internet".to_string(),
            subnet: "-".to_string(),
            az: "-".to_string(),
            public_ip: None,
        },
    }
}

/// Waits until a service host answers TCP on its port, so that the lab is usable when `up`
/// returns (moto's server takes a few seconds to start).
fn wait_listening(ns: &str, name: &str, ip: Ipv4Addr) -> anyhow::Result<()> {
    let start = std::time::Instant::now();
    let port = aws_services::SERVICE_PORT;
    while start.elapsed() < aws_services::READY_TIMEOUT {
        if netns::probe_tcp(ns, ip, port, std::time::Duration::from_millis(300)) {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    anyhow::bail!(
        "service {name} does not listen on {ip}:{port} after {} s (see its log in the lab's state folder)",
        aws_services::READY_TIMEOUT.as_secs()
    )
}

/// Starts `run:` inside the host, detached; its output goes to HOST.log in the state folder.
/// It is stopped by `down`, which kills every process in the lab's namespaces.
pub(super) fn start_command(lab: &str, ns: &str, host: &str, command: &str) -> anyhow::Result<()> {
    let log_path = lab_dir(lab).join(format!("{host}.log"));
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("create {}", log_path.display()))?;
    let err = log.try_clone()?;
    Command::new("ip")
        .args(["netns", "exec", ns, "sh", "-c", command])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .spawn()
        .with_context(|| format!("start `{command}` in host {host}"))?;
    Ok(())
}

/// Writes /etc/netns/NS/{hosts,resolv.conf} of every host so that names of the lab resolve:
/// host names to their own addresses, internet hosts' DNS names to theirs; an instance of a
/// VPC with DNS on also asks its VPC's resolver (base + 2), with its region's internal domain
/// as the search domain, as AWS's default DHCP options set.
pub fn write_all_host_files(state: &mut LabState, lab: &Lab) -> anyhow::Result<()> {
    let hosts: Vec<(String, Ipv4Addr)> = (0..lab.host_count())
        .map(|id| (lab.host(id).name().to_string(), lab.host(id).ip()))
        .collect();
    // Hosts without a resolver (internet hosts, VPCs with `dns: false`) find internet names
    // here; instances with one ask it, so that private DNS of interface endpoints can answer.
    let mut with_internet = hosts.clone();
    with_internet.extend(
        lab.internet
            .hosts
            .iter()
            .filter_map(|h| Some((h.dns.clone()?, h.ip))),
    );
    // Both texts are made once: n files of n lines each.
    let (plain, with_internet) = (netns::hosts_text(&hosts), netns::hosts_text(&with_internet));
    // Recorded, all at once, before any is made.
    let known: HashSet<&str> = state.etc_dirs.iter().map(String::as_str).collect();
    let new: Vec<String> = (0..lab.host_count())
        .map(|id| lab.netns_name(lab.host(id).name()))
        .filter(|ns| !known.contains(ns.as_str()))
        .collect();
    if !new.is_empty() {
        state.etc_dirs.extend(new);
        state.save()?;
    }
    for id in 0..lab.host_count() {
        let ns = lab.netns_name(lab.host(id).name());
        let (nameserver, search) = match lab.host(id) {
            HostRef::Instance(_, i) => {
                let vpc = &lab.vpcs[i.vpc];
                let nameserver = vpc.resolver();
                (nameserver, nameserver.map(|_| internal_domain(&vpc.region)))
            }
            HostRef::Internet(..) => (None, None),
        };
        let names = if nameserver.is_some() {
            &plain
        } else {
            &with_internet
        };
        netns::write_host_files_text(&ns, names, nameserver, search.as_deref())
            .with_context(|| format!("write /etc/netns/{ns}"))?;
    }
    Ok(())
}
