//! Scenario layer: resolution of `traffic_mirroring` into the lab's mirror targets, filters and
//! sessions, with AWS's rules (aws-rules.md §10): a target is an instance's ENI; filter rules are
//! numbered 1-32766, unique per direction, at most 10 per direction; a session has a number
//! 1-32766 unique on its source, a 24-bit VNI, an optional packet length, never its source as
//! its target, and a source carries at most 3 sessions. Names are lab-wide.

use std::collections::HashMap;

use ipnet::{IpNet, Ipv4Net};

use super::decode::{
    MIRROR_ACTION, MIRROR_ENI, MIRROR_RULE_NUMBER, PACKET_LENGTH, SESSION_NUMBER, VNI,
};
use super::lab::*;
use super::raw::{MirrorFilterRaw, MirrorRuleRaw, MirrorSessionRaw, MirroringRaw};
use super::resolve::{list, Ctx};
use super::values::{parse_net, parse_ports, parse_protocol};
use super::yaml::At;

/// AWS: rules per filter (enforced per direction).
const MAX_RULES: usize = 10;
/// AWS: sessions per source network interface.
const MAX_SESSIONS_PER_SOURCE: usize = 3;
/// AWS: the largest packet length (a 9001-byte target MTU less the encapsulation).
const MAX_PACKET_LENGTH: i64 = 8947;
const MAX_VNI: i64 = 0xff_ffff;
const ANYWHERE: IpNet = IpNet::V4(Ipv4Net::new_assert(std::net::Ipv4Addr::UNSPECIFIED, 0));

/// Names of the things declared so far; `None` marks one declared but reported broken.
struct Names {
    targets: HashMap<String, Option<MirrorTargetId>>,
    filters: HashMap<String, Option<MirrorFilterId>>,
}

pub(super) fn mirroring(ctx: &mut Ctx, raw: &MirroringRaw) {
    let mut names = Names {
        targets: HashMap::new(),
        filters: HashMap::new(),
    };
    for t in &raw.targets {
        let fresh = ctx.claim("mirror target", &t.name);
        let eni = t.eni.as_ref().and_then(|e| eni(ctx, e));
        let id = match (fresh, eni) {
            (true, Some(eni)) => {
                ctx.lab.mirror_targets.push(MirrorTarget {
                    name: t.name.value.clone(),
                    eni,
                });
                Some(ctx.lab.mirror_targets.len() - 1)
            }
            _ => None,
        };
        names.targets.entry(t.name.value.clone()).or_insert(id);
    }
    for f in &raw.filters {
        let id = filter(ctx, f);
        names.filters.entry(f.name.value.clone()).or_insert(id);
    }
    // Per source: (session number, line) of its sessions so far, to report duplicates and the
    // fourth session.
    let mut per_source: HashMap<InstanceId, Vec<(u16, usize)>> = HashMap::new();
    for s in &raw.sessions {
        session(ctx, &names, &mut per_source, s);
    }
}

/// `HOST` or `eni:HOST`: the primary interface of an instance. None when broken.
fn eni(ctx: &mut Ctx, at: &At<String>) -> Option<InstanceId> {
    let name = match at.value.split_once(':') {
        None => at.value.as_str(),
        Some(("eni", name)) => name,
        Some(_) => {
            let msg = format!("invalid ENI `{}`: expected {MIRROR_ENI}", at.value);
            ctx.error(at, msg);
            return None;
        }
    };
    match ctx.host_ids.get(name).copied() {
        // A host already reported broken is skipped silently.
        Some(None) => None,
        Some(Some(id)) if id < ctx.lab.instances.len() => Some(id),
        Some(Some(_)) => {
            let msg =
                format!("host `{name}` is not an instance: only an instance's ENI can be mirrored");
            ctx.error(at, msg);
            None
        }
        None => {
            let mut hosts: Vec<&str> = ctx.host_ids.keys().map(String::as_str).collect();
            hosts.sort();
            let msg = format!("unknown host `{name}`; hosts: {}", list(hosts.into_iter()));
            ctx.error(at, msg);
            None
        }
    }
}

fn filter(ctx: &mut Ctx, f: &MirrorFilterRaw) -> Option<MirrorFilterId> {
    let fresh = ctx.claim("mirror filter", &f.name);
    let inbound = rules(ctx, &f.name.value, "inbound", &f.inbound);
    let outbound = rules(ctx, &f.name.value, "outbound", &f.outbound);
    let (true, Some(inbound), Some(outbound)) = (fresh, inbound, outbound) else {
        return None;
    };
    ctx.lab.mirror_filters.push(MirrorFilter {
        name: f.name.value.clone(),
        inbound,
        outbound,
    });
    Some(ctx.lab.mirror_filters.len() - 1)
}

/// The rules of one direction, sorted by number. None when any of them is broken.
fn rules(
    ctx: &mut Ctx,
    filter: &str,
    direction: &str,
    raw: &[MirrorRuleRaw],
) -> Option<Vec<MirrorRule>> {
    let mut ok = true;
    if let Some(extra) = raw.get(MAX_RULES) {
        let msg = format!(
            "filter {filter} has {} {direction} rules: AWS allows at most {MAX_RULES} rules per \
             direction of a filter",
            raw.len()
        );
        ctx.error(&extra.at, msg);
        ok = false;
    }
    let mut seen: HashMap<i64, usize> = HashMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for r in raw {
        let number = r.number.as_ref().and_then(|n| {
            if !(1..=32766).contains(&n.value) {
                let msg = format!(
                    "rule number {} is out of range: expected {MIRROR_RULE_NUMBER}",
                    n.value
                );
                ctx.error(n, msg);
                return None;
            }
            if let Some(line) = seen.get(&n.value) {
                let msg = format!(
                    "duplicate {direction} rule number {} (also used at line {line})",
                    n.value
                );
                ctx.error(n, msg);
                return None;
            }
            seen.insert(n.value, n.pos.line);
            u16::try_from(n.value).ok()
        });
        let accept = r.action.as_ref().and_then(|a| match a.value.as_str() {
            "accept" => Some(true),
            "reject" => Some(false),
            other => {
                ctx.error(
                    a,
                    format!("invalid action `{other}`: expected {MIRROR_ACTION}"),
                );
                None
            }
        });
        let rule = matcher(ctx, r);
        match (number, accept, rule) {
            (Some(number), Some(accept), Some(rule)) => out.push(MirrorRule {
                number,
                accept,
                ..rule
            }),
            _ => ok = false,
        }
    }
    out.sort_by_key(|r| r.number);
    ok.then_some(out)
}

/// Protocol, ports and CIDRs of a rule (number and action left at placeholders).
fn matcher(ctx: &mut Ctx, r: &MirrorRuleRaw) -> Option<MirrorRule> {
    let mut ok = true;
    let protocol = match &r.protocol {
        None => Protocol::All,
        Some(p) => parse_protocol(&p.value).unwrap_or_else(|m| {
            ctx.error(p, m);
            ok = false;
            Protocol::All
        }),
    };
    let has_ports = protocol == Protocol::TCP || protocol == Protocol::UDP;
    let mut ports = |at: &Option<At<String>>, key: &str| -> PortRange {
        let Some(text) = at else {
            return PortRange::ALL;
        };
        let parsed = match parse_ports(&text.value) {
            Ok(_) if !has_ports => Err(format!(
                "{key} apply only to tcp and udp, not to protocol {}",
                r.protocol.as_ref().map_or("all", |p| p.value.as_str())
            )),
            other => other,
        };
        parsed.unwrap_or_else(|m| {
            ctx.error(text, m);
            ok = false;
            PortRange::ALL
        })
    };
    let source_ports = ports(&r.source_ports, "source_ports");
    let destination_ports = ports(&r.destination_ports, "destination_ports");
    let mut cidr = |at: &Option<At<String>>| -> IpNet {
        let Some(text) = at else {
            return ANYWHERE;
        };
        parse_net(&text.value).unwrap_or_else(|m| {
            ctx.error(text, m);
            ok = false;
            ANYWHERE
        })
    };
    let source_cidr = cidr(&r.source_cidr);
    let destination_cidr = cidr(&r.destination_cidr);
    ok.then_some(MirrorRule {
        number: 0,
        accept: false,
        protocol,
        source_ports,
        destination_ports,
        source_cidr,
        destination_cidr,
    })
}

fn session(
    ctx: &mut Ctx,
    names: &Names,
    per_source: &mut HashMap<InstanceId, Vec<(u16, usize)>>,
    s: &MirrorSessionRaw,
) {
    let fresh = ctx.claim("mirror session", &s.name);
    let source = s.source.as_ref().and_then(|e| eni(ctx, e));
    let target = s.target.as_ref().and_then(|t| {
        let found = names.targets.get(&t.value).copied();
        if found.is_none() {
            let msg = format!(
                "unknown mirror target `{}`; mirror targets: {}",
                t.value,
                list(sorted(&names.targets).into_iter())
            );
            ctx.error(t, msg);
        }
        found.flatten()
    });
    let filter = s.filter.as_ref().and_then(|f| {
        let found = names.filters.get(&f.value).copied();
        if found.is_none() {
            let msg = format!(
                "unknown mirror filter `{}`; mirror filters: {}",
                f.value,
                list(sorted(&names.filters).into_iter())
            );
            ctx.error(f, msg);
        }
        found.flatten()
    });
    let session_number = s.session_number.as_ref().and_then(|n| {
        let v = u16::try_from(n.value)
            .ok()
            .filter(|v| (1..=32766).contains(v));
        if v.is_none() {
            let msg = format!(
                "session number {} is out of range: expected {SESSION_NUMBER}",
                n.value
            );
            ctx.error(n, msg);
        }
        v
    });
    let vni = match &s.vni {
        None => Some(default_vni(&ctx.lab.name, &s.name.value)),
        Some(v) if (0..=MAX_VNI).contains(&v.value) => Some(v.value as u32),
        Some(v) => {
            let msg = format!("VNI {} is out of range: expected {VNI}", v.value);
            ctx.error(v, msg);
            None
        }
    };
    let packet_length = match &s.packet_length {
        None => Some(None),
        Some(p) if (1..=MAX_PACKET_LENGTH).contains(&p.value) => Some(Some(p.value as u16)),
        Some(p) => {
            let msg = format!(
                "packet_length {} is out of range: expected {PACKET_LENGTH}",
                p.value
            );
            ctx.error(p, msg);
            None
        }
    };
    let mut ok = fresh;
    if let (Some(src), Some(t), Some(at)) = (source, target, &s.target) {
        let target_eni = ctx.lab.mirror_targets[t].eni;
        if src == target_eni {
            let msg = format!(
                "mirror target `{}` is the ENI of {}, the session's own source: an ENI cannot \
                 be source and target of one session",
                at.value, ctx.lab.instances[src].name
            );
            ctx.error(at, msg);
            ok = false;
        } else if let Some(msg) = unreachable_target(&ctx.lab, src, target_eni) {
            ctx.error(at, msg);
            ok = false;
        }
    }
    if let (Some(src), Some(at)) = (source, &s.source) {
        ok &= per_source_rules(ctx, per_source, src, at, s);
    }
    if let (true, Some(source), Some(target), Some(filter), Some(session_number)) =
        (ok, source, target, filter, session_number)
    {
        if let (Some(vni), Some(packet_length)) = (vni, packet_length) {
            ctx.lab.mirror_sessions.push(MirrorSession {
                name: s.name.value.clone(),
                source,
                target,
                filter,
                session_number,
                vni,
                packet_length,
            });
        }
    }
}

/// The rules of one source ENI: session numbers unique, at most 3 sessions. False when broken.
fn per_source_rules(
    ctx: &mut Ctx,
    per_source: &mut HashMap<InstanceId, Vec<(u16, usize)>>,
    src: InstanceId,
    at: &At<String>,
    s: &MirrorSessionRaw,
) -> bool {
    let mut ok = true;
    let taken = per_source.entry(src).or_default();
    let name = ctx.lab.instances[src].name.clone();
    let number = s
        .session_number
        .as_ref()
        .and_then(|n| u16::try_from(n.value).ok().map(|v| (v, n)));
    if let Some((n, n_at)) = number {
        if let Some((_, line)) = taken.iter().find(|(used, _)| *used == n) {
            let msg = format!(
                "session number {n} is already used on {name} (line {line}): session numbers \
                 are unique per source"
            );
            ctx.error(n_at, msg);
            ok = false;
        }
    }
    if taken.len() >= MAX_SESSIONS_PER_SOURCE {
        let msg = format!(
            "{name} is already the source of {MAX_SESSIONS_PER_SOURCE} sessions: AWS allows at \
             most {MAX_SESSIONS_PER_SOURCE} per source ENI"
        );
        ctx.error(at, msg);
        ok = false;
    }
    // Counted even when broken, so that one mistake does not hide the limit.
    taken.push((number.map_or(0, |(n, _)| n), s.name.pos.line));
    ok
}

/// AWS: the target is in the source's VPC or in a VPC peered with it in the same Region.
fn unreachable_target(lab: &Lab, source: InstanceId, target: InstanceId) -> Option<String> {
    let (s, t) = (&lab.instances[source], &lab.instances[target]);
    if s.vpc == t.vpc {
        return None;
    }
    let (sv, tv) = (&lab.vpcs[s.vpc], &lab.vpcs[t.vpc]);
    let peered = lab.peerings.iter().any(|p| p.peer_of(s.vpc) == Some(t.vpc));
    if peered && sv.region == tv.region {
        return None;
    }
    Some(format!(
        "the target's ENI {} is in vpc {}, neither the source {}'s vpc {} nor a VPC peered with \
         it in the same region",
        t.name, tv.name, s.name, sv.name
    ))
}

/// AWS picks a random VNI when none is given; the lab derives one from the names, so that a
/// capture looks the same on every run.
fn default_vni(lab: &str, session: &str) -> u32 {
    // FNV-1a: stable across Rust versions.
    let hash = lab
        .bytes()
        .chain([0u8])
        .chain(session.bytes())
        .fold(0x811c_9dc5_u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
    hash & MAX_VNI as u32
}

fn sorted<V>(names: &HashMap<String, V>) -> Vec<&str> {
    let mut v: Vec<&str> = names.keys().map(String::as_str).collect();
    v.sort();
    v
}
