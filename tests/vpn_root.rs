//! Tier 3, as root: an on-premises site with a Site-to-Site VPN (scenarios/vpn-static.yaml).
//! The site's router is on the lab's internet and its hosts on its LAN; its customer side is
//! real WireGuard (wireguard-go: two interfaces, peers at the AWS outside addresses), brought
//! up by `up`, and again from the file `vpclab vpn config --tunnel 1` exports alone. `down`
//! leaves no namespace, no wireguard-go and no socket, also after the daemon was killed.
//! (The AWS end of the tunnels is the fabric's, not wired yet: no packet crosses a tunnel.)

#[macro_use]
mod common;

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
