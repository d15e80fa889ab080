//! The control socket: one JSON request per line, one JSON reply per line. The CLI is a thin
//! client; the daemon answers from its live state.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::state::{control_socket, HostRecord};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    Status,
    /// Re-read the scenario copy in the state folder and apply the difference.
    Apply,
    Explain {
        from: String,
        to: String,
        protocol: String,
        port: Option<u16>,
    },
    /// Inject a fault (`vpclab fault`).
    Fault {
        fault: super::fault::Fault,
    },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Counters {
    pub delivered: u64,
    /// (AWS code, count) for each drop reason seen.
    pub dropped: Vec<(String, u64)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    Status {
        lab: String,
        hosts: Vec<HostRecord>,
        counters: Counters,
        /// What the metered gateways would have cost on AWS so far.
        #[serde(default)]
        costs: Vec<super::costs::CostLine>,
        /// Internet gateways, NAT gateways and endpoints, with their addresses.
        #[serde(default)]
        gateways: Vec<super::gateways::GatewayRecord>,
        /// The VPN connections' tunnels: state, last handshake, bytes.
        #[serde(default)]
        tunnels: Vec<super::vpn_status::TunnelRecord>,
    },
    Applied {
        changes: Vec<String>,
    },
    Explained {
        text: String,
        reachable: bool,
        code: Option<String>,
        components: Vec<String>,
    },
    /// A fault was injected: what was done, in words.
    Faulted {
        message: String,
    },
    Error {
        message: String,
    },
}

/// Sends one request to the lab's daemon and waits for its reply.
pub fn call(lab: &str, request: &Request, timeout: Duration) -> anyhow::Result<Reply> {
    let path = control_socket(lab);
    let mut stream = UnixStream::connect(&path).map_err(|e| {
        anyhow::anyhow!(
            "connect to the daemon of lab {lab} at {}: {e}",
            path.display()
        )
    })?;
    stream.set_read_timeout(Some(timeout))?;
    let mut line = serde_json::to_string(request)?;
    line.push('\n');
    stream.write_all(line.as_bytes())?;
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply)?;
    if reply.is_empty() {
        anyhow::bail!("the daemon of lab {lab} closed the connection without a reply");
    }
    Ok(serde_json::from_str(&reply)?)
}
