//! Tier 3: VPC Flow Logs of a real lab, as root: delivered files read by a real SQL engine,
//! port scans found, records followed as capture windows close.

#[macro_use]
mod common;

use common::*;

#[test]
fn flow_logs_reveal_a_port_scan_and_sql_counts_them() {
    require_root!();
    let lab = "t-flow";
    let file = variant("flowlog-portscan.yaml", lab, |s| s);
    let _guard = up(&file, lab);
    let web = "10.60.1.4";
    // 12 probes to ports the security group refuses, one SYN each, then 5 accepted GETs.
    let scan = format!(
        "for p in $(seq 30 41); do timeout 0.3 bash -c \"echo > /dev/tcp/{web}/$p\"; done; true"
    );
    let out = exec(lab, "scanner", &["bash", "-c", &scan]);
    assert!(out.status.success(), "{}", text(&out));
    for _ in 0..5 {
        let get = exec(
            lab,
            "scanner",
            &["curl", "-s", "--max-time", "3", &format!("http://{web}/")],
        );
        assert!(
            String::from_utf8_lossy(&get.stdout).contains("hello from web"),
            "{}",
            text(&get)
        );
    }
    // The capture window is 2 s; the writer closes windows every 0.5 s.
    std::thread::sleep(std::time::Duration::from_millis(3500));
    let scans = vpclab(&["logs", "--lab", lab, "--scans"]);
    assert!(
        text(&scans).contains(&format!("10.60.2.4 probed 12 ports of {web}")),
        "{}",
        text(&scans)
    );

    let rejects = vpclab(&["logs", "--lab", lab, "--action", "REJECT"]);
    let lines: Vec<String> = String::from_utf8_lossy(&rejects.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), 12, "{lines:?}");
    for line in &lines {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f.len(), 14, "default v2 format: {line}");
        assert_eq!(
            (f[0], f[3], f[4], f[7], f[12], f[13]),
            ("2", "10.60.2.4", web, "6", "REJECT", "OK")
        );
    }

    // A real SQL engine over the delivered S3-layout files, with Athena's columns.
    let root = format!("/run/vpclab/{lab}/flowlogs/AWSLogs");
    let query = format!(
        r#"
import duckdb
cols = {{'version':'INTEGER','account_id':'VARCHAR','interface_id':'VARCHAR','srcaddr':'VARCHAR',
        'dstaddr':'VARCHAR','srcport':'INTEGER','dstport':'INTEGER','protocol':'BIGINT',
        'packets':'BIGINT','bytes':'BIGINT','start':'BIGINT','end':'BIGINT','action':'VARCHAR',
        'log_status':'VARCHAR'}}
t = "read_csv('{root}/**/*.log.gz', delim=' ', header=true, nullstr='-', columns=" + repr(cols) + ")"
rejects = duckdb.sql(f"select count(*) from {{t}} where action='REJECT' and dstport between 30 and 41").fetchall()[0][0]
gets = duckdb.sql(f"select count(distinct srcport) from {{t}} where action='ACCEPT' and dstport=80 and dstaddr='{web}'").fetchall()[0][0]
print(rejects, gets)
"#
    );
    let sql = Command::new("python3")
        .args(["-c", &query])
        .output()
        .expect("python3");
    assert!(sql.status.success(), "duckdb: {}", text(&sql));
    assert_eq!(
        String::from_utf8_lossy(&sql.stdout).trim(),
        "12 5",
        "{}",
        text(&sql)
    );
    down_clean(lab);
}

#[test]
fn flow_logs_follow_prints_records_as_windows_close() {
    require_root!();
    let lab = "t-follow";
    let file = variant("flowlog-portscan.yaml", lab, |s| s);
    let _guard = up(&file, lab);
    let web = "10.60.1.4";
    let probe = |port: u16| {
        let cmd = format!("timeout 0.3 bash -c \"echo > /dev/tcp/{web}/{port}\"; true");
        let out = exec(lab, "scanner", &["bash", "-c", &cmd]);
        assert!(out.status.success(), "{}", text(&out));
    };
    let mut follow = ChildGuard(
        Command::new(BIN)
            .args(["logs", "--lab", lab, "--follow", "--action", "REJECT"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("run vpclab logs --follow"),
    );
    let stdout = follow.0.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    // Waits for the REJECT record of a probe to `port`; returns every line seen meanwhile.
    let wait_for = |port: u16| -> Vec<String> {
        let needle = format!(" 10.60.2.4 {web} ");
        let port = format!(" {port} 6 ");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            let Ok(line) = rx.recv_timeout(left) else {
                break;
            };
            let found = line.contains(&needle) && line.contains(&port);
            seen.push(line);
            if found {
                return seen;
            }
        }
        panic!("no REJECT record for port {port} within 10 s; saw {seen:?}");
    };
    // The follower is already running: both records are appended after it started, one
    // window (2 s) apart, and an accepted request between them is filtered out.
    probe(31);
    let first = wait_for(31);
    let get = exec(
        lab,
        "scanner",
        &["curl", "-s", "--max-time", "3", &format!("http://{web}/")],
    );
    assert!(get.status.success(), "{}", text(&get));
    probe(32);
    let second = wait_for(32);
    for line in first.iter().chain(&second) {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f.len(), 14, "default v2 format: {line}");
        assert_eq!((f[12], f[13]), ("REJECT", "OK"), "{line}");
    }
    drop(follow);
    down_clean(lab);
}
