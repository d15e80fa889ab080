//! The lab's state directory (`/run/vpclab/LAB`): what the lab created, recorded before it is
//! created, so that `vpclab down` can remove exactly that, even after a crash.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Root of all labs' state; one folder per lab.
pub const STATE_ROOT: &str = "/run/vpclab";

/// One host as the lab created it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HostRecord {
    pub name: String,
    pub netns: String,
    pub ip: String,
    pub vpc: String,
    pub subnet: String,
    pub az: String,
    /// The public IPv4 the internet gateway maps to `ip`, if any.
    #[serde(default)]
    pub public_ip: Option<String>,
}

/// Everything a lab made or is making. Written before each batch of creations (a removal
/// of something never made is a no-op) and after it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LabState {
    pub lab: String,
    /// The scenario file as given by the user (for messages).
    pub source: String,
    pub daemon_pid: Option<i32>,
    /// `starttime` of the daemon (field 22 of /proc/PID/stat), so a reused pid is never killed.
    pub daemon_start: Option<u64>,
    /// Namespaces created, by name (`vl-LAB-HOST`).
    pub namespaces: Vec<String>,
    /// Folders under /etc/netns created.
    pub etc_dirs: Vec<String>,
    pub hosts: Vec<HostRecord>,
    /// Files made outside the lab's folders (wireguard-go's sockets in /var/run/wireguard),
    /// removed after the processes in the lab's namespaces are gone.
    #[serde(default)]
    pub files: Vec<String>,
}

pub fn lab_dir(lab: &str) -> PathBuf {
    Path::new(STATE_ROOT).join(lab)
}

pub fn state_file(lab: &str) -> PathBuf {
    lab_dir(lab).join("state.json")
}

pub fn control_socket(lab: &str) -> PathBuf {
    lab_dir(lab).join("control.sock")
}

pub fn scenario_copy(lab: &str) -> PathBuf {
    lab_dir(lab).join("scenario.yaml")
}

pub fn log_file(lab: &str) -> PathBuf {
    lab_dir(lab).join("daemon.log")
}

impl LabState {
    pub fn load(lab: &str) -> anyhow::Result<LabState> {
        let path = state_file(lab);
        let text = fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("read lab state {}: {e}", path.display()))?;
        serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("parse lab state {}: {e}", path.display()))
    }

    /// Writes atomically (temp file + rename) so a crash never leaves half a record.
    pub fn save(&self) -> anyhow::Result<()> {
        let dir = lab_dir(&self.lab);
        fs::create_dir_all(&dir).map_err(|e| anyhow::anyhow!("create {}: {e}", dir.display()))?;
        let tmp = dir.join("state.json.tmp");
        let mut f =
            fs::File::create(&tmp).map_err(|e| anyhow::anyhow!("write {}: {e}", tmp.display()))?;
        f.write_all(serde_json::to_string_pretty(self)?.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, state_file(&self.lab))?;
        Ok(())
    }

    pub fn host(&self, name: &str) -> Option<&HostRecord> {
        self.hosts.iter().find(|h| h.name == name)
    }
}

/// Names of labs with a state folder.
pub fn known_labs() -> Vec<String> {
    let mut labs: Vec<String> = fs::read_dir(STATE_ROOT)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("state.json").exists())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    labs.sort();
    labs
}

/// `starttime` of a living process, or None if it does not exist or has died (a zombie
/// waiting to be reaped is dead: its namespaces' TUN devices are already gone).
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces; fields follow the last ')'.
    let mut fields = stat[stat.rfind(')')? + 2..].split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// True while a thread of process `pid` started at `start` has not exited. A killed process's
/// leader turns zombie first; its other threads may still be closing its files.
pub fn process_running(pid: i32, start: u64) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let started = stat
        .rfind(')')
        .and_then(|i| stat.get(i + 2..))
        .and_then(|rest| rest.split_whitespace().nth(19))
        .and_then(|s| s.parse::<u64>().ok());
    if started != Some(start) {
        return false;
    }
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|task| {
        let stat = fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        let state = stat.rfind(')').and_then(|i| stat.get(i + 2..i + 3));
        state.is_some_and(|s| s != "Z" && s != "X")
    })
}

impl LabState {
    /// True while a thread of the recorded daemon has not exited (see [`process_running`]).
    pub fn daemon_running(&self) -> bool {
        match (self.daemon_pid, self.daemon_start) {
            (Some(pid), Some(start)) => process_running(pid, start),
            _ => false,
        }
    }

    /// True when the recorded daemon is this very process still running.
    pub fn daemon_alive(&self) -> bool {
        match (self.daemon_pid, self.daemon_start) {
            (Some(pid), Some(start)) => process_start_time(pid) == Some(start),
            _ => false,
        }
    }
}
