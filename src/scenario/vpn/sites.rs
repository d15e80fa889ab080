//! Scenario layer: on-premises sites. A site's CIDR overlaps no other site, no VPC and no
//! address the lab uses for something else; its router is an internet host named
//! `SITE-router` on the customer gateway's public IP; its hosts sit inside the CIDR, off the
//! router's LAN address (the CIDR's first address).

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::super::internet::{DEFAULT_PUBLIC_POOL, DOCUMENTATION_RANGES};
use super::super::lab::*;
use super::super::resolve::Ctx;
use super::super::values::{overlaps, parse_ipv4, parse_sized_cidr};
use super::super::yaml::At;
use super::raw::{SiteHostRaw, SiteRaw, VpnRaw};

/// The suffix of a site router's host name.
const ROUTER_SUFFIX: &str = "-router";

/// Host names have at most 24 characters, and the router's name is the site's plus a suffix.
const MAX_SITE_NAME: usize = 24 - ROUTER_SUFFIX.len();

/// Customer gateway ASNs AWS accepts: 1-2147483647 (the 32-bit private range above is not).
const MAX_CUSTOMER_ASN: i64 = 2_147_483_647;

const LINK_LOCAL: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::new(169, 254, 0, 0), 16);

/// `sites:`: each site's router joins the internet hosts, then the sites' hosts get their ids
/// (after every internet host, so the routers go first).
pub(in crate::scenario) fn sites(ctx: &mut Ctx, raw: &VpnRaw) {
    for s in &raw.sites {
        site(ctx, s);
    }
    for site in 0..ctx.lab.sites.len() {
        for n in 0..ctx.lab.sites[site].hosts.len() {
            let id = ctx.lab.site_host_id(site, n);
            let name = ctx.lab.sites[site].hosts[n].name.clone();
            ctx.host_ids.insert(name, Some(id));
        }
    }
}

fn site(ctx: &mut Ctx, s: &SiteRaw) {
    let fresh = ctx.claim("site", &s.name);
    if s.name.value.len() > MAX_SITE_NAME {
        let msg = format!(
            "site name `{}` is too long: its router is host `{}{ROUTER_SUFFIX}`, and host names have \
             at most 24 characters (site names at most {MAX_SITE_NAME})",
            s.name.value, s.name.value
        );
        ctx.error(&s.name, msg);
    }
    let router = router_name(ctx, &s.name);
    let cidr = s.cidr.as_ref().and_then(|c| site_cidr(ctx, c));
    let gateway = s.customer_gateway.as_ref();
    let public_ip = gateway
        .and_then(|g| g.public_ip.as_ref())
        .and_then(|ip| public_ip(ctx, ip));
    let asn = gateway
        .and_then(|g| g.asn.as_ref())
        .map(|a| customer_asn(ctx, a));
    let hosts = hosts(ctx, cidr, &s.hosts);
    let asn_ok = !matches!(asn, Some(None));
    let (Some(cidr), Some(public_ip), Some(router), true, true) =
        (cidr, public_ip, router.clone(), fresh, asn_ok)
    else {
        // Declared but broken: references to it and its hosts stay silent.
        for name in s.hosts.iter().map(|h| &h.name.value).chain(router.as_ref()) {
            ctx.host_ids.entry(name.clone()).or_insert(None);
        }
        return;
    };
    let asn = asn.flatten();
    let router_host = ctx.lab.internet.hosts.len();
    ctx.lab.internet.hosts.push(InternetHost {
        name: router.clone(),
        ip: public_ip,
        ipv6: None,
        // The router forwards; what runs in it (wireguard-go) is the daemon's doing.
        services: Vec::new(),
        dns: None,
        run: None,
    });
    let id = ctx.lab.internet_host_id(router_host);
    ctx.host_ids.insert(router, Some(id));
    ctx.lab.sites.push(Site {
        name: s.name.value.clone(),
        cidr,
        lan_ip: lan_ip(cidr),
        customer_gateway: CustomerGateway {
            public_ip,
            asn,
            router: router_host,
            behind_nat: gateway
                .and_then(|g| g.behind_nat.as_ref())
                .is_some_and(|b| b.value),
        },
        hosts,
    });
}

/// The router's address on the site's LAN: the CIDR's first address.
fn lan_ip(cidr: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(cidr.network()) + 1)
}

/// Claims `SITE-router` as a host name; None when it is taken.
fn router_name(ctx: &mut Ctx, site: &At<String>) -> Option<String> {
    let name = format!("{}{ROUTER_SUFFIX}", site.value);
    if let Some((pos, path)) = ctx.declared_at("host", &name) {
        let msg = format!(
            "site {}'s router is host `{name}`, a name already declared at line {} ({path})",
            site.value, pos.line
        );
        ctx.error(site, msg);
        return None;
    }
    let at = At {
        value: name.clone(),
        pos: site.pos,
        path: site.path.clone(),
    };
    // The site's own name was checked; a name too long was reported just before.
    if site.value.len() <= MAX_SITE_NAME {
        ctx.claim("host", &at);
    }
    Some(name)
}

fn site_cidr(ctx: &mut Ctx, at: &At<String>) -> Option<Ipv4Net> {
    let net = match parse_sized_cidr(&at.value, 8, 28) {
        Ok(net) => net,
        Err(m) => {
            ctx.error(at, m);
            return None;
        }
    };
    let clash = if let Some(s) = ctx.lab.sites.iter().find(|s| overlaps(s.cidr, net)) {
        Some(format!("site {} ({})", s.name, s.cidr))
    } else if let Some((v, c)) = ctx.lab.vpcs.iter().enumerate().find_map(|(v, vpc)| {
        let c = vpc.cidrs.iter().find(|c| overlaps(**c, net))?;
        ctx.vpc_cidrs_ok[v].then_some((vpc, *c))
    }) {
        Some(format!("vpc {} ({c})", v.name))
    } else if overlaps(net, LINK_LOCAL) {
        Some("169.254.0.0/16, where VPN tunnels have their inside addresses".to_string())
    } else {
        let pool = ctx.lab.internet.public_pool;
        DOCUMENTATION_RANGES
            .into_iter()
            .chain([pool])
            .find(|r| overlaps(*r, net))
            .map(|r| format!("{r}, an address range of the lab's internet"))
    };
    match clash {
        Some(what) => {
            let msg = format!(
                "site CIDR {net} overlaps {what}: a site's addresses must be its own \
                 (a VPN cannot join overlapping networks)"
            );
            ctx.error(at, msg);
            None
        }
        None => Some(net),
    }
}

/// The customer gateway's public IP: on the lab's internet (a documentation range, outside
/// the public pool), the address of no other internet host.
fn public_ip(ctx: &mut Ctx, at: &At<String>) -> Option<Ipv4Addr> {
    let ip = match parse_ipv4(&at.value) {
        Ok(ip) => ip,
        Err(m) => {
            ctx.error(at, m);
            return None;
        }
    };
    let pool = ctx.lab.internet.public_pool;
    let msg = if !DOCUMENTATION_RANGES.iter().any(|r| r.contains(&ip)) {
        format!(
            "customer gateway address {ip} must lie inside the documentation ranges \
             192.0.2.0/24, 198.51.100.0/24 or 203.0.113.0/24"
        )
    } else if pool.contains(&ip) {
        let hint = if pool == DEFAULT_PUBLIC_POOL {
            " (the default public pool)"
        } else {
            ""
        };
        format!(
            "customer gateway address {ip} is inside the public pool {pool}{hint}, which the lab \
             hands out as AWS's public IPs: pick an address outside it, like 198.51.100.20"
        )
    } else if let Some(h) = ctx.lab.internet.hosts.iter().find(|h| h.ip == ip) {
        format!(
            "customer gateway address {ip} is already the address of {}",
            h.name
        )
    } else {
        return Some(ip);
    };
    ctx.error(at, msg);
    None
}

/// The ASN when AWS accepts it; None when reported.
fn customer_asn(ctx: &mut Ctx, at: &At<i64>) -> Option<u32> {
    if (1..=MAX_CUSTOMER_ASN).contains(&at.value) {
        return u32::try_from(at.value).ok();
    }
    let msg = format!(
        "customer gateway ASN {} is out of range: expected 1-2147483647 (64512-65534 are private)",
        at.value
    );
    ctx.error(at, msg);
    None
}

/// The site's hosts: names claimed, addresses inside the site, off its reserved ones. A host
/// with a bad address is reported and left out.
fn hosts(ctx: &mut Ctx, cidr: Option<Ipv4Net>, raw: &[SiteHostRaw]) -> Vec<SiteHost> {
    let mut out: Vec<SiteHost> = Vec::new();
    for h in raw {
        let fresh = ctx.claim("host", &h.name);
        let services = ctx.services(&h.services);
        if services.iter().any(|s| matches!(s, Service::Ssh(_))) {
            let at = h.services.iter().find(|s| s.value.starts_with("ssh"));
            let msg = "`ssh` is not supported yet on an on-premises host by this version of vpclab";
            ctx.error(at.unwrap_or(&h.name), msg);
        }
        let ip = h.ip.as_ref().and_then(|at| {
            let ip = match parse_ipv4(&at.value) {
                Ok(ip) => ip,
                Err(m) => {
                    ctx.error(at, m);
                    return None;
                }
            };
            let cidr = cidr?;
            let msg = if !cidr.contains(&ip) {
                format!("address {ip} is not inside the site's CIDR {cidr}")
            } else if ip == cidr.network() || ip == cidr.broadcast() {
                format!("address {ip} is the network or broadcast address of {cidr}")
            } else if ip == lan_ip(cidr) {
                format!(
                    "address {ip} is the site router's address on its LAN (the first of {cidr})"
                )
            } else if let Some(other) = out.iter().find(|o| o.ip == ip) {
                format!("address {ip} is already the address of {}", other.name)
            } else {
                return Some(ip);
            };
            ctx.error(at, msg);
            None
        });
        match ip {
            Some(ip) if fresh => out.push(SiteHost {
                name: h.name.value.clone(),
                ip,
                services,
                run: h.run.clone(),
            }),
            _ if fresh => {
                ctx.host_ids.insert(h.name.value.clone(), None);
            }
            _ => {}
        }
    }
    out
}
