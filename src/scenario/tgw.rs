//! Scenario layer: resolution of transit gateways with AWS's rules (aws-rules.md §9): regional,
//! one attachment per VPC per TGW, a subnet per Availability Zone, an attachment associated
//! with at most one route table, static routes to an attachment or blackhole. With
//! `default_route_table` (on by default, as the API's default association and propagation)
//! a table `default` takes every attachment no other table is associated with, and learns
//! every attachment's CIDRs.
//!
//! Phases: `declare` before route tables (which name `tgw:NAME`), `finish` after subnets.

use super::lab::*;
use super::raw::TgwRaw;
use super::resolve::{list, Ctx};
use super::values::parse_cidr;
use super::yaml::At;

/// AWS's default Amazon side ASN.
const DEFAULT_ASN: u32 = 64512;

/// The name of the table `default_route_table` makes.
pub const DEFAULT_TABLE: &str = "default";

/// The transit gateways and their attachments' VPCs.
pub(super) fn declare(ctx: &mut Ctx, raw: &[TgwRaw], region: &str) {
    for t in raw {
        let fresh = ctx.claim("transit gateway", &t.name);
        let region = match &t.region {
            Some(r) => r.value.clone(),
            None => region.to_string(),
        };
        let asn = t
            .asn
            .as_ref()
            .and_then(|a| super::vpn::amazon_asn(ctx, a))
            .unwrap_or(DEFAULT_ASN);
        let mut attachments: Vec<TgwAttachment> = Vec::new();
        for a in &t.attachments {
            ctx.claim("TGW attachment", &a.name);
            let Some(vpc) = a.vpc.as_ref().and_then(|v| ctx.vpc(v)) else {
                if a.vpc.is_none() {
                    missing(ctx, &a.name, "`vpc` (the VPC this attachment attaches)");
                }
                continue;
            };
            let v = &ctx.lab.vpcs[vpc];
            let msg = if v.region != region {
                Some(format!(
                    "vpc {} is in region {}, transit gateway {} in {region}: a transit gateway attaches VPCs of its own region",
                    v.name, v.region, t.name.value
                ))
            } else {
                attachments.iter().find(|o| o.vpc == vpc).map(|o| {
                    format!(
                        "vpc {} is attached to transit gateway {} already (attachment {}): one attachment per VPC",
                        v.name, t.name.value, o.name
                    )
                })
            };
            if let Some(msg) = msg {
                ctx.error(a.vpc.as_ref().unwrap_or(&a.name), msg);
                continue;
            }
            attachments.push(TgwAttachment {
                name: a.name.value.clone(),
                vpc,
                subnets: Vec::new(),
                association: None,
            });
        }
        if fresh {
            ctx.lab.transit_gateways.push(TransitGateway {
                name: t.name.value.clone(),
                region,
                asn,
                attachments,
                route_tables: Vec::new(),
            });
        }
    }
}

/// A route table's target `tgw:NAME`: a transit gateway this VPC is attached to.
pub(super) fn target(
    ctx: &mut Ctx,
    vpc: VpcId,
    name: &str,
    at: &At<String>,
) -> Option<RouteTarget> {
    let found = ctx.lab.transit_gateways.iter().position(|t| t.name == name);
    let msg = match found {
        Some(id) if ctx.lab.transit_gateways[id].attachment_of(vpc).is_some() => {
            return Some(RouteTarget::TransitGateway(id));
        }
        Some(_) => format!(
            "route target `tgw:{name}`: vpc {} has no attachment to transit gateway {name}; \
             add one under its `attachments:`",
            ctx.vpc_name(vpc)
        ),
        None => format!(
            "unknown transit gateway `tgw:{name}`; transit gateways: {}",
            list(ctx.lab.transit_gateways.iter().map(|t| t.name.as_str()))
        ),
    };
    ctx.error(at, msg);
    None
}

/// Attachments' subnets and the route tables, once subnets are known.
pub(super) fn finish(ctx: &mut Ctx, raw: &[TgwRaw]) {
    for t in raw {
        let Some(id) = ctx
            .lab
            .transit_gateways
            .iter()
            .position(|g| g.name == t.name.value)
        else {
            continue;
        };
        attachment_subnets(ctx, id, t);
        route_tables(ctx, id, t);
    }
}

fn attachment_subnets(ctx: &mut Ctx, id: TransitGatewayId, t: &TgwRaw) {
    for a in &t.attachments {
        let Some(n) = ctx.lab.transit_gateways[id]
            .attachments
            .iter()
            .position(|x| x.name == a.name.value)
        else {
            continue;
        };
        let vpc = ctx.lab.transit_gateways[id].attachments[n].vpc;
        if a.subnets.is_empty() {
            missing(ctx, &a.name, "`subnets` (one subnet per Availability Zone)");
        }
        let mut subnets: Vec<SubnetId> = Vec::new();
        for s in &a.subnets {
            let Some(subnet) = ctx.subnet_of(vpc, s) else {
                continue;
            };
            let az = ctx.lab.subnets[subnet].az.clone();
            if let Some(&other) = subnets.iter().find(|&&o| ctx.lab.subnets[o].az == az) {
                let msg = format!(
                    "subnet {} is in {az}, as subnet {} is: an attachment takes one subnet per Availability Zone",
                    s.value, ctx.lab.subnets[other].name
                );
                ctx.error(s, msg);
                continue;
            }
            subnets.push(subnet);
        }
        ctx.lab.transit_gateways[id].attachments[n].subnets = subnets;
    }
}

/// Reports a required key missing from the entry named `owner`.
fn missing(ctx: &mut Ctx, owner: &At<String>, what: &str) {
    let at = At {
        value: (),
        pos: owner.pos,
        path: owner.path.clone(),
    };
    ctx.error(&at, format!("missing required key {what}"));
}

fn route_tables(ctx: &mut Ctx, id: TransitGatewayId, t: &TgwRaw) {
    let attachment = |ctx: &mut Ctx, at: &At<String>| -> Option<TgwAttachmentId> {
        let g = &ctx.lab.transit_gateways[id];
        if let Some(n) = g.attachments.iter().position(|a| a.name == at.value) {
            return Some(n);
        }
        let msg = format!(
            "unknown attachment `{}` of transit gateway {}; its attachments: {}",
            at.value,
            g.name,
            list(g.attachments.iter().map(|a| a.name.as_str()))
        );
        ctx.error(at, msg);
        None
    };
    let mut tables: Vec<TgwRouteTable> = Vec::new();
    for r in &t.route_tables {
        ctx.claim("TGW route table", &r.name);
        let table = tables.len();
        for a in &r.associations {
            let Some(n) = attachment(ctx, a) else {
                continue;
            };
            let g = &mut ctx.lab.transit_gateways[id];
            if let Some(other) = g.attachments[n].association {
                let msg = format!(
                    "attachment {} is associated with route table {} already: an attachment has one association",
                    a.value, t.route_tables[other].name.value
                );
                ctx.error(a, msg);
                continue;
            }
            g.attachments[n].association = Some(table);
        }
        let propagations = r
            .propagations
            .iter()
            .filter_map(|a| attachment(ctx, a))
            .collect();
        let mut routes = Vec::new();
        for route in &r.routes {
            let destination = route
                .destination
                .as_ref()
                .and_then(|d| match parse_cidr(&d.value) {
                    Ok(net) => Some(net),
                    Err(m) => {
                        ctx.error(d, m);
                        None
                    }
                });
            let blackhole = route.blackhole.as_ref().is_some_and(|b| b.value);
            let target = match (&route.attachment, blackhole) {
                (Some(a), false) => attachment(ctx, a).map(Some),
                (None, true) => Some(None),
                _ => {
                    ctx.error(
                        &route.at,
                        "a route names either `attachment: NAME` or `blackhole: true`",
                    );
                    None
                }
            };
            if let (Some(destination), Some(attachment)) = (destination, target) {
                routes.push(TgwRoute {
                    destination,
                    attachment,
                });
            }
        }
        tables.push(TgwRouteTable {
            name: r.name.value.clone(),
            propagations,
            routes,
        });
    }
    if t.default_route_table.as_ref().is_none_or(|b| b.value) {
        let g = &mut ctx.lab.transit_gateways[id];
        let table = tables.len();
        for a in &mut g.attachments {
            a.association.get_or_insert(table);
        }
        tables.push(TgwRouteTable {
            name: DEFAULT_TABLE.to_string(),
            propagations: (0..g.attachments.len()).collect(),
            routes: Vec::new(),
        });
    }
    ctx.lab.transit_gateways[id].route_tables = tables;
}
