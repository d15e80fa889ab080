//! WireGuard endpoints in a namespace, brought up and down by wg-quick from a configuration
//! file, with wireguard-go as the implementation: the kernel may have no WireGuard module
//! (wg-quick tries `ip link add type wireguard` first, then falls back to the userspace one
//! named by `WG_QUICK_USERSPACE_IMPLEMENTATION`). wireguard-go daemonizes, keeps running in
//! the namespace, and answers `wg` on a socket `/var/run/wireguard/IFNAME.sock`, a folder
//! every namespace shares: interface names must be unique on the machine. Knows nothing
//! about AWS.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::errors::NetnsError;

/// Where wireguard-go puts its control sockets (wg's `WG_...` default).
pub const SOCKET_DIR: &str = "/var/run/wireguard";

/// The control socket of userspace interface `ifname`.
pub fn socket(ifname: &str) -> PathBuf {
    Path::new(SOCKET_DIR).join(format!("{ifname}.sock"))
}

/// The interface a wg-quick file makes: its file name without `.conf`.
pub fn interface_of(file: &Path) -> Option<String> {
    let name = file.file_name()?.to_str()?.strip_suffix(".conf")?;
    Some(name.to_string())
}

/// `wg-quick up FILE` inside namespace `ns`, userspace. Blocking; returns once wireguard-go
/// runs and the interface is configured.
pub fn quick_up(ns: &str, file: &Path) -> Result<(), NetnsError> {
    quick(ns, "up", file)
}

/// `wg-quick down FILE` inside namespace `ns`: the interface goes, wireguard-go exits and
/// removes its socket. Blocking. An interface that is not there (taken down before, by a
/// fault or by hand) is down already: wg-quick would fail on it.
pub fn quick_down(ns: &str, file: &Path) -> Result<(), NetnsError> {
    if let Some(ifname) = interface_of(file) {
        if !has_interface(ns, &ifname) {
            return Ok(());
        }
    }
    quick(ns, "down", file)
}

/// True when namespace `ns` has an interface `ifname` (`ip -n NS link show dev IFNAME`).
pub fn has_interface(ns: &str, ifname: &str) -> bool {
    Command::new("ip")
        .args(["-n", ns, "link", "show", "dev", ifname])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn quick(ns: &str, verb: &str, file: &Path) -> Result<(), NetnsError> {
    let failed = |detail: String| NetnsError::WireGuard {
        ns: ns.to_string(),
        op: format!("wg-quick {verb} {}", file.display()),
        detail,
    };
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "wg-quick", verb])
        .arg(file)
        .env("WG_QUICK_USERSPACE_IMPLEMENTATION", "wireguard-go")
        .output()
        .map_err(|e| failed(format!("run it (are wireguard-tools installed?): {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    Err(failed(format!(
        "{}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}
