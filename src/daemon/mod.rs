//! Daemon layer: the tokio runtime that owns the TUN devices and carries out verdicts.
