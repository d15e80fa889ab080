//! `vpclab check`: every `expect:` line proved twice, by the model (the daemon's decision
//! function, no packets) and by real packets sent from inside the source host.

use std::time::Duration;

use crate::daemon::control::{call, Reply, Request};
use crate::daemon::state::LabState;
use crate::netns;
use crate::scenario::{self, Expectation, Lab, Probe};

use super::read_scenario;

/// How long a probe waits before calling a destination unreachable (AWS drops silently).
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

struct Row {
    line: usize,
    what: String,
    expected: bool,
    packets: bool,
    model: bool,
    model_code: Option<String>,
    problems: Vec<String>,
}

pub fn check(file: Option<&str>) -> anyhow::Result<i32> {
    let (text, source) = read_scenario(file)?;
    let lab = match scenario::load_str(&text, &source) {
        Ok(lab) => lab,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(2);
        }
    };
    netns::require_root()?;
    let state = LabState::load(&lab.name).map_err(|_| {
        anyhow::anyhow!(
            "lab {} is not running; start it with `vpclab up {}`",
            lab.name,
            file.unwrap_or("")
        )
    })?;
    if !state.daemon_alive() {
        anyhow::bail!(
            "the daemon of lab {} is gone; run `vpclab down {}` and `vpclab up` again",
            lab.name,
            lab.name
        );
    }
    // Probes run in parallel: a drop costs a full timeout, and they do not disturb each other.
    let rows: Vec<Row> = std::thread::scope(|s| {
        let handles: Vec<_> = lab
            .expectations
            .iter()
            .map(|e| s.spawn(|| check_one(&lab, e)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| panic_row()))
            .collect()
    });
    println!(
        "{:<5} {:<44} {:<11} {:<11} {:<11} REASON",
        "LINE", "EXPECTATION", "EXPECTED", "PACKETS", "MODEL"
    );
    let word = |b: bool| if b { "reachable" } else { "blocked" };
    let mut failures = 0;
    for row in &rows {
        let status = if row.problems.is_empty() {
            ""
        } else {
            "  FAIL: "
        };
        println!(
            "{:<5} {:<44} {:<11} {:<11} {:<11} {}{status}{}",
            row.line,
            row.what,
            word(row.expected),
            word(row.packets),
            word(row.model),
            row.model_code.as_deref().unwrap_or("-"),
            row.problems.join("; ")
        );
        if !row.problems.is_empty() {
            failures += 1;
        }
    }
    println!("{} passed, {} failed", rows.len() - failures, failures);
    Ok(if failures == 0 { 0 } else { 1 })
}

fn panic_row() -> Row {
    Row {
        line: 0,
        what: "?".into(),
        expected: true,
        packets: false,
        model: false,
        model_code: None,
        problems: vec!["internal error: probe thread panicked".into()],
    }
}

fn check_one(lab: &Lab, e: &Expectation) -> Row {
    let from_name = lab.host_name(e.from);
    let protocol = match e.probe {
        Probe::Icmp => "icmp",
        Probe::Tcp => "tcp",
        Probe::Udp => "udp",
        Probe::Http => "http",
    };
    let port = e.port.unwrap_or(80);
    let what = match e.probe {
        Probe::Icmp => format!("{from_name} -> {} icmp", e.to_text),
        _ => format!("{from_name} -> {} {protocol}/{port}", e.to_text),
    };
    let mut problems = Vec::new();
    let request = Request::Explain {
        from: from_name.to_string(),
        to: e.to.to_string(),
        protocol: protocol.into(),
        port: e.port,
    };
    let (model, model_code, components) = match call(&lab.name, &request, Duration::from_secs(10)) {
        Ok(Reply::Explained {
            reachable,
            code,
            components,
            ..
        }) => (reachable, code, components),
        Ok(other) => {
            problems.push(format!("model: unexpected reply {other:?}"));
            (false, None, Vec::new())
        }
        Err(err) => {
            problems.push(format!("model: {err}"));
            (false, None, Vec::new())
        }
    };
    let ns = lab.netns_name(from_name);
    let packets = match e.probe {
        Probe::Icmp => netns::probe_icmp(&ns, e.to, PROBE_TIMEOUT),
        Probe::Tcp => netns::probe_tcp(&ns, e.to, port, PROBE_TIMEOUT),
        Probe::Udp => netns::probe_udp(&ns, e.to, port, PROBE_TIMEOUT),
        Probe::Http => netns::probe_http(&ns, e.to, port, PROBE_TIMEOUT),
    };
    if packets != e.reachable {
        problems.push(format!(
            "packets: expected {}",
            if e.reachable { "reachable" } else { "blocked" }
        ));
    }
    if model != e.reachable {
        problems.push(format!(
            "model: expected {}",
            if e.reachable { "reachable" } else { "blocked" }
        ));
    }
    if model != packets {
        problems.push("model and packets disagree (a defect of vpclab)".into());
    }
    if let Some(reason) = &e.reason {
        if model_code.as_deref() != Some(reason.as_str()) {
            problems.push(format!(
                "reason: expected {reason}, model says {}",
                model_code.as_deref().unwrap_or("none")
            ));
        }
    }
    if !e.via.is_empty() && !in_order(&e.via, &components) {
        problems.push(format!(
            "via: path {} does not cross {} in that order",
            components.join(" > "),
            e.via.join(", ")
        ));
    }
    Row {
        line: e.line,
        what,
        expected: e.reachable,
        packets,
        model,
        model_code,
        problems,
    }
}

/// True when every item of `wanted` appears in `path`, in order.
fn in_order(wanted: &[String], path: &[String]) -> bool {
    let mut rest = path.iter();
    wanted.iter().all(|w| rest.any(|p| p == w))
}
