//! Scenario layer, decoding: a VPC and what lives in it (subnets, route tables, security groups,
//! network ACLs, instances, flow logs, NAT gateways, endpoints).

use super::super::error::Errors;
use super::super::raw::*;
use super::super::yaml::{At, Node};
use super::*;

const VPC_KEYS: &[&str] = &[
    "cidr",
    "region",
    "account",
    "ipv6",
    "internet_gateway",
    "egress_only_internet_gateway",
    "dns",
    "subnets",
    "route_tables",
    "security_groups",
    "network_acls",
    "nat_gateways",
    "endpoints",
    "instances",
    "flow_logs",
];

const ENDPOINT_KEYS: &[&str] = &[
    "service",
    "type",
    "route_tables",
    "subnets",
    "security_groups",
    "private_dns",
];

const SUBNET_KEYS: &[&str] = &[
    "cidr",
    "az",
    "ipv6",
    "route_table",
    "network_acl",
    "map_public_ip_on_launch",
];

const INSTANCE_KEYS: &[&str] = &[
    "subnet",
    "private_ip",
    "public_ip",
    "ipv6",
    "security_groups",
    "source_dest_check",
    "services",
    "run",
    "forwarding",
];

const FLOW_LOG_KEYS: &[&str] = &["resource", "traffic", "format", "aggregation_interval"];

const NAME: &str = "a name";

const ICMP: &str = "an ICMP type or code number (-1 for all)";

pub(super) fn vpc(name: At<String>, node: &Node<'_>, errs: &mut Errors) -> Option<VpcRaw> {
    let m = node.map(errs, VPC_KEYS)?;
    let cidrs = m
        .required(errs, "cidr", CIDR)
        .and_then(|n| n.strings(errs, CIDR));
    let mut raw = VpcRaw {
        name,
        cidrs,
        region: m.string(errs, "region", "a region like us-east-1"),
        account: m.text(errs, "account", "a 12-digit account id"),
        subnets: Vec::new(),
        route_tables: Vec::new(),
        security_groups: Vec::new(),
        network_acls: Vec::new(),
        instances: Vec::new(),
        flow_logs: Vec::new(),
        internet_gateway: m.boolean(errs, "internet_gateway"),
        egress_only_internet_gateway: m.boolean(errs, "egress_only_internet_gateway"),
        ipv6: m.boolean(errs, "ipv6"),
        dns: m.boolean(errs, "dns"),
        nat_gateways: Vec::new(),
        endpoints: Vec::new(),
    };
    for (name, n) in m.get("subnets").map(|n| n.named(errs)).unwrap_or_default() {
        raw.subnets.extend(subnet(name, &n, errs));
    }
    for (name, n) in m
        .get("route_tables")
        .map(|n| n.named(errs))
        .unwrap_or_default()
    {
        raw.route_tables.extend(route_table(name, &n, errs));
    }
    for (name, n) in m
        .get("security_groups")
        .map(|n| n.named(errs))
        .unwrap_or_default()
    {
        raw.security_groups.extend(security_group(name, &n, errs));
    }
    for (name, n) in m
        .get("network_acls")
        .map(|n| n.named(errs))
        .unwrap_or_default()
    {
        raw.network_acls.extend(network_acl(name, &n, errs));
    }
    for (name, n) in m
        .get("instances")
        .map(|n| n.named(errs))
        .unwrap_or_default()
    {
        raw.instances.extend(instance(name, &n, errs));
    }
    for (name, n) in m
        .get("flow_logs")
        .map(|n| n.named(errs))
        .unwrap_or_default()
    {
        raw.flow_logs.extend(flow_log(name, &n, errs));
    }
    for (name, n) in m
        .get("nat_gateways")
        .map(|n| n.named(errs))
        .unwrap_or_default()
    {
        if let Some(g) = n.map(errs, &["subnet"]) {
            raw.nat_gateways.push(NatGatewayRaw {
                subnet: required_string(&g, errs, "subnet", "a public subnet name"),
                name,
            });
        }
    }
    for (name, n) in m
        .get("endpoints")
        .map(|n| n.named(errs))
        .unwrap_or_default()
    {
        raw.endpoints.extend(endpoint(name, &n, errs));
    }
    Some(raw)
}

fn endpoint(name: At<String>, node: &Node<'_>, errs: &mut Errors) -> Option<EndpointRaw> {
    let m = node.map(errs, ENDPOINT_KEYS)?;
    let kind = required_string(&m, errs, "type", "gateway or interface");
    Some(EndpointRaw {
        subnets: m
            .get("subnets")
            .and_then(|n| n.strings(errs, "a subnet name"))
            .unwrap_or_default(),
        security_groups: m
            .get("security_groups")
            .and_then(|n| n.strings(errs, "a security group name")),
        private_dns: m.boolean(errs, "private_dns"),
        service: required_string(&m, errs, "service", "a service of `services:` like s3"),
        route_tables: m
            .get("route_tables")
            .and_then(|n| n.strings(errs, "a route table name"))
            .unwrap_or_default(),
        kind,
        name,
    })
}

fn flow_log(name: At<String>, node: &Node<'_>, errs: &mut Errors) -> Option<FlowLogRaw> {
    let m = node.map(errs, FLOW_LOG_KEYS)?;
    Some(FlowLogRaw {
        name,
        resource: required_string(&m, errs, "resource", FLOW_LOG_RESOURCE),
        traffic: required_string(&m, errs, "traffic", FLOW_LOG_TRAFFIC),
        format: m.string(errs, "format", FLOW_LOG_FORMAT),
        aggregation_interval: m.integer(errs, "aggregation_interval", FLOW_LOG_INTERVAL),
    })
}

fn subnet(name: At<String>, node: &Node<'_>, errs: &mut Errors) -> Option<SubnetRaw> {
    let m = node.map(errs, SUBNET_KEYS)?;
    Some(SubnetRaw {
        name,
        cidr: required_string(&m, errs, "cidr", "an IPv4 CIDR like 10.0.1.0/24"),
        az: m.string(errs, "az", "an availability zone like us-east-1a"),
        route_table: m.string(errs, "route_table", NAME),
        network_acl: m.string(errs, "network_acl", NAME),
        map_public_ip_on_launch: m.boolean(errs, "map_public_ip_on_launch"),
        ipv6: m.boolean(errs, "ipv6"),
    })
}

fn route_table(name: At<String>, node: &Node<'_>, errs: &mut Errors) -> Option<RouteTableRaw> {
    let m = node.map(errs, &["main", "propagate", "routes"])?;
    let propagate = m
        .get("propagate")
        .and_then(|n| n.strings(errs, "vgw:NAME"))
        .unwrap_or_default();
    let mut routes = Vec::new();
    for item in m.get("routes").map(|n| n.seq(errs)).unwrap_or_default() {
        if let Some(r) = item.map(errs, &["destination", "target"]) {
            routes.push(RouteRaw {
                destination: required_string(&r, errs, "destination", CIDR),
                target: required_string(
                    &r,
                    errs,
                    "target",
                    "blackhole, pcx:NAME, igw:NAME, nat:NAME, vgw:NAME or eni:HOST",
                ),
            });
        }
    }
    Some(RouteTableRaw {
        name,
        main: m.boolean(errs, "main"),
        routes,
        propagate,
    })
}

fn security_group(
    name: At<String>,
    node: &Node<'_>,
    errs: &mut Errors,
) -> Option<SecurityGroupRaw> {
    let m = node.map(errs, &["ingress", "egress"])?;
    let ingress = m
        .get("ingress")
        .map(|n| rules(n, errs, Rule::Ingress))
        .unwrap_or_default();
    let egress = m.get("egress").map(|n| rules(n, errs, Rule::Egress));
    Some(SecurityGroupRaw {
        name,
        ingress,
        egress,
    })
}

fn network_acl(name: At<String>, node: &Node<'_>, errs: &mut Errors) -> Option<NetworkAclRaw> {
    let m = node.map(errs, &["inbound", "outbound"])?;
    let inbound = m
        .get("inbound")
        .map(|n| rules(n, errs, Rule::Acl))
        .unwrap_or_default();
    let outbound = m
        .get("outbound")
        .map(|n| rules(n, errs, Rule::Acl))
        .unwrap_or_default();
    Some(NetworkAclRaw {
        name,
        inbound,
        outbound,
    })
}

#[derive(Clone, Copy, PartialEq)]
enum Rule {
    Ingress,
    Egress,
    Acl,
}

fn rules(node: &Node<'_>, errs: &mut Errors, kind: Rule) -> Vec<RuleRaw> {
    let (keys, peer): (&[&str], &str) = match kind {
        Rule::Ingress => (
            &["protocol", "ports", "icmp_type", "icmp_code", "source"],
            "source",
        ),
        Rule::Egress => (
            &["protocol", "ports", "icmp_type", "icmp_code", "destination"],
            "destination",
        ),
        Rule::Acl => (
            &[
                "rule",
                "protocol",
                "ports",
                "icmp_type",
                "icmp_code",
                "cidr",
                "action",
            ],
            "cidr",
        ),
    };
    let peer_expected = match kind {
        Rule::Acl => CIDR,
        _ => "an IPv4 CIDR like 10.0.0.0/16 or sg:NAME",
    };
    let mut out = Vec::new();
    for item in node.seq(errs) {
        let Some(m) = item.map(errs, keys) else {
            continue;
        };
        let (number, action) = if kind == Rule::Acl {
            (
                m.required(errs, "rule", "a rule number 1-32766")
                    .and_then(|n| n.integer(errs, "a rule number 1-32766")),
                required_string(&m, errs, "action", "allow or deny"),
            )
        } else {
            (None, None)
        };
        out.push(RuleRaw {
            number,
            protocol: m
                .required(errs, "protocol", PROTOCOL)
                .and_then(|n| n.text(errs, PROTOCOL)),
            ports: m.text(errs, "ports", PORTS),
            icmp_type: m.integer(errs, "icmp_type", ICMP),
            icmp_code: m.integer(errs, "icmp_code", ICMP),
            peer: required_string(&m, errs, peer, peer_expected),
            action,
        });
    }
    out
}

fn instance(name: At<String>, node: &Node<'_>, errs: &mut Errors) -> Option<InstanceRaw> {
    let m = node.map(errs, INSTANCE_KEYS)?;
    let public_ip = match m.text(errs, "public_ip", "true, eip or false") {
        Some(t) if matches!(t.value.as_str(), "true" | "eip" | "false") => Some(t),
        Some(t) => {
            errs.at(
                t.pos,
                &t.path,
                format!(
                    "invalid public_ip `{}`: expected true, eip or false",
                    t.value
                ),
            );
            None
        }
        None => None,
    };
    Some(InstanceRaw {
        name,
        subnet: required_string(&m, errs, "subnet", "a subnet name"),
        private_ip: m.string(errs, "private_ip", "an IPv4 address like 10.0.1.10"),
        security_groups: m
            .get("security_groups")
            .and_then(|n| n.strings(errs, "a security group name")),
        source_dest_check: m.boolean(errs, "source_dest_check"),
        services: m
            .get("services")
            .and_then(|n| n.strings(errs, "a service like http:80, tcp:5432, udp:53 or icmp"))
            .unwrap_or_default(),
        run: m.text(errs, "run", "a shell command").map(|r| r.value),
        forwarding: m.string(errs, "forwarding", FORWARDING),
        ipv6: m.boolean(errs, "ipv6"),
        public_ip,
    })
}
