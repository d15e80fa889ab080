//! Scenario layer: resolution of the raw scenario into a `Lab`, phase by phase (VPCs, peerings,
//! route tables, ACLs, SGs, subnets, instances, expectations). Every phase reports all it finds
//! and goes on; a thing already reported as broken is skipped silently by the phases after, so
//! one mistake yields one error. The `Lab` is only handed out when nothing was reported.

use std::collections::HashMap;
use std::path::Path;

use ipnet::{Ipv4Net, Ipv6Net};

use super::error::{Errors, Pos};
use super::lab::*;
use super::raw::{ScenarioRaw, SubnetRaw, VpcRaw};
use super::values::{
    check_account, check_lab_name, check_name, check_region, overlaps, parse_service,
    parse_sized_cidr,
};
use super::yaml::At;
use super::{
    addresses, expect, flowlogs, internet, ipv6, mirroring, routing, security, services, tgw, vpn,
};

const DEFAULT_REGION: &str = "us-east-1";
const DEFAULT_ACCOUNT: &str = "111111111111";

/// What the phases share: the lab being built and the names seen so far.
pub(super) struct Ctx<'e> {
    pub errs: &'e mut Errors,
    pub lab: Lab,
    pub vpc_ids: HashMap<String, VpcId>,
    /// False when a VPC's CIDRs were reported bad: checks against them are skipped.
    pub vpc_cidrs_ok: Vec<bool>,
    /// Lab-wide names; `None` marks a thing that was declared but reported broken.
    pub peering_ids: HashMap<String, Option<PeeringId>>,
    pub host_ids: HashMap<String, Option<InstanceId>>,
    /// By VPC and name, so that a name declared twice in two VPCs still resolves in each.
    pub route_table_ids: HashMap<(VpcId, String), Option<RouteTableId>>,
    pub subnet_ids: HashMap<(VpcId, String), Option<SubnetId>>,
    /// Per VPC: SGs and NACLs are named within their VPC.
    pub sg_ids: Vec<HashMap<String, SecurityGroupId>>,
    pub nacl_ids: Vec<HashMap<String, NetworkAclId>>,
    /// NAT gateways by name, with their VPC; ids are given before route tables name them.
    pub nat_ids: HashMap<String, Option<(VpcId, NatGatewayId)>>,
    /// Per VPC: whether it has an internet gateway.
    pub internet_gateways: Vec<bool>,
    /// Services by their key in `services:`.
    pub service_ids: HashMap<String, ServiceId>,
    /// Routes to `eni:HOST` (table, route index, target as written), resolved after instances.
    pub pending_eni_routes: Vec<(RouteTableId, usize, At<String>)>,
    /// Where each lab-wide name was first declared, by kind.
    declared: HashMap<(&'static str, String), (Pos, String)>,
}

impl Ctx<'_> {
    pub fn error<T>(&mut self, at: &At<T>, message: impl Into<String>) {
        self.errs.at(at.pos, &at.path, message);
    }

    /// Checks a name's form and, for lab-wide kinds, that it is not taken. False if taken.
    pub fn claim(&mut self, kind: &'static str, name: &At<String>) -> bool {
        if let Err(m) = check_name(kind, &name.value) {
            self.error(name, m);
        }
        let key = (kind, name.value.clone());
        if let Some((pos, path)) = self.declared.get(&key) {
            let msg = format!(
                "duplicate {kind} name `{}`: already declared at line {} ({path})",
                name.value, pos.line
            );
            self.error(name, msg);
            return false;
        }
        self.declared.insert(key, (name.pos, name.path.clone()));
        true
    }

    /// Where a lab-wide name was declared, if it was.
    pub fn declared_at(&self, kind: &'static str, name: &str) -> Option<(Pos, String)> {
        self.declared.get(&(kind, name.to_string())).cloned()
    }

    pub fn vpc_name(&self, vpc: VpcId) -> &str {
        &self.lab.vpcs[vpc].name
    }

    /// Built-in services as written (`http:80`, `ssh`, ...); bad ones are reported and left out.
    pub fn services(&mut self, written: &[At<String>]) -> Vec<Service> {
        written
            .iter()
            .filter_map(|s| match parse_service(&s.value) {
                Ok(svc) => Some(svc),
                Err(m) => {
                    self.error(s, m);
                    None
                }
            })
            .collect()
    }

    /// A subnet of `vpc` by name (None, reported, when unknown; None when broken).
    pub fn subnet_of(&mut self, vpc: VpcId, at: &At<String>) -> Option<SubnetId> {
        if let Some(found) = self.subnet_ids.get(&(vpc, at.value.clone())) {
            return *found;
        }
        let mine = list(
            self.lab
                .subnets
                .iter()
                .filter(|x| x.vpc == vpc)
                .map(|x| x.name.as_str()),
        );
        let msg = format!(
            "unknown subnet `{}`; subnets of vpc {}: {mine}",
            at.value,
            self.vpc_name(vpc)
        );
        self.error(at, msg);
        None
    }

    /// Looks up a VPC by name, reporting an unknown one with the valid names.
    pub fn vpc(&mut self, name: &At<String>) -> Option<VpcId> {
        let found = self.vpc_ids.get(&name.value).copied();
        if found.is_none() {
            let valid = list(self.lab.vpcs.iter().map(|v| v.name.as_str()));
            self.error(name, format!("unknown VPC `{}`; VPCs: {valid}", name.value));
        }
        found
    }
}

/// Names for a message: `a, b, c`, or `(none)`.
pub(super) fn list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = names.collect();
    if v.is_empty() {
        "(none)".into()
    } else {
        v.join(", ")
    }
}

pub(super) fn resolve(raw: &ScenarioRaw, file_name: &str, errs: &mut Errors) -> Lab {
    let lab = Lab {
        name: lab_name(raw, file_name, errs),
        description: raw.description.clone(),
        source: file_name.to_string(),
        vpcs: Vec::new(),
        subnets: Vec::new(),
        route_tables: Vec::new(),
        security_groups: Vec::new(),
        network_acls: Vec::new(),
        instances: Vec::new(),
        peerings: Vec::new(),
        flow_logs: Vec::new(),
        mirror_targets: Vec::new(),
        mirror_filters: Vec::new(),
        mirror_sessions: Vec::new(),
        expectations: Vec::new(),
        internet: Internet {
            public_pool: internet::DEFAULT_PUBLIC_POOL,
            hosts: Vec::new(),
        },
        nat_gateways: Vec::new(),
        services: Vec::new(),
        endpoints: Vec::new(),
        sites: Vec::new(),
        vpn_gateways: Vec::new(),
        vpn_connections: Vec::new(),
        transit_gateways: Vec::new(),
    };
    let mut ctx = Ctx {
        errs,
        lab,
        vpc_ids: HashMap::new(),
        vpc_cidrs_ok: Vec::new(),
        peering_ids: HashMap::new(),
        route_table_ids: HashMap::new(),
        subnet_ids: HashMap::new(),
        host_ids: HashMap::new(),
        sg_ids: Vec::new(),
        nacl_ids: Vec::new(),
        nat_ids: HashMap::new(),
        internet_gateways: Vec::new(),
        service_ids: HashMap::new(),
        pending_eni_routes: Vec::new(),
        declared: HashMap::new(),
    };
    let region = checked(&mut ctx, &raw.region, check_region).unwrap_or(DEFAULT_REGION.into());
    let account = checked(&mut ctx, &raw.account, check_account).unwrap_or(DEFAULT_ACCOUNT.into());
    for v in &raw.vpcs {
        vpc(&mut ctx, v, &region, &account);
    }
    internet::declare_nat_gateways(&mut ctx, &raw.vpcs);
    vpn::declare_gateways(&mut ctx, &raw.vpn);
    tgw::declare(&mut ctx, &raw.transit_gateways, &region);
    routing::peerings(&mut ctx, &raw.peerings);
    routing::route_tables(&mut ctx, &raw.vpcs);
    security::network_acls(&mut ctx, &raw.vpcs);
    security::security_groups(&mut ctx, &raw.vpcs);
    for (id, v) in raw.vpcs.iter().enumerate() {
        subnets(&mut ctx, id, v);
    }
    tgw::finish(&mut ctx, &raw.transit_gateways);
    addresses::instances(&mut ctx, &raw.vpcs);
    internet::internet(&mut ctx, &raw.internet);
    routing::eni_targets(&mut ctx);
    services::services(&mut ctx, &raw.services, &region);
    vpn::sites(&mut ctx, &raw.vpn);
    services::endpoints(&mut ctx, &raw.vpcs);
    internet::public_addresses(&mut ctx, &raw.vpcs);
    services::endpoint_addresses(&mut ctx, &raw.vpcs);
    vpn::connections(&mut ctx, &raw.vpn, &raw.vpcs);
    flowlogs::flow_logs(&mut ctx, &raw.vpcs);
    mirroring::mirroring(&mut ctx, &raw.mirroring);
    expect::expectations(&mut ctx, &raw.expect);
    ctx.lab
}

fn lab_name(raw: &ScenarioRaw, file_name: &str, errs: &mut Errors) -> String {
    if let Some(name) = &raw.name {
        if let Err(m) = check_lab_name(&name.value) {
            errs.at(name.pos, &name.path, m);
        }
        return name.value.clone();
    }
    let stem = Path::new(file_name)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Err(m) = check_lab_name(&stem) {
        errs.at(
            Pos { line: 1, column: 1 },
            "name",
            format!("{m} (taken from the file name); set `name:`"),
        );
    }
    stem
}

/// The value when it passes `check`; a failure is reported and reads as absent.
fn checked(
    ctx: &mut Ctx,
    v: &Option<At<String>>,
    check: fn(&str) -> Result<(), String>,
) -> Option<String> {
    let v = v.as_ref()?;
    match check(&v.value) {
        Ok(()) => Some(v.value.clone()),
        Err(m) => {
            ctx.error(v, m);
            None
        }
    }
}

fn vpc(ctx: &mut Ctx, v: &VpcRaw, region: &str, account: &str) {
    ctx.claim("VPC", &v.name);
    let mut cidrs: Vec<Ipv4Net> = Vec::new();
    let mut ok = v.cidrs.is_some();
    for c in v.cidrs.iter().flatten() {
        match parse_sized_cidr(&c.value, 16, 28) {
            Ok(net) if overlaps(net, LINK_LOCAL) => {
                ctx.error(
                    c,
                    format!("CIDR {net} overlaps 169.254.0.0/16, which AWS never allows in a VPC"),
                );
                ok = false;
            }
            Ok(net) => {
                if let Some(other) = cidrs.iter().find(|o| overlaps(**o, net)) {
                    let msg = format!(
                        "CIDR {net} overlaps {other}, another block of vpc {}",
                        v.name.value
                    );
                    ctx.error(c, msg);
                    ok = false;
                }
                cidrs.push(net);
            }
            Err(m) => {
                ctx.error(c, m);
                ok = false;
            }
        }
    }
    if let Some(list) = &v.cidrs {
        if list.is_empty() {
            let at = At {
                value: (),
                pos: v.name.pos,
                path: format!("{}.cidr", v.name.path),
            };
            ctx.error(&at, "expected at least one IPv4 CIDR like 10.0.0.0/16");
            ok = false;
        }
    }
    let region = checked(ctx, &v.region, check_region).unwrap_or(region.into());
    let account = checked(ctx, &v.account, check_account).unwrap_or(account.into());
    let id = ctx.lab.vpcs.len();
    ctx.vpc_ids.insert(v.name.value.clone(), id);
    ctx.vpc_cidrs_ok.push(ok);
    let internet_gateway = v.internet_gateway.as_ref().is_some_and(|b| b.value);
    ctx.internet_gateways.push(internet_gateway);
    let ipv6_cidr = v.ipv6.as_ref().filter(|b| b.value).and_then(|at| {
        let k = ctx
            .lab
            .vpcs
            .iter()
            .filter(|v| v.ipv6_cidr.is_some())
            .count();
        let block = ipv6::vpc_block(k);
        if block.is_none() {
            ctx.error(at, "no IPv6 /56 left: the lab hands out 255 of them");
        }
        block
    });
    let egress_only_internet_gateway = v.egress_only_internet_gateway.as_ref().is_some_and(|b| {
        let asked = v.ipv6.as_ref().is_some_and(|i| i.value);
        if b.value && !asked {
            ctx.error(
                b,
                "an egress-only internet gateway carries IPv6 only: set `ipv6: true` on the VPC",
            );
        }
        b.value
    });
    // Placeholders; the route-table, ACL and SG phases fill them in.
    ctx.lab.vpcs.push(Vpc {
        name: v.name.value.clone(),
        cidrs,
        region,
        account,
        main_route_table: 0,
        default_network_acl: 0,
        default_security_group: 0,
        ipv6_cidr,
        internet_gateway,
        egress_only_internet_gateway,
        dns: v.dns.as_ref().is_none_or(|b| b.value),
    });
}

const LINK_LOCAL: Ipv4Net = Ipv4Net::new_assert(std::net::Ipv4Addr::new(169, 254, 0, 0), 16);

fn subnets(ctx: &mut Ctx, vpc: VpcId, v: &VpcRaw) {
    for (j, s) in v.subnets.iter().enumerate() {
        ctx.claim("subnet", &s.name);
        let cidr = s.cidr.as_ref().and_then(|c| subnet_cidr(ctx, vpc, c));
        let region = ctx.lab.vpcs[vpc].region.clone();
        let az = match &s.az {
            Some(az) => {
                let letter = az.value.strip_prefix(region.as_str()).unwrap_or("");
                if letter.len() != 1 || !letter.chars().all(|c| c.is_ascii_lowercase()) {
                    let msg = format!(
                        "az `{}` is not in vpc {}'s region {region}: expected {region}a, {region}b, ...",
                        az.value, v.name.value
                    );
                    ctx.error(az, msg);
                }
                az.value.clone()
            }
            None => format!("{region}a"),
        };
        let route_table = s
            .route_table
            .as_ref()
            .map(|rt| route_table_ref(ctx, vpc, rt));
        let network_acl = s.network_acl.as_ref().map(|acl| {
            let found = ctx.nacl_ids[vpc].get(&acl.value).copied();
            if found.is_none() {
                let mut names: Vec<&str> = ctx.nacl_ids[vpc].keys().map(String::as_str).collect();
                names.sort();
                let msg = format!(
                    "unknown network ACL `{}`; network ACLs of vpc {}: {}",
                    acl.value,
                    v.name.value,
                    list(names.into_iter())
                );
                ctx.error(acl, msg);
            }
            found
        });
        let ipv6_cidr = subnet_ipv6(ctx, vpc, j, s);
        let key = (vpc, s.name.value.clone());
        let Some(cidr) = cidr else {
            ctx.subnet_ids.insert(key, None);
            continue;
        };
        ctx.subnet_ids.insert(key, Some(ctx.lab.subnets.len()));
        let main = ctx.lab.vpcs[vpc].main_route_table;
        ctx.lab.subnets.push(Subnet {
            name: s.name.value.clone(),
            vpc,
            cidr,
            ipv6_cidr,
            az,
            route_table: route_table.flatten().unwrap_or(main),
            explicit_route_table: route_table.is_some(),
            network_acl: network_acl
                .flatten()
                .unwrap_or(ctx.lab.vpcs[vpc].default_network_acl),
            map_public_ip_on_launch: s.map_public_ip_on_launch.as_ref().is_some_and(|b| b.value),
        });
    }
}

/// The `j`-th subnet's /64, if it is dual stack (by default when its VPC is).
fn subnet_ipv6(ctx: &mut Ctx, vpc: VpcId, j: usize, s: &SubnetRaw) -> Option<Ipv6Net> {
    let block = ctx.lab.vpcs[vpc].ipv6_cidr;
    match &s.ipv6 {
        Some(at) if at.value && block.is_none() => {
            let msg = format!(
                "subnet {} asks for IPv6 but vpc {} has no IPv6 block: set `ipv6: true` on the VPC",
                s.name.value, ctx.lab.vpcs[vpc].name
            );
            ctx.error(at, msg);
            None
        }
        Some(at) if !at.value => None,
        _ => block.and_then(|b| ipv6::subnet_block(b, j)),
    }
}

fn subnet_cidr(ctx: &mut Ctx, vpc: VpcId, c: &At<String>) -> Option<Ipv4Net> {
    let net = match parse_sized_cidr(&c.value, 16, 28) {
        Ok(net) => net,
        Err(m) => {
            ctx.error(c, m);
            return None;
        }
    };
    let v = &ctx.lab.vpcs[vpc];
    if ctx.vpc_cidrs_ok[vpc] && !v.cidrs.iter().any(|b| b.contains(&net)) {
        let msg = format!(
            "subnet CIDR {net} is not inside vpc {}'s CIDRs ({})",
            v.name,
            v.cidrs
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        ctx.error(c, msg);
        return None;
    }
    let clash = ctx
        .lab
        .subnets
        .iter()
        .find(|s| s.vpc == vpc && overlaps(s.cidr, net));
    if let Some(s) = clash {
        let msg = format!("subnet CIDR {net} overlaps subnet {} ({})", s.name, s.cidr);
        ctx.error(c, msg);
        return None;
    }
    Some(net)
}

/// A subnet's `route_table`: it must be a table of the subnet's VPC. None when broken.
fn route_table_ref(ctx: &mut Ctx, vpc: VpcId, rt: &At<String>) -> Option<RouteTableId> {
    if let Some(found) = ctx.route_table_ids.get(&(vpc, rt.value.clone())) {
        return *found;
    }
    let names = list(
        ctx.lab
            .route_tables
            .iter()
            .filter(|t| t.vpc == vpc)
            .map(|t| t.name.as_str()),
    );
    let vpc_name = ctx.vpc_name(vpc);
    let msg = match ctx.lab.route_tables.iter().find(|t| t.name == rt.value) {
        Some(t) => format!(
            "route table `{}` belongs to vpc {}; route tables of vpc {vpc_name}: {names}",
            rt.value,
            ctx.vpc_name(t.vpc)
        ),
        None => format!(
            "unknown route table `{}`; route tables of vpc {vpc_name}: {names}",
            rt.value
        ),
    };
    ctx.error(rt, msg);
    None
}
