//! Scenario layer, decoding: on-premises sites (`sites:`), virtual private gateways
//! (`vpn_gateways:`) and Site-to-Site VPN connections (`vpn_connections:`).

use super::super::error::Errors;
use super::super::vpn::raw::*;
use super::super::yaml::{At, Map, Node};
use super::*;

const SITE_KEYS: &[&str] = &["cidr", "customer_gateway", "hosts"];

const CUSTOMER_GATEWAY_KEYS: &[&str] = &["public_ip", "asn", "behind_nat"];

const SITE_HOST_KEYS: &[&str] = &["ip", "services", "run"];

const VPN_GATEWAY_KEYS: &[&str] = &["vpc", "asn"];

const CONNECTION_KEYS: &[&str] = &["site", "gateway", "routing", "static_routes"];

const ASN: &str = "a BGP ASN like 65000";

/// The three top-level mappings; absent ones read as empty.
pub(super) fn vpn(top: &Map<'_>, errs: &mut Errors) -> VpnRaw {
    let mut raw = VpnRaw::default();
    for (name, n) in top.get("sites").map(|n| n.named(errs)).unwrap_or_default() {
        raw.sites.extend(site(name, &n, errs));
    }
    for (name, n) in top
        .get("vpn_gateways")
        .map(|n| n.named(errs))
        .unwrap_or_default()
    {
        if let Some(m) = n.map(errs, VPN_GATEWAY_KEYS) {
            raw.gateways.push(VpnGatewayRaw {
                vpc: required_string(&m, errs, "vpc", "the name of the VPC it is attached to"),
                asn: m.integer(errs, "asn", "an Amazon side ASN like 64512"),
                name,
            });
        }
    }
    for (name, n) in top
        .get("vpn_connections")
        .map(|n| n.named(errs))
        .unwrap_or_default()
    {
        raw.connections.extend(connection(name, &n, errs));
    }
    raw
}

fn site(name: At<String>, node: &Node<'_>, errs: &mut Errors) -> Option<SiteRaw> {
    let m = node.map(errs, SITE_KEYS)?;
    let customer_gateway = m
        .required(
            errs,
            "customer_gateway",
            "{ public_ip: ADDRESS, asn: NUMBER }",
        )
        .and_then(|n| n.map(errs, CUSTOMER_GATEWAY_KEYS))
        .map(|g| CustomerGatewayRaw {
            behind_nat: g.boolean(errs, "behind_nat"),
            public_ip: required_string(
                &g,
                errs,
                "public_ip",
                "a public IPv4 address like 198.51.100.20",
            ),
            asn: g.integer(errs, "asn", ASN),
        });
    let mut hosts = Vec::new();
    for (host, n) in m.get("hosts").map(|n| n.named(errs)).unwrap_or_default() {
        let Some(h) = n.map(errs, SITE_HOST_KEYS) else {
            continue;
        };
        hosts.push(SiteHostRaw {
            ip: required_string(&h, errs, "ip", "an IPv4 address inside the site's CIDR"),
            services: h
                .get("services")
                .and_then(|n| n.strings(errs, "a service like http:80, tcp:22, udp:53 or icmp"))
                .unwrap_or_default(),
            run: h.text(errs, "run", "a shell command").map(|r| r.value),
            name: host,
        });
    }
    Some(SiteRaw {
        cidr: required_string(&m, errs, "cidr", CIDR),
        customer_gateway,
        hosts,
        name,
    })
}

fn connection(name: At<String>, node: &Node<'_>, errs: &mut Errors) -> Option<VpnConnectionRaw> {
    let m = node.map(errs, CONNECTION_KEYS)?;
    let static_routes = m.get("static_routes").and_then(|n| {
        let routes = n.strings(errs, CIDR)?;
        Some(At {
            value: routes,
            pos: n.anchor(),
            path: n.path.clone(),
        })
    });
    Some(VpnConnectionRaw {
        site: required_string(&m, errs, "site", "a site name"),
        gateway: required_string(&m, errs, "gateway", "vgw:NAME"),
        routing: required_string(&m, errs, "routing", "static or bgp"),
        static_routes,
        name,
    })
}
