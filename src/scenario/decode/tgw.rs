//! Scenario layer, decoding: transit gateways (`transit_gateways:`), their attachments and
//! route tables.

use super::super::error::Errors;
use super::super::raw::{TgwAttachmentRaw, TgwRaw, TgwRouteRaw, TgwRouteTableRaw};
use super::super::yaml::{At, Map, Node};
use super::*;

const TGW_KEYS: &[&str] = &[
    "region",
    "asn",
    "ecmp",
    "default_route_table",
    "multicast",
    "attachments",
    "route_tables",
];

const ATTACHMENT_KEYS: &[&str] = &[
    "vpc",
    "subnets",
    "vpn",
    "dx_gateway",
    "allowed_prefixes",
    "peer",
];

const ROUTE_TABLE_KEYS: &[&str] = &["associations", "propagations", "routes"];

const ROUTE_KEYS: &[&str] = &["destination", "attachment", "blackhole"];

/// `transit_gateways:`; absent reads as none.
pub(super) fn transit_gateways(top: &Map<'_>, errs: &mut Errors) -> Vec<TgwRaw> {
    let mut out = Vec::new();
    for (name, n) in top
        .get("transit_gateways")
        .map(|n| n.named(errs))
        .unwrap_or_default()
    {
        out.extend(transit_gateway(name, &n, errs));
    }
    out
}

fn transit_gateway(name: At<String>, node: &Node<'_>, errs: &mut Errors) -> Option<TgwRaw> {
    let m = node.map(errs, TGW_KEYS)?;
    // What this version does not model yet.
    for key in ["ecmp", "multicast"] {
        m.unsupported(errs, key);
    }
    let mut raw = TgwRaw {
        region: m.string(errs, "region", "a region like us-east-1"),
        asn: m.integer(errs, "asn", "an Amazon side ASN like 64512"),
        default_route_table: m.boolean(errs, "default_route_table"),
        attachments: Vec::new(),
        route_tables: Vec::new(),
        name,
    };
    for (name, n) in m
        .get("attachments")
        .map(|n| n.named(errs))
        .unwrap_or_default()
    {
        let Some(a) = n.map(errs, ATTACHMENT_KEYS) else {
            continue;
        };
        for key in ["vpn", "dx_gateway", "allowed_prefixes", "peer"] {
            a.unsupported(errs, key);
        }
        raw.attachments.push(TgwAttachmentRaw {
            vpc: a.string(errs, "vpc", "the name of the VPC it attaches"),
            subnets: a
                .get("subnets")
                .and_then(|n| n.strings(errs, "a subnet name, one per Availability Zone"))
                .unwrap_or_default(),
            name,
        });
    }
    for (name, n) in m
        .get("route_tables")
        .map(|n| n.named(errs))
        .unwrap_or_default()
    {
        let Some(t) = n.map(errs, ROUTE_TABLE_KEYS) else {
            continue;
        };
        let names = |key: &str, errs: &mut Errors| {
            t.get(key)
                .and_then(|n| n.strings(errs, "an attachment name"))
                .unwrap_or_default()
        };
        let mut table = TgwRouteTableRaw {
            associations: names("associations", errs),
            propagations: names("propagations", errs),
            routes: Vec::new(),
            name,
        };
        for item in t.get("routes").map(|n| n.seq(errs)).unwrap_or_default() {
            if let Some(r) = item.map(errs, ROUTE_KEYS) {
                table.routes.push(TgwRouteRaw {
                    destination: required_string(&r, errs, "destination", CIDR),
                    attachment: r.string(errs, "attachment", "an attachment name"),
                    blackhole: r.boolean(errs, "blackhole"),
                    at: item.at(()),
                });
            }
        }
        raw.route_tables.push(table);
    }
    Some(raw)
}
