//! Tier 3, as root: an on-premises site with a Site-to-Site VPN (scenarios/vpn-static.yaml).
//! The site's router is on the lab's internet and its hosts on its LAN; its customer side is
//! real WireGuard (wireguard-go: two interfaces, peers at the AWS outside addresses), brought
//! up by `up`, and again from the file `vpclab vpn config --tunnel 1` exports alone. What
//! crosses the internet is WireGuard only, while the VPC sees the plain packets; a tunnel
//! taken down by `vpclab fault`, or whose customer side stops, fails over to the other one,
//! and `vpclab status` shows which is up. `down` leaves no namespace, no wireguard-go and no
//! socket, also after the daemon was killed.

#[macro_use]
mod common;
mod vpn;

use std::time::Duration;

use common::*;

/// vpn-static with an internet host the router can reach.
fn lab_file(lab: &str) -> PathBuf {
    variant("vpn-static.yaml", lab, |text| {
        text + "\ninternet:\n  hosts:\n    example: { ip: 198.51.100.10, services: [http:80] }\n"
    })
}

/// The customer side's interface names of the lab in `file` (they follow from the lab's and
/// the connection's names).
fn interfaces(file: &Path) -> Vec<String> {
    let lab = vpclab::scenario::load_file(file).unwrap_or_else(|e| panic!("{e}"));
    lab.vpn_connections
        .iter()
        .flat_map(|c| c.tunnels.iter().map(|t| t.interface.clone()))
        .collect()
}

/// Living wireguard-go processes (zombies waiting for init are dead) whose command line
/// names one of `names`.
fn wireguard_go(names: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let dir = entry.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() != "wireguard-go" {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
        let state = stat.rfind(')').and_then(|i| stat.get(i + 2..i + 3));
        if state == Some("Z") || state.is_none() {
            continue;
        }
        let cmdline = std::fs::read_to_string(dir.join("cmdline"))
            .unwrap_or_default()
            .replace('\0', " ");
        if names.iter().any(|n| cmdline.contains(n.as_str())) {
            found.push(format!(
                "{} {}",
                entry.file_name().to_string_lossy(),
                cmdline
            ));
        }
    }
    found
}

fn socket(ifname: &str) -> PathBuf {
    Path::new("/var/run/wireguard").join(format!("{ifname}.sock"))
}

/// `wg-quick` inside the router of lab `lab`, userspace.
fn wg_quick(lab: &str, verb: &str, file: &Path) -> Output {
    Command::new("ip")
        .args([
            "netns",
            "exec",
            &format!("vl-{lab}-hq-router"),
            "wg-quick",
            verb,
        ])
        .arg(file)
        .env("WG_QUICK_USERSPACE_IMPLEMENTATION", "wireguard-go")
        .output()
        .unwrap()
}

/// Takes down the interface this test brought up by hand (not the lab's: `down` does not
/// know it) and removes its file (a private key), however the test ends.
struct ManualTunnel {
    lab: String,
    file: PathBuf,
    ifname: String,
}

impl Drop for ManualTunnel {
    fn drop(&mut self) {
        let _ = wg_quick(&self.lab, "down", &self.file);
        let _ = std::fs::remove_file(socket(&self.ifname));
        if let Some(dir) = self.file.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// `wg show IFNAME endpoints` in the router: (peer key, endpoint).
fn endpoint(lab: &str, ifname: &str) -> (String, String) {
    let out = exec(lab, "hq-router", &["wg", "show", ifname, "endpoints"]);
    assert!(out.status.success(), "wg show {ifname}: {}", text(&out));
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let (key, ep) = line.split_once('\t').unwrap_or_else(|| panic!("{line:?}"));
    (key.to_string(), ep.to_string())
}

#[test]
fn the_customer_side_comes_up_from_up_and_from_the_exported_file_alone() {
    require_root!();
    let lab = "t-vpn";
    let file = lab_file(lab);
    let names = interfaces(&file);
    assert_eq!(names.len(), 2);
    let _guard = up(&file, lab);

    // The router is on the lab's internet (its eth0 is a TUN into the fabric) ...
    let ping = exec(
        lab,
        "hq-router",
        &["ping", "-c", "2", "-W", "2", "198.51.100.10"],
    );
    assert!(text(&ping).contains("2 received"), "{}", text(&ping));
    // ... and the site's hosts on its LAN, with their services.
    let ping = exec(lab, "pc1", &["ping", "-c", "2", "-W", "2", "192.168.0.1"]);
    assert!(text(&ping).contains("2 received"), "{}", text(&ping));
    let curl = exec(
        lab,
        "hq-router",
        &["curl", "-s", "--max-time", "5", "http://pc1/"],
    );
    assert!(
        String::from_utf8_lossy(&curl.stdout).contains("pc1"),
        "{}",
        text(&curl)
    );

    // `up` brought the customer side up: one wireguard-go per tunnel, peers at AWS's outside
    // addresses, tunnel 1's route to the VPC preferred.
    assert_eq!(wireguard_go(&names).len(), 2, "{:?}", wireguard_go(&names));
    let show = exec(lab, "hq-router", &["wg", "show", "interfaces"]);
    for name in &names {
        assert!(text(&show).contains(name.as_str()), "{}", text(&show));
    }
    let (aws_key, ep1) = endpoint(lab, &names[0]);
    assert_eq!(ep1, "203.0.113.10:51820");
    assert_eq!(endpoint(lab, &names[1]).1, "203.0.113.11:51821");
    let routes = text(&exec(
        lab,
        "hq-router",
        &["ip", "route", "show", "10.0.0.0/16"],
    ));
    assert!(
        routes.contains(&format!("dev {} scope link metric 100", names[0])),
        "{routes}"
    );
    assert!(
        routes.contains(&format!("dev {} scope link metric 200", names[1])),
        "{routes}"
    );

    // Stop it, then bring tunnel 1 up from the exported file alone.
    for name in &names {
        let own = PathBuf::from(format!("/run/vpclab/{lab}/wireguard/{name}.conf"));
        let down = wg_quick(lab, "down", &own);
        assert!(down.status.success(), "{}", text(&down));
    }
    assert_eq!(wireguard_go(&names), Vec::<String>::new());
    assert!(!socket(&names[0]).exists());
    let exported = vpclab(&["vpn", "config", "hq-vpn", "--lab", lab, "--tunnel", "1"]);
    assert!(exported.status.success(), "{}", text(&exported));
    let dir = std::env::temp_dir().join(format!("vpclab-vpn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // wg-quick names the interface after the file.
    let ifname = "wgtvpnroot1".to_string();
    let mine = dir.join(format!("{ifname}.conf"));
    std::fs::write(&mine, &exported.stdout).unwrap();
    let manual = ManualTunnel {
        lab: lab.to_string(),
        file: mine.clone(),
        ifname: ifname.clone(),
    };
    let brought = wg_quick(lab, "up", &mine);
    assert!(brought.status.success(), "{}", text(&brought));
    assert_eq!(wireguard_go(std::slice::from_ref(&ifname)).len(), 1);
    assert_eq!(
        endpoint(lab, &ifname),
        (aws_key, ep1),
        "same peer, same key"
    );
    let port = text(&exec(
        lab,
        "hq-router",
        &["wg", "show", &ifname, "listen-port"],
    ));
    assert_eq!(port.trim(), "51820");
    let addr = text(&exec(
        lab,
        "hq-router",
        &["ip", "-br", "addr", "show", &ifname],
    ));
    assert!(addr.contains("169.254.10.2/30"), "{addr}");
    let routes = text(&exec(
        lab,
        "hq-router",
        &["ip", "route", "show", "10.0.0.0/16"],
    ));
    assert!(
        routes.contains(&format!("dev {ifname} scope link metric 100")),
        "{routes}"
    );
    drop(manual);
    assert!(!socket(&ifname).exists());

    down_clean(lab);
    assert_eq!(wireguard_go(&names), Vec::<String>::new());
    for name in &names {
        assert!(!socket(name).exists(), "{name}'s socket is left");
    }
}

#[test]
fn the_internet_sees_only_wireguard_while_the_vpc_sees_the_plain_packets() {
    require_root!();
    let lab = "t-vpn-wire";
    let file = lab_file(lab);
    let names = interfaces(&file);
    let _guard = up(&file, lab);

    // Everything IPv4 on the router's internet side, and the pings as app1 receives them.
    let mut outside = vpn::capture_for(lab, "hq-router", 5, "ip");
    let mut inside = capture(lab, "app1", "4", "icmp and src 192.168.1.10");
    std::thread::sleep(Duration::from_millis(500));
    let ping = exec(lab, "pc1", &["ping", "-c", "4", "-i", "0.2", "10.0.1.10"]);
    assert!(text(&ping).contains("4 received"), "{}", text(&ping));
    let curl = exec(
        lab,
        "pc1",
        &["curl", "-s", "--max-time", "5", "http://10.0.1.10/"],
    );
    assert!(text(&curl).contains("app1"), "{}", text(&curl));
    let outside = outside.read_stdout();
    let inside = inside.read_stdout();

    // Tunnel 1 carries it all, as WireGuard datagrams between the customer gateway and
    // AWS's outside address; tunnel 2 shows only its keepalives. Neither the ping nor the
    // HTTP exchange is seen in the clear.
    let tunnel1 = [
        "198.51.100.20.51820 > 203.0.113.10.51820: UDP",
        "203.0.113.10.51820 > 198.51.100.20.51820: UDP",
    ];
    let tunnel2 = [
        "198.51.100.20.51821 > 203.0.113.11.51821: UDP",
        "203.0.113.11.51821 > 198.51.100.20.51821: UDP",
    ];
    let mut carried = 0;
    for line in outside.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            !line.contains("192.168.1.10") && !line.contains("10.0.1.10"),
            "in the clear on the internet: {line}"
        );
        if tunnel1.iter().any(|t| line.contains(t)) {
            carried += 1;
        } else {
            assert!(
                tunnel2.iter().any(|t| line.contains(t)),
                "not WireGuard: {line}\n{outside}"
            );
        }
    }
    // 4 echo requests and replies, and a TCP connection with a request and an answer.
    assert!(
        carried >= 14,
        "{carried} datagrams through tunnel 1:\n{outside}"
    );
    assert_eq!(
        inside
            .matches("IP 192.168.1.10 > 10.0.1.10: ICMP echo request")
            .count(),
        4,
        "{inside}"
    );
    down_clean(lab);
    assert_eq!(wireguard_go(&names), Vec::<String>::new());
}

/// The pings from pc1 to app1 around a fault that `fault` injects, 2 s into 12 s of them:
/// how long the traffic stopped. The bound asserted is generous: it checks a behaviour (the
/// failover happens, by itself, within the detection time), not a performance; timing
/// claims live in the benchmarks.
fn failover(lab: &str, what: &str, fault: impl FnOnce()) -> vpn::Outage {
    let mut stream = vpn::pings(lab, "pc1", "10.0.1.10", 12);
    std::thread::sleep(Duration::from_secs(2));
    let fault_at = vpn::epoch_now();
    fault();
    let out = stream.read_stdout();
    let outage = vpn::outage(&vpn::replies(&out), fault_at)
        .unwrap_or_else(|| panic!("{what}: no reply after the fault:\n{out}"));
    println!(
        "failover ({what}): first reply {:.0} ms after the fault; {:.0} ms without replies; {} pings of 100 ms lost",
        outage.resumed_ms, outage.silent_ms, outage.lost
    );
    assert!(outage.resumed_ms < 10_000.0, "{what}: {outage:?}\n{out}");
    assert!(
        outage.after >= 20,
        "{what}: too few replies after it: {outage:?}\n{out}"
    );
    outage
}

#[test]
fn a_tunnel_faulted_at_both_ends_fails_over_to_the_other_and_back() {
    require_root!();
    let lab = "t-vpn-fault";
    let file = lab_file(lab);
    let names = interfaces(&file);
    let _guard = up(&file, lab);
    let ping = exec(lab, "pc1", &["ping", "-c", "2", "-W", "2", "10.0.1.10"]);
    assert!(text(&ping).contains("2 received"), "{}", text(&ping));
    let (t1, t2) = (vpn::tunnel(lab, 1), vpn::tunnel(lab, 2));
    assert!(t1.up && t2.up, "{t1:?} {t2:?}");
    assert!(
        t1.bytes_from_site > 0 && t2.bytes_from_site == 0,
        "{t1:?} {t2:?}"
    );
    let wg2 = vpn::transfer(lab, "hq-router", &names[1]);

    failover(lab, "vpclab fault tunnel hq-vpn 1 down", || {
        let out = vpclab(&["fault", "tunnel", "hq-vpn", "1", "down", "--lab", lab]);
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            text(&out).contains("traffic goes through tunnel 2"),
            "{}",
            text(&out)
        );
    });
    // Tunnel 2 carried the pings both ways, at both ends; tunnel 1's interface is gone.
    let after = vpn::transfer(lab, "hq-router", &names[1]);
    assert!(
        after.0 > wg2.0 + 2000 && after.1 > wg2.1 + 2000,
        "{wg2:?} -> {after:?}"
    );
    let t2 = vpn::tunnel(lab, 2);
    assert!(
        t2.bytes_from_site > 2000 && t2.bytes_to_site > 2000,
        "{t2:?}"
    );
    let show = exec(lab, "hq-router", &["ip", "link", "show", &names[0]]);
    assert!(!show.status.success(), "{}", text(&show));
    let status = text(&vpclab(&["status", lab]));
    assert!(
        vpn::status_line(&status, "hq-vpn", 1).contains(" DOWN (fault) "),
        "{status}"
    );
    assert!(
        vpn::status_line(&status, "hq-vpn", 2).contains(" UP "),
        "{status}"
    );

    // Back up: tunnel 1 comes up once its customer side has shaken hands, and carries again.
    let out = vpclab(&["fault", "tunnel", "hq-vpn", "1", "up", "--lab", lab]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        vpn::wait_tunnel(lab, 1, true, Duration::from_secs(10)),
        "{:?}",
        vpn::tunnels(lab)
    );
    let (t1, t2) = (vpn::tunnel(lab, 1), vpn::tunnel(lab, 2));
    let wg1 = vpn::transfer(lab, "hq-router", &names[0]);
    let ping = exec(
        lab,
        "pc1",
        &["ping", "-c", "5", "-i", "0.2", "-W", "2", "10.0.1.10"],
    );
    assert!(text(&ping).contains("5 received"), "{}", text(&ping));
    let (t1_after, t2_after) = (vpn::tunnel(lab, 1), vpn::tunnel(lab, 2));
    // 5 echo requests and replies of 84 bytes each way, through tunnel 1 only.
    assert!(
        t1_after.bytes_from_site >= t1.bytes_from_site + 420,
        "{t1:?} -> {t1_after:?}"
    );
    assert!(
        t1_after.bytes_to_site >= t1.bytes_to_site + 420,
        "{t1:?} -> {t1_after:?}"
    );
    assert_eq!(
        (t2_after.bytes_from_site, t2_after.bytes_to_site),
        (t2.bytes_from_site, t2.bytes_to_site)
    );
    let wg1_after = vpn::transfer(lab, "hq-router", &names[0]);
    assert!(
        wg1_after.0 > wg1.0 && wg1_after.1 > wg1.1,
        "{wg1:?} -> {wg1_after:?}"
    );
    let status = text(&vpclab(&["status", lab]));
    assert!(
        vpn::status_line(&status, "hq-vpn", 1).contains(" UP "),
        "{status}"
    );

    // The choices are named when a fault names what is not there.
    let out = vpclab(&["fault", "tunnel", "hq-vpn", "3", "down", "--lab", lab]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("has tunnels 1 and 2, not 3"),
        "{}",
        text(&out)
    );
    let out = vpclab(&["fault", "tunnel", "nope", "1", "down", "--lab", lab]);
    assert!(
        text(&out).contains("its VPN connections: hq-vpn"),
        "{}",
        text(&out)
    );
    down_clean(lab);
    assert_eq!(wireguard_go(&names), Vec::<String>::new());
    for name in &names {
        assert!(!socket(name).exists(), "{name}'s socket is left");
    }
}

#[test]
fn a_customer_side_that_stops_is_found_dead_by_missed_keepalives() {
    require_root!();
    let lab = "t-vpn-cgw";
    let file = lab_file(lab);
    let names = interfaces(&file);
    let _guard = up(&file, lab);
    let ping = exec(lab, "pc1", &["ping", "-c", "2", "-W", "2", "10.0.1.10"]);
    assert!(text(&ping).contains("2 received"), "{}", text(&ping));

    // Only the router's end of tunnel 1 stops: its route goes with it, so the pings leave
    // through tunnel 2 at once, but the VGW answers into tunnel 1 until it has missed three
    // keepalives (6 s).
    let conf = format!("/run/vpclab/{lab}/wireguard/{}.conf", names[0]);
    let outage = failover(lab, "customer side of tunnel 1 stopped", || {
        let out = exec(lab, "hq-router", &["wg-quick", "down", &conf]);
        assert!(out.status.success(), "{}", text(&out));
    });
    // Detected by keepalives, not at once: the silence is of the order of 3 × 2 s.
    assert!(outage.silent_ms > 3000.0, "{outage:?}");
    let (t1, t2) = (vpn::tunnel(lab, 1), vpn::tunnel(lab, 2));
    assert!(!t1.up && !t1.faulted, "{t1:?}");
    assert!(
        t2.up && t2.bytes_to_site > 2000 && t2.bytes_from_site > 2000,
        "{t2:?}"
    );
    let status = text(&vpclab(&["status", lab]));
    let line = vpn::status_line(&status, "hq-vpn", 1);
    assert!(
        line.contains(" DOWN ") && !line.contains("fault"),
        "{status}"
    );
    assert!(
        vpn::status_line(&status, "hq-vpn", 2).contains(" UP "),
        "{status}"
    );
    down_clean(lab);
    assert_eq!(wireguard_go(&names), Vec::<String>::new());
    for name in &names {
        assert!(!socket(name).exists(), "{name}'s socket is left");
    }
}

#[test]
fn down_after_the_daemon_was_killed_stops_wireguard_and_removes_its_sockets() {
    require_root!();
    let lab = "t-vpn-kill";
    let file = lab_file(lab);
    let names = interfaces(&file);
    let _guard = up(&file, lab);
    assert_eq!(wireguard_go(&names).len(), 2);
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("/run/vpclab/{lab}/state.json")).unwrap(),
    )
    .unwrap();
    let pid = state["daemon_pid"].as_i64().unwrap() as i32;
    // SAFETY: plain kill(2) of the lab's daemon, whose pid the lab recorded.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    std::thread::sleep(std::time::Duration::from_millis(300));
    // wireguard-go daemonized: it outlives the daemon until `down`.
    assert_eq!(wireguard_go(&names).len(), 2);
    down_clean(lab);
    assert_eq!(wireguard_go(&names), Vec::<String>::new());
    for name in &names {
        assert!(!socket(name).exists(), "{name}'s socket is left");
    }
}

#[test]
fn editing_a_site_rebuilds_it_with_the_same_keys() {
    require_root!();
    let lab = "t-vpn-edit";
    let file = lab_file(lab);
    let names = interfaces(&file);
    let _guard = up(&file, lab);
    let key = |ifname: &str| {
        text(&exec(
            lab,
            "hq-router",
            &["wg", "show", ifname, "public-key"],
        ))
    };
    let before = key(&names[0]);
    let text_in = std::fs::read_to_string(&file).unwrap();
    let grown = text_in.replace(
        "      pc1: { ip: 192.168.1.10, services: [http:80] }",
        "      pc1: { ip: 192.168.1.10, services: [http:80] }\n      pc2: { ip: 192.168.2.20 }",
    );
    assert_ne!(grown, text_in);
    std::fs::write(&file, grown).unwrap();
    let again = vpclab(&["up", file.to_str().unwrap()]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(text(&again).contains("rebuilt sites"), "{}", text(&again));
    let ping = exec(lab, "pc2", &["ping", "-c", "1", "-W", "2", "pc1"]);
    assert!(text(&ping).contains("1 received"), "{}", text(&ping));
    // The old wireguard-go processes went; new ones run with the lab's keys.
    assert_eq!(wireguard_go(&names).len(), 2, "{:?}", wireguard_go(&names));
    assert_eq!(key(&names[0]), before);
    down_clean(lab);
    assert_eq!(wireguard_go(&names), Vec::<String>::new());
    for name in &names {
        assert!(!socket(name).exists(), "{name}'s socket is left");
    }
}
