//! Prints the scenario of a lab of N instances for the scale benchmark (`scripts/scale.sh`):
//! VPCs peered in a chain, one route table per subnet, one security group per VPC.
//! Run: `cargo run --release --example scale_lab -- N [RULES] [NAME] > lab.yaml`
//! (N = 10, 100 or 1000 give 1×2×5, 2×5×10 and 10×10×10 VPCs × subnets × instances; RULES is
//! the ingress rule count of each security group, default 4; NAME defaults to `scaleN`).
//! It also loads the text it prints, so a generator bug fails here, not in `up`.

// Shared with decide_bench, which uses more of it.
#[allow(dead_code)]
#[path = "common/scale_yaml.rs"]
mod scale_yaml;

use scale_yaml::{scenario, Shape};

fn main() {
    let mut args = std::env::args().skip(1);
    let instances: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let rules: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(4);
    let name = args.next().unwrap_or_else(|| format!("scale{instances}"));
    let shape = Shape::for_instances(instances, rules);
    let text = scenario(&name, shape);
    if let Err(e) = vpclab::scenario::load_str(&text, "scale_lab") {
        eprintln!("scale_lab: the generated scenario does not load:\n{e}");
        std::process::exit(1);
    }
    print!("{text}");
}
