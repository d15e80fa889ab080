//! Decisions per second of the fabric's decision function on a lab whose security groups have
//! 60 rules each way and whose NACLs have 20 rules each way, the matching rule always last.
//! Two paths: new flows (every rule list scanned, the flow tracked) and packets of tracked
//! flows (one lookup per security group). Then the same two on a lab of 1000 instances (10
//! VPCs peered in a chain, 100 subnets with a route table each, security groups of 60 ingress
//! rules, the matching one last; examples/common/scale_yaml.rs), with flows between random
//! instances of one VPC or of two peered ones, 2,000 and 20,000 flows at a time. Times are the
//! thread's CPU time, so the rates are per core even on a busy machine. Run:
//! `cargo run --release --example decide_bench [FLOWS]` (FLOWS: of the small lab); with
//! `FLOWS profile`, it runs only FLOWS tracked flows of the large lab for ten seconds (for
//! `perf record`).

#[path = "common/scale_yaml.rs"]
mod scale_yaml;

use std::fmt::Write as _;
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use scale_yaml::{scenario, Shape};
use vpclab::fabric::{decide, Compiled, Conntrack, Outcome};
use vpclab::scenario::load_str;
use vpclab::scenario::HostId;
use vpclab::wire::FlowKey;

/// Distinct flows per pass (the first argument overrides it). Each is tracked at both
/// instances, so 20,000 flows take 40,000 of the data plane's 65,536 entries: with more, some
/// would go untracked and "tracked flows" would measure rule scans.
const FLOWS: u16 = 20_000;

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

/// CPU time of this thread: decisions per CPU second are per core even on a busy machine.
fn cpu_time() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which `t` is.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn key(port: u16) -> FlowKey {
    FlowKey {
        src: Ipv4Addr::new(10, 0, 1, 10).into(),
        dst: Ipv4Addr::new(10, 0, 2, 10).into(),
        protocol: 6,
        src_port: 10_000 + port,
        dst_port: 80,
        icmp_type: 0,
        icmp_code: 0,
        tcp_flags: 0x10,
    }
}

fn pass(lab: &Compiled, flows: &Conntrack, n: u16) -> Duration {
    let start = cpu_time();
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
    cpu_time() - start
}

fn main() {
    let n: u16 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(FLOWS);
    if std::env::args().nth(2).as_deref() == Some("profile") {
        profile(n);
        return;
    }
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
        "{n} flows; 60 SG rules each way, 20 NACL rules each way, matching rule last, per CPU second of one thread:\n  new flows:     {:>10.0} decisions/s\n  tracked flows: {:>10.0} decisions/s",
        total / new.as_secs_f64(),
        total / tracked.as_secs_f64()
    );
    for flows in [2_000, 20_000] {
        scale(flows);
    }
}

/// Flows of the 1000-instance lab: from instance `p % 1000` to one in another subnet of its
/// VPC (odd p) or in the next VPC of the chain (even p), TCP to port 22.
fn scale_flows(lab: &Compiled, shape: Shape, n: u16) -> Vec<(HostId, FlowKey)> {
    let mut rng: u32 = 0x9e37_79b9;
    let mut next = move |m: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        rng as usize % m
    };
    (0..n)
        .map(|p| {
            let (v, s, i) = (
                next(shape.vpcs),
                next(shape.subnets),
                next(shape.per_subnet),
            );
            let dv = if p % 2 == 0 && shape.vpcs > 1 {
                if v + 1 < shape.vpcs {
                    v + 1
                } else {
                    v - 1
                }
            } else {
                v
            };
            let (ds, di) = (
                (s + 1 + next(shape.subnets - 1)) % shape.subnets,
                next(shape.per_subnet),
            );
            let from = lab.lab.host_by_name(&Shape::host(v, s, i));
            let from = from.unwrap_or_else(|| panic!("no host {}", Shape::host(v, s, i)));
            let key = FlowKey {
                src: Shape::ip(v, s, i).into(),
                dst: Shape::ip(dv, ds, di).into(),
                protocol: 6,
                src_port: 10_000 + p,
                dst_port: 22,
                icmp_type: 0,
                icmp_code: 0,
                tcp_flags: 0x10,
            };
            (from, key)
        })
        .collect()
}

fn scale_pass(lab: &Compiled, flows: &Conntrack, packets: &[(HostId, FlowKey)]) -> Duration {
    let start = cpu_time();
    for (from, key) in packets {
        let out = decide(
            lab,
            flows,
            Duration::from_secs(1),
            *from,
            black_box(key),
            &mut (),
        );
        assert!(matches!(out, Outcome::Deliver(_)), "{key:?}: {out:?}");
    }
    cpu_time() - start
}

fn scale_lab() -> (Shape, Compiled) {
    let shape = Shape::for_instances(1000, 60);
    let text = scenario("bench", shape);
    let lab = Compiled::new(load_str(&text, "scale.yaml").unwrap_or_else(|e| panic!("{e}")));
    (shape, lab)
}

/// Tracked flows of the large lab only, for ten seconds.
fn profile(n: u16) {
    let (shape, lab) = scale_lab();
    let packets = scale_flows(&lab, shape, n);
    let flows = Conntrack::for_dataplane();
    scale_pass(&lab, &flows, &packets);
    let (start, mut cpu, mut done) = (Instant::now(), Duration::ZERO, 0u64);
    while start.elapsed() < Duration::from_secs(10) {
        cpu += scale_pass(&lab, &flows, &packets);
        done += packets.len() as u64;
    }
    println!(
        "tracked flows: {:.0} decisions/s",
        done as f64 / cpu.as_secs_f64()
    );
}

/// New and tracked flows on the lab of 1000 instances, `n` flows at a time. Each flow between
/// two instances is tracked at both ends, so `n` stays well below the data plane's 65,536
/// entries (beyond, flows go untracked and "tracked" would measure rule scans).
fn scale(n: u16) {
    let (shape, lab) = scale_lab();
    let packets = scale_flows(&lab, shape, n);
    let (mut new, mut tracked) = (Duration::ZERO, Duration::ZERO);
    let rounds: u32 = 10;
    for _ in 0..rounds {
        let flows = Conntrack::for_dataplane();
        // As above: touch the table's pages first.
        scale_pass(&lab, &flows, &packets);
        flows.sweep(Duration::from_secs(1_000_000));
        new += scale_pass(&lab, &flows, &packets);
        tracked += scale_pass(&lab, &flows, &packets);
    }
    let total = f64::from(u32::from(n) * rounds);
    println!(
        "{} instances, {} route tables, {} VPCs peered in a chain, SGs of {} rules (matching rule last), {n} flows between random instances, per CPU second of one thread:\n  new flows:     {:>10.0} decisions/s\n  tracked flows: {:>10.0} decisions/s",
        shape.instances(),
        lab.lab.route_tables.len(),
        shape.vpcs,
        shape.rules,
        total / new.as_secs_f64(),
        total / tracked.as_secs_f64()
    );
}
