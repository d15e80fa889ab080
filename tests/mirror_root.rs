//! Tier 3: traffic mirroring in a real lab, as root: VXLAN copies seen by a real tcpdump.

#[macro_use]
mod common;

use common::*;

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
    let ping = exec(lab, "client", &["ping", "-c", "2", "-W", "2", "10.70.1.10"]);
    assert!(text(&ping).contains("2 received"), "{}", text(&ping));
    // Accepted: HTTP to web1 and its answers.
    let curl = exec(
        lab,
        "client",
        &["curl", "-s", "--max-time", "5", "http://web1/"],
    );
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
