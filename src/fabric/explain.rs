//! `vpclab explain` and the model half of `vpclab check`: a probe that is never sent, decided
//! by the same function as real packets, forward and back, rendered hop by hop.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use crate::scenario::{InstanceId, Probe};
use crate::wire::FlowKey;

use super::{decide, Compiled, DropCode, Hop, Outcome, RouteRef};

/// One direction of an exchange.
#[derive(Debug, Clone, PartialEq)]
pub struct Leg {
    pub key: FlowKey,
    pub hops: Vec<Hop>,
    pub outcome: Outcome,
}

/// A request and, when it arrived, its reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    pub forward: Leg,
    pub reply: Option<Leg>,
}

/// The header a probe of this kind carries (ephemeral source port 40000, echo id 1).
pub fn probe_key(src: Ipv4Addr, dst: Ipv4Addr, probe: Probe, port: u16) -> FlowKey {
    let (protocol, src_port, dst_port, icmp_type, tcp_flags) = match probe {
        Probe::Icmp => (1, 1, 1, 8, 0),
        Probe::Tcp | Probe::Http => (6, 40000, port, 0, 0x02),
        Probe::Udp => (17, 40000, port, 0, 0),
    };
    FlowKey {
        src,
        dst,
        protocol,
        src_port,
        dst_port,
        icmp_type,
        icmp_code: 0,
        tcp_flags,
    }
}

/// Decides the probe from `from` and, if it arrives, the reply of its destination.
pub fn explain(lab: &Compiled, from: InstanceId, key: FlowKey) -> Explanation {
    let mut hops = Vec::new();
    let outcome = decide(lab, from, &key, &mut hops);
    let forward = Leg { key, hops, outcome };
    let reply = match outcome {
        Outcome::Deliver(target) => {
            let mut reply_key = key.reversed();
            if reply_key.protocol == 6 {
                reply_key.tcp_flags = 0x12; // SYN+ACK
            }
            let mut hops = Vec::new();
            let outcome = decide(lab, target, &reply_key, &mut hops);
            Some(Leg {
                key: reply_key,
                hops,
                outcome,
            })
        }
        Outcome::Drop(_) => None,
    };
    Explanation { forward, reply }
}

impl Explanation {
    /// True when the request arrived and its reply came back.
    pub fn reachable(&self) -> bool {
        matches!(
            self.reply,
            Some(Leg {
                outcome: Outcome::Deliver(_),
                ..
            })
        )
    }

    /// The first drop, forward or back.
    pub fn drop_code(&self) -> Option<DropCode> {
        let legs = std::iter::once(&self.forward).chain(self.reply.as_ref());
        legs.filter_map(|l| match l.outcome {
            Outcome::Drop(code) => Some(code),
            Outcome::Deliver(_) => None,
        })
        .next()
    }

    /// The components of the forward path as `kind:name`, for `via:` checks.
    pub fn components(&self, lab: &Compiled) -> Vec<String> {
        self.forward
            .hops
            .iter()
            .filter_map(|h| component(lab, h))
            .collect()
    }

    /// A multi-line account of both legs.
    pub fn render(&self, lab: &Compiled) -> String {
        let mut out = String::new();
        render_leg(&mut out, lab, "request", &self.forward);
        match &self.reply {
            Some(reply) => render_leg(&mut out, lab, "reply", reply),
            None => out.push_str("reply: none (the request did not arrive)\n"),
        }
        let verdict = if self.reachable() {
            "REACHABLE".to_string()
        } else {
            let code = self.drop_code().map(|c| c.as_str()).unwrap_or("UNKNOWN");
            format!("NOT REACHABLE: {code}")
        };
        let _ = writeln!(out, "result: {verdict}");
        out
    }
}

fn render_leg(out: &mut String, lab: &Compiled, title: &str, leg: &Leg) {
    let k = &leg.key;
    let what = match k.protocol {
        1 => format!("icmp type {}", k.icmp_type),
        6 => format!("tcp {}:{} -> {}:{}", k.src, k.src_port, k.dst, k.dst_port),
        17 => format!("udp {}:{} -> {}:{}", k.src, k.src_port, k.dst, k.dst_port),
        p => format!("protocol {p}"),
    };
    let _ = writeln!(out, "{title}: {} -> {} ({what})", k.src, k.dst);
    for (n, hop) in leg.hops.iter().enumerate() {
        let _ = writeln!(out, "  {:>2}. {}", n + 1, describe(lab, hop));
    }
    match leg.outcome {
        Outcome::Deliver(i) => {
            let _ = writeln!(out, "  => delivered to {}", lab.lab.instances[i].name);
        }
        Outcome::Drop(code) => {
            let _ = writeln!(out, "  => dropped: {code} ({})", code.meaning());
        }
    }
}

fn describe(lab: &Compiled, hop: &Hop) -> String {
    let l = &lab.lab;
    match *hop {
        Hop::SourceEni(i) => {
            let inst = &l.instances[i];
            format!(
                "eni:{} {} in subnet {} ({}), vpc {}",
                inst.name,
                inst.private_ip,
                l.subnets[inst.subnet].name,
                l.subnets[inst.subnet].cidr,
                l.vpcs[inst.vpc].name
            )
        }
        Hop::SameSubnet(s) => format!(
            "same subnet {}: delivered directly (no route table, no NACL)",
            l.subnets[s].name
        ),
        Hop::LeaveSubnet(s) => {
            format!("leaves subnet {} through the VPC router", l.subnets[s].name)
        }
        Hop::Route { table, route } => {
            let t = &l.route_tables[table];
            let how = if l
                .subnets
                .iter()
                .any(|s| s.route_table == table && s.explicit_route_table)
            {
                ""
            } else {
                " (main)"
            };
            let (dest, target) = match route {
                RouteRef::Local(i) => (l.vpcs[t.vpc].cidrs[i].to_string(), "local".to_string()),
                RouteRef::Declared(i) => {
                    let r = &t.routes[i];
                    let target = match r.target {
                        crate::scenario::RouteTarget::Blackhole => "blackhole".to_string(),
                        crate::scenario::RouteTarget::Peering(p) => {
                            format!("pcx:{}", l.peerings[p].name)
                        }
                    };
                    (r.destination.to_string(), target)
                }
            };
            format!(
                "route table {}{how}: route {dest} -> {target} (longest prefix match)",
                t.name
            )
        }
        Hop::Peering { peering, into } => {
            let p = &l.peerings[peering];
            let mut extra = Vec::new();
            if p.cross_region {
                extra.push("inter-region");
            }
            if p.cross_account {
                extra.push("cross-account");
            }
            let extra = if extra.is_empty() {
                String::new()
            } else {
                format!(" ({})", extra.join(", "))
            };
            format!(
                "peering connection pcx:{}{extra} into vpc {}",
                p.name, l.vpcs[into].name
            )
        }
        Hop::EnterSubnet(s) => format!(
            "enters subnet {} ({})",
            l.subnets[s].name, l.subnets[s].cidr
        ),
        Hop::DestinationEni(i) => {
            format!("eni:{} {}", l.instances[i].name, l.instances[i].private_ip)
        }
    }
}

fn component(lab: &Compiled, hop: &Hop) -> Option<String> {
    let l = &lab.lab;
    match *hop {
        Hop::SourceEni(i) | Hop::DestinationEni(i) => Some(format!("eni:{}", l.instances[i].name)),
        Hop::Route { table, .. } => Some(format!("rtb:{}", l.route_tables[table].name)),
        Hop::Peering { peering, .. } => Some(format!("pcx:{}", l.peerings[peering].name)),
        Hop::EnterSubnet(s) | Hop::LeaveSubnet(s) | Hop::SameSubnet(s) => {
            Some(format!("subnet:{}", l.subnets[s].name))
        }
    }
}
