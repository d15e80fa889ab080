//! Scenario text of a lab of many instances for the scale benchmarks: `vpcs` VPCs peered in a
//! chain (each with the next), `subnets` subnets per VPC, each with its own route table (routes
//! to the neighbouring VPCs through their peerings), and `per_subnet` instances per subnet.
//! Every instance is in one security group per VPC whose ingress has `rules` rules: fillers
//! that match nothing of the lab first, then ICMP and all TCP from 10.0.0.0/8 last (the worst
//! case for a rule scan). Addresses: VPC v is 10.v.0.0/16, subnet s of it 10.v.s.0/24,
//! instance i of that subnet 10.v.s.(10+i); host names `hV-S-I`.

use std::fmt::Write as _;

/// The shape of a generated lab.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub vpcs: usize,
    pub subnets: usize,
    pub per_subnet: usize,
    /// Ingress rules of each security group (at least 2).
    pub rules: usize,
}

impl Shape {
    /// A shape for `instances` instances: 10 → 1×2×5, 100 → 2×5×10, 1000 → 10×10×10;
    /// other counts: up to 10 per subnet, 10 subnets per VPC.
    pub fn for_instances(instances: usize, rules: usize) -> Shape {
        let (vpcs, subnets, per_subnet) = match instances {
            10 => (1, 2, 5),
            100 => (2, 5, 10),
            1000 => (10, 10, 10),
            n => {
                let per_subnet = n.clamp(1, 10);
                let subnets_total = n.div_ceil(per_subnet);
                let subnets = subnets_total.min(10);
                (subnets_total.div_ceil(subnets), subnets, per_subnet)
            }
        };
        Shape {
            vpcs,
            subnets,
            per_subnet,
            rules: rules.max(2),
        }
    }

    pub fn instances(&self) -> usize {
        self.vpcs * self.subnets * self.per_subnet
    }

    /// The name of instance `i` of subnet `s` of VPC `v`.
    pub fn host(v: usize, s: usize, i: usize) -> String {
        format!("h{v}-{s}-{i}")
    }

    /// The address of instance `i` of subnet `s` of VPC `v`.
    pub fn ip(v: usize, s: usize, i: usize) -> std::net::Ipv4Addr {
        std::net::Ipv4Addr::new(10, v as u8, s as u8, 10 + i as u8)
    }
}

/// The scenario text of lab `name` with shape `shape`.
pub fn scenario(name: &str, shape: Shape) -> String {
    assert!(shape.vpcs <= 250 && shape.subnets <= 250 && shape.per_subnet <= 240);
    let mut y = String::new();
    let _ = writeln!(y, "name: {name}");
    let _ = writeln!(
        y,
        "description: {} VPCs peered in a chain, {} subnets each, {} instances per subnet.",
        shape.vpcs, shape.subnets, shape.per_subnet
    );
    y.push_str("vpcs:\n");
    for v in 0..shape.vpcs {
        let _ = writeln!(y, "  v{v}:\n    cidr: 10.{v}.0.0/16\n    subnets:");
        for s in 0..shape.subnets {
            let _ = writeln!(
                y,
                "      v{v}-s{s}: {{ cidr: 10.{v}.{s}.0/24, route_table: v{v}-rt{s} }}"
            );
        }
        y.push_str("    route_tables:\n");
        for s in 0..shape.subnets {
            let _ = writeln!(y, "      v{v}-rt{s}:");
            if s == 0 {
                // The VPC's main table: no implicit one beside it.
                y.push_str("        main: true\n");
            }
            y.push_str("        routes:\n");
            if v > 0 {
                let _ = writeln!(
                    y,
                    "          - {{ destination: 10.{}.0.0/16, target: pcx:p{} }}",
                    v - 1,
                    v - 1
                );
            }
            if v + 1 < shape.vpcs {
                let _ = writeln!(
                    y,
                    "          - {{ destination: 10.{}.0.0/16, target: pcx:p{v} }}",
                    v + 1
                );
            }
            // Something to look past: documentation prefixes to nowhere.
            y.push_str("          - { destination: 192.0.2.0/24, target: blackhole }\n");
        }
        let _ = writeln!(y, "    security_groups:\n      v{v}-sg:\n        ingress:");
        for r in 0..shape.rules - 2 {
            let _ = writeln!(
                y,
                "          - {{ protocol: tcp, ports: {}, source: 198.51.100.0/24 }}",
                1000 + r
            );
        }
        y.push_str("          - { protocol: icmp, source: 10.0.0.0/8 }\n");
        y.push_str("          - { protocol: tcp, ports: all, source: 10.0.0.0/8 }\n");
        y.push_str("    instances:\n");
        for s in 0..shape.subnets {
            for i in 0..shape.per_subnet {
                let _ = writeln!(
                    y,
                    "      {}: {{ subnet: v{v}-s{s}, private_ip: {}, security_groups: [v{v}-sg] }}",
                    Shape::host(v, s, i),
                    Shape::ip(v, s, i)
                );
            }
        }
    }
    if shape.vpcs > 1 {
        y.push_str("peering_connections:\n");
        for v in 0..shape.vpcs - 1 {
            let _ = writeln!(y, "  p{v}: {{ requester: v{v}, accepter: v{} }}", v + 1);
        }
    }
    y
}
