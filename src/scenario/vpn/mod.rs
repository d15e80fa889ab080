//! Scenario layer: resolution of on-premises sites and Site-to-Site VPN, with AWS's rules:
//! one VGW per VPC, a VGW reached only from its own VPC's route tables (routes and
//! propagation), sites that overlap nothing, static connections with their routes, BGP only
//! with an ASN, unique ASNs among a VGW's BGP sites (CloudHub), two tunnels per connection.
//!
//! Phases, in `resolve`'s order: `declare_gateways` (before route tables, which name them),
//! `sites` (after the services' hosts: each router is an internet host after those),
//! `connections` (after the instances' and NAT gateways' public addresses: each tunnel's AWS
//! outside address comes next from the same pool) and `propagation`.

pub(super) mod raw;

mod connections;
mod sites;
mod tunnels;

pub(super) use connections::connections;
pub(super) use sites::sites;

use super::lab::*;
use super::raw::VpcRaw;
use super::resolve::{list, Ctx};
use super::yaml::At;
use raw::VpnRaw;

/// AWS's default Amazon side ASN of a VGW.
const DEFAULT_AMAZON_ASN: u32 = 64512;

/// `vpn_gateways:`, attached to their VPCs; a VPC takes one.
pub(super) fn declare_gateways(ctx: &mut Ctx, raw: &VpnRaw) {
    for g in &raw.gateways {
        let fresh = ctx.claim("VPN gateway", &g.name);
        let vpc = g.vpc.as_ref().and_then(|v| ctx.vpc(v));
        let asn = match &g.asn {
            Some(a) => amazon_asn(ctx, a),
            None => Some(DEFAULT_AMAZON_ASN),
        };
        let (Some(vpc), Some(asn), true) = (vpc, asn, fresh) else {
            continue;
        };
        if let Some(other) = ctx.lab.vpn_gateway_of(vpc) {
            let msg = format!(
                "vpc {} already has virtual private gateway {} attached: a VPC takes one VGW at a time",
                ctx.vpc_name(vpc),
                ctx.lab.vpn_gateways[other].name
            );
            let at = g.vpc.as_ref().unwrap_or(&g.name);
            ctx.error(at, msg);
            continue;
        }
        ctx.lab.vpn_gateways.push(VpnGateway {
            name: g.name.value.clone(),
            vpc,
            asn,
        });
    }
}

/// AWS takes a private ASN on its side: 64512-65534 or 4200000000-4294967294.
pub(super) fn amazon_asn(ctx: &mut Ctx, at: &At<i64>) -> Option<u32> {
    let ok =
        (64512..=65534).contains(&at.value) || (4_200_000_000..=4_294_967_294).contains(&at.value);
    if !ok {
        let msg = format!(
            "Amazon side ASN {} is out of range: expected a private ASN 64512-65534 or 4200000000-4294967294",
            at.value
        );
        ctx.error(at, msg);
        return None;
    }
    u32::try_from(at.value).ok()
}

/// A VGW by name; None when unknown (reported, with `valid` naming the choices) or broken
/// (reported already).
fn gateway_by_name(
    ctx: &mut Ctx,
    name: &str,
    at: &At<String>,
    valid: String,
) -> Option<VpnGatewayId> {
    if let Some(id) = ctx.lab.vpn_gateways.iter().position(|g| g.name == name) {
        return Some(id);
    }
    if ctx.declared_at("VPN gateway", name).is_none() {
        let msg = format!("unknown virtual private gateway `vgw:{name}`; {valid}");
        ctx.error(at, msg);
    }
    None
}

/// The VGW names attached to `vpc`, for messages.
fn gateways_of(ctx: &Ctx, vpc: VpcId) -> String {
    let names = list(
        ctx.lab
            .vpn_gateways
            .iter()
            .filter(|g| g.vpc == vpc)
            .map(|g| g.name.as_str()),
    );
    format!("VPN gateways of vpc {}: {names}", ctx.vpc_name(vpc))
}

/// A `vgw:NAME` the route table of `vpc` names (as a route target or in `propagate`): it must
/// be attached to that VPC. None when it is not (reported) or broken.
fn own_gateway(ctx: &mut Ctx, vpc: VpcId, name: &str, at: &At<String>) -> Option<VpnGatewayId> {
    let valid = gateways_of(ctx, vpc);
    let id = gateway_by_name(ctx, name, at, valid)?;
    let owner = ctx.lab.vpn_gateways[id].vpc;
    if owner == vpc {
        return Some(id);
    }
    let msg = format!(
        "`{}`: virtual private gateway {name} is attached to vpc {}, not to vpc {}; \
         a route table can only use its own VPC's VGW",
        at.value,
        ctx.vpc_name(owner),
        ctx.vpc_name(vpc)
    );
    ctx.error(at, msg);
    None
}

/// A route target `vgw:NAME` in a route table of `vpc`.
pub(super) fn gateway_target(
    ctx: &mut Ctx,
    vpc: VpcId,
    name: &str,
    at: &At<String>,
) -> Option<RouteTarget> {
    own_gateway(ctx, vpc, name, at).map(RouteTarget::VpnGateway)
}

/// `propagate: [vgw:NAME]` of each route table: the VGW's routes (a static connection's
/// `static_routes`, BGP-learned prefixes) appear in the table while its connections are up.
pub(super) fn propagation(ctx: &mut Ctx, vpcs: &[VpcRaw]) {
    for (vpc, v) in vpcs.iter().enumerate() {
        for t in &v.route_tables {
            let table = ctx
                .lab
                .route_tables
                .iter()
                .position(|rt| rt.vpc == vpc && !rt.implicit && rt.name == t.name.value);
            let Some(table) = table else { continue };
            let mut seen: Vec<VpnGatewayId> = Vec::new();
            for p in &t.propagate {
                let Some(name) = p.value.strip_prefix("vgw:").filter(|n| !n.is_empty()) else {
                    let msg = format!(
                        "invalid propagation `{}`: expected vgw:NAME (routes propagate from a virtual private gateway)",
                        p.value
                    );
                    ctx.error(p, msg);
                    continue;
                };
                let Some(id) = own_gateway(ctx, vpc, name, p) else {
                    continue;
                };
                if seen.contains(&id) {
                    ctx.error(p, format!("duplicate propagation from vgw:{name}"));
                    continue;
                }
                seen.push(id);
            }
            ctx.lab.route_tables[table].propagate = seen;
        }
    }
}
