//! Helpers of the VPN root tests: a capture that runs for a set time, the timeline of a
//! stream of pings around a fault, WireGuard's transfer counters in the site's router, and
//! the daemon's tunnel records.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use vpclab::daemon::control::{call, Reply, Request};
use vpclab::daemon::vpn_status::TunnelRecord;

use super::common::{exec, text, ChildGuard, BIN};

/// Now, in seconds since the epoch, as `ping -D` prints its timestamps.
pub fn epoch_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A real `tcpdump` on `host`'s eth0 for `secs` seconds (then SIGINT, so that it writes all
/// it saw), returned once it listens.
pub fn capture_for(lab: &str, host: &str, secs: u32, filter: &str) -> ChildGuard {
    let mut child = Command::new(BIN)
        .args(["exec", host, "--lab", lab, "--", "timeout", "-s", "INT"])
        .arg(secs.to_string())
        .args(["tcpdump", "-lni", "eth0", filter])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tcpdump");
    if let Some(stderr) = child.stderr.take() {
        let mut lines = BufReader::new(stderr).lines();
        // tcpdump says so on stderr once its capture is open; the rest of stderr is dropped.
        while let Some(Ok(line)) = lines.next() {
            if line.starts_with("listening on") {
                break;
            }
        }
    }
    ChildGuard(child)
}

/// `ping -D -i 0.1` from `host` to `to` for `secs` seconds, in the background.
pub fn pings(lab: &str, host: &str, to: &str, secs: u32) -> ChildGuard {
    let child = Command::new(BIN)
        .args([
            "exec", host, "--lab", lab, "--", "ping", "-D", "-n", "-i", "0.1",
        ])
        .args(["-w", &secs.to_string(), to])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ping");
    ChildGuard(child)
}

/// The replies in `ping -D` output: (when, in seconds since the epoch; icmp_seq).
pub fn replies(out: &str) -> Vec<(f64, u32)> {
    out.lines()
        .filter(|l| l.contains(" bytes from "))
        .filter_map(|l| {
            let when = l.strip_prefix('[')?.split(']').next()?.parse().ok()?;
            let seq = l
                .split("icmp_seq=")
                .nth(1)?
                .split(' ')
                .next()?
                .parse()
                .ok()?;
            Some((when, seq))
        })
        .collect()
}

/// What a fault at `fault_at` did to a stream of pings.
#[derive(Debug, PartialEq)]
pub struct Outage {
    /// From the fault to the first reply after the pings it lost (to the first reply after
    /// it when it lost none).
    pub resumed_ms: f64,
    /// From the reply before that one to it.
    pub silent_ms: f64,
    /// Pings without a reply between the first and last answered.
    pub lost: u32,
    /// Replies after the fault.
    pub after: usize,
}

/// None when no reply came after the fault. The pings a fault loses are the longest run of
/// unanswered sequence numbers from the last reply before it on.
pub fn outage(replies: &[(f64, u32)], fault_at: f64) -> Option<Outage> {
    let mut by_seq = replies.to_vec();
    by_seq.sort_by_key(|r| r.1);
    let first_after = by_seq.iter().position(|r| r.0 >= fault_at)?;
    let from = first_after.saturating_sub(1);
    let pairs = by_seq[from..].windows(2);
    let widest = pairs.max_by_key(|w| w[1].1 - w[0].1)?;
    let (before, resumed) = if widest[1].1 - widest[0].1 > 1 {
        (widest[0], widest[1])
    } else {
        (by_seq[from], by_seq[first_after])
    };
    let span = match (by_seq.first(), by_seq.last()) {
        (Some(lo), Some(hi)) => hi.1 - lo.1 + 1,
        _ => 0,
    };
    Some(Outage {
        resumed_ms: (resumed.0 - fault_at) * 1000.0,
        silent_ms: (resumed.0 - before.0) * 1000.0,
        lost: span.saturating_sub(by_seq.len() as u32),
        after: by_seq.len() - first_after,
    })
}

/// WireGuard's (received, sent) bytes on interface `ifname` of the site's router.
pub fn transfer(lab: &str, router: &str, ifname: &str) -> (u64, u64) {
    let out = exec(lab, router, &["wg", "show", ifname, "transfer"]);
    assert!(out.status.success(), "wg show {ifname}: {}", text(&out));
    let line = String::from_utf8_lossy(&out.stdout).to_string();
    let mut words = line.split_whitespace().skip(1).map(|w| w.parse().unwrap());
    (words.next().unwrap(), words.next().unwrap())
}

/// The daemon's records of the lab's tunnels (what `vpclab status` prints).
pub fn tunnels(lab: &str) -> Vec<TunnelRecord> {
    match call(lab, &Request::Status, Duration::from_secs(10)) {
        Ok(Reply::Status { tunnels, .. }) => tunnels,
        other => panic!("status of lab {lab}: {other:?}"),
    }
}

/// Tunnel `number` of the first connection.
pub fn tunnel(lab: &str, number: u8) -> TunnelRecord {
    tunnels(lab)
        .into_iter()
        .find(|t| t.number == number)
        .unwrap_or_else(|| panic!("lab {lab} has no tunnel {number}"))
}

/// Waits up to `limit` until tunnel `number` is up or down as `up` says; true if it became so.
pub fn wait_tunnel(lab: &str, number: u8, up: bool, limit: Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if tunnel(lab, number).up == up {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The line of tunnel `number` of `connection` in `vpclab status` output.
pub fn status_line<'a>(status: &'a str, connection: &str, number: u8) -> &'a str {
    status
        .lines()
        .find(|l| {
            let mut words = l.split_whitespace();
            words.next() == Some(connection) && words.next() == Some(&number.to_string())
        })
        .unwrap_or_else(|| panic!("no tunnel {number} of {connection} in:\n{status}"))
}

#[test]
fn an_outage_is_the_run_of_pings_a_fault_lost() {
    let out = "PING 10.0.1.10 (10.0.1.10) 56(84) bytes of data.\n\
        [100.000000] 64 bytes from 10.0.1.10: icmp_seq=1 ttl=63 time=1.0 ms\n\
        [100.100000] 64 bytes from 10.0.1.10: icmp_seq=2 ttl=63 time=1.0 ms\n\
        [100.300000] 64 bytes from 10.0.1.10: icmp_seq=4 ttl=63 time=1.0 ms\n\
        [106.400000] 64 bytes from 10.0.1.10: icmp_seq=65 ttl=63 time=1.0 ms\n\
        [106.500000] 64 bytes from 10.0.1.10: icmp_seq=66 ttl=63 time=1.0 ms\n";
    let r = replies(out);
    assert_eq!(r.len(), 5);
    assert_eq!(r[2], (100.3, 4));
    let near = |a: f64, b: f64| (a - b).abs() < 1e-6;
    // The fault lost pings 5 to 64 (3, before it, is not its).
    let o = outage(&r, 100.25).unwrap();
    assert!(
        near(o.resumed_ms, 6150.0) && near(o.silent_ms, 6100.0),
        "{o:?}"
    );
    assert_eq!((o.lost, o.after), (61, 3));
    // A fault that lost nothing: the first reply after it.
    let o = outage(&r, 106.45).unwrap();
    assert!(
        near(o.resumed_ms, 50.0) && near(o.silent_ms, 100.0),
        "{o:?}"
    );
    assert_eq!(o.after, 1);
    // Nothing after the fault: no outage to measure, the traffic never resumed.
    assert_eq!(outage(&r, 107.0), None);
}
