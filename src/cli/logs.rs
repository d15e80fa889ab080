//! `vpclab logs`: reads the flow-log files a lab delivered (S3 layout) and filters them, or
//! reports port scans and top talkers.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::daemon::flowlogs::output_dir;
use crate::flowlog::{
    parse_header, parse_line, port_scans, read_log_file, top_talkers, Action, LogFilter,
    ParsedRecord,
};
use crate::scenario::aws_id;

use super::labs::pick_lab;

pub struct LogsArgs {
    pub lab: Option<String>,
    pub action: Option<String>,
    pub address: Option<Ipv4Addr>,
    pub port: Option<u16>,
    /// `eni-…` or a host name.
    pub interface: Option<String>,
    pub scans: bool,
    pub top: Option<usize>,
}

/// Every `.log.gz` below `dir`, oldest name first.
fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().ends_with(".log.gz") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

pub fn logs(args: LogsArgs) -> anyhow::Result<i32> {
    let lab = pick_lab(args.lab.as_deref())?;
    let action = match args
        .action
        .as_deref()
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        None => None,
        Some("ACCEPT") => Some(Action::Accept),
        Some("REJECT") => Some(Action::Reject),
        Some(other) => anyhow::bail!("--action {other}: expected ACCEPT or REJECT"),
    };
    let interface = args.interface.map(|i| {
        if i.starts_with("eni-") {
            i
        } else {
            aws_id("eni", &lab, &i)
        }
    });
    let filter = LogFilter {
        action,
        address: args.address,
        port: args.port,
        interface,
    };
    let dir = output_dir(&lab).join("AWSLogs");
    let mut records: Vec<ParsedRecord> = Vec::new();
    let mut printed = 0usize;
    let listing = !args.scans && args.top.is_none();
    for file in log_files(&dir) {
        let text =
            read_log_file(&file).map_err(|e| anyhow::anyhow!("read {}: {e}", file.display()))?;
        let mut lines = text.lines();
        let Some(header) = lines.next().and_then(parse_header) else {
            continue;
        };
        for line in lines {
            let Some(record) = parse_line(&header, line) else {
                continue;
            };
            if !filter.matches(&record) {
                continue;
            }
            if listing {
                println!("{line}");
                printed += 1;
            }
            records.push(record);
        }
    }
    if args.scans {
        let scans = port_scans(&records, 60, 10);
        if scans.is_empty() {
            println!("no port scan found ({} records)", records.len());
        }
        for s in scans {
            println!(
                "port scan: {} probed {} ports of {} (REJECT) between {} and {}",
                s.src, s.ports, s.dst, s.first, s.last
            );
        }
    }
    if let Some(n) = args.top {
        println!("{:<16} {:<16} BYTES", "SOURCE", "DESTINATION");
        for (src, dst, bytes) in top_talkers(&records, n) {
            println!("{:<16} {:<16} {bytes}", src.to_string(), dst.to_string());
        }
    }
    if listing && printed == 0 {
        eprintln!("no record matches (flow logs are written when a capture window closes; see aggregation_interval)");
    }
    Ok(0)
}
