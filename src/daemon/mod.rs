//! Daemon layer: the tokio runtime that owns the TUN devices and carries out verdicts, the
//! control socket, and the lab's state record.

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
mod resolver;
mod run;
pub mod sites;
mod ssh;
pub mod state;
pub mod teardown;
mod vpn;
pub mod vpn_keys;
pub mod vpn_status;

pub use run::run_daemon;
