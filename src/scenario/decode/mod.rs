//! Scenario layer: decoding the YAML tree into `*Raw` structs. Checks shapes only (keys, types);
//! what values mean is checked during resolution. Documented keys this version cannot build yet
//! are accepted and reported when used.

use super::error::Errors;
use super::raw::*;
use super::yaml::{At, Map, Node};

mod edge;
mod mirroring;
mod tgw;
mod vpc;
mod vpn;

const PORTS: &str = "a port (80), a range (1024-65535) or all";
const PROTOCOL: &str = "tcp, udp, icmp, icmpv6, all or a protocol number";

use edge::internet;
use mirroring::mirroring;
use vpc::vpc;

const TOP_KEYS: &[&str] = &[
    "name",
    "description",
    "defaults",
    "vpcs",
    "peering_connections",
    "internet",
    "services",
    "sites",
    "vpn_gateways",
    "vpn_connections",
    "transit_gateways",
    "direct_connect",
    "traffic_mirroring",
    "expect",
];

const TOP_UNSUPPORTED: &[&str] = &["direct_connect"];

const EXPECT_KEYS: &[&str] = &[
    "from",
    "to",
    "protocol",
    "port",
    "reachable",
    "reason",
    "via",
];

pub(super) const CIDR: &str = "an IPv4 CIDR like 10.0.0.0/16";

pub(super) const FORWARDING: &str = "route or masquerade";

pub(super) const FLOW_LOG_RESOURCE: &str = "vpc:NAME, subnet:NAME, eni:HOST or eni:NATGW";

pub(super) const FLOW_LOG_TRAFFIC: &str = "ALL, ACCEPT or REJECT";

pub(super) const FLOW_LOG_FORMAT: &str = "fields like \"${version} ${srcaddr} ${dstaddr}\"";

pub(super) const FLOW_LOG_INTERVAL: &str = "60 or 600 seconds (or 1-59 in a lab)";

pub(super) fn scenario(root: &Node<'_>, errs: &mut Errors) -> ScenarioRaw {
    let mut raw = ScenarioRaw {
        name: None,
        description: None,
        region: None,
        account: None,
        vpcs: Vec::new(),
        peerings: Vec::new(),
        internet: InternetRaw::default(),
        mirroring: MirroringRaw::default(),
        services: Vec::new(),
        expect: Vec::new(),
        vpn: Default::default(),
        transit_gateways: Vec::new(),
    };
    let Some(top) = root.map(errs, TOP_KEYS) else {
        return raw;
    };
    raw.name = top.string(errs, "name", "a lab name like peering");
    raw.description = top.text(errs, "description", "a text").map(|d| d.value);
    if let Some(d) = top
        .get("defaults")
        .and_then(|n| n.map(errs, &["region", "account"]))
    {
        raw.region = d.string(errs, "region", "a region like us-east-1");
        raw.account = d.text(errs, "account", "a 12-digit account id");
    }
    for key in TOP_UNSUPPORTED {
        top.unsupported(errs, key);
    }
    if let Some(n) = top.get("vpcs") {
        raw.vpcs = n
            .named(errs)
            .into_iter()
            .filter_map(|(k, v)| vpc(k, &v, errs))
            .collect();
    }
    if let Some(n) = top.get("peering_connections") {
        for (name, v) in n.named(errs) {
            if let Some(m) = v.map(errs, &["requester", "accepter"]) {
                raw.peerings.push(PeeringRaw {
                    requester: required_string(&m, errs, "requester", "a VPC name"),
                    accepter: required_string(&m, errs, "accepter", "a VPC name"),
                    name,
                });
            }
        }
    }
    if let Some(n) = top.get("internet") {
        raw.internet = internet(n, errs);
    }
    for (name, n) in top
        .get("services")
        .map(|n| n.named(errs))
        .unwrap_or_default()
    {
        if let Some(m) = n.map(errs, &["service", "region"]) {
            raw.services.push(ServiceRaw {
                kind: m.string(errs, "service", "a service name like s3 or dynamodb"),
                region: m.string(errs, "region", "a region like us-east-1"),
                name,
            });
        }
    }
    raw.vpn = vpn::vpn(&top, errs);
    raw.transit_gateways = tgw::transit_gateways(&top, errs);
    if let Some(n) = top.get("traffic_mirroring") {
        raw.mirroring = mirroring(n, errs);
    }
    if let Some(n) = top.get("expect") {
        raw.expect = n
            .seq(errs)
            .iter()
            .filter_map(|item| expectation(item, errs))
            .collect();
    }
    raw
}

pub(super) fn required_string(
    m: &Map<'_>,
    errs: &mut Errors,
    key: &str,
    expected: &str,
) -> Option<At<String>> {
    m.required(errs, key, expected)
        .and_then(|n| n.string(errs, expected))
}

pub(super) const MIRROR_ENI: &str = "an instance name, or eni:HOST";

pub(super) const MIRROR_RULE_NUMBER: &str = "a rule number 1-32766";

pub(super) const MIRROR_ACTION: &str = "accept or reject";

pub(super) const SESSION_NUMBER: &str = "a session number 1-32766";

pub(super) const VNI: &str = "a VXLAN network identifier 0-16777215";

pub(super) const PACKET_LENGTH: &str = "a number of bytes 1-8947";

fn expectation(item: &Node<'_>, errs: &mut Errors) -> Option<ExpectRaw> {
    let m = item.map(errs, EXPECT_KEYS)?;
    Some(ExpectRaw {
        at: item.at(()),
        from: required_string(&m, errs, "from", "a host name"),
        to: m
            .required(errs, "to", "a host name or an IPv4 address")
            .and_then(|n| n.string(errs, "a host name or an IPv4 address")),
        protocol: required_string(&m, errs, "protocol", "icmp, tcp, udp or http"),
        port: m.integer(errs, "port", "a port number 1-65535"),
        reachable: m
            .required(errs, "reachable", "true or false")
            .and_then(|n| n.boolean(errs)),
        reason: m.string(
            errs,
            "reason",
            "an explanation code like NO_ROUTE_TO_DESTINATION",
        ),
        via: m
            .get("via")
            .and_then(|n| n.strings(errs, "a component like pcx:NAME"))
            .unwrap_or_default(),
    })
}
