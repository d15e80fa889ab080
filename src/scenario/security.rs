//! Scenario layer: network ACLs and security groups of each VPC, with AWS's defaults: a
//! `default` of each in every VPC unless the file defines one, egress allow-all for an SG that
//! declares no egress, NACL rules sorted by number. SG references resolve in the SG's own VPC
//! first, then in peered VPCs of the same region.

use std::collections::HashMap;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::lab::*;
use super::raw::{RuleRaw, VpcRaw};
use super::resolve::{list, Ctx};
use super::values::{parse_net, parse_ports, parse_protocol};
use super::yaml::At;

const ANYWHERE: IpNet = IpNet::V4(Ipv4Net::new_assert(std::net::Ipv4Addr::UNSPECIFIED, 0));
const ANYWHERE_V6: IpNet = IpNet::V6(Ipv6Net::new_assert(std::net::Ipv6Addr::UNSPECIFIED, 0));

/// All addresses of the families a VPC has: IPv4, and IPv6 when it has an IPv6 block
/// (aws-rules.md §2.2: the default outbound rules allow `::/0` only then).
fn anywhere(ctx: &Ctx, vpc: VpcId) -> Vec<IpNet> {
    if ctx.lab.vpcs[vpc].ipv6_cidr.is_some() {
        vec![ANYWHERE, ANYWHERE_V6]
    } else {
        vec![ANYWHERE]
    }
}

pub(super) fn network_acls(ctx: &mut Ctx, vpcs: &[VpcRaw]) {
    for (vpc, v) in vpcs.iter().enumerate() {
        let mut ids = HashMap::new();
        if !v.network_acls.iter().any(|a| a.name.value == "default") {
            // Rule 100 allows all IPv4, and rule 101 all IPv6 in a VPC with an IPv6 block.
            let everywhere = anywhere(ctx, vpc);
            let allow_all = || {
                (100..)
                    .zip(&everywhere)
                    .map(|(number, cidr)| AclRule {
                        number,
                        protocol: Protocol::All,
                        ports: PortRange::ALL,
                        icmp_type: None,
                        icmp_code: None,
                        cidr: *cidr,
                        allow: true,
                    })
                    .collect::<Vec<_>>()
            };
            ids.insert("default".to_string(), ctx.lab.network_acls.len());
            ctx.lab.network_acls.push(NetworkAcl {
                name: "default".into(),
                vpc,
                inbound: allow_all(),
                outbound: allow_all(),
            });
        }
        for a in &v.network_acls {
            if let Err(m) = super::values::check_name("network ACL", &a.name.value) {
                ctx.error(&a.name, m);
            }
            let inbound = acl_rules(ctx, &a.inbound);
            let outbound = acl_rules(ctx, &a.outbound);
            ids.insert(a.name.value.clone(), ctx.lab.network_acls.len());
            ctx.lab.network_acls.push(NetworkAcl {
                name: a.name.value.clone(),
                vpc,
                inbound,
                outbound,
            });
        }
        ctx.lab.vpcs[vpc].default_network_acl = ids["default"];
        ctx.nacl_ids.push(ids);
    }
}

fn acl_rules(ctx: &mut Ctx, raw: &[RuleRaw]) -> Vec<AclRule> {
    let mut out: Vec<AclRule> = Vec::new();
    let mut seen: HashMap<i64, usize> = HashMap::new();
    for r in raw {
        let number = r.number.as_ref().and_then(|n| {
            if !(1..=32766).contains(&n.value) {
                ctx.error(
                    n,
                    format!("rule number {} is out of range: expected 1-32766", n.value),
                );
                return None;
            }
            if let Some(line) = seen.get(&n.value) {
                ctx.error(
                    n,
                    format!(
                        "duplicate rule number {} (also used at line {line})",
                        n.value
                    ),
                );
                return None;
            }
            seen.insert(n.value, n.pos.line);
            u16::try_from(n.value).ok()
        });
        let matcher = matcher(ctx, r);
        let cidr = r.peer.as_ref().and_then(|c| match parse_net(&c.value) {
            Ok(net) => Some(net),
            Err(m) => {
                ctx.error(c, m);
                None
            }
        });
        let allow = r.action.as_ref().and_then(|a| match a.value.as_str() {
            "allow" => Some(true),
            "deny" => Some(false),
            other => {
                ctx.error(
                    a,
                    format!("invalid action `{other}`: expected allow or deny"),
                );
                None
            }
        });
        if let (Some(number), Some(m), Some(cidr), Some(allow)) = (number, matcher, cidr, allow) {
            out.push(AclRule {
                number,
                protocol: m.protocol,
                ports: m.ports,
                icmp_type: m.icmp_type,
                icmp_code: m.icmp_code,
                cidr,
                allow,
            });
        }
    }
    out.sort_by_key(|r| r.number);
    out
}

/// What a rule matches besides addresses.
struct Matcher {
    protocol: Protocol,
    ports: PortRange,
    icmp_type: Option<u8>,
    icmp_code: Option<u8>,
}

fn matcher(ctx: &mut Ctx, r: &RuleRaw) -> Option<Matcher> {
    let p = r.protocol.as_ref()?;
    let protocol = match parse_protocol(&p.value) {
        Ok(protocol) => protocol,
        Err(m) => {
            ctx.error(p, m);
            return None;
        }
    };
    let mut ok = true;
    let ports = match &r.ports {
        None => PortRange::ALL,
        Some(ports) => match parse_ports(&ports.value) {
            Ok(range) if protocol == Protocol::TCP || protocol == Protocol::UDP => range,
            Ok(_) => {
                let msg = format!(
                    "ports apply only to tcp and udp, not to protocol {} (use icmp_type/icmp_code for icmp)",
                    p.value
                );
                ctx.error(ports, msg);
                ok = false;
                PortRange::ALL
            }
            Err(m) => {
                ctx.error(ports, m);
                ok = false;
                PortRange::ALL
            }
        },
    };
    let is_icmp = protocol == Protocol::ICMP || protocol == Protocol::Number(58);
    let mut icmp = |field: &Option<At<i64>>, what: &str| -> Option<u8> {
        let f = field.as_ref()?;
        if !is_icmp {
            ctx.error(
                f,
                format!(
                    "{what} applies only to icmp and icmpv6, not to protocol {}",
                    p.value
                ),
            );
            ok = false;
            return None;
        }
        if f.value == -1 {
            return None;
        }
        let v = u8::try_from(f.value).ok();
        if v.is_none() {
            ctx.error(
                f,
                format!(
                    "{what} {} is out of range: expected 0-255, or -1 for all",
                    f.value
                ),
            );
            ok = false;
        }
        v
    };
    let icmp_type = icmp(&r.icmp_type, "icmp_type");
    let icmp_code = icmp(&r.icmp_code, "icmp_code");
    ok.then_some(Matcher {
        protocol,
        ports,
        icmp_type,
        icmp_code,
    })
}

pub(super) fn security_groups(ctx: &mut Ctx, vpcs: &[VpcRaw]) {
    // First every group gets its id, so rules can name any group, in any order.
    let mut declared = Vec::new();
    for (vpc, v) in vpcs.iter().enumerate() {
        let mut ids = HashMap::new();
        if !v.security_groups.iter().any(|g| g.name.value == "default") {
            let id = ctx.lab.security_groups.len();
            ids.insert("default".to_string(), id);
            ctx.lab.security_groups.push(SecurityGroup {
                name: "default".into(),
                vpc,
                ingress: vec![allow_all(SgPeer::Group(id))],
                egress: anywhere(ctx, vpc)
                    .into_iter()
                    .map(|net| allow_all(SgPeer::Cidr(net)))
                    .collect(),
            });
        }
        for g in &v.security_groups {
            if let Err(m) = super::values::check_name("security group", &g.name.value) {
                ctx.error(&g.name, m);
            }
            let id = ctx.lab.security_groups.len();
            ids.insert(g.name.value.clone(), id);
            declared.push((vpc, g, id));
            ctx.lab.security_groups.push(SecurityGroup {
                name: g.name.value.clone(),
                vpc,
                ingress: Vec::new(),
                egress: Vec::new(),
            });
        }
        ctx.lab.vpcs[vpc].default_security_group = ids["default"];
        ctx.sg_ids.push(ids);
    }
    for (vpc, g, id) in declared {
        let ingress = sg_rules(ctx, vpc, &g.ingress);
        let egress = match &g.egress {
            Some(rules) => sg_rules(ctx, vpc, rules),
            None => anywhere(ctx, vpc)
                .into_iter()
                .map(|net| allow_all(SgPeer::Cidr(net)))
                .collect(),
        };
        ctx.lab.security_groups[id].ingress = ingress;
        ctx.lab.security_groups[id].egress = egress;
    }
}

fn allow_all(peer: SgPeer) -> SgRule {
    SgRule {
        protocol: Protocol::All,
        ports: PortRange::ALL,
        icmp_type: None,
        icmp_code: None,
        peer,
    }
}

fn sg_rules(ctx: &mut Ctx, vpc: VpcId, raw: &[RuleRaw]) -> Vec<SgRule> {
    let mut out = Vec::new();
    for r in raw {
        let m = matcher(ctx, r);
        let peer = r.peer.as_ref().and_then(|p| sg_peer(ctx, vpc, p));
        if let (Some(m), Some(peer)) = (m, peer) {
            out.push(SgRule {
                protocol: m.protocol,
                ports: m.ports,
                icmp_type: m.icmp_type,
                icmp_code: m.icmp_code,
                peer,
            });
        }
    }
    out
}

fn sg_peer(ctx: &mut Ctx, vpc: VpcId, p: &At<String>) -> Option<SgPeer> {
    if let Some(name) = p.value.strip_prefix("sg:") {
        return sg_ref(ctx, vpc, name, p).map(SgPeer::Group);
    }
    if p.value.starts_with("pl:") {
        let msg = format!(
            "prefix list `{}`: prefix lists are not supported yet by this version of vpclab",
            p.value
        );
        ctx.error(p, msg);
        return None;
    }
    match parse_net(&p.value) {
        Ok(net) => Some(SgPeer::Cidr(net)),
        Err(m) => {
            ctx.error(p, format!("{m}, or sg:NAME"));
            None
        }
    }
}

/// `sg:NAME`: this VPC's group first, else one of a peered VPC in the same region.
fn sg_ref(ctx: &mut Ctx, vpc: VpcId, name: &str, at: &At<String>) -> Option<SecurityGroupId> {
    if let Some(id) = ctx.sg_ids[vpc].get(name) {
        return Some(*id);
    }
    let mut peers: Vec<VpcId> = ctx
        .lab
        .peerings
        .iter()
        .filter_map(|p| p.peer_of(vpc))
        .collect();
    peers.sort();
    peers.dedup();
    let found: Vec<(VpcId, SecurityGroupId)> = peers
        .iter()
        .filter_map(|p| ctx.sg_ids[*p].get(name).map(|id| (*p, *id)))
        .collect();
    let here = &ctx.lab.vpcs[vpc];
    let msg = match found.as_slice() {
        [(peer, id)] if ctx.lab.vpcs[*peer].region == here.region => return Some(*id),
        [(peer, _)] => format!(
            "security group `{name}` is in vpc {} (region {}) but this group is in vpc {} (region {}): \
             SG references across regions are not allowed; use the peer's CIDR",
            ctx.lab.vpcs[*peer].name, ctx.lab.vpcs[*peer].region, here.name, here.region
        ),
        [] => {
            let mut valid: Vec<String> = sorted_names(&ctx.sg_ids[vpc]);
            for p in &peers {
                valid.extend(sorted_names(&ctx.sg_ids[*p]).into_iter().map(|n| format!("{n} (vpc {})", ctx.lab.vpcs[*p].name)));
            }
            format!(
                "unknown security group `{name}`; groups of vpc {} and its peered VPCs: {}",
                here.name,
                list(valid.iter().map(String::as_str))
            )
        }
        many => format!(
            "security group `{name}` is ambiguous: it exists in several peered VPCs ({})",
            list(many.iter().map(|(p, _)| ctx.lab.vpcs[*p].name.as_str()))
        ),
    };
    ctx.error(at, msg);
    None
}

pub(super) fn sorted_names<V>(ids: &HashMap<String, V>) -> Vec<String> {
    let mut v: Vec<String> = ids.keys().cloned().collect();
    v.sort();
    v
}
