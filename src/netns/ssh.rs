//! OpenSSH inside a namespace: the client folder `/etc/netns/NS/ssh/` (which `ip netns exec`
//! binds over `/etc/ssh`, so a plain `ssh` run in the namespace reads the lab's client config)
//! and real `sshd` processes started inside a namespace. Knows nothing about AWS.

use super::errors::NetnsError;
use super::etc;
use super::namespace::valid_name;
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// The OpenSSH server; it must be run by its absolute path (it re-executes itself).
pub const SSHD: &str = "/usr/sbin/sshd";

/// sshd's privilege-separation folder, fixed at build time; it refuses to start without it.
const PRIVSEP_DIR: &str = "/run/sshd";

/// The client files [`write_client_config`] writes, and therefore the only ones removed.
const CLIENT_FILES: [&str; 1] = ["ssh_config"];

/// How long sshd has to bind its sockets and write its pid file.
const START_TIMEOUT: Duration = Duration::from_secs(5);

/// `/etc/netns/NS/ssh`: inside the namespace it is `/etc/ssh`.
pub fn client_dir(ns: &str) -> PathBuf {
    etc::dir(ns).join("ssh")
}

/// Writes `/etc/netns/NS/ssh/ssh_config`, replacing it atomically. The folder is bound over the
/// whole of `/etc/ssh` by `ip netns exec`, so the machine's own ssh files are not seen inside
/// the namespace; sshd started there is given its own configuration with `-f`.
pub fn write_client_config(ns: &str, text: &str) -> Result<(), NetnsError> {
    valid_name(ns)?;
    let dir = client_dir(ns);
    let err = |op, path: &Path| {
        let (ns, path) = (ns.to_string(), path.to_path_buf());
        move |source| NetnsError::HostFile {
            ns,
            op,
            path,
            source,
        }
    };
    std::fs::create_dir_all(&dir).map_err(err("create", &dir))?;
    let path = dir.join("ssh_config");
    let tmp = dir.join("ssh_config.vpclab-tmp");
    std::fs::write(&tmp, text).map_err(err("write", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err("rename into", &path)(e)
    })
}

/// Removes what [`write_client_config`] wrote, then `/etc/netns/NS/ssh` if it is left empty.
/// Missing files are fine. Call it before [`super::remove_host_files`], which removes
/// `/etc/netns/NS` only when it is empty.
pub fn remove_client_config(ns: &str) -> Result<(), NetnsError> {
    valid_name(ns)?;
    let dir = client_dir(ns);
    let err = |path: PathBuf| {
        let ns = ns.to_string();
        move |source| NetnsError::HostFile {
            ns,
            op: "remove",
            path,
            source,
        }
    };
    for name in CLIENT_FILES {
        let file = dir.join(name);
        std::fs::remove_file(&file)
            .or_else(ignore(&[io::ErrorKind::NotFound]))
            .map_err(err(file))?;
    }
    // DirectoryNotEmpty: someone else's files; not ours to remove.
    std::fs::remove_dir(&dir)
        .or_else(ignore(&[
            io::ErrorKind::NotFound,
            io::ErrorKind::DirectoryNotEmpty,
        ]))
        .map_err(err(dir))
}

fn ignore(kinds: &'static [io::ErrorKind]) -> impl Fn(io::Error) -> io::Result<()> {
    move |e| {
        if kinds.contains(&e.kind()) {
            Ok(())
        } else {
            Err(e)
        }
    }
}

/// One sshd to start: its configuration file, where it listens, and its own files.
#[derive(Debug, Clone)]
pub struct Sshd<'a> {
    pub ns: &'a str,
    pub config: &'a Path,
    pub listen: Ipv4Addr,
    pub ports: &'a [u16],
    /// Written by sshd once its sockets are bound.
    pub pid_file: &'a Path,
    /// Its log (`-e`: everything it would send to syslog).
    pub log: &'a Path,
}

/// Starts `sshd -D` inside the namespace through `ip netns exec` (so it sees the namespace's
/// `/etc/netns/NS/*` files, as its login sessions then do) and waits until it listens. The
/// process is reaped by the current tokio runtime when it ends; `down` ends it by killing
/// every process in the namespace.
pub async fn start_sshd(sshd: &Sshd<'_>) -> Result<u32, NetnsError> {
    valid_name(sshd.ns)?;
    let fail = |reason: String| NetnsError::Sshd {
        ns: sshd.ns.to_string(),
        reason,
    };
    if !Path::new(SSHD).exists() {
        return Err(fail(format!(
            "{SSHD} is not installed (scripts/setup.sh installs openssh-server)"
        )));
    }
    std::fs::create_dir_all(PRIVSEP_DIR).map_err(|e| {
        fail(format!(
            "create its privilege-separation folder {PRIVSEP_DIR}: {e}"
        ))
    })?;
    std::fs::remove_file(sshd.pid_file)
        .or_else(ignore(&[io::ErrorKind::NotFound]))
        .map_err(|e| fail(format!("remove the stale {}: {e}", sshd.pid_file.display())))?;
    let log = std::fs::File::create(sshd.log)
        .map_err(|e| fail(format!("create {}: {e}", sshd.log.display())))?;
    let log_err = log.try_clone().map_err(|e| {
        fail(format!(
            "duplicate the handle of {}: {e}",
            sshd.log.display()
        ))
    })?;
    let mut command = tokio::process::Command::new("ip");
    command
        .args(["netns", "exec", sshd.ns, SSHD, "-D", "-e", "-f"])
        .arg(sshd.config)
        .arg("-o")
        .arg(format!("ListenAddress={}", sshd.listen))
        .arg("-o")
        .arg(format!("PidFile={}", sshd.pid_file.display()));
    for port in sshd.ports {
        command.arg("-p").arg(port.to_string());
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|e| fail(format!("run `ip netns exec {} {SSHD}`: {e}", sshd.ns)))?;
    let pid = child.id().unwrap_or(0);
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| fail(format!("wait: {e}")))? {
            return Err(fail(format!(
                "it exited ({status}): {}",
                log_tail(sshd.log)
            )));
        }
        let written = std::fs::read_to_string(sshd.pid_file).unwrap_or_default();
        if written.ends_with('\n') {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            let _ = child.start_kill();
            return Err(fail(format!(
                "it did not listen within {START_TIMEOUT:?}: {}",
                log_tail(sshd.log)
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::spawn(async move {
        // Reaps it when `down` or a rebuild of the host kills it.
        let _ = child.wait().await;
    });
    Ok(pid)
}

/// The last lines of a log, on one line, for an error message.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    match lines.len() {
        0 => format!("{} is empty", path.display()),
        n => lines[n.saturating_sub(3)..].join(" | "),
    }
}
