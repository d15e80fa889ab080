//! Daemon layer: the tokio runtime that owns the TUN devices and carries out verdicts, the
//! control socket, and the lab's state record.

pub mod control;
mod dataplane;
pub mod flowlogs;
mod hosts;
mod mirror;
mod run;
pub mod state;
pub mod teardown;

pub use run::run_daemon;
