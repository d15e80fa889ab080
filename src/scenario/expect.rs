//! Scenario layer: expectations (`expect:`), resolved to a source host, a destination address
//! and a probe. Forms this version cannot probe yet (IPv6) are reported.

use std::net::{IpAddr, Ipv4Addr};

use super::lab::*;
use super::raw::ExpectRaw;
use super::resolve::{list, Ctx};
use super::yaml::At;

pub(super) fn expectations(ctx: &mut Ctx, raw: &[ExpectRaw]) {
    for e in raw {
        let from = e.from.as_ref().and_then(|f| host(ctx, f));
        let mut to = e.to.as_ref().and_then(|t| destination(ctx, from, t));
        if let (Some(f), Some((text, addr)), Some(at)) = (from, &to, &e.to) {
            if ctx.lab.host_source_for(f, *addr).is_none() {
                let what = if *text == addr.to_string() {
                    format!("`{text}` is an IPv6 address")
                } else {
                    format!("`{text}` is the IPv6 address {addr}")
                };
                let msg = format!(
                    "{what}, but {} has no IPv6 address to send from (set `ipv6: true` on its \
                     subnet or VPC)",
                    ctx.lab.host_name(f)
                );
                ctx.error(at, msg);
                to = None;
            }
        }
        let probe = e.protocol.as_ref().and_then(|p| match p.value.as_str() {
            "icmp" => Some(Probe::Icmp),
            "tcp" => Some(Probe::Tcp),
            "udp" => Some(Probe::Udp),
            "http" => Some(Probe::Http),
            other => {
                ctx.error(
                    p,
                    format!("invalid protocol `{other}`: expected icmp, tcp, udp or http"),
                );
                None
            }
        });
        let port = e.port.as_ref().and_then(|p| {
            let port = u16::try_from(p.value).ok().filter(|p| *p > 0);
            if port.is_none() {
                ctx.error(
                    p,
                    format!("port {} is out of range: expected 1-65535", p.value),
                );
            }
            port
        });
        let port = match (probe, port, &e.port) {
            (Some(Probe::Icmp), _, Some(p)) => {
                ctx.error(p, "port does not apply to protocol icmp");
                None
            }
            (Some(Probe::Tcp | Probe::Udp), None, None) => {
                let msg = format!(
                    "missing required key `port` (protocol {} needs a port 1-65535)",
                    e.protocol.as_ref().map_or("", |p| p.value.as_str())
                );
                ctx.error(&e.at, msg);
                None
            }
            (Some(Probe::Http), None, None) => Some(80),
            (_, port, _) => port,
        };
        if let Some(r) = &e.reason {
            let ok = !r.value.is_empty()
                && r.value
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            if !ok {
                let msg = format!(
                    "invalid reason `{}`: expected an explanation code like NO_ROUTE_TO_DESTINATION",
                    r.value
                );
                ctx.error(r, msg);
            }
        }
        if let (Some(from), Some((to_text, to)), Some(probe), Some(reachable)) =
            (from, to, probe, &e.reachable)
        {
            ctx.lab.expectations.push(Expectation {
                line: e.at.pos.line,
                from,
                to_text,
                to,
                probe,
                port,
                reachable: reachable.value,
                reason: e.reason.as_ref().map(|r| r.value.clone()),
                via: e.via.iter().map(|v| v.value.clone()).collect(),
            });
        }
    }
}

/// A host by name; None when unknown (reported) or broken (already reported).
fn host(ctx: &mut Ctx, name: &At<String>) -> Option<HostId> {
    match ctx.host_ids.get(&name.value) {
        Some(id) => *id,
        None => {
            let msg = format!("unknown host `{}`; hosts: {}", name.value, hosts(ctx));
            ctx.error(name, msg);
            None
        }
    }
}

fn hosts(ctx: &Ctx) -> String {
    let mut names: Vec<&str> = ctx.host_ids.keys().map(String::as_str).collect();
    names.sort();
    list(names.into_iter())
}

/// The address of host `id` on its own interface (an instance's private IPv4).
fn host_ip(ctx: &Ctx, id: HostId) -> IpAddr {
    ctx.lab.host_ip(id).into()
}

/// `to`: a host name (its private IPv4), `HOST.public` or `NAT.public` (a public IPv4), the
/// DNS name of an internet host, `HOST.ipv6`, or a literal IPv4 or IPv6 address.
fn destination(ctx: &mut Ctx, from: Option<HostId>, to: &At<String>) -> Option<(String, IpAddr)> {
    let text = to.value.as_str();
    if let Some(name) = text.strip_prefix("vpce:") {
        return endpoint_address(ctx, name, to);
    }
    // A name is resolved as the source host would: an instance asks its VPC's resolver
    // (private DNS of interface endpoints answers there).
    let asker = from.filter(|&f| f < ctx.lab.instances.len());
    let dns_name = text.contains('.') && text.parse::<Ipv4Addr>().is_err();
    if let (Some(asker), true) = (asker, dns_name) {
        if let Some(ip) = ctx.lab.resolve_dns(asker, &text.to_ascii_lowercase()) {
            return Some((text.to_string(), ip.into()));
        }
    }
    if ctx.host_ids.contains_key(text) {
        let id = host(ctx, to)?;
        return Some((text.to_string(), host_ip(ctx, id)));
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some((text.to_string(), ip));
    }
    let by_dns = ctx
        .lab
        .internet
        .hosts
        .iter()
        .find(|h| h.dns.as_deref() == Some(&text.to_ascii_lowercase()));
    if let Some(h) = by_dns {
        return Some((text.to_string(), h.ip.into()));
    }
    let msg = match text.rsplit_once('.') {
        Some((h, "public")) if ctx.host_ids.contains_key(h) => {
            let id = ctx.host_ids[h]?;
            if ctx.lab.site_host(id).is_some() {
                let msg = format!("`{text}`: {h} is an on-premises host: it has no public IP");
                ctx.error(to, msg);
                return None;
            }
            match ctx.lab.host(id) {
                HostRef::Instance(_, i) => match i.public_ip {
                    Some(p) => return Some((text.to_string(), p.addr.into())),
                    None => format!(
                        "`{text}`: instance {h} has no public IP (set `public_ip: true` or the \
                         subnet's `map_public_ip_on_launch`)"
                    ),
                },
                HostRef::Internet(_, host) => return Some((text.to_string(), host.ip.into())),
            }
        }
        Some((n, "public")) if ctx.nat_ids.contains_key(n) => {
            let found = ctx.lab.nat_gateways.iter().find(|g| g.name == n);
            return found.map(|g| (text.to_string(), g.public_ip.into()));
        }
        Some((h, "ipv6")) if ctx.host_ids.contains_key(h) => {
            let id = ctx.host_ids[h]?;
            match ctx.lab.host_ipv6(id) {
                Some(ip) => return Some((text.to_string(), ip.into())),
                None => format!(
                    "`{text}`: host {h} has no IPv6 address (set `ipv6: true` on its VPC, or \
                     `ipv6:` on an internet host)"
                ),
            }
        }
        _ if text.contains(':') => {
            format!("invalid IPv6 address `{text}`: expected an address like 2001:db8:ffff::10")
        }
        _ if text.contains('.') && !text.chars().all(|c| c.is_ascii_digit() || c == '.') => {
            let mut names: Vec<&str> = ctx
                .lab
                .internet
                .hosts
                .iter()
                .filter_map(|h| h.dns.as_deref())
                .collect();
            names.sort();
            format!(
                "`{text}`: no host of the lab has this DNS name; DNS names: {}",
                list(names.into_iter())
            )
        }
        _ if text.chars().all(|c| c.is_ascii_digit() || c == '.') => {
            format!("invalid IPv4 address `{text}`: expected an address like 10.0.1.10")
        }
        _ => format!(
            "unknown host `{text}`: expected a host name or an IPv4 address; hosts: {}",
            hosts(ctx)
        ),
    };
    ctx.error(to, msg);
    None
}

/// `vpce:NAME`: the address of an interface endpoint's first interface.
fn endpoint_address(ctx: &mut Ctx, name: &str, at: &At<String>) -> Option<(String, IpAddr)> {
    let found = ctx.lab.endpoints.iter().find(|e| e.name == name);
    let msg = match found {
        Some(e) => match e.interfaces.first() {
            Some(i) => return Some((at.value.clone(), i.private_ip.into())),
            None => format!(
                "`{}`: endpoint {name} is a gateway endpoint: it has no address",
                at.value
            ),
        },
        None => {
            let mut names: Vec<&str> = ctx.lab.endpoints.iter().map(|e| e.name.as_str()).collect();
            names.sort();
            format!(
                "unknown endpoint `{name}`; endpoints: {}",
                list(names.into_iter())
            )
        }
    };
    ctx.error(at, msg);
    None
}
