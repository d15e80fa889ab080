//! Tier 3: the life of a lab, as root: every scenario up, checked with real packets and down
//! with nothing left; exec and explain; editing and re-applying; down after the daemon was
//! killed; rollback of a half-built lab; bad input that creates nothing.

#[macro_use]
mod common;

use common::*;

#[test]
fn every_scenario_passes_check_and_leaves_nothing() {
    require_root!();
    let mut files: Vec<PathBuf> = std::fs::read_dir(scenario(""))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml") && !pending(p))
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

    let ping = exec(lab, "web1", &["ping", "-c", "2", "-W", "2", "10.1.1.20"]);
    assert!(ping.status.success(), "ping web1 -> db1: {}", text(&ping));
    assert!(text(&ping).contains("2 received"), "{}", text(&ping));

    let curl = exec(
        lab,
        "web1",
        &["curl", "-s", "--max-time", "5", "http://db1:80/"],
    );
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
fn a_lab_started_with_busy_polling_on_one_packet_thread_carries_every_packet() {
    require_root!();
    let lab = "t-poll";
    let file = variant("peering.yaml", lab, |s| s);
    let path = file.to_str().unwrap();
    let refused = vpclab(&["up", path, "--packet-threads", "0"]);
    assert!(!refused.status.success(), "0 threads accepted");
    assert!(
        text(&refused).contains("--packet-threads"),
        "{}",
        text(&refused)
    );
    assert_eq!(leftovers(lab), Vec::<String>::new());

    let _guard = LabGuard(lab.to_string());
    let args = ["up", path, "--busy-poll", "5000", "--packet-threads", "1"];
    let out = vpclab(&args);
    assert!(out.status.success(), "up: {}", text(&out));
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("/run/vpclab/{lab}/state.json")).unwrap(),
    )
    .unwrap();
    let pid = state["daemon_pid"].as_i64().unwrap();
    let threads: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .filter(|name| name.starts_with("vpclab-packets"))
        .collect();
    assert_eq!(threads.len(), 1, "packet threads: {threads:?}");
    let check = vpclab(&["check", path]);
    let report = text(&check);
    assert!(check.status.success(), "{report}");
    assert!(report.contains(" 0 failed"), "{report}");
    down_clean(lab);
}
