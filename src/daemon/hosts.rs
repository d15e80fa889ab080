//! Creating and removing one host: its namespace, its `eth0`, its services, its `run:` command.
//! Every object is recorded in the lab state as soon as it exists.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::Arc;

use anyhow::Context as _;
use tokio::task::JoinHandle;
use tun_rs::AsyncDevice;

use super::state::{lab_dir, HostRecord, LabState};
use crate::netns;
use crate::scenario::{Instance, Lab};

/// Instances get AWS's jumbo MTU inside a VPC.
pub const INSTANCE_MTU: u16 = 9001;

/// A host the daemon runs.
pub struct Host {
    pub name: String,
    pub netns: String,
    /// Stable index of this host's packet loop for the daemon's lifetime.
    pub slot: usize,
    pub device: Arc<AsyncDevice>,
    /// What it was built from; a change means rebuild.
    pub spec: Instance,
    /// Its packet loop and its service tasks.
    pub tasks: Vec<JoinHandle<()>>,
}

/// Builds the host of instance `index`, recording each object in `state` as it is created.
pub fn create_host(
    state: &mut LabState,
    lab: &Lab,
    index: usize,
    slot: usize,
) -> anyhow::Result<Host> {
    let instance = &lab.instances[index];
    let ns = lab.netns_name(&instance.name);
    netns::create(&ns).with_context(|| format!("create host {}", instance.name))?;
    state.namespaces.push(ns.clone());
    state.save()?;
    let subnet = &lab.subnets[instance.subnet];
    let gateway = Ipv4Addr::from(u32::from(subnet.cidr.network()) + 1);
    let sync = netns::setup_host(
        &ns,
        instance.private_ip,
        subnet.cidr.prefix_len(),
        gateway,
        INSTANCE_MTU,
    )
    .with_context(|| format!("set up eth0 of host {}", instance.name))?;
    let device = Arc::new(
        AsyncDevice::new(sync).with_context(|| format!("register eth0 of {}", instance.name))?,
    );
    let bound = netns::bind_services(&ns, &instance.name, &instance.services)
        .with_context(|| format!("start services of host {}", instance.name))?;
    let tasks = netns::spawn_all(bound);
    if let Some(command) = &instance.run {
        start_command(&lab.name, &ns, &instance.name, command)?;
    }
    state.hosts.push(HostRecord {
        name: instance.name.clone(),
        netns: ns.clone(),
        ip: instance.private_ip.to_string(),
        vpc: lab.vpcs[instance.vpc].name.clone(),
        subnet: subnet.name.clone(),
        az: subnet.az.clone(),
    });
    state.save()?;
    Ok(Host {
        name: instance.name.clone(),
        netns: ns,
        slot,
        device,
        spec: instance.clone(),
        tasks,
    })
}

/// Starts `run:` inside the host, detached; its output goes to HOST.log in the state folder.
/// It is stopped by `down`, which kills every process in the lab's namespaces.
fn start_command(lab: &str, ns: &str, host: &str, command: &str) -> anyhow::Result<()> {
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

/// Stops a host and removes its namespace; updates the state record.
pub fn remove_host(state: &mut LabState, host: Host) -> anyhow::Result<()> {
    for task in &host.tasks {
        task.abort();
    }
    drop(host.device);
    netns::kill_all_in(&host.netns);
    netns::delete(&host.netns).with_context(|| format!("delete namespace {}", host.netns))?;
    netns::remove_host_files(&host.netns)?;
    state.namespaces.retain(|n| n != &host.netns);
    state.etc_dirs.retain(|n| n != &host.netns);
    state.hosts.retain(|h| h.name != host.name);
    state.save()
}

/// Writes /etc/netns/NS/{hosts,resolv.conf} of every host so that names of the lab resolve.
pub fn write_all_host_files(state: &mut LabState, lab: &Lab) -> anyhow::Result<()> {
    let names: Vec<(String, Ipv4Addr)> = lab
        .instances
        .iter()
        .map(|i| (i.name.clone(), i.private_ip))
        .collect();
    for instance in &lab.instances {
        let ns = lab.netns_name(&instance.name);
        if !state.etc_dirs.contains(&ns) {
            state.etc_dirs.push(ns.clone());
            state.save()?;
        }
        netns::write_host_files(&ns, &names, None)
            .with_context(|| format!("write /etc/netns/{ns}"))?;
    }
    Ok(())
}
