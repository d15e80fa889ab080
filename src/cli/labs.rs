//! Verbs that act on running labs: `down`, `exec`, `explain`, `status`.

use std::time::Duration;

use crate::daemon::control::{call, Reply, Request};
use crate::daemon::costs::CostLine;
use crate::daemon::gateways::GatewayRecord;
use crate::daemon::state::{known_labs, HostRecord, LabState};
use crate::daemon::teardown;
use crate::daemon::vpn_status::TunnelRecord;
use crate::netns;

/// The lab named, or the only one running.
pub fn pick_lab(lab: Option<&str>) -> anyhow::Result<String> {
    if let Some(lab) = lab {
        return Ok(lab.to_string());
    }
    let labs = known_labs();
    match labs.as_slice() {
        [one] => Ok(one.clone()),
        [] => anyhow::bail!("no lab is running (start one with `vpclab up FILE`)"),
        many => anyhow::bail!("several labs are running ({}); name one", many.join(", ")),
    }
}

/// The lab holding a host of this name; with several running labs holding one, the user
/// must say which (a guess could run the command in the wrong lab).
fn lab_of_host(host: &str, lab: Option<&str>) -> anyhow::Result<(String, HostRecord)> {
    let candidates = match lab {
        Some(lab) => vec![lab.to_string()],
        None => known_labs(),
    };
    let mut found: Vec<(String, HostRecord)> = candidates
        .into_iter()
        .filter_map(|lab| {
            let record = LabState::load(&lab).ok()?.host(host)?.clone();
            Some((lab, record))
        })
        .collect();
    match found.len() {
        0 => anyhow::bail!("no running lab has a host named {host}"),
        1 => Ok(found.remove(0)),
        _ => {
            let labs: Vec<&str> = found.iter().map(|(l, _)| l.as_str()).collect();
            anyhow::bail!(
                "host {host} is in several running labs ({}): name one with --lab",
                labs.join(", ")
            )
        }
    }
}

pub fn down(lab: Option<&str>) -> anyhow::Result<i32> {
    netns::require_root()?;
    let lab = pick_lab(lab)?;
    let removed = teardown::down(&lab)?;
    let left = teardown::leftovers(&lab);
    println!(
        "lab {lab}: removed {} namespaces, {} host folders, {} processes{}",
        removed.namespaces,
        removed.etc_dirs,
        removed.processes,
        if removed.daemon_killed {
            ", stopped the daemon"
        } else {
            " (the daemon was already gone)"
        }
    );
    if left.is_empty() {
        Ok(0)
    } else {
        anyhow::bail!("lab {lab}: still present after down: {}", left.join(", "))
    }
}

pub fn exec(host: &str, lab: Option<&str>, command: &[String]) -> anyhow::Result<i32> {
    netns::require_root()?;
    let (_, record) = lab_of_host(host, lab)?;
    let error = netns::exec_in(&record.netns, command);
    anyhow::bail!("run {:?} in host {host}: {error}", command)
}

pub fn explain(
    from: &str,
    to: &str,
    protocol: &str,
    port: Option<u16>,
    lab: Option<&str>,
) -> anyhow::Result<i32> {
    let (lab, _) = lab_of_host(from, lab)?;
    let request = Request::Explain {
        from: from.into(),
        to: to.into(),
        protocol: protocol.into(),
        port,
    };
    match call(&lab, &request, Duration::from_secs(10))? {
        Reply::Explained {
            text, reachable, ..
        } => {
            print!("{text}");
            Ok(if reachable { 0 } else { 3 })
        }
        Reply::Error { message } => anyhow::bail!("{message}"),
        other => anyhow::bail!("unexpected reply from the daemon: {other:?}"),
    }
}

pub fn status(lab: Option<&str>, cost: bool) -> anyhow::Result<i32> {
    let labs = match lab {
        Some(lab) => vec![lab.to_string()],
        None => known_labs(),
    };
    if labs.is_empty() {
        println!("no lab is running");
    }
    for lab in labs {
        let state = LabState::load(&lab)?;
        if !state.daemon_alive() {
            println!("lab {lab}: DAEMON GONE (run `vpclab down {lab}` to clean up); {} namespaces recorded", state.namespaces.len());
            continue;
        }
        match call(&lab, &Request::Status, Duration::from_secs(10))? {
            Reply::Status {
                hosts,
                counters,
                costs,
                gateways,
                tunnels,
                ..
            } => {
                let drops: Vec<String> = counters
                    .dropped
                    .iter()
                    .map(|(c, n)| format!("{c}={n}"))
                    .collect();
                println!(
                    "lab {lab} (from {}): {} hosts; packets delivered {}, dropped [{}]",
                    state.source,
                    hosts.len(),
                    counters.delivered,
                    drops.join(" ")
                );
                print_hosts(&hosts);
                print_gateways(&gateways);
                print_tunnels(&tunnels);
                if cost {
                    print_costs(&costs);
                }
            }
            other => anyhow::bail!("unexpected reply from the daemon: {other:?}"),
        }
    }
    Ok(0)
}

/// What the metered gateways would have cost on AWS (us-east-1 list prices).
fn print_costs(costs: &[CostLine]) {
    if costs.is_empty() {
        println!("  no NAT gateway or endpoint: nothing metered");
        return;
    }
    println!(
        "  {:<24} {:>6} {:>14} {:>10}",
        "COMPONENT", "HOURS", "BYTES", "USD"
    );
    for c in costs {
        println!(
            "  {:<24} {:>6} {:>14} {:>10.4}",
            c.component, c.hours, c.bytes, c.usd
        );
    }
    use crate::daemon::costs::prices;
    println!(
        "  (AWS list prices, us-east-1: NAT gateway ${}/h + ${}/GB; interface endpoint ${}/h per AZ + ${}/GB; gateway endpoint ${}/GB)",
        prices::NAT_GATEWAY_HOUR,
        prices::NAT_GATEWAY_GB,
        prices::INTERFACE_ENDPOINT_HOUR_PER_AZ,
        prices::INTERFACE_ENDPOINT_GB,
        prices::GATEWAY_ENDPOINT_GB
    );
}

pub fn print_gateways(gateways: &[GatewayRecord]) {
    if gateways.is_empty() {
        return;
    }
    println!("  {:<24} {:<10} DETAIL", "GATEWAY", "VPC");
    for g in gateways {
        println!("  {:<24} {:<10} {}", g.component, g.vpc, g.detail);
    }
}

/// The VPN tunnels: which is up, which carries (bytes), when each last shook hands.
pub fn print_tunnels(tunnels: &[TunnelRecord]) {
    for line in tunnel_table(tunnels) {
        println!("{line}");
    }
}

/// The lines of the tunnel table; none without tunnels.
fn tunnel_table(tunnels: &[TunnelRecord]) -> Vec<String> {
    if tunnels.is_empty() {
        return Vec::new();
    }
    let mut lines = vec![format!(
        "  {:<14} {:<6} {:<20} {:<20} {:<17} {:<12} {:>9} {:>12} {:>12} BGP",
        "VPN",
        "TUNNEL",
        "OUTSIDE (AWS)",
        "CUSTOMER GATEWAY",
        "INSIDE",
        "STATE",
        "HANDSHAKE",
        "TO SITE",
        "FROM SITE"
    )];
    for t in tunnels {
        let state = match (t.up, t.faulted) {
            (true, _) => "UP",
            (false, true) => "DOWN (fault)",
            (false, false) => "DOWN",
        };
        let handshake = t
            .since_handshake_s
            .map_or("-".to_string(), |s| format!("{s} s ago"));
        let bgp = match &t.bgp {
            Some(state) if t.learned.is_empty() => state.clone(),
            Some(state) => format!("{state}, learned {}", t.learned.join(" ")),
            None => "-".to_string(),
        };
        lines.push(format!(
            "  {:<14} {:<6} {:<20} {:<20} {:<17} {:<12} {:>9} {:>12} {:>12} {bgp}",
            t.connection,
            t.number,
            t.outside,
            t.customer,
            t.inside,
            state,
            handshake,
            t.bytes_to_site,
            t.bytes_from_site
        ));
    }
    lines
}

pub fn print_hosts(hosts: &[HostRecord]) {
    println!(
        "  {:<14} {:<15} {:<15} {:<10} {:<14} {:<12} NAMESPACE",
        "HOST", "ADDRESS", "PUBLIC IP", "VPC", "SUBNET", "AZ"
    );
    for h in hosts {
        println!(
            "  {:<14} {:<15} {:<15} {:<10} {:<14} {:<12} {}",
            h.name,
            h.ip,
            h.public_ip.as_deref().unwrap_or("-"),
            h.vpc,
            h.subnet,
            h.az,
            h.netns
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tunnel(number: u8, up: bool, faulted: bool) -> TunnelRecord {
        TunnelRecord {
            connection: "hq-vpn".into(),
            number,
            outside: "203.0.113.10:51820".into(),
            customer: "198.51.100.20:51820".into(),
            inside: "169.254.10.0/30".into(),
            up,
            faulted,
            since_handshake_s: up.then_some(3),
            bytes_to_site: 420,
            bytes_from_site: 168,
            bgp: None,
            learned: Vec::new(),
        }
    }

    #[test]
    fn the_tunnel_table_tells_a_fault_from_a_silent_peer() {
        assert!(tunnel_table(&[]).is_empty());
        let mut bgp = tunnel(2, false, false);
        bgp.bgp = Some("Established".into());
        bgp.learned = vec!["192.168.0.0/16".into()];
        let lines = tunnel_table(&[tunnel(1, false, true), bgp, tunnel(1, true, false)]);
        assert_eq!(lines.len(), 4);
        assert!(lines[0].contains("STATE") && lines[0].ends_with("BGP"));
        assert!(lines[1].contains("DOWN (fault)") && lines[1].ends_with(" -"));
        assert!(
            lines[1].contains("        -          420          168"),
            "{}",
            lines[1]
        );
        assert!(lines[2].contains(" DOWN ") && !lines[2].contains("fault"));
        assert!(lines[2].ends_with("Established, learned 192.168.0.0/16"));
        assert!(lines[3].contains(" UP ") && lines[3].contains("3 s ago"));
    }
}
