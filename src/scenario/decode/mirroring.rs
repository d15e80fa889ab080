//! Scenario layer, decoding: traffic mirroring (`traffic_mirroring:`): targets, filters, sessions.

use super::super::error::Errors;
use super::super::raw::*;
use super::super::yaml::Node;
use super::*;

const MIRROR_RULE_KEYS: &[&str] = &[
    "rule",
    "action",
    "protocol",
    "source_ports",
    "destination_ports",
    "source_cidr",
    "destination_cidr",
];

const MIRROR_SESSION_KEYS: &[&str] = &[
    "source",
    "target",
    "filter",
    "session_number",
    "vni",
    "packet_length",
];

pub(super) fn mirroring(node: &Node<'_>, errs: &mut Errors) -> MirroringRaw {
    let mut raw = MirroringRaw::default();
    let Some(m) = node.map(errs, &["targets", "filters", "sessions"]) else {
        return raw;
    };
    for (name, n) in m.get("targets").map(|n| n.named(errs)).unwrap_or_default() {
        if let Some(t) = n.map(errs, &["eni"]) {
            raw.targets.push(MirrorTargetRaw {
                eni: required_string(&t, errs, "eni", MIRROR_ENI),
                name,
            });
        }
    }
    for (name, n) in m.get("filters").map(|n| n.named(errs)).unwrap_or_default() {
        if let Some(f) = n.map(errs, &["inbound", "outbound"]) {
            let mut rules = |key| {
                f.get(key)
                    .map(|n| mirror_rules(n, errs))
                    .unwrap_or_default()
            };
            raw.filters.push(MirrorFilterRaw {
                inbound: rules("inbound"),
                outbound: rules("outbound"),
                name,
            });
        }
    }
    for (name, n) in m.get("sessions").map(|n| n.named(errs)).unwrap_or_default() {
        if let Some(s) = n.map(errs, MIRROR_SESSION_KEYS) {
            raw.sessions.push(MirrorSessionRaw {
                source: required_string(&s, errs, "source", "eni:HOST"),
                target: required_string(&s, errs, "target", "a mirror target name"),
                filter: required_string(&s, errs, "filter", "a mirror filter name"),
                session_number: s
                    .required(errs, "session_number", SESSION_NUMBER)
                    .and_then(|n| n.integer(errs, SESSION_NUMBER)),
                vni: s.integer(errs, "vni", VNI),
                packet_length: s.integer(errs, "packet_length", PACKET_LENGTH),
                name,
            });
        }
    }
    raw
}

fn mirror_rules(node: &Node<'_>, errs: &mut Errors) -> Vec<MirrorRuleRaw> {
    let mut out = Vec::new();
    for item in node.seq(errs) {
        let Some(m) = item.map(errs, MIRROR_RULE_KEYS) else {
            continue;
        };
        out.push(MirrorRuleRaw {
            at: item.at(()),
            number: m
                .required(errs, "rule", MIRROR_RULE_NUMBER)
                .and_then(|n| n.integer(errs, MIRROR_RULE_NUMBER)),
            action: required_string(&m, errs, "action", MIRROR_ACTION),
            protocol: m.text(errs, "protocol", PROTOCOL),
            source_ports: m.text(errs, "source_ports", PORTS),
            destination_ports: m.text(errs, "destination_ports", PORTS),
            source_cidr: m.string(errs, "source_cidr", CIDR),
            destination_cidr: m.string(errs, "destination_cidr", CIDR),
        });
    }
    out
}
