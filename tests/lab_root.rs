//! Tier 3: real labs in real namespaces, as root. Each test builds a lab with the `vpclab`
//! binary, sends real packets, tears it down and asserts that nothing of it is left. A guard
//! removes the lab even when an assertion fails. Without root every test says so and returns.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_vpclab");

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

fn vpclab(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run vpclab")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name)
}

/// Copies a scenario under another lab name (so tests can run side by side), optionally edited.
fn variant(file: &str, lab: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let original = std::fs::read_to_string(scenario(file)).unwrap();
    let renamed: String = original
        .lines()
        .map(|l| {
            if l.starts_with("name:") {
                format!("name: {lab}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let dir = std::env::temp_dir().join(format!("vpclab-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{lab}.yaml"));
    std::fs::write(&path, edit(renamed)).unwrap();
    path
}

/// What of a lab is on the machine: namespaces, host folders, state folder.
fn leftovers(lab: &str) -> Vec<String> {
    vpclab::daemon::teardown::leftovers(lab)
}

/// Tears the lab down when the test ends, however it ends.
struct LabGuard(String);

impl Drop for LabGuard {
    fn drop(&mut self) {
        let _ = vpclab(&["down", &self.0]);
    }
}

fn up(file: &Path, lab: &str) -> LabGuard {
    let guard = LabGuard(lab.to_string());
    let out = vpclab(&["up", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "up {}: {}",
        file.display(),
        text(&out)
    );
    guard
}

fn down_clean(lab: &str) {
    let out = vpclab(&["down", lab]);
    assert!(out.status.success(), "down {lab}: {}", text(&out));
    assert_eq!(leftovers(lab), Vec::<String>::new(), "lab {lab} leaked");
}

#[test]
fn every_scenario_passes_check_and_leaves_nothing() {
    require_root!();
    let mut files: Vec<PathBuf> = std::fs::read_dir(scenario(""))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for file in files {
        let text_in = std::fs::read_to_string(&file).unwrap();
        let lab = text_in
            .lines()
            .find_map(|l| l.strip_prefix("name:"))
            .map(|n| n.trim().to_string())
            .unwrap_or_else(|| file.file_stem().unwrap().to_string_lossy().to_string());
        let _guard = up(&file, &lab);
        let out = vpclab(&["check", file.to_str().unwrap()]);
        let report = text(&out);
        println!("{}:\n{report}", file.display());
        assert!(
            out.status.success(),
            "check {} failed:\n{report}",
            file.display()
        );
        assert!(report.contains(" 0 failed"), "{report}");
        down_clean(&lab);
    }
}

#[test]
fn exec_runs_real_programs_and_explain_names_the_reason() {
    require_root!();
    let lab = "t-exec";
    let file = variant("peering.yaml", lab, |s| s);
    let _guard = up(&file, lab);

    let ping = vpclab(&[
        "exec",
        "web1",
        "--lab",
        lab,
        "--",
        "ping",
        "-c",
        "2",
        "-W",
        "2",
        "10.1.1.20",
    ]);
    assert!(ping.status.success(), "ping web1 -> db1: {}", text(&ping));
    assert!(text(&ping).contains("2 received"), "{}", text(&ping));

    let curl = vpclab(&[
        "exec",
        "web1",
        "--lab",
        lab,
        "--",
        "curl",
        "-s",
        "--max-time",
        "5",
        "http://db1:80/",
    ]);
    assert!(curl.status.success(), "curl: {}", text(&curl));
    assert!(
        String::from_utf8_lossy(&curl.stdout).contains("db1"),
        "{}",
        text(&curl)
    );

    let blocked = vpclab(&[
        "exec", "web1", "--lab", lab, "--", "ping", "-c", "1", "-W", "1", "10.2.1.4",
    ]);
    assert!(
        !blocked.status.success(),
        "web1 must not reach c1 through b: {}",
        text(&blocked)
    );

    let explain = vpclab(&[
        "explain",
        "web1",
        "c1",
        "--protocol",
        "tcp",
        "--port",
        "22",
        "--lab",
        lab,
    ]);
    let said = text(&explain);
    assert_eq!(explain.status.code(), Some(3), "{said}");
    assert!(said.contains("PCX_REQUIRES_ADDRESS_IN_VPC_CIDR"), "{said}");
    assert!(said.contains("route 10.2.0.0/16 -> pcx:ab"), "{said}");

    let explain = vpclab(&[
        "explain",
        "db1",
        "c1",
        "--protocol",
        "tcp",
        "--port",
        "22",
        "--lab",
        lab,
    ]);
    assert_eq!(explain.status.code(), Some(0), "{}", text(&explain));
    assert!(
        text(&explain).contains("pcx:bc (inter-region, cross-account)"),
        "{}",
        text(&explain)
    );

    let status = vpclab(&["status", lab]);
    assert!(
        text(&status).contains("vl-t-exec-web1"),
        "{}",
        text(&status)
    );
    down_clean(lab);
}

#[test]
fn editing_the_file_and_running_up_again_applies_the_difference() {
    require_root!();
    let lab = "t-edit";
    let file = variant("peering-return-route.yaml", lab, |s| s);
    let _guard = up(&file, lab);
    let ping = |from: &str, to: &str| {
        vpclab(&[
            "exec", from, "--lab", lab, "--", "ping", "-c", "1", "-W", "1", to,
        ])
        .status
        .success()
    };
    assert!(!ping("ha", "10.30.1.4"), "c has no route back to a yet");
    let inode = |host: &str| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(format!("/run/netns/vl-{lab}-{host}"))
            .unwrap()
            .ino()
    };
    let before = (inode("ha"), inode("hb"), inode("hc"));

    // Give c a route table with the missing route back to a.
    let fixed = variant("peering-return-route.yaml", lab, |s| {
        s.replace(
            "    # No route table declared: c's implicit main table holds only the local route.\n",
            "    route_tables:\n      c-rt:\n        main: true\n        routes:\n          - { destination: 10.10.0.0/16, target: pcx:ac }\n",
        )
    });
    let out = vpclab(&["up", fixed.to_str().unwrap()]);
    assert!(out.status.success(), "re-up: {}", text(&out));
    assert!(text(&out).contains("updated routes"), "{}", text(&out));
    assert!(
        ping("ha", "10.30.1.4"),
        "the added route must make the ping pass"
    );
    assert!(ping("hc", "10.10.1.4"));
    assert_eq!(
        before,
        (inode("ha"), inode("hb"), inode("hc")),
        "unaffected hosts were rebuilt"
    );

    // Adding a host creates only that host.
    let grown = variant("peering-return-route.yaml", lab, |s| {
        s.replace(
            "      hb: { subnet: b1, security_groups: [b-sg], services: [http:80] }\n",
            "      hb: { subnet: b1, security_groups: [b-sg], services: [http:80] }\n      hb2: { subnet: b1, security_groups: [b-sg] }\n",
        )
    });
    let out = vpclab(&["up", grown.to_str().unwrap()]);
    assert!(out.status.success(), "re-up: {}", text(&out));
    assert!(text(&out).contains("created host hb2"), "{}", text(&out));
    assert!(ping("ha", "10.20.1.5"));
    assert_eq!(before.0, inode("ha"));
    down_clean(lab);
}

#[test]
fn down_works_after_the_daemon_was_killed() {
    require_root!();
    let lab = "t-kill";
    let file = variant("blackhole-route.yaml", lab, |s| s);
    let _guard = up(&file, lab);
    // A process left running inside a host must go too.
    let sleeper = Command::new("ip")
        .args(["netns", "exec", &format!("vl-{lab}-src"), "sleep", "300"])
        .spawn()
        .unwrap();
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("/run/vpclab/{lab}/state.json")).unwrap(),
    )
    .unwrap();
    let pid = state["daemon_pid"].as_i64().unwrap() as i32;
    // SAFETY: plain kill(2) of the lab's daemon, whose pid the lab recorded.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    std::thread::sleep(std::time::Duration::from_millis(300));
    let status = vpclab(&["status", lab]);
    assert!(text(&status).contains("DAEMON GONE"), "{}", text(&status));
    down_clean(lab);
    let mut sleeper = sleeper;
    let waited = sleeper.wait().unwrap();
    assert!(
        !waited.success(),
        "the process inside the lab was not killed"
    );
}

#[test]
fn a_clash_half_way_rolls_back_everything() {
    require_root!();
    let lab = "t-clash";
    let file = variant("peering.yaml", lab, |s| s);
    // Someone else's namespace with the name the 4th host would get.
    let foreign = format!("vl-{lab}-c1");
    assert!(Command::new("ip")
        .args(["netns", "add", &foreign])
        .status()
        .unwrap()
        .success());
    let out = vpclab(&["up", file.to_str().unwrap()]);
    let said = text(&out);
    let _ = Command::new("ip").args(["netns", "del", &foreign]).status();
    assert!(!out.status.success(), "up must fail on a clash: {said}");
    assert!(said.contains(&foreign), "{said}");
    assert_eq!(
        leftovers(lab),
        Vec::<String>::new(),
        "rollback left things: {said}"
    );
}

#[test]
fn bad_input_is_reported_with_positions_and_creates_nothing() {
    require_root!();
    let lab = "t-bad";
    let file = variant("peering.yaml", lab, |s| {
        s.replace("cidr: 10.1.0.0/16", "cidr: 10.1.0.0/33")
            .replace("subnet: b-db,", "subnet: b-nope,")
    });
    let out = vpclab(&["up", file.to_str().unwrap()]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains(&format!("{}:", file.display())),
        "errors name the file: {said}"
    );
    assert!(said.contains("10.1.0.0/33"), "{said}");
    assert!(said.contains("b-nope"), "{said}");
    assert_eq!(leftovers(lab), Vec::<String>::new());
}

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
    let out = vpclab(&["exec", "scanner", "--lab", lab, "--", "bash", "-c", &scan]);
    assert!(out.status.success(), "{}", text(&out));
    for _ in 0..5 {
        let get = vpclab(&[
            "exec",
            "scanner",
            "--lab",
            lab,
            "--",
            "curl",
            "-s",
            "--max-time",
            "3",
            &format!("http://{web}/"),
        ]);
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

/// Stops a process this test started (by its own handle) when the test ends, however it ends.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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
        let out = vpclab(&["exec", "scanner", "--lab", lab, "--", "bash", "-c", &cmd]);
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
    let get = vpclab(&[
        "exec",
        "scanner",
        "--lab",
        lab,
        "--",
        "curl",
        "-s",
        "--max-time",
        "3",
        &format!("http://{web}/"),
    ]);
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

#[test]
fn traffic_mirroring_copies_what_the_filter_accepts_to_the_monitor() {
    require_root!();
    let lab = "t-mirror";
    let file = variant("mirror-session.yaml", lab, |s| s);
    let _guard = up(&file, lab);
    let dir = std::env::temp_dir().join(format!("vpclab-test-{}", std::process::id()));
    let capture = dir.join("t-mirror.pcap");
    let _ = std::fs::remove_file(&capture);

    // A real tcpdump on the monitor's eth0, handed each packet as it comes (without
    // --immediate-mode, packets still in the kernel's ring when it stops are lost) and writing
    // it at once (-U); as root (-Z root) so it may write into the test's folder.
    let mut tcpdump = Command::new("ip")
        .args(["netns", "exec", &format!("vl-{lab}-monitor")])
        .args([
            "tcpdump",
            "-ni",
            "eth0",
            "--immediate-mode",
            "-U",
            "-Z",
            "root",
            "-w",
        ])
        .arg(&capture)
        .args(["udp", "port", "4789"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start tcpdump");
    let stderr = tcpdump.stderr.take().unwrap();
    let mut tcpdump = ChildGuard(tcpdump);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let listening = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("tcpdump says it listens");
    assert!(listening.contains("listening on eth0"), "{listening}");

    // Not accepted by the filter: pings pass, but nothing is copied.
    let ping = vpclab(&[
        "exec",
        "client",
        "--lab",
        lab,
        "--",
        "ping",
        "-c",
        "2",
        "-W",
        "2",
        "10.70.1.10",
    ]);
    assert!(text(&ping).contains("2 received"), "{}", text(&ping));
    // Accepted: HTTP to web1 and its answers.
    let curl = vpclab(&[
        "exec",
        "client",
        "--lab",
        lab,
        "--",
        "curl",
        "-s",
        "--max-time",
        "5",
        "http://web1/",
    ]);
    assert!(
        String::from_utf8_lossy(&curl.stdout).contains("web1"),
        "mirroring must not disturb the traffic: {}",
        text(&curl)
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    // SAFETY: kill(2) of the tcpdump this test started, by its pid: SIGINT makes it flush.
    unsafe { libc::kill(tcpdump.0.id() as i32, libc::SIGINT) };
    let stopped = tcpdump.0.wait().expect("wait for tcpdump");
    let summary: Vec<String> = rx.try_iter().collect();
    println!("tcpdump ended ({stopped}): {summary:?}");

    let read = Command::new("tcpdump")
        .args(["-nr"])
        .arg(&capture)
        .arg("-vv")
        .output()
        .expect("tcpdump -r");
    let said = String::from_utf8_lossy(&read.stdout).to_string();
    println!("{said}{}", String::from_utf8_lossy(&read.stderr));
    let copies: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("> 10.70.2.20.4789:"))
        .collect();
    // The handshake, the request, the answer and the close: at least 8 packets, each copied
    // once, from web1's primary address, with the session's VNI.
    assert!(copies.len() >= 8, "{said}");
    for copy in &copies {
        assert!(
            copy.trim_start().starts_with("10.70.1.10.")
                && copy.contains("VXLAN, flags [I] (0x08), vni 42"),
            "{copy}"
        );
    }
    assert!(
        said.contains("10.70.2.10.") && said.contains(" > 10.70.1.10.80: Flags [S]"),
        "the inbound SYN: {said}"
    );
    assert!(
        said.contains("10.70.1.10.80 > 10.70.2.10."),
        "the answers: {said}"
    );
    assert!(said.contains("GET / HTTP/1.1"), "{said}");
    // packet_length 128: no copy is longer than 20 + 8 + 8 + 128 bytes, and the ones that
    // carried the request and the answer were cut.
    let mut outer_lengths = Vec::new();
    for line in said
        .lines()
        .filter(|l| l.contains("proto UDP (17), length "))
    {
        let length: usize = line
            .rsplit("length ")
            .next()
            .and_then(|l| l.trim_end_matches(')').parse().ok())
            .unwrap_or_else(|| panic!("no length in {line}"));
        outer_lengths.push(length);
    }
    assert_eq!(outer_lengths.len(), copies.len(), "{said}");
    assert!(outer_lengths.iter().all(|&l| l <= 164), "{outer_lengths:?}");
    assert!(outer_lengths.contains(&164), "{outer_lengths:?}");
    assert!(said.contains("truncated-ip"), "{said}");
    assert!(!said.contains("ICMP"), "pings are not mirrored: {said}");
    down_clean(lab);
}

#[test]
fn the_internet_sees_public_ips_and_the_nat_gateways_elastic_ip() {
    require_root!();
    let lab = "t-edge";
    let file = variant("internet-nat.yaml", lab, |t| t);
    let _guard = up(&file, lab);
    // web1 has the pool's first public IP; the NAT gateway's Elastic IP comes after the
    // instances' (scenario order).
    let (web1_public, nat_public) = ("203.0.113.10", "203.0.113.11");
    let status = text(&vpclab(&["status", lab]));
    assert!(status.contains(web1_public), "{status}");
    // A real capture on the internet host: the SYNs of two requests, one from each subnet.
    let capture = Command::new(BIN)
        .args([
            "exec", "example", "--lab", lab, "--", "timeout", "20", "tcpdump", "-lni", "eth0",
            "-c", "2",
        ])
        .args(["tcp[tcpflags] & tcp-syn != 0 and tcp[tcpflags] & tcp-ack == 0 and dst port 80"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let capture = ChildGuard(capture);
    std::thread::sleep(std::time::Duration::from_secs(2));
    for from in ["web1", "app1"] {
        let out = vpclab(&[
            "exec",
            from,
            "--lab",
            lab,
            "--",
            "curl",
            "-s",
            "-m",
            "5",
            "http://example.com/",
        ]);
        assert!(
            text(&out).contains("hello from example"),
            "{from}: {}",
            text(&out)
        );
    }
    let mut capture = capture;
    let mut seen = String::new();
    use std::io::Read as _;
    capture
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut seen)
        .unwrap();
    println!("{seen}");
    let sources: Vec<&str> = seen
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .map(|a| a.rsplit_once('.').map_or(a, |(ip, _port)| ip))
        .collect();
    assert_eq!(sources, vec![web1_public, nat_public], "{seen}");
    // The NAT gateway processed (and would bill) app1's request and its reply.
    let cost = text(&vpclab(&["status", lab, "--cost"]));
    let line = cost_line(&cost, "nat:a-nat");
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert!(
        fields.len() == 4 && fields[2].parse::<u64>().unwrap() > 200,
        "{cost}"
    );
    assert!(fields[3].parse::<f64>().unwrap() >= 0.045, "{cost}");
    // The instance itself never sees its public IP.
    let addrs = text(&vpclab(&[
        "exec", "web1", "--lab", lab, "--", "ip", "-4", "-o", "addr",
    ]));
    assert!(!addrs.contains(web1_public), "{addrs}");
    assert!(addrs.contains("10.0.0."), "{addrs}");
    down_clean(lab);
}

#[test]
fn ssh_reaches_the_private_instance_only_through_the_bastion() {
    require_root!();
    let lab = "t-bastion";
    let file = variant("bastion.yaml", lab, |t| t);
    let _guard = up(&file, lab);
    // The bastion has the pool's first public IP; app1 has only its private address.
    let (bastion_public, app1) = ("203.0.113.10", "10.0.1.10");
    let status = text(&vpclab(&["status", lab]));
    assert!(status.contains(bastion_public), "{status}");
    // Real OpenSSH on both ends, every command bounded in time.
    let ssh = |from: &str, args: &[&str]| {
        let mut all = vec!["exec", from, "--lab", lab, "--", "timeout", "30", "ssh"];
        all.extend(["-o", "BatchMode=yes", "-o", "ConnectTimeout=5"]);
        all.extend(args);
        vpclab(&all)
    };
    let jump = format!("root@{bastion_public}");
    let target = format!("root@{app1}");
    let by_address = ssh(
        "admin",
        &[
            "-J", &jump, &target, "ip", "-4", "-o", "addr", "show", "eth0",
        ],
    );
    println!("admin -J {jump} {target}: {}", text(&by_address));
    assert!(by_address.status.success(), "{}", text(&by_address));
    assert!(
        text(&by_address).contains(&format!("inet {app1}/24")),
        "{}",
        text(&by_address)
    );
    // The names of the admin's ssh config: `bastion` is its public IP from the internet.
    let by_name = ssh(
        "admin",
        &["-J", "bastion", "app1", "ip", "-4", "-o", "addr"],
    );
    println!("admin -J bastion app1: {}", text(&by_name));
    assert!(
        text(&by_name).contains(&format!("inet {app1}/24")),
        "{}",
        text(&by_name)
    );
    // Straight to the private address: not routable from the internet; ssh itself gives up
    // (exit 255), the command never runs.
    let direct = ssh("admin", &[&target, "true"]);
    println!("admin -> {target}: {}", text(&direct));
    assert_eq!(direct.status.code(), Some(255), "{}", text(&direct));
    assert!(text(&direct).contains("port 22"), "{}", text(&direct));
    // Anyone but the admin: the bastion's security group drops it.
    let stranger = ssh("other", &[&jump, "true"]);
    println!("other -> {jump}: {}", text(&stranger));
    assert_eq!(stranger.status.code(), Some(255), "{}", text(&stranger));
    assert!(text(&stranger).contains("port 22"), "{}", text(&stranger));
    down_clean(lab);
    // No sshd of the lab survives it.
    let marker = format!("/run/vpclab/{lab}/");
    let survivors: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains("sshd") && c.contains(&marker))
        .collect();
    assert_eq!(survivors, Vec::<String>::new());
}

/// The line of `component` in the cost table of `vpclab status --cost`.
fn cost_line<'a>(status: &'a str, component: &str) -> &'a str {
    status
        .lines()
        .skip_while(|l| !l.contains("COMPONENT"))
        .find(|l| l.split_whitespace().next() == Some(component))
        .unwrap_or_default()
}

/// The AWS CLI, run inside `host` against the lab's S3 with throwaway credentials, trying
/// each request `attempts` times.
fn aws_cli(lab: &str, host: &str, attempts: u8, args: &[&str]) -> Output {
    let attempts = format!("AWS_MAX_ATTEMPTS={attempts}");
    let mut argv = vec![
        "exec",
        host,
        "--lab",
        lab,
        "--",
        "env",
        "AWS_ACCESS_KEY_ID=lab",
        "AWS_SECRET_ACCESS_KEY=lab",
        "AWS_DEFAULT_REGION=us-east-1",
        "AWS_EC2_METADATA_DISABLED=true",
        &attempts,
        "timeout",
        "30",
        "aws",
        "--cli-connect-timeout",
        "3",
        "--endpoint-url",
        "http://s3.us-east-1.amazonaws.com",
    ];
    argv.extend_from_slice(args);
    vpclab(&argv)
}

#[test]
fn the_aws_cli_reaches_s3_through_a_gateway_endpoint_only() {
    require_root!();
    let lab = "t-s3";
    let file = variant("s3-gateway-endpoint.yaml", lab, |t| t);
    let _guard = up(&file, lab);
    let made = aws_cli(lab, "app1", 2, &["s3", "mb", "s3://lab-bucket"]);
    assert!(made.status.success(), "{}", text(&made));
    let object = std::env::temp_dir().join(format!("vpclab-s3-{}.txt", std::process::id()));
    std::fs::write(&object, "through vpce:a-s3\n").unwrap();
    let put = aws_cli(
        lab,
        "app1",
        2,
        &[
            "s3",
            "cp",
            object.to_str().unwrap(),
            "s3://lab-bucket/hello.txt",
        ],
    );
    let _ = std::fs::remove_file(&object);
    assert!(put.status.success(), "{}", text(&put));
    let listed = aws_cli(lab, "app1", 2, &["s3", "ls", "s3://lab-bucket/"]);
    assert!(text(&listed).contains("hello.txt"), "{}", text(&listed));
    // S3 saw the instance's private address: no translation on the endpoint path.
    let log = std::fs::read_to_string(format!("/run/vpclab/{lab}/s3.log")).unwrap();
    assert!(log.contains("10.0.1.4 - -"), "{log}");
    // The endpoint carried those bytes, for nothing.
    let cost = text(&vpclab(&["status", lab, "--cost"]));
    let line = cost_line(&cost, "vpce:a-s3");
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert!(
        fields.len() == 4 && fields[2].parse::<u64>().unwrap() > 1000,
        "{cost}"
    );
    assert_eq!(fields[3], "0.0000", "{cost}");
    // The subnet whose table lacks the endpoint route gets nowhere.
    let denied = aws_cli(lab, "other1", 1, &["s3", "ls"]);
    assert!(!denied.status.success(), "{}", text(&denied));
    down_clean(lab);
}

#[test]
fn dns_resolver_and_instance_metadata_answer_real_clients() {
    require_root!();
    let lab = "t-dns";
    // internet-nat with web1 at a known address and a flow log on all of vpc a.
    let edit = |dns_b: &str| {
        let dns_b = dns_b.to_string();
        move |s: String| {
            s.replace(
                "web1:  { subnet: public,",
                "web1:  { subnet: public, private_ip: 10.0.0.10,",
            )
            .replace(
                "    internet_gateway: true\n",
                "    internet_gateway: true\n    flow_logs:\n      a-all: { resource: vpc:a, traffic: ALL, aggregation_interval: 1 }\n",
            )
            .replace(
                "    cidr: 10.1.0.0/16\n",
                &format!("    cidr: 10.1.0.0/16\n    dns: {dns_b}\n"),
            )
        }
    };
    let file = variant("internet-nat.yaml", lab, edit("true"));
    let _guard = up(&file, lab);
    let run = |host: &str, cmd: &[&str]| {
        let mut args = vec!["exec", host, "--lab", lab, "--"];
        args.extend_from_slice(cmd);
        let out = vpclab(&args);
        let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
        println!("{host}$ {} -> {said}", cmd.join(" "));
        said
    };

    // Instances ask their VPC's resolver, with the region's search domain.
    let resolv = run("app1", &["cat", "/etc/resolv.conf"]);
    assert!(
        resolv.contains("nameserver 10.0.0.2\nsearch ec2.internal\n"),
        "{resolv}"
    );
    assert!(!run("example", &["cat", "/etc/resolv.conf"]).contains("nameserver"));

    // Real dig: host names, private DNS names at both addresses, internet names, NXDOMAIN.
    let dig = |host: &str, args: &[&str]| {
        let mut cmd = vec!["dig", "+short", "+time=2", "+tries=2"];
        cmd.extend_from_slice(args);
        run(host, &cmd)
    };
    assert_eq!(dig("app1", &["@10.0.0.2", "web1"]), "10.0.0.10");
    assert_eq!(
        dig("app1", &["@169.254.169.253", "ip-10-0-0-10.ec2.internal"]),
        "10.0.0.10"
    );
    assert_eq!(dig("app1", &["example.com"]), "198.51.100.10");
    assert_eq!(dig("peer1", &["IP-10-0-0-10.EC2.internal"]), "10.0.0.10");
    let nx = run("app1", &["dig", "+time=2", "nothing.example"]);
    assert!(nx.contains("status: NXDOMAIN"), "{nx}");
    let aaaa = run("app1", &["dig", "+time=2", "web1", "AAAA"]);
    assert!(
        aaaa.contains("status: NOERROR") && aaaa.contains("ANSWER: 0"),
        "{aaaa}"
    );
    // glibc through resolv.conf: the search domain completes the short name.
    let getent = run("app1", &["getent", "hosts", "ip-10-0-0-10"]);
    assert!(getent.starts_with("10.0.0.10"), "{getent}");
    let curl = run(
        "app1",
        &["curl", "-s", "--max-time", "5", "http://example.com/"],
    );
    assert_eq!(curl, "hello from example");

    // The metadata service, from inside each instance.
    let imds = |host: &str, path: &str| {
        let url = format!("http://169.254.169.254/latest/meta-data/{path}");
        run(host, &["curl", "-s", "--max-time", "5", &url])
    };
    assert_eq!(imds("web1", "local-ipv4"), "10.0.0.10");
    let id = imds("web1", "instance-id");
    assert!(
        id.len() == 19 && id.starts_with("i-") && id[2..].chars().all(|c| c.is_ascii_hexdigit()),
        "{id}"
    );
    assert_ne!(id, imds("app1", "instance-id"));
    assert_eq!(imds("web1", "hostname"), "ip-10-0-0-10.ec2.internal");
    let public = imds("web1", "public-ipv4");
    assert!(public.starts_with("203.0.113."), "{public}");
    let public_name = imds("web1", "public-hostname");
    assert_eq!(
        public_name,
        format!("ec2-{}.compute-1.amazonaws.com", public.replace('.', "-"))
    );
    let status = |host: &str, url: &str, header: &str| {
        run(
            host,
            &[
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-H",
                header,
                url,
            ],
        )
    };
    let nopub = "http://169.254.169.254/latest/meta-data/public-ipv4";
    assert_eq!(status("app1", nopub, "X-Nothing: 1"), "404");
    // IMDSv2: a token from PUT; with it GETs work, with a wrong one they get 401.
    let token = run(
        "web1",
        &[
            "curl",
            "-s",
            "-X",
            "PUT",
            "-H",
            "X-aws-ec2-metadata-token-ttl-seconds: 60",
            "http://169.254.169.254/latest/api/token",
        ],
    );
    assert!(token.len() >= 32, "{token}");
    let local = "http://169.254.169.254/latest/meta-data/local-ipv4";
    let with = format!("X-aws-ec2-metadata-token: {token}");
    let v2 = run("web1", &["curl", "-s", "-H", &with, local]);
    assert_eq!(v2, "10.0.0.10");
    let wrong = "X-aws-ec2-metadata-token: wrong";
    assert_eq!(status("web1", local, wrong), "401");
    // The service on 169.254.169.254:80 and web1's own http:80 share the port.
    let own = run(
        "web1",
        &["curl", "-s", "--max-time", "5", "http://10.0.0.10/"],
    );
    assert_eq!(own, "hello from web1");

    // Split horizon: the public name is the private address inside the VPC, public outside.
    assert_eq!(dig("app1", &[&public_name]), "10.0.0.10");
    assert_eq!(dig("peer1", &[&public_name]), public);

    // Neither DNS nor metadata shows in the flow log, which did record the curl.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let logs = text(&vpclab(&["logs", "--lab", lab]));
    assert!(logs.contains(" 198.51.100.10 "), "{logs}");
    for quiet in [" 10.0.0.2 ", " 169.254.169.253 ", " 169.254.169.254 "] {
        assert!(!logs.contains(quiet), "{quiet} logged: {logs}");
    }

    // DNS off in vpc b: no nameserver, and nothing answers at its base + 2.
    let off = variant("internet-nat.yaml", lab, edit("false"));
    let out = vpclab(&["up", off.to_str().unwrap()]);
    assert!(out.status.success(), "re-up: {}", text(&out));
    assert!(!run("peer1", &["cat", "/etc/resolv.conf"]).contains("nameserver"));
    let silent = run(
        "peer1",
        &["dig", "+time=1", "+tries=1", "@10.1.0.2", "web1"],
    );
    assert!(silent.contains("timed out"), "{silent}");
    assert_eq!(dig("app1", &["@10.0.0.2", "peer1"]), "10.1.1.4");
    down_clean(lab);
}

#[test]
fn an_interface_endpoint_answers_by_private_dns_with_its_own_security_group() {
    require_root!();
    let lab = "t-iface";
    let file = variant("interface-endpoint.yaml", lab, |t| t);
    let _guard = up(&file, lab);
    let run = |host: &str, args: &[&str]| {
        let mut argv = vec!["exec", host, "--lab", lab, "--", "timeout", "10"];
        argv.extend_from_slice(args);
        text(&vpclab(&argv))
    };
    // Private DNS: inside VPC a the public name is the endpoint's interface; in b it is not.
    let name = "sqs.us-east-1.amazonaws.com";
    assert_eq!(run("app1", &["dig", "+short", name]).trim(), "10.0.2.4");
    assert_eq!(run("peer1", &["dig", "+short", name]).trim(), "192.0.2.10");
    let url = format!("http://{name}/");
    let code = run(
        "app1",
        &["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", &url],
    );
    assert_eq!(code, "200");
    // The endpoint's group refuses other-sg: the connection times out.
    let refused = run(
        "other1",
        &["curl", "-s", "-m", "3", "-o", "/dev/null", &url],
    );
    assert!(!refused.contains("200"), "{refused}");
    // The service saw the instance's private address, and the endpoint metered the bytes.
    let log = std::fs::read_to_string(format!("/run/vpclab/{lab}/sqs.log")).unwrap();
    assert!(log.contains("10.0.1.4 - -"), "{log}");
    let cost = text(&vpclab(&["status", lab, "--cost"]));
    assert!(cost.contains("vpce:a-sqs"), "{cost}");
    down_clean(lab);
}
