//! Tier 3, as root: Site-to-Site VPN with BGP (scenarios/vpn-bgp.yaml, scenarios/cloudhub.yaml).
//! BIRD in the site's router and the VGW's speaker establish a session per tunnel over the
//! tunnels' inside addresses; what the VGW learned is in the route table that propagates from
//! it, and only while the site announces it: with BIRD gone, the route is gone too.

#[macro_use]
mod common;

use common::*;

fn explain(lab: &str, from: &str, to: &str) -> String {
    text(&vpclab(&[
        "explain",
        from,
        to,
        "--lab",
        lab,
        "--protocol",
        "icmp",
    ]))
}

#[test]
fn routes_learned_by_bgp_come_and_go_with_the_sites_announcement() {
    require_root!();
    let lab = "t-bgp";
    let file = variant("vpn-bgp.yaml", lab, |t| t);
    let _guard = up(&file, lab);
    let socket = format!("/run/vpclab/{lab}/bird/hq.ctl");
    // Both sessions established (up waited for them), and the site's kernel routes the VPC
    // through tunnel 1, whose session wins the tie.
    let protocols = text(&exec(
        lab,
        "hq-router",
        &["birdc", "-s", &socket, "show", "protocols"],
    ));
    println!("{protocols}");
    assert_eq!(protocols.matches("Established").count(), 2, "{protocols}");
    let routes = text(&exec(lab, "hq-router", &["ip", "route"]));
    let vpc = routes
        .lines()
        .find(|l| l.starts_with("10.0.0.0/16"))
        .unwrap_or_else(|| panic!("no route to the VPC: {routes}"));
    let device = vpc.split_whitespace().skip_while(|w| *w != "dev").nth(1);
    // Tunnel 1's WireGuard interface is named `...-1`.
    assert!(vpc.contains("proto bird"), "{routes}");
    assert!(device.is_some_and(|d| d.ends_with("-1")), "{routes}");
    // The VPC's side: the route to the site is learned, in the table that propagates.
    let said = explain(lab, "app1", "pc1");
    println!("{said}");
    assert!(said.contains("192.168.0.0/16 (learned by BGP"), "{said}");
    assert!(said.contains("REACHABLE"), "{said}");
    let ping = exec(lab, "pc1", &["ping", "-c", "1", "-W", "2", "10.0.1.10"]);
    assert!(ping.status.success(), "{}", text(&ping));
    // BIRD stops: its sessions close, the VGW withdraws what it learned, and the VPC has no
    // route back to the site any more.
    let stopped = exec(lab, "hq-router", &["birdc", "-s", &socket, "down"]);
    println!("{}", text(&stopped));
    let mut said = String::new();
    for _ in 0..100 {
        said = explain(lab, "app1", "pc1");
        if said.contains("NO_ROUTE_TO_DESTINATION") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(said.contains("NO_ROUTE_TO_DESTINATION"), "{said}");
    let ping = exec(lab, "app1", &["ping", "-c", "1", "-W", "2", "192.168.1.10"]);
    assert!(!ping.status.success(), "{}", text(&ping));
    down_clean(lab);
}

#[test]
fn cloudhub_sites_learn_each_other_through_the_vgw() {
    require_root!();
    let lab = "t-hub";
    let file = variant("cloudhub.yaml", lab, |t| t);
    let _guard = up(&file, lab);
    let socket = format!("/run/vpclab/{lab}/bird/hq.ctl");
    // hq learned east's and west's prefixes, with the VGW's AS in front of theirs.
    let routes = text(&exec(
        lab,
        "hq-router",
        &["birdc", "-s", &socket, "show", "route", "all"],
    ));
    println!("{routes}");
    for (prefix, path) in [
        ("172.16.0.0/16", "64512 65002"),
        ("172.17.0.0/16", "64512 65003"),
    ] {
        assert!(routes.contains(prefix), "{prefix} missing: {routes}");
        assert!(routes.contains(path), "AS path {path} missing: {routes}");
    }
    assert!(
        !routes.contains("172.20.0.0/16"),
        "far is on another VGW: {routes}"
    );
    let out = exec(
        lab,
        "pc-east",
        &["curl", "-s", "-m", "5", "http://172.17.1.10/"],
    );
    assert!(text(&out).contains("pc-west"), "{}", text(&out));
    down_clean(lab);
}
