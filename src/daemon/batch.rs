//! Creating and removing many hosts at once, for labs of a thousand hosts: the lab state is
//! written once per batch instead of once per object (each save writes the whole record, so
//! per-object saves cost O(n²)), and the blocking namespace work runs on a few threads.
//!
//! Crash safety: a batch's namespaces are recorded *before* any is made, after checking that
//! none of them exists yet (a name already taken is someone else's: refused, never recorded).
//! `down` and the rollback remove recorded namespaces that were never made as a no-op, so a
//! crash at any point leaves nothing unrecorded.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::Context as _;

use super::hosts::{build_host, Host};
use super::state::{HostRecord, LabState};
use crate::netns::{self, NetnsError};
use crate::scenario::{HostId, Lab};

/// Threads that build hosts at once. Most of a host's cost is in the kernel (a new network
/// namespace, a TUN, netlink, sysctls), which runs in parallel on separate namespaces. On 2
/// cores, 2 to 8 builders made a lab of 1000 hosts equally fast (1.9 s; 1 builder: 2.6 s).
const BUILDERS: usize = 4;

/// Builds the hosts `jobs` (host id, slot) of `lab`, recording them in `state`. Returns the
/// hosts built and recorded, and the first error if one failed; the others stop then, and
/// whatever the failed one made is recorded, for the caller to roll back or keep.
/// Blocking; must be called within the daemon's runtime (multi-threaded).
pub fn create_hosts(
    state: &mut LabState,
    lab: &Lab,
    jobs: &[(HostId, usize)],
) -> (Vec<Host>, Option<anyhow::Error>) {
    if jobs.is_empty() {
        return (Vec::new(), None);
    }
    let names: Vec<String> = jobs
        .iter()
        .map(|&(id, _)| lab.netns_name(lab.host(id).name()))
        .collect();
    if let Some(i) = names.iter().position(|ns| netns::exists(ns)) {
        let error = anyhow::Error::new(NetnsError::AlreadyExists {
            name: names[i].clone(),
        })
        .context(format!("create host {}", lab.host(jobs[i].0).name()));
        return (Vec::new(), Some(error));
    }
    state.namespaces.extend(names.iter().cloned());
    if let Err(e) = state.save() {
        return (Vec::new(), Some(e));
    }
    let results = build_all(lab, jobs);
    let mut hosts = Vec::with_capacity(jobs.len());
    let mut first_error = None;
    // Names whose namespace was never made by us: not ours to remove.
    let mut not_ours = HashSet::new();
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Some(Ok((host, record))) => {
                state.hosts.push(record);
                hosts.push(host);
            }
            Some(Err(e)) => {
                if is_clash(&e) {
                    // Made by someone else between the check above and our attempt.
                    not_ours.insert(names[i].as_str());
                }
                first_error.get_or_insert(e);
            }
            None => {
                not_ours.insert(names[i].as_str());
            }
        }
    }
    if !not_ours.is_empty() {
        state
            .namespaces
            .retain(|ns| !not_ours.contains(ns.as_str()));
    }
    if let Err(e) = state.save() {
        first_error.get_or_insert(e);
    }
    (hosts, first_error)
}

type Built = anyhow::Result<(Host, HostRecord)>;

/// Runs `build_host` for every job on up to `BUILDERS` threads (this one included); after the
/// first failure no new job starts. Per job: its outcome, or None if it never started.
fn build_all(lab: &Lab, jobs: &[(HostId, usize)]) -> Vec<Option<Built>> {
    let results: Vec<Mutex<Option<Built>>> = jobs.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let runtime = tokio::runtime::Handle::current();
    let work = || {
        // The hosts' sockets and TUN devices register with the daemon's runtime.
        let _entered = runtime.enter();
        while !failed.load(Ordering::Relaxed) {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(&(id, slot)) = jobs.get(i) else {
                return;
            };
            let built = build_host(lab, id, slot);
            if built.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
            *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(built);
        }
    };
    tokio::task::block_in_place(|| {
        std::thread::scope(|s| {
            for _ in 1..BUILDERS.min(jobs.len()) {
                // A thread that cannot be spawned leaves its share to the others.
                let _ = std::thread::Builder::new()
                    .name("vpclab-build".into())
                    .spawn_scoped(s, work);
            }
            work();
        })
    });
    results
        .into_iter()
        .map(|r| r.into_inner().unwrap_or_else(|p| p.into_inner()))
        .collect()
}

/// True when `e` is "this namespace already exists".
fn is_clash(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<NetnsError>(),
            Some(NetnsError::AlreadyExists { .. })
        )
    })
}

/// Stops `hosts` and removes their namespaces and files, then their records, in one save.
/// A host whose removal failed stays recorded (for `down`); the first error is returned.
pub fn remove_hosts(state: &mut LabState, hosts: Vec<Host>) -> anyhow::Result<()> {
    let mut names = Vec::with_capacity(hosts.len());
    let mut host_names = Vec::with_capacity(hosts.len());
    for host in hosts {
        for task in &host.tasks {
            task.abort();
        }
        // Closing the TUN removes eth0; the namespace goes when nothing holds it any more.
        drop(host.device);
        names.push(host.netns);
        host_names.push(host.name);
    }
    netns::kill_all_in_each(&names);
    let mut first_error = None;
    let (mut gone, mut gone_hosts): (HashSet<&str>, HashSet<&str>) = Default::default();
    for (ns, name) in names.iter().zip(&host_names) {
        let removed = netns::delete(ns)
            .with_context(|| format!("delete namespace {ns}"))
            .and_then(|()| Ok(netns::ssh::remove_client_config(ns)?))
            .and_then(|()| Ok(netns::remove_host_files(ns)?));
        match removed {
            Ok(()) => {
                gone.insert(ns);
                gone_hosts.insert(name);
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    state.namespaces.retain(|n| !gone.contains(n.as_str()));
    state.etc_dirs.retain(|n| !gone.contains(n.as_str()));
    state
        .hosts
        .retain(|h| !gone_hosts.contains(h.name.as_str()));
    let saved = state.save();
    match first_error {
        Some(e) => Err(e),
        None => saved,
    }
}
