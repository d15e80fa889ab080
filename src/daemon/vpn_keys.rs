//! The VPN tunnels' WireGuard keys for a lab's whole life. Loading a scenario makes random
//! keys; the daemon records the first ones it sees in the lab's state folder
//! (`vpn-keys.json`, readable by root only, as it holds private keys) before any is used, and
//! puts them back into every later load of the lab (an edit applied with `up`, `vpclab vpn
//! config`), so that the router's WireGuard, the fabric's end and the exported files agree.
//! Keys are kept by connection name; `down` removes the file with the state folder.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::PathBuf;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::state::lab_dir;
use crate::scenario::{Lab, WgSecret};

/// One tunnel's two private keys, base64 as `wg genkey` prints them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct TunnelKeys {
    aws: String,
    customer: String,
}

/// Connection name -> its tunnels' keys, in tunnel order.
type KeyFile = BTreeMap<String, [TunnelKeys; 2]>;

pub fn keys_file(lab: &str) -> PathBuf {
    lab_dir(lab).join("vpn-keys.json")
}

/// Gives `lab` the keys recorded for it, recording those of connections seen for the first
/// time (before they are used anywhere). For the daemon.
pub fn keep(lab: &mut Lab) -> anyhow::Result<()> {
    if lab.vpn_connections.is_empty() {
        return Ok(());
    }
    let mut file = read(&lab.name)?.unwrap_or_default();
    let mut new = false;
    for c in &mut lab.vpn_connections {
        match file.get(&c.name) {
            Some(keys) => put(&mut c.tunnels, keys, &c.name)?,
            None => {
                file.insert(c.name.clone(), c.tunnels.each_ref().map(take));
                new = true;
            }
        }
    }
    if new {
        write(&lab.name, &file)?;
    }
    Ok(())
}

/// Gives `lab` the keys its daemon recorded; an error if it recorded none for a connection.
/// For readers such as `vpclab vpn config`, which must print what the lab uses.
pub fn recorded(lab: &mut Lab) -> anyhow::Result<()> {
    if lab.vpn_connections.is_empty() {
        return Ok(());
    }
    let file = read(&lab.name)?.with_context(|| {
        format!(
            "lab {} has no VPN keys recorded ({}): is it up?",
            lab.name,
            keys_file(&lab.name).display()
        )
    })?;
    for c in &mut lab.vpn_connections {
        let keys = file.get(&c.name).with_context(|| {
            format!(
                "the daemon of lab {} has no keys for VPN connection {} (added to the file after `up`? run `vpclab up FILE` again)",
                lab.name, c.name
            )
        })?;
        put(&mut c.tunnels, keys, &c.name)?;
    }
    Ok(())
}

fn take(t: &crate::scenario::VpnTunnel) -> TunnelKeys {
    TunnelKeys {
        aws: t.aws_key.to_base64(),
        customer: t.customer_key.to_base64(),
    }
}

fn put(
    tunnels: &mut [crate::scenario::VpnTunnel; 2],
    keys: &[TunnelKeys; 2],
    name: &str,
) -> anyhow::Result<()> {
    for (t, k) in tunnels.iter_mut().zip(keys) {
        let parse = |text: &str| {
            WgSecret::from_base64(text)
                .with_context(|| format!("a recorded key of VPN connection {name} is not a key"))
        };
        t.aws_key = parse(&k.aws)?;
        t.customer_key = parse(&k.customer)?;
    }
    Ok(())
}

/// None when the lab has recorded no keys yet.
fn read(lab: &str) -> anyhow::Result<Option<KeyFile>> {
    let path = keys_file(lab);
    match fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .with_context(|| format!("parse {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
    }
}

/// Atomically (temp file + rename), mode 0600 from the start.
fn write(lab: &str, file: &KeyFile) -> anyhow::Result<()> {
    let path = keys_file(lab);
    let tmp = path.with_extension("json.tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("create {}", tmp.display()))?;
    f.write_all(serde_json::to_string_pretty(file)?.as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, &path).with_context(|| format!("write {}", path.display()))
}
