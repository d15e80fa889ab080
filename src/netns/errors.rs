//! Errors of the Linux plumbing layer: each variant names the operation and the values involved.

use std::io;
use std::path::PathBuf;

/// Everything that can fail while creating, entering, wiring or tearing down a namespace.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("vpclab needs root (network namespaces and TUN devices): run it with sudo")]
    NotRoot,

    #[error("invalid netns name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },

    #[error("make netns {ns} forward: {detail}")]
    Forwarding { ns: String, detail: String },

    #[error("netns {name} already exists (/run/netns/{name})")]
    AlreadyExists { name: String },

    #[error("netns {name} does not exist (/run/netns/{name})")]
    NotFound { name: String },

    #[error("prepare /run/netns as a shared mount: {source}")]
    PrepareRunDir { source: io::Error },

    #[error("create netns {name}: {op}: {source}")]
    Create {
        name: String,
        op: &'static str,
        source: io::Error,
    },

    #[error("delete netns {name}: {op}: {source}")]
    Delete {
        name: String,
        op: &'static str,
        source: io::Error,
    },

    #[error("enter netns {name}: {source}")]
    Enter { name: String, source: io::Error },

    #[error("thread working inside netns {name} panicked")]
    ThreadPanicked { name: String },

    #[error("set sysctl {key} = {value:?} in netns {ns}: {source}")]
    Sysctl {
        ns: String,
        key: String,
        value: String,
        source: io::Error,
    },

    #[error("create TUN {ifname} ({addr}/{prefix}, mtu {mtu}) in netns {ns}: {source}")]
    Tun {
        ns: String,
        ifname: String,
        addr: std::net::Ipv4Addr,
        prefix: u8,
        mtu: u16,
        source: io::Error,
    },

    #[error("start a netlink runtime in netns {ns}: {source}")]
    Runtime { ns: String, source: io::Error },

    #[error("{op} in netns {ns}: {source}")]
    Netlink {
        ns: String,
        op: String,
        source: rtnetlink::Error,
    },

    #[error("{op} in netns {ns}: link {ifname} not found")]
    LinkMissing {
        ns: String,
        op: String,
        ifname: String,
    },

    #[error("{op} {path} for netns {ns}: {source}")]
    HostFile {
        ns: String,
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },

    #[error("bind {service} on 0.0.0.0:{port} in netns {ns}: {source}")]
    Bind {
        ns: String,
        service: &'static str,
        port: u16,
        source: io::Error,
    },

    #[error("{op} in netns {ns}: {detail}")]
    WireGuard {
        ns: String,
        op: String,
        detail: String,
    },

    #[error("start sshd in netns {ns}: {reason}")]
    Sshd { ns: String, reason: String },

    #[error("listen on {addr} in netns {ns}: {source}")]
    Listen {
        ns: String,
        addr: std::net::SocketAddr,
        source: io::Error,
    },

    #[error("hand {service} socket {addr} to the tokio runtime: {source}")]
    Serve {
        service: &'static str,
        addr: String,
        source: io::Error,
    },
}

/// Fails with [`NetnsError::NotRoot`] unless the effective uid is 0.
pub fn require_root() -> Result<(), NetnsError> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(NetnsError::NotRoot)
    }
}
