//! Scenario layer: peering connections and route tables (main table, declared routes and
//! their targets), resolved with AWS's rules: one peering per VPC pair, no overlapping CIDRs
//! across a peering, no route inside a VPC CIDR, `pcx:` targets of this VPC only.

use std::collections::HashMap;

use ipnet::IpNet;

use super::lab::*;
use super::raw::{PeeringRaw, RouteRaw, VpcRaw};
use super::resolve::{list, Ctx};
use super::values::{overlaps, parse_net, parse_target, TargetText};

pub(super) fn peerings(ctx: &mut Ctx, raw: &[PeeringRaw]) {
    let mut pairs: HashMap<(VpcId, VpcId), String> = HashMap::new();
    for p in raw {
        let fresh = ctx.claim("peering connection", &p.name);
        let requester = p.requester.as_ref().and_then(|r| ctx.vpc(r));
        let accepter = p.accepter.as_ref().and_then(|a| ctx.vpc(a));
        let (Some(requester), Some(accepter)) = (requester, accepter) else {
            if fresh {
                ctx.peering_ids.insert(p.name.value.clone(), None);
            }
            continue;
        };
        if requester == accepter {
            let msg = format!(
                "requester and accepter are both vpc {}: a peering connection joins two different VPCs",
                ctx.vpc_name(requester)
            );
            ctx.error(&p.name, msg);
        }
        let pair = (requester.min(accepter), requester.max(accepter));
        if let Some(other) = pairs.get(&pair) {
            let msg = format!(
                "vpc {} and vpc {} are already peered by `{other}`: one peering connection per pair of VPCs",
                ctx.vpc_name(requester),
                ctx.vpc_name(accepter)
            );
            ctx.error(&p.name, msg);
        } else {
            pairs.insert(pair, p.name.value.clone());
        }
        if requester != accepter && ctx.vpc_cidrs_ok[requester] && ctx.vpc_cidrs_ok[accepter] {
            let (r, a) = (&ctx.lab.vpcs[requester], &ctx.lab.vpcs[accepter]);
            let clash = r.cidrs.iter().find_map(|rc| {
                a.cidrs
                    .iter()
                    .find(|ac| overlaps(*rc, **ac))
                    .map(|ac| (*rc, *ac))
            });
            if let Some((rc, ac)) = clash {
                let msg = format!("CIDRs overlap: vpc {} {rc} and vpc {} {ac}", r.name, a.name);
                ctx.error(&p.name, msg);
            }
        }
        let (r, a) = (&ctx.lab.vpcs[requester], &ctx.lab.vpcs[accepter]);
        let peering = Peering {
            name: p.name.value.clone(),
            requester,
            accepter,
            cross_region: r.region != a.region,
            cross_account: r.account != a.account,
        };
        if fresh {
            ctx.peering_ids
                .insert(p.name.value.clone(), Some(ctx.lab.peerings.len()));
        }
        ctx.lab.peerings.push(peering);
    }
}

pub(super) fn route_tables(ctx: &mut Ctx, vpcs: &[VpcRaw]) {
    for (vpc, v) in vpcs.iter().enumerate() {
        let mut main: Option<(RouteTableId, String)> = None;
        for t in &v.route_tables {
            ctx.claim("route table", &t.name);
            let id = ctx.lab.route_tables.len();
            let is_main = t.main.as_ref().is_some_and(|m| m.value);
            if let (Some(m), true) = (&t.main, is_main) {
                if let Some((_, first)) = &main {
                    let msg = format!(
                        "vpc {} already has a main route table `{first}`: at most one per VPC",
                        v.name.value
                    );
                    ctx.error(m, msg);
                } else {
                    main = Some((id, t.name.value.clone()));
                }
            }
            let routes = routes(ctx, vpc, id, &t.routes);
            ctx.route_table_ids
                .insert((vpc, t.name.value.clone()), Some(id));
            ctx.lab.route_tables.push(RouteTable {
                name: t.name.value.clone(),
                vpc,
                main: is_main && main.as_ref().is_some_and(|(m, _)| *m == id),
                implicit: false,
                routes,
                // Filled in by the VPN phase, once VGWs are resolved.
                propagate: Vec::new(),
            });
        }
        let main = match main {
            Some((id, _)) => id,
            None => implicit_main(ctx, vpc),
        };
        ctx.lab.vpcs[vpc].main_route_table = main;
    }
}

/// The main table AWS creates with every VPC, when the file marks none `main: true`.
fn implicit_main(ctx: &mut Ctx, vpc: VpcId) -> RouteTableId {
    let name = format!("{}-main", ctx.vpc_name(vpc));
    if let Some((pos, path)) = ctx.declared_at("route table", &name) {
        let msg = format!(
            "route table name `{name}` is the name of vpc {}'s implicit main table: \
             mark one of its tables `main: true` or rename this one",
            ctx.vpc_name(vpc)
        );
        ctx.errs.at(pos, &path, msg);
    } else {
        ctx.route_table_ids
            .insert((vpc, name.clone()), Some(ctx.lab.route_tables.len()));
    }
    ctx.lab.route_tables.push(RouteTable {
        name,
        vpc,
        main: true,
        implicit: true,
        routes: Vec::new(),
        propagate: Vec::new(),
    });
    ctx.lab.route_tables.len() - 1
}

fn routes(ctx: &mut Ctx, vpc: VpcId, table: RouteTableId, raw: &[RouteRaw]) -> Vec<Route> {
    let mut out: Vec<Route> = Vec::new();
    for r in raw {
        let destination = r.destination.as_ref().and_then(|d| match parse_net(&d.value) {
            Ok(net) => {
                if out.iter().any(|o| o.destination == net) {
                    ctx.error(d, format!("duplicate destination {net} in this route table"));
                    return None;
                }
                let v = &ctx.lab.vpcs[vpc];
                let blocks = v.cidrs.iter().map(|b| IpNet::V4(*b)).chain(v.ipv6_cidr.map(IpNet::V6));
                if let Some(block) = blocks.into_iter().find(|b| b.contains(&net)) {
                    let msg = if block == net {
                        format!("destination {net} is vpc {}'s CIDR: the implicit local route covers it", v.name)
                    } else {
                        format!(
                            "destination {net} is inside vpc {}'s CIDR {block}, which the local route covers: \
                             only NAT gateway or ENI targets may be more specific than local (not supported yet)",
                            v.name
                        )
                    };
                    ctx.error(d, msg);
                    return None;
                }
                Some(net)
            }
            Err(m) => {
                ctx.error(d, m);
                None
            }
        });
        let target = r
            .target
            .as_ref()
            .and_then(|t| match parse_target(&t.value) {
                Ok(TargetText::Blackhole) => Some(RouteTarget::Blackhole),
                Ok(TargetText::Peering(name)) => peering_ref(ctx, vpc, name, t),
                Ok(TargetText::InternetGateway(name)) => {
                    own_gateway_ref(ctx, vpc, name, t, RouteTarget::InternetGateway)
                }
                Ok(TargetText::EgressOnlyInternetGateway(name)) => {
                    own_gateway_ref(ctx, vpc, name, t, RouteTarget::EgressOnlyInternetGateway)
                }
                Ok(TargetText::NatGateway(name)) => nat_gateway_ref(ctx, vpc, name, t),
                Ok(TargetText::VpnGateway(name)) => super::vpn::gateway_target(ctx, vpc, name, t),
                Ok(TargetText::TransitGateway(name)) => super::tgw::target(ctx, vpc, name, t),
                Ok(TargetText::Instance(_)) => {
                    // Instances are resolved after route tables: `eni_targets` fills it in.
                    ctx.pending_eni_routes.push((table, out.len(), t.clone()));
                    Some(RouteTarget::Instance(usize::MAX))
                }
                Err(m) => {
                    ctx.error(t, m);
                    None
                }
            });
        if let (Some(destination), Some(target)) = (destination, target) {
            if let Some(why) = family_mismatch(destination, target) {
                if let Some(t) = &r.target {
                    ctx.error(t, format!("route {destination} -> {}: {why}", t.value));
                }
                continue;
            }
            out.push(Route {
                destination,
                target,
                prefix_list: None,
            });
        }
    }
    out
}

fn peering_ref(
    ctx: &mut Ctx,
    vpc: VpcId,
    name: &str,
    at: &super::yaml::At<String>,
) -> Option<RouteTarget> {
    let vpc_name = ctx.vpc_name(vpc).to_string();
    let mine = list(
        ctx.lab
            .peerings
            .iter()
            .filter(|p| p.peer_of(vpc).is_some())
            .map(|p| p.name.as_str()),
    );
    match ctx.peering_ids.get(name).copied() {
        Some(Some(id)) => {
            let p = &ctx.lab.peerings[id];
            if p.peer_of(vpc).is_some() {
                return Some(RouteTarget::Peering(id));
            }
            let msg = format!(
                "peering connection `{name}` joins vpc {} and vpc {}, not vpc {vpc_name}; \
                 peering connections of vpc {vpc_name}: {mine}",
                ctx.vpc_name(p.requester),
                ctx.vpc_name(p.accepter)
            );
            ctx.error(at, msg);
        }
        Some(None) => {}
        None => {
            let msg = format!(
                "unknown peering connection `{name}`; peering connections of vpc {vpc_name}: {mine}"
            );
            ctx.error(at, msg);
        }
    }
    None
}

/// `igw:NAME` or `eigw:NAME`: the VPC's own internet gateway or egress-only internet gateway
/// (each named after its VPC), which must be attached.
fn own_gateway_ref(
    ctx: &mut Ctx,
    vpc: VpcId,
    name: &str,
    at: &super::yaml::At<String>,
    target: RouteTarget,
) -> Option<RouteTarget> {
    let (kind, what, key, attached) = match target {
        RouteTarget::EgressOnlyInternetGateway => (
            "eigw",
            "egress-only internet gateway",
            "egress_only_internet_gateway",
            ctx.lab.vpcs[vpc].egress_only_internet_gateway,
        ),
        _ => (
            "igw",
            "internet gateway",
            "internet_gateway",
            ctx.internet_gateways[vpc],
        ),
    };
    let vpc_name = ctx.vpc_name(vpc).to_string();
    let msg = if name != vpc_name {
        format!(
            "route target `{kind}:{name}`: a route table can only use its own VPC's {what}, {kind}:{vpc_name}"
        )
    } else if !attached {
        format!(
            "route target `{kind}:{name}`: vpc {vpc_name} has no {what}: set `{key}: true` on it"
        )
    } else {
        return Some(target);
    };
    ctx.error(at, msg);
    None
}

/// Why a target cannot carry the destination's address family, if it cannot.
fn family_mismatch(destination: IpNet, target: RouteTarget) -> Option<&'static str> {
    match (destination, target) {
        (IpNet::V4(_), RouteTarget::EgressOnlyInternetGateway) => {
            Some("an egress-only internet gateway carries IPv6 only: use ::/0 or another IPv6 CIDR")
        }
        (IpNet::V6(_), RouteTarget::NatGateway(_)) => Some(
            "a NAT gateway translates IPv4 only (NAT64's 64:ff9b::/96 is not supported yet); \
             IPv6 goes out through an egress-only internet gateway",
        ),
        _ => None,
    }
}

/// `nat:NAME`: a NAT gateway declared in this VPC.
fn nat_gateway_ref(
    ctx: &mut Ctx,
    vpc: VpcId,
    name: &str,
    at: &super::yaml::At<String>,
) -> Option<RouteTarget> {
    match ctx.nat_ids.get(name).copied() {
        Some(Some((owner, id))) if owner == vpc => Some(RouteTarget::NatGateway(id)),
        Some(Some((owner, _))) => {
            let msg = format!(
                "route target `nat:{name}`: NAT gateway {name} is in vpc {}, not in vpc {}; \
                 a route table can only use its own VPC's NAT gateways",
                ctx.vpc_name(owner),
                ctx.vpc_name(vpc)
            );
            ctx.error(at, msg);
            None
        }
        Some(None) => None,
        None => {
            let mut names: Vec<&str> = ctx
                .nat_ids
                .iter()
                .filter(|(_, v)| v.is_some_and(|(o, _)| o == vpc))
                .map(|(k, _)| k.as_str())
                .collect();
            names.sort();
            let msg = format!(
                "unknown NAT gateway `nat:{name}`; NAT gateways of vpc {}: {}",
                ctx.vpc_name(vpc),
                list(names.into_iter())
            );
            ctx.error(at, msg);
            None
        }
    }
}

/// `eni:HOST` targets, once instances are known: an instance of the table's own VPC.
pub(super) fn eni_targets(ctx: &mut Ctx) {
    for (table, index, at) in std::mem::take(&mut ctx.pending_eni_routes) {
        let vpc = ctx.lab.route_tables[table].vpc;
        let name = at.value.strip_prefix("eni:").unwrap_or_default();
        let found = ctx.host_ids.get(name).copied();
        let msg = match found {
            Some(Some(id)) if id < ctx.lab.instances.len() && ctx.lab.instances[id].vpc == vpc => {
                if let Some(route) = ctx.lab.route_tables[table].routes.get_mut(index) {
                    route.target = RouteTarget::Instance(id);
                }
                continue;
            }
            Some(None) => continue,
            Some(Some(id)) if id < ctx.lab.instances.len() => format!(
                "route target `{}`: instance {name} is in vpc {}, not in vpc {}",
                at.value,
                ctx.vpc_name(ctx.lab.instances[id].vpc),
                ctx.vpc_name(vpc)
            ),
            Some(Some(_)) => format!(
                "route target `{}`: {name} is an internet host, not an instance of vpc {}",
                at.value,
                ctx.vpc_name(vpc)
            ),
            None => {
                let mine = list(
                    ctx.lab
                        .instances
                        .iter()
                        .filter(|i| i.vpc == vpc)
                        .map(|i| i.name.as_str()),
                );
                format!(
                    "route target `{}`: unknown instance `{name}`; instances of vpc {}: {mine}",
                    at.value,
                    ctx.vpc_name(vpc)
                )
            }
        };
        ctx.error(&at, msg);
    }
}
