//! Linux plumbing: named network namespaces, TUN devices, addresses, routes, per-host files.
//! Knows nothing about AWS.

pub mod errors;
pub mod etc;
pub mod exec;
mod forwarding;
pub mod host;
pub mod loopback;
pub mod namespace;
pub mod probe;
pub mod services;
pub mod site;
pub mod ssh;
pub mod wireguard;

pub use errors::{require_root, NetnsError};
pub use etc::{hosts_text, remove_host_files, write_host_files, write_host_files_text};
pub use exec::exec_in;
pub use forwarding::enable_forwarding;
pub use host::{setup_host, IFNAME};
pub use loopback::{add_address, add_lo_address, listen_on_lo};
pub use namespace::{
    create, delete, exists, kill_all_in, kill_all_in_each, path, pids_in, pids_in_each, run_in,
};
pub use probe::{probe_http, probe_icmp, probe_tcp, probe_udp};
pub use services::{bind_services, serve, spawn_all, BoundService};
