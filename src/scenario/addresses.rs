//! Scenario layer: instances and their private addresses. Fixed addresses are checked first
//! (inside the subnet, not one of AWS's five reserved, not taken); then every instance without
//! one gets the next free address from .4 up, in file order, as EC2 would.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use super::lab::*;
use super::raw::{InstanceRaw, VpcRaw};
use super::resolve::{list, Ctx};
use super::security::sorted_names;
use super::values::{first_free, is_reserved, parse_ipv4};
use super::yaml::At;

struct Pending<'r> {
    raw: &'r InstanceRaw,
    vpc: VpcId,
    fresh: bool,
    subnet: Option<SubnetId>,
    ip: Option<Ipv4Addr>,
    security_groups: Vec<SecurityGroupId>,
    services: Vec<Service>,
}

pub(super) fn instances(ctx: &mut Ctx, vpcs: &[VpcRaw]) {
    let mut taken: HashMap<(SubnetId, Ipv4Addr), String> = HashMap::new();
    let mut pending = Vec::new();
    for (vpc, v) in vpcs.iter().enumerate() {
        for i in &v.instances {
            let fresh = ctx.claim("host", &i.name);
            let subnet = i.subnet.as_ref().and_then(|s| subnet_ref(ctx, vpc, s));
            let ip = match (subnet, &i.private_ip) {
                (Some(subnet), Some(at)) => fixed_ip(ctx, subnet, at, &i.name.value, &mut taken),
                _ => None,
            };
            let security_groups = security_groups(ctx, vpc, i);
            let services = ctx.services(&i.services);
            pending.push(Pending {
                raw: i,
                vpc,
                fresh,
                subnet,
                ip,
                security_groups,
                services,
            });
        }
    }
    for p in &mut pending {
        let Some(subnet) = p.subnet else { continue };
        if p.ip.is_none() && p.raw.private_ip.is_none() {
            p.ip = next_free(ctx, subnet, &taken);
            match p.ip {
                Some(ip) => {
                    taken.insert((subnet, ip), p.raw.name.value.clone());
                }
                None => {
                    let s = &ctx.lab.subnets[subnet];
                    let msg = format!(
                        "InsufficientFreeAddressesInSubnet: subnet {} ({}) has no free address left for {}",
                        s.name, s.cidr, p.raw.name.value
                    );
                    ctx.error(&p.raw.name, msg);
                }
            }
        }
    }
    for p in pending {
        let id = match (p.subnet, p.ip) {
            (Some(subnet), Some(private_ip)) => {
                let forwarding = p.raw.forwarding.as_ref().and_then(|f| forwarding(ctx, f));
                let ipv6 = instance_ipv6(ctx, subnet, private_ip, p.raw);
                ctx.lab.instances.push(Instance {
                    name: p.raw.name.value.clone(),
                    vpc: p.vpc,
                    subnet,
                    private_ip,
                    ipv6,
                    security_groups: p.security_groups,
                    source_dest_check: p.raw.source_dest_check.as_ref().is_none_or(|b| b.value),
                    services: p.services,
                    run: p.raw.run.clone(),
                    public_ip: None,
                    forwarding,
                });
                Some(ctx.lab.instances.len() - 1)
            }
            _ => None,
        };
        if p.fresh {
            ctx.host_ids.insert(p.raw.name.value.clone(), id);
        }
    }
}

/// An instance's IPv6 address, if it has one (by default when its subnet is dual stack). IPv4
/// stays: an instance without a free IPv4 address was refused before (aws-rules.md §11).
fn instance_ipv6(
    ctx: &mut Ctx,
    subnet: SubnetId,
    ip: Ipv4Addr,
    raw: &InstanceRaw,
) -> Option<std::net::Ipv6Addr> {
    let s = &ctx.lab.subnets[subnet];
    match (&raw.ipv6, s.ipv6_cidr) {
        (Some(at), None) if at.value => {
            let msg = format!(
                "instance {} asks for IPv6 but subnet {} has no IPv6 /64: set `ipv6: true` on \
                 the subnet or its VPC",
                raw.name.value, s.name
            );
            ctx.error(at, msg);
            None
        }
        (Some(at), _) if !at.value => None,
        (_, block) => block.map(|b| super::ipv6::instance_address(b, s.cidr, ip)),
    }
}

/// An instance's subnet must be one of its own VPC's. None when broken.
fn subnet_ref(ctx: &mut Ctx, vpc: VpcId, s: &At<String>) -> Option<SubnetId> {
    if let Some(found) = ctx.subnet_ids.get(&(vpc, s.value.clone())) {
        return *found;
    }
    let vpc_name = ctx.vpc_name(vpc);
    let mine = list(
        ctx.lab
            .subnets
            .iter()
            .filter(|x| x.vpc == vpc)
            .map(|x| x.name.as_str()),
    );
    let msg = match ctx.lab.subnets.iter().find(|x| x.name == s.value) {
        Some(other) => format!(
            "subnet `{}` is in vpc {}, not in vpc {vpc_name} where this instance is declared; \
             subnets of vpc {vpc_name}: {mine}",
            s.value,
            ctx.vpc_name(other.vpc)
        ),
        None => format!(
            "unknown subnet `{}`; subnets of vpc {vpc_name}: {mine}",
            s.value
        ),
    };
    ctx.error(s, msg);
    None
}

fn fixed_ip(
    ctx: &mut Ctx,
    subnet: SubnetId,
    at: &At<String>,
    host: &str,
    taken: &mut HashMap<(SubnetId, Ipv4Addr), String>,
) -> Option<Ipv4Addr> {
    let ip = match parse_ipv4(&at.value) {
        Ok(ip) => ip,
        Err(m) => {
            ctx.error(at, m);
            return None;
        }
    };
    let s = &ctx.lab.subnets[subnet];
    let msg = if !s.cidr.contains(&ip) {
        format!(
            "private_ip {ip} is not inside subnet {} ({})",
            s.name, s.cidr
        )
    } else if is_reserved(s.cidr, ip) {
        let first = Ipv4Addr::from(u32::from(s.cidr.network()) + 4);
        let last = Ipv4Addr::from(u32::from(s.cidr.broadcast()) - 1);
        format!(
            "private_ip {ip} is reserved by AWS in subnet {} ({}: network, router, DNS, future use \
             and broadcast are reserved): expected an address from {first} to {last}",
            s.name, s.cidr
        )
    } else if let Some(other) = taken.get(&(subnet, ip)) {
        format!("private_ip {ip} is already the address of {other}")
    } else {
        taken.insert((subnet, ip), host.to_string());
        return Some(ip);
    };
    ctx.error(at, msg);
    None
}

fn next_free(
    ctx: &Ctx,
    subnet: SubnetId,
    taken: &HashMap<(SubnetId, Ipv4Addr), String>,
) -> Option<Ipv4Addr> {
    first_free(ctx.lab.subnets[subnet].cidr, |ip| {
        taken.contains_key(&(subnet, ip))
    })
}

fn security_groups(ctx: &mut Ctx, vpc: VpcId, i: &InstanceRaw) -> Vec<SecurityGroupId> {
    let Some(names) = &i.security_groups else {
        return vec![ctx.lab.vpcs[vpc].default_security_group];
    };
    let mut out = Vec::new();
    for n in names {
        match ctx.sg_ids[vpc].get(&n.value) {
            Some(id) if !out.contains(id) => out.push(*id),
            Some(_) => ctx.error(n, format!("security group `{}` is listed twice", n.value)),
            None => {
                let valid = sorted_names(&ctx.sg_ids[vpc]);
                let msg = format!(
                    "unknown security group `{}`; security groups of vpc {}: {}",
                    n.value,
                    ctx.vpc_name(vpc),
                    list(valid.iter().map(String::as_str))
                );
                ctx.error(n, msg);
            }
        }
    }
    out
}

fn forwarding(ctx: &mut Ctx, at: &At<String>) -> Option<Forwarding> {
    match at.value.as_str() {
        "route" => Some(Forwarding::Route),
        "masquerade" => Some(Forwarding::Masquerade),
        other => {
            let msg = format!(
                "invalid forwarding `{other}`: expected {}",
                super::decode::FORWARDING
            );
            ctx.error(at, msg);
            None
        }
    }
}
