//! Verbs that act on running labs: `down`, `exec`, `explain`, `status`.

use std::time::Duration;

use crate::daemon::control::{call, Reply, Request};
use crate::daemon::costs::CostLine;
use crate::daemon::gateways::GatewayRecord;
use crate::daemon::state::{known_labs, HostRecord, LabState};
use crate::daemon::teardown;
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
