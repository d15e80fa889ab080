//! Tier 3, as root: a customer gateway behind a NAT device (`behind_nat: true`). What the
//! site's router sends leaves with other source ports; the AWS end of each tunnel answers the
//! port it hears from (WireGuard's NAT traversal), so the tunnels come up all the same.

#[macro_use]
mod common;

use common::*;

#[test]
fn tunnels_come_up_through_a_port_translating_nat() {
    require_root!();
    let lab = "t-natcgw";
    let file = variant("vpn-static.yaml", lab, |t| {
        t.replace("asn: 65000 }", "asn: 65000, behind_nat: true }")
    });
    let _guard = up(&file, lab);
    let mut capture = capture(lab, "hq-router", "2", "udp and dst port 51820");
    std::thread::sleep(std::time::Duration::from_secs(2));
    let ping = exec(lab, "pc1", &["ping", "-c", "3", "-W", "2", "10.0.1.10"]);
    assert!(ping.status.success(), "{}", text(&ping));
    let seen = capture.read_stdout();
    println!("{seen}");
    // The router's WireGuard listens on 51820, but its datagrams leave from the NAT's ports.
    let ports: Vec<u16> = seen
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .filter_map(|src| src.rsplit_once('.').and_then(|(_, p)| p.parse().ok()))
        .collect();
    assert!(!ports.is_empty(), "{seen}");
    assert!(
        ports.iter().all(|p| (40000..50000).contains(p)),
        "{ports:?}"
    );
    // The AWS end answers there: status shows the customer gateway at that port.
    let status = text(&vpclab(&["status", lab]));
    println!("{status}");
    assert!(
        status.contains(&format!("198.51.100.20:{}", ports[0])),
        "{status}"
    );
    let check = vpclab(&["check", file.to_str().unwrap()]);
    assert!(check.status.success(), "{}", text(&check));
    down_clean(lab);
}
