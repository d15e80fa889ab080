//! `vpclab down`: removes exactly what the state file records, with or without a live daemon.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::state::{lab_dir, LabState};
use crate::netns;

/// How long `down` waits for a killed daemon to exit before it removes the rest anyway.
const DAEMON_EXIT_WAIT: Duration = Duration::from_secs(10);

/// What `down` removed.
#[derive(Debug, Default)]
pub struct Removed {
    pub daemon_killed: bool,
    pub namespaces: usize,
    pub processes: usize,
    pub etc_dirs: usize,
}

/// Stops the daemon and deletes every namespace, file and folder the lab recorded.
pub fn down(lab: &str) -> anyhow::Result<Removed> {
    let state = LabState::load(lab)?;
    let mut removed = Removed::default();
    if state.daemon_alive() {
        if let Some(pid) = state.daemon_pid {
            // The TUN devices and the built-in services live in the daemon: they go with it.
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            removed.daemon_killed = true;
        }
    }
    // Until its last thread is gone, not only its leader: until then it holds the TUNs.
    let deadline = Instant::now() + DAEMON_EXIT_WAIT;
    while state.daemon_running() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    remove_recorded(&state, &mut removed)?;
    let dir = lab_dir(lab);
    std::fs::remove_dir_all(&dir)
        .or_else(ignore_missing)
        .map_err(|e| anyhow::anyhow!("remove {}: {e}", dir.display()))?;
    Ok(removed)
}

/// Removes the namespaces and /etc/netns folders of a state record (also used for rollback).
pub fn remove_recorded(state: &LabState, removed: &mut Removed) -> anyhow::Result<()> {
    let mut errors = Vec::new();
    // One scan of /proc for all of them: per namespace it would be O(hosts × processes).
    removed.processes += netns::kill_all_in_each(&state.namespaces);
    // One after the other: on 4 threads, unmounts and removals were slower (they queue on the
    // kernel's mount lock and on the folder's lock).
    for ns in &state.namespaces {
        match netns::delete(ns) {
            Ok(()) => removed.namespaces += 1,
            Err(e) => errors.push(e.to_string()),
        }
    }
    for file in &state.files {
        match std::fs::remove_file(file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                errors.push(format!("remove {file}: {e}"))
            }
            _ => {}
        }
    }
    for ns in &state.etc_dirs {
        // The ssh client folder first: the host folder is removed only when empty.
        if let Err(e) = netns::ssh::remove_client_config(ns) {
            errors.push(e.to_string());
        }
        match netns::remove_host_files(ns) {
            Ok(()) => removed.etc_dirs += 1,
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(
            "down of lab {} left things behind:\n  {}",
            state.lab,
            errors.join("\n  ")
        )
    }
}

fn ignore_missing(e: std::io::Error) -> std::io::Result<()> {
    if e.kind() == std::io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

/// What of a lab is still on the machine: namespaces, /etc/netns folders, its state folder,
/// and processes inside its namespaces. Empty after a clean `down`.
pub fn leftovers(lab: &str) -> Vec<String> {
    let prefix = format!("vl-{lab}-");
    // Lab names may contain `-`: lab `a-b`'s namespaces start like lab `a`'s. Those of a lab
    // whose state folder is there are that lab's, not this one's.
    let others: Vec<String> = std::fs::read_dir(lab_dir(lab).parent().unwrap_or(Path::new("/")))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|other| other.len() > lab.len() && other.starts_with(&format!("{lab}-")))
        .map(|other| format!("vl-{other}-"))
        .collect();
    let mut found = Vec::new();
    for dir in ["/run/netns", "/etc/netns"] {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with(&prefix) && !others.iter().any(|o| name.starts_with(o.as_str())) {
                found.push(format!("{dir}/{name}"));
            }
        }
    }
    if lab_dir(lab).exists() {
        found.push(lab_dir(lab).display().to_string());
    }
    found
}
