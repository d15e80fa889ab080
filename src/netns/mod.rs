//! Linux plumbing: named network namespaces, TUN devices, addresses, routes, per-host files.
//! Knows nothing about AWS.

pub mod errors;
pub mod etc;
pub mod exec;
pub mod host;
pub mod loopback;
pub mod namespace;
pub mod probe;
pub mod services;
pub mod ssh;

pub use errors::{require_root, NetnsError};
pub use etc::{remove_host_files, write_host_files};
pub use exec::exec_in;
pub use host::setup_host;
pub use loopback::{add_lo_address, listen_on_lo};
pub use namespace::{create, delete, exists, kill_all_in, path, pids_in, run_in};
pub use probe::{probe_http, probe_icmp, probe_tcp, probe_udp};
pub use services::{bind_services, serve, spawn_all, BoundService};
