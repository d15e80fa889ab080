//! Daemon layer: the packet threads that carry out verdicts, the tokio runtime that owns the
//! hosts' services and the control socket, and the lab's state record.

mod aws_services;
mod batch;
mod bgp;
pub mod control;
pub mod costs;
mod dataplane;
pub mod fault;
pub mod flowlogs;
pub mod gateways;
mod hosts;
mod metadata;
mod mirror;
mod packet_threads;
mod resolver;
mod run;
mod segmenter;
pub mod sites;
mod ssh;
pub mod state;
pub mod teardown;
mod vpn;
pub mod vpn_keys;
pub mod vpn_status;

pub use packet_threads::Tuning;
pub use run::run_daemon;
