//! Scenario layer: Site-to-Site VPN connections, between a site's customer gateway and a VGW.
//! A static connection names its routes; a BGP one needs the site's ASN, different from the
//! VGW's, and unique among the VGW's BGP sites (CloudHub re-advertises each site's prefixes
//! to the others by AS path, so two sites with one ASN would drop each other's routes).

use std::collections::HashMap;

use ipnet::Ipv4Net;

use super::super::lab::*;
use super::super::raw::VpcRaw;
use super::super::resolve::{list, Ctx};
use super::super::values::parse_cidr;
use super::super::yaml::At;
use super::raw::{VpnConnectionRaw, VpnRaw};
use super::tunnels::{Allocator, Exhausted};
use super::{gateway_by_name, propagation};

/// AWS: 10 VPN connections per VGW.
const MAX_CONNECTIONS_PER_GATEWAY: usize = 10;

/// AWS: 100 static routes per VPN connection to a VGW.
const MAX_STATIC_ROUTES: usize = 100;

/// `vpn_connections:`, then route tables' `propagate:`.
pub(in crate::scenario) fn connections(ctx: &mut Ctx, raw: &VpnRaw, vpcs: &[VpcRaw]) {
    let mut allocator = Allocator::new(&ctx.lab);
    // (VGW, ASN) -> the site that has it, among the VGW's BGP connections.
    let mut bgp_asns: HashMap<(VpnGatewayId, u32), SiteId> = HashMap::new();
    for c in &raw.connections {
        connection(ctx, c, &mut allocator, &mut bgp_asns);
    }
    propagation(ctx, vpcs);
}

fn connection(
    ctx: &mut Ctx,
    c: &VpnConnectionRaw,
    allocator: &mut Allocator,
    bgp_asns: &mut HashMap<(VpnGatewayId, u32), SiteId>,
) {
    let fresh = ctx.claim("VPN connection", &c.name);
    let site = c.site.as_ref().and_then(|s| site_ref(ctx, s));
    let gateway = c.gateway.as_ref().and_then(|g| gateway_ref(ctx, g));
    let routing = c.routing.as_ref().and_then(|r| match r.value.as_str() {
        "static" => Some(VpnRouting::Static),
        "bgp" => Some(VpnRouting::Bgp),
        other => {
            ctx.error(
                r,
                format!("invalid routing `{other}`: expected static or bgp"),
            );
            None
        }
    });
    let static_routes = static_routes(ctx, c, routing);
    if let (Some(site), Some(gateway), Some(VpnRouting::Bgp)) = (site, gateway, routing) {
        bgp_checks(ctx, c, site, gateway, bgp_asns);
    }
    let (Some(site), Some(gateway), Some(routing), Some(static_routes), true) =
        (site, gateway, routing, static_routes, fresh)
    else {
        return;
    };
    let mine = ctx
        .lab
        .vpn_connections
        .iter()
        .filter(|o| o.gateway == gateway);
    if let Some(other) = mine.clone().find(|o| o.site == site) {
        let msg = format!(
            "site {} already has VPN connection {} to vgw:{}: one connection per customer \
             gateway and virtual private gateway",
            ctx.lab.sites[site].name, other.name, ctx.lab.vpn_gateways[gateway].name
        );
        ctx.error(&c.name, msg);
        return;
    }
    if mine.count() >= MAX_CONNECTIONS_PER_GATEWAY {
        let msg = format!(
            "vgw:{} already has {MAX_CONNECTIONS_PER_GATEWAY} VPN connections, AWS's limit per virtual private gateway",
            ctx.lab.vpn_gateways[gateway].name
        );
        ctx.error(&c.name, msg);
        return;
    }
    let earlier = ctx
        .lab
        .vpn_connections
        .iter()
        .filter(|o| o.site == site)
        .count();
    let tunnels = match allocator.tunnels(&ctx.lab.name, &c.name.value, earlier) {
        Ok(t) => t,
        Err(Exhausted::Outside) => {
            let msg = format!(
                "AddressLimitExceeded: the public pool {} has no address left for the tunnels' \
                 AWS outside addresses",
                ctx.lab.internet.public_pool
            );
            ctx.error(&c.name, msg);
            return;
        }
        Err(Exhausted::Inside) => {
            ctx.error(
                &c.name,
                "no inside /30 left in 169.254.0.0/16 for this connection's tunnels",
            );
            return;
        }
    };
    ctx.lab.vpn_connections.push(VpnConnection {
        name: c.name.value.clone(),
        site,
        gateway,
        routing,
        static_routes,
        tunnels,
    });
}

/// `site:`; None when unknown (reported) or broken.
fn site_ref(ctx: &mut Ctx, at: &At<String>) -> Option<SiteId> {
    if let Some(id) = ctx.lab.sites.iter().position(|s| s.name == at.value) {
        return Some(id);
    }
    if ctx.declared_at("site", &at.value).is_none() {
        let names = list(ctx.lab.sites.iter().map(|s| s.name.as_str()));
        ctx.error(at, format!("unknown site `{}`; sites: {names}", at.value));
    }
    None
}

/// `gateway:`: `vgw:NAME`; a transit gateway is not supported yet.
fn gateway_ref(ctx: &mut Ctx, at: &At<String>) -> Option<VpnGatewayId> {
    match at.value.split_once(':') {
        Some(("vgw", name)) if !name.is_empty() => {
            let names = list(ctx.lab.vpn_gateways.iter().map(|g| g.name.as_str()));
            gateway_by_name(ctx, name, at, format!("VPN gateways: {names}"))
        }
        Some(("tgw", _)) => {
            ctx.error(
                at,
                format!(
                    "`{}`: VPN connections to a transit gateway are not supported yet by this version of vpclab",
                    at.value
                ),
            );
            None
        }
        _ => {
            let msg = format!(
                "invalid gateway `{}`: expected vgw:NAME (a virtual private gateway) or tgw:NAME",
                at.value
            );
            ctx.error(at, msg);
            None
        }
    }
}

/// `static_routes:`: required and non-empty with static routing, absent with BGP. None when
/// a problem was reported.
fn static_routes(
    ctx: &mut Ctx,
    c: &VpnConnectionRaw,
    routing: Option<VpnRouting>,
) -> Option<Vec<Ipv4Net>> {
    match (routing, &c.static_routes) {
        (Some(VpnRouting::Bgp), Some(routes)) if !routes.value.is_empty() => {
            ctx.error(
                routes,
                "static_routes apply to `routing: static` only; with bgp the site advertises its prefixes",
            );
            None
        }
        (Some(VpnRouting::Static), None) => {
            let msg = "a static VPN connection needs `static_routes` (the site's prefixes, like [192.168.0.0/16])";
            let at = c.routing.as_ref().map_or(c.name.pos, |r| r.pos);
            ctx.errs.at(at, &c.name.path, msg);
            None
        }
        (Some(VpnRouting::Static), Some(routes)) if routes.value.is_empty() => {
            ctx.error(
                routes,
                "expected at least one prefix, like [192.168.0.0/16]",
            );
            None
        }
        (_, Some(routes)) => {
            if routes.value.len() > MAX_STATIC_ROUTES {
                let msg = format!(
                    "{} static routes: AWS takes at most {MAX_STATIC_ROUTES} per VPN connection",
                    routes.value.len()
                );
                ctx.error(routes, msg);
                return None;
            }
            let mut out: Vec<Ipv4Net> = Vec::new();
            let mut ok = true;
            for r in &routes.value {
                match parse_cidr(&r.value) {
                    Ok(net) if out.contains(&net) => {
                        ctx.error(r, format!("duplicate static route {net}"));
                        ok = false;
                    }
                    Ok(net) => out.push(net),
                    Err(m) => {
                        ctx.error(r, m);
                        ok = false;
                    }
                }
            }
            ok.then_some(out)
        }
        (_, None) => Some(Vec::new()),
    }
}

/// BGP needs the site's ASN, not the VGW's, and one not taken by another site of the VGW.
fn bgp_checks(
    ctx: &mut Ctx,
    c: &VpnConnectionRaw,
    site: SiteId,
    gateway: VpnGatewayId,
    bgp_asns: &mut HashMap<(VpnGatewayId, u32), SiteId>,
) {
    let s = &ctx.lab.sites[site];
    let g = &ctx.lab.vpn_gateways[gateway];
    let at = c.routing.as_ref().map_or(&c.name, |r| r);
    let Some(asn) = s.customer_gateway.asn else {
        let msg = format!(
            "routing bgp needs the customer gateway's BGP ASN: set sites.{}.customer_gateway.asn \
             (65000 is AWS's default), or use routing static",
            s.name
        );
        ctx.error(at, msg);
        return;
    };
    if asn == g.asn {
        let msg = format!(
            "site {} has ASN {asn}, the Amazon side ASN of vgw:{}: eBGP needs two different ASNs",
            s.name, g.name
        );
        ctx.error(at, msg);
        return;
    }
    match bgp_asns.get(&(gateway, asn)) {
        Some(&other) if other != site => {
            let msg = format!(
                "sites {} and {} both have ASN {asn} on vgw:{}: with BGP, VPN CloudHub needs a \
                 unique ASN per site (each would drop the other's routes as its own)",
                ctx.lab.sites[other].name, s.name, g.name
            );
            ctx.error(&c.name, msg);
        }
        _ => {
            bgp_asns.insert((gateway, asn), site);
        }
    }
}
