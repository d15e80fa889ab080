//! `vpclab logs`: reads the flow-log files a lab delivered (S3 layout) and filters them, or
//! reports port scans and top talkers; with `--follow`, prints the per-interface streams as
//! they grow.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use crate::daemon::flowlogs::output_dir;
use crate::daemon::state::scenario_copy;
use crate::flowlog::{
    parse_header, parse_line, port_scans, read_log_file, top_talkers, Action, Follower, LogFilter,
    ParsedRecord, StreamLine,
};
use crate::scenario::{aws_id, load_str, FlowLogField};

use super::labs::pick_lab;

/// The options of `vpclab logs`.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct LogsArgs {
    #[arg(long)]
    pub lab: Option<String>,
    /// ACCEPT or REJECT.
    #[arg(long)]
    pub action: Option<String>,
    /// Source or destination address.
    #[arg(long)]
    pub address: Option<std::net::IpAddr>,
    /// Source or destination port.
    #[arg(long)]
    pub port: Option<u16>,
    /// An interface id (eni-...) or a host name.
    #[arg(long)]
    pub interface: Option<String>,
    /// Report sources that were rejected on many ports of one target.
    #[arg(long)]
    pub scans: bool,
    /// Report the N pairs that sent the most bytes.
    #[arg(long)]
    pub top: Option<usize>,
    /// Print the records of the per-interface (CloudWatch-style) streams, then new ones as
    /// they are written, until Ctrl-C.
    #[arg(short, long, conflicts_with_all = ["scans", "top"])]
    pub follow: bool,
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

/// The record filter the options ask for; a host name becomes its interface id.
fn filter_of(lab: &str, args: &LogsArgs) -> anyhow::Result<LogFilter> {
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
    let interface = args.interface.as_ref().map(|i| {
        if i.starts_with("eni-") {
            i.clone()
        } else {
            aws_id("eni", lab, i)
        }
    });
    Ok(LogFilter {
        action,
        address: args.address,
        port: args.port,
        interface,
    })
}

pub fn logs(args: LogsArgs) -> anyhow::Result<i32> {
    let lab = pick_lab(args.lab.as_deref())?;
    let filter = filter_of(&lab, &args)?;
    if args.follow {
        return follow(&lab, &filter);
    }
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

/// How often `--follow` looks at the streams; the daemon closes windows every 0.5 s too.
const FOLLOW_POLL: Duration = Duration::from_millis(500);

/// Prints the matching records of every stream of `lab`, then new ones as they are appended,
/// like `tail -f`, until interrupted (or until stdout is closed).
fn follow(lab: &str, filter: &LogFilter) -> anyhow::Result<i32> {
    let mut formats = stream_formats(lab)?;
    if formats.is_empty() {
        eprintln!("lab {lab} has no flow_logs yet; waiting for records");
    }
    let root = output_dir(lab).join("cloudwatch");
    let mut follower = Follower::new(&root);
    eprintln!(
        "following {} (Ctrl-C to stop)",
        root.join("*/eni-*-all.log").display()
    );
    let stdout = std::io::stdout();
    loop {
        let lines = follower
            .poll()
            .with_context(|| format!("follow the flow-log streams of lab {lab}"))?;
        if lines.iter().any(|l| !formats.contains_key(&l.flow_log)) {
            // A flow log added by an edit of the lab since we started.
            formats = stream_formats(lab)?;
        }
        let mut out = stdout.lock();
        let written = matching(&lines, &formats, filter)
            .into_iter()
            .try_for_each(|line| writeln!(out, "{line}"))
            .and_then(|()| out.flush());
        match written {
            Ok(()) => {}
            // `vpclab logs -f | head`: the reader is done.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(0),
            Err(e) => return Err(e).context("write to stdout"),
        }
        drop(out);
        std::thread::sleep(FOLLOW_POLL);
    }
}

/// Flow log name -> its fields, from the lab's copy of its scenario: streams have no header.
fn stream_formats(lab: &str) -> anyhow::Result<HashMap<String, Vec<FlowLogField>>> {
    let path = scenario_copy(lab);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("read the scenario of lab {lab} at {}", path.display()))?;
    let parsed = load_str(&text, &path.display().to_string())
        .map_err(|e| anyhow::anyhow!("load the scenario of lab {lab}: {e}"))?;
    Ok(parsed
        .flow_logs
        .into_iter()
        .map(|f| (f.name, f.fields))
        .collect())
}

/// The stream lines that pass `filter`, in order. A record names its interface by its stream
/// when the format has no `interface-id`, so `--interface` works on any format.
fn matching<'a>(
    lines: &'a [StreamLine],
    formats: &HashMap<String, Vec<FlowLogField>>,
    filter: &LogFilter,
) -> Vec<&'a str> {
    lines
        .iter()
        .filter(|l| {
            let Some(mut record) = formats
                .get(&l.flow_log)
                .and_then(|fields| parse_line(fields, &l.line))
            else {
                return false;
            };
            if record.interface_id.is_none() {
                record.interface_id = Some(l.interface_id.clone());
            }
            filter.matches(&record)
        })
        .map(|l| l.line.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        logs: LogsArgs,
    }

    #[test]
    fn options_parse_once_and_follow_excludes_the_reports() {
        let cli =
            Cli::try_parse_from(["logs", "-f", "--action", "reject", "--port", "22"]).unwrap();
        assert!(cli.logs.follow);
        assert_eq!(cli.logs.port, Some(22));
        let filter = filter_of("t", &cli.logs).unwrap();
        assert_eq!(filter.action, Some(Action::Reject));
        assert!(Cli::try_parse_from(["logs", "--follow", "--scans"]).is_err());
        assert!(Cli::try_parse_from(["logs", "--follow", "--top", "3"]).is_err());
        let host = Cli::try_parse_from(["logs", "--interface", "web1"]).unwrap();
        assert_eq!(
            filter_of("t", &host.logs).unwrap().interface,
            Some(aws_id("eni", "t", "web1"))
        );
        assert!(filter_of(
            "t",
            &Cli::try_parse_from(["logs", "--action", "drop"])
                .unwrap()
                .logs
        )
        .is_err());
    }

    #[test]
    fn follow_prints_appended_records_that_match() {
        let dir = std::env::temp_dir().join(format!("vpclab-logs-follow-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("all")).unwrap();
        std::fs::create_dir_all(dir.join("short")).unwrap();
        let formats: HashMap<String, Vec<FlowLogField>> = [
            ("all".to_string(), FlowLogField::DEFAULT_FORMAT.to_vec()),
            (
                "short".to_string(),
                vec![
                    FlowLogField::SrcAddr,
                    FlowLogField::DstPort,
                    FlowLogField::Action,
                ],
            ),
        ]
        .into();
        let filter = LogFilter {
            action: Some(Action::Reject),
            interface: Some("eni-0aaa".into()),
            ..LogFilter::default()
        };
        let line = |src: &str, port: u16, action: &str| {
            format!(
                "2 123456789012 eni-0aaa {src} 10.0.1.10 40000 {port} 6 1 60 1700000000 \
                 1700000001 {action} OK\n"
            )
        };
        let web = dir.join("all/eni-0aaa-all.log");
        std::fs::write(&web, line("192.0.2.1", 22, "REJECT")).unwrap();
        let mut follower = Follower::new(&dir);
        let first = follower.poll().unwrap();
        assert_eq!(matching(&first, &formats, &filter).len(), 1);

        let mut f = std::fs::OpenOptions::new().append(true).open(&web).unwrap();
        f.write_all(line("192.0.2.2", 80, "ACCEPT").as_bytes())
            .unwrap();
        f.write_all(line("192.0.2.3", 23, "REJECT").as_bytes())
            .unwrap();
        // A format without interface-id: the stream's name stands in for it.
        std::fs::write(dir.join("short/eni-0aaa-all.log"), "192.0.2.4 25 REJECT\n").unwrap();
        std::fs::write(dir.join("short/eni-0bbb-all.log"), "192.0.2.5 26 REJECT\n").unwrap();
        let next = follower.poll().unwrap();
        let shown = matching(&next, &formats, &filter);
        assert_eq!(shown.len(), 2, "{shown:?}");
        assert!(
            shown[0].contains("192.0.2.3 10.0.1.10 40000 23 "),
            "{shown:?}"
        );
        assert_eq!(shown[1], "192.0.2.4 25 REJECT");
        assert!(follower.poll().unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
