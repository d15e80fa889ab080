//! `vpclab explain` and the model half of `vpclab check`: a probe that is never sent, decided
//! by the same function as real packets, forward and back, rendered hop by hop. The forward leg
//! records its flow in a scratch connection-tracking table, so the reply leg passes the security
//! groups by state (as a real reply does) while still meeting the NACLs and route tables.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use crate::scenario::{HostId, InstanceId, MirrorSessionId, Probe};
use crate::wire::FlowKey;

use super::mirror::mirror_session;
use super::render::{component, render_leg};
use super::{decide_model, Compiled, Conntrack, Direction, DropCode, Hop, Outcome};

/// One direction of an exchange.
#[derive(Debug, Clone, PartialEq)]
pub struct Leg {
    pub key: FlowKey,
    pub hops: Vec<Hop>,
    pub outcome: Outcome,
    /// Traffic mirror sessions that copy this packet, where it left or arrived.
    pub mirrored: Vec<Mirrored>,
}

/// A copy a traffic mirror session makes of a packet at one interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mirrored {
    pub eni: InstanceId,
    pub direction: Direction,
    pub session: MirrorSessionId,
}

/// The copies of a delivered packet: sent by `from` as `sent`, received by `to` as `received`
/// (each copied by the lowest-numbered session whose filter accepts it, aws-rules.md §10).
fn mirrored(
    lab: &Compiled,
    from: HostId,
    sent: &FlowKey,
    leg: &Outcome,
    received: &FlowKey,
) -> Vec<Mirrored> {
    let Outcome::Deliver(to) = *leg else {
        return Vec::new();
    };
    let at = |eni: HostId, direction: Direction, key: &FlowKey| {
        (eni < lab.lab.instances.len())
            .then(|| mirror_session(lab, eni, direction, key))
            .flatten()
            .map(|session| Mirrored {
                eni,
                direction,
                session,
            })
    };
    at(from, Direction::Outbound, sent)
        .into_iter()
        .chain(at(to, Direction::Inbound, received))
        .collect()
}

/// A request and, when it arrived, its reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    pub forward: Leg,
    pub reply: Option<Leg>,
}

/// The header a probe of this kind carries (ephemeral source port 40000, echo id 1; an
/// ICMPv6 echo between IPv6 addresses).
pub fn probe_key(src: IpAddr, dst: IpAddr, probe: Probe, port: u16) -> FlowKey {
    let (protocol, src_port, dst_port, icmp_type, tcp_flags) = match probe {
        Probe::Icmp if dst.is_ipv6() => (58, 1, 1, 128, 0),
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
pub fn explain(lab: &Compiled, from: HostId, key: FlowKey) -> Explanation {
    // A fresh table: the model answers for a new connection, whatever the data plane tracks.
    let flows = Conntrack::scratch();
    let now = Duration::ZERO;
    let mut hops = Vec::new();
    let decision = decide_model(lab, &flows, now, from, &key, None, &mut hops);
    let (outcome, delivered) = (decision.outcome, decision.delivered);
    let forward = Leg {
        key,
        hops,
        outcome,
        mirrored: mirrored(lab, from, &key, &outcome, &delivered),
    };
    let reply = match outcome {
        Outcome::Deliver(target) => {
            // The destination answers the header it received (after any translation).
            let mut reply_key = delivered.reversed();
            if reply_key.protocol == 6 {
                reply_key.tcp_flags = 0x12; // SYN+ACK
            }
            let mut hops = Vec::new();
            let back = decide_model(lab, &flows, now, target, &reply_key, None, &mut hops);
            Some(Leg {
                key: reply_key,
                hops,
                outcome: back.outcome,
                mirrored: mirrored(lab, target, &reply_key, &back.outcome, &back.delivered),
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
