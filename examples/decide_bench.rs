//! Decisions per second of the fabric's decision function on a lab whose security groups have
//! 60 rules each way and whose NACLs have 20 rules each way, the matching rule always last.
//! Two paths: new flows (every rule list scanned, the flow tracked) and packets of tracked
//! flows (one lookup per security group). Run: `cargo run --release --example decide_bench`.

use std::fmt::Write as _;
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use vpclab::fabric::{decide, Compiled, Conntrack, Outcome};
use vpclab::scenario::load_str;
use vpclab::wire::FlowKey;

/// Distinct flows per pass (the first argument overrides it).
const FLOWS: u16 = 50_000;

fn lab() -> Compiled {
    let mut y = String::from(
        "name: bench\nvpcs:\n  a:\n    cidr: 10.0.0.0/16\n    subnets:\n      s1: { cidr: 10.0.1.0/24, network_acl: n }\n      s2: { cidr: 10.0.2.0/24, network_acl: n }\n    security_groups:\n      g:\n        ingress:\n",
    );
    for i in 0..59 {
        let _ = writeln!(
            y,
            "          - {{ protocol: tcp, ports: {}, source: 192.0.2.0/24 }}",
            1000 + i
        );
    }
    y.push_str("          - { protocol: tcp, ports: 80, source: 10.0.0.0/16 }\n        egress:\n");
    for i in 0..59 {
        let _ = writeln!(
            y,
            "          - {{ protocol: udp, ports: {}, destination: 0.0.0.0/0 }}",
            2000 + i
        );
    }
    y.push_str(
        "          - { protocol: all, destination: 0.0.0.0/0 }\n    network_acls:\n      n:\n",
    );
    for dir in ["inbound", "outbound"] {
        let _ = writeln!(y, "        {dir}:");
        for i in 0..19 {
            let _ = writeln!(y, "          - {{ rule: {}, protocol: udp, ports: {}, cidr: 0.0.0.0/0, action: deny }}", 10 + i, 3000 + i);
        }
        y.push_str("          - { rule: 200, protocol: all, cidr: 0.0.0.0/0, action: allow }\n");
    }
    y.push_str("    instances:\n      c: { subnet: s1, private_ip: 10.0.1.10, security_groups: [g] }\n      s: { subnet: s2, private_ip: 10.0.2.10, security_groups: [g] }\n");
    Compiled::new(load_str(&y, "bench.yaml").unwrap_or_else(|e| panic!("{e}")))
}

fn key(port: u16) -> FlowKey {
    FlowKey {
        src: Ipv4Addr::new(10, 0, 1, 10),
        dst: Ipv4Addr::new(10, 0, 2, 10),
        protocol: 6,
        src_port: 10_000 + port,
        dst_port: 80,
        icmp_type: 0,
        icmp_code: 0,
        tcp_flags: 0x10,
    }
}

fn pass(lab: &Compiled, flows: &Conntrack, n: u16) -> Duration {
    let start = Instant::now();
    for p in 0..n {
        let out = decide(
            lab,
            flows,
            Duration::from_secs(1),
            0,
            black_box(&key(p)),
            &mut (),
        );
        assert!(matches!(out, Outcome::Deliver(1)));
    }
    start.elapsed()
}

fn main() {
    let n: u16 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(FLOWS);
    let lab = lab();
    let (mut new, mut tracked) = (Duration::ZERO, Duration::ZERO);
    let rounds: u16 = 10;
    for round in 0..rounds {
        // A long-running daemon's table has had its pages touched: fill it once and let every
        // entry expire, so that the timing measures decisions, not first-touch page faults.
        let flows = Conntrack::for_dataplane();
        let t0 = Duration::from_secs(u64::from(round));
        for p in 0..FLOWS {
            decide(&lab, &flows, t0, 0, &key(p), &mut ());
        }
        flows.sweep(Duration::from_secs(1_000_000));
        new += pass(&lab, &flows, n);
        tracked += pass(&lab, &flows, n);
    }
    let total = f64::from(n) * f64::from(rounds);
    println!(
        "{n} flows; 60 SG rules each way, 20 NACL rules each way, matching rule last, one thread:\n  new flows:     {:>10.0} decisions/s\n  tracked flows: {:>10.0} decisions/s",
        total / new.as_secs_f64(),
        total / tracked.as_secs_f64()
    );
}
