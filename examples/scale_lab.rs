//! Prints the scenario of a lab of N instances for the scale benchmark (`scripts/scale.sh`):
//! VPCs peered in a chain, one route table per subnet, one security group per VPC.
//! Run: `cargo run --release --example scale_lab -- N [RULES] [NAME] > lab.yaml`
//! (N = 10, 100 or 1000 give 1×2×5, 2×5×10 and 10×10×10 VPCs × subnets × instances; RULES is
//! the ingress rule count of each security group, default 4; NAME defaults to `scaleN`).
//! `tgwN` instead of N writes N VPCs of one instance each, all attached to one transit gateway
//! (its default route table: every VPC reaches every other through it).
//! It also loads the text it prints, so a generator bug fails here, not in `up`.

// Shared with decide_bench, which uses more of it.
#[allow(dead_code)]
#[path = "common/scale_yaml.rs"]
mod scale_yaml;

use scale_yaml::{scenario, Shape};

fn main() {
    let mut args = std::env::args().skip(1);
    let size = args.next().unwrap_or_else(|| "10".to_string());
    let text = if let Some(vpcs) = size.strip_prefix("tgw").and_then(|n| n.parse().ok()) {
        tgw_scenario(&format!("scaletgw{vpcs}"), vpcs)
    } else {
        let instances: usize = size.parse().unwrap_or(10);
        let rules: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(4);
        let name = args.next().unwrap_or_else(|| format!("scale{instances}"));
        scenario(&name, Shape::for_instances(instances, rules))
    };
    if let Err(e) = vpclab::scenario::load_str(&text, "scale_lab") {
        eprintln!("scale_lab: the generated scenario does not load:\n{e}");
        std::process::exit(1);
    }
    print!("{text}");
}

/// `vpcs` VPCs (10.I.0.0/16, at most 250) of one instance each (`hI`, 10.I.1.10), every one
/// attached to transit gateway `t1` and routing 10.0.0.0/8 to it.
fn tgw_scenario(name: &str, vpcs: usize) -> String {
    use std::fmt::Write as _;
    let mut w = format!("name: {name}\nvpcs:\n");
    for i in 0..vpcs.min(250) {
        let _ = write!(
            w,
            "  v{i}:\n    cidr: 10.{i}.0.0/16\n    subnets: {{ s{i}: {{ cidr: 10.{i}.1.0/24 }} }}\n\
             \x20   route_tables: {{ rt{i}: {{ main: true, routes: [{{ destination: 10.0.0.0/8, target: tgw:t1 }}] }} }}\n\
             \x20   security_groups: {{ all: {{ ingress: [{{ protocol: all, source: 10.0.0.0/8 }}] }} }}\n\
             \x20   instances: {{ h{i}: {{ subnet: s{i}, private_ip: 10.{i}.1.10, security_groups: [all] }} }}\n"
        );
    }
    w.push_str("transit_gateways:\n  t1:\n    attachments:\n");
    for i in 0..vpcs.min(250) {
        let _ = writeln!(w, "      at{i}: {{ vpc: v{i}, subnets: [s{i}] }}");
    }
    w
}
