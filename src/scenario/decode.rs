//! Scenario layer: decoding the YAML tree into `*Raw` structs. Checks shapes only (keys, types);
//! what values mean is checked during resolution. Documented keys this version cannot build yet
//! are accepted and reported when used.

use super::error::Errors;
use super::raw::*;
use super::yaml::{At, Map, Node};

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
const TOP_UNSUPPORTED: &[&str] = &[
    "sites",
    "vpn_gateways",
    "vpn_connections",
    "transit_gateways",
    "direct_connect",
];
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
const VPC_UNSUPPORTED: &[&str] = &["ipv6", "egress_only_internet_gateway"];
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
const EXPECT_KEYS: &[&str] = &[
    "from",
    "to",
    "protocol",
    "port",
    "reachable",
    "reason",
    "via",
];

const CIDR: &str = "an IPv4 CIDR like 10.0.0.0/16";
pub(super) const FORWARDING: &str = "route or masquerade";
const NAME: &str = "a name";
const PORTS: &str = "a port (80), a range (1024-65535) or all";
const PROTOCOL: &str = "tcp, udp, icmp, icmpv6, all or a protocol number";
pub(super) const FLOW_LOG_RESOURCE: &str = "vpc:NAME, subnet:NAME or eni:HOST";
pub(super) const FLOW_LOG_TRAFFIC: &str = "ALL, ACCEPT or REJECT";
pub(super) const FLOW_LOG_FORMAT: &str = "fields like \"${version} ${srcaddr} ${dstaddr}\"";
pub(super) const FLOW_LOG_INTERVAL: &str = "60 or 600 seconds (or 1-59 in a lab)";
const ICMP: &str = "an ICMP type or code number (-1 for all)";

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

fn required_string(
    m: &Map<'_>,
    errs: &mut Errors,
    key: &str,
    expected: &str,
) -> Option<At<String>> {
    m.required(errs, key, expected)
        .and_then(|n| n.string(errs, expected))
}

fn vpc(name: At<String>, node: &Node<'_>, errs: &mut Errors) -> Option<VpcRaw> {
    let m = node.map(errs, VPC_KEYS)?;
    for key in VPC_UNSUPPORTED {
        m.unsupported(errs, key);
    }
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

fn internet(node: &Node<'_>, errs: &mut Errors) -> InternetRaw {
    let mut raw = InternetRaw::default();
    let Some(m) = node.map(errs, &["public_pool", "hosts"]) else {
        return raw;
    };
    raw.public_pool = m.string(errs, "public_pool", CIDR);
    for (name, n) in m.get("hosts").map(|n| n.named(errs)).unwrap_or_default() {
        let Some(h) = n.map(errs, &["ip", "ipv6", "services", "dns", "run"]) else {
            continue;
        };
        h.unsupported(errs, "ipv6");
        raw.hosts.push(InternetHostRaw {
            ip: required_string(&h, errs, "ip", "a public IPv4 address like 198.51.100.10"),
            services: h
                .get("services")
                .and_then(|n| n.strings(errs, "a service like http:80, tcp:22, udp:53 or icmp"))
                .unwrap_or_default(),
            dns: h.string(errs, "dns", "a DNS name like example.com"),
            run: h.text(errs, "run", "a shell command").map(|r| r.value),
            name,
        });
    }
    raw
}

const MIRROR_RULE_KEYS: &[&str] = &[
    "rule",
    "action",
    "protocol",
    "source_ports",
    "destination_ports",
    "source_cidr",
    "destination_cidr",
];
const MIRROR_SESSION_KEYS: &[&str] = &[
    "source",
    "target",
    "filter",
    "session_number",
    "vni",
    "packet_length",
];
pub(super) const MIRROR_ENI: &str = "an instance name, or eni:HOST";
pub(super) const MIRROR_RULE_NUMBER: &str = "a rule number 1-32766";
pub(super) const MIRROR_ACTION: &str = "accept or reject";
pub(super) const SESSION_NUMBER: &str = "a session number 1-32766";
pub(super) const VNI: &str = "a VXLAN network identifier 0-16777215";
pub(super) const PACKET_LENGTH: &str = "a number of bytes 1-8947";

fn mirroring(node: &Node<'_>, errs: &mut Errors) -> MirroringRaw {
    let mut raw = MirroringRaw::default();
    let Some(m) = node.map(errs, &["targets", "filters", "sessions"]) else {
        return raw;
    };
    for (name, n) in m.get("targets").map(|n| n.named(errs)).unwrap_or_default() {
        if let Some(t) = n.map(errs, &["eni"]) {
            raw.targets.push(MirrorTargetRaw {
                eni: required_string(&t, errs, "eni", MIRROR_ENI),
                name,
            });
        }
    }
    for (name, n) in m.get("filters").map(|n| n.named(errs)).unwrap_or_default() {
        if let Some(f) = n.map(errs, &["inbound", "outbound"]) {
            let mut rules = |key| {
                f.get(key)
                    .map(|n| mirror_rules(n, errs))
                    .unwrap_or_default()
            };
            raw.filters.push(MirrorFilterRaw {
                inbound: rules("inbound"),
                outbound: rules("outbound"),
                name,
            });
        }
    }
    for (name, n) in m.get("sessions").map(|n| n.named(errs)).unwrap_or_default() {
        if let Some(s) = n.map(errs, MIRROR_SESSION_KEYS) {
            raw.sessions.push(MirrorSessionRaw {
                source: required_string(&s, errs, "source", "eni:HOST"),
                target: required_string(&s, errs, "target", "a mirror target name"),
                filter: required_string(&s, errs, "filter", "a mirror filter name"),
                session_number: s
                    .required(errs, "session_number", SESSION_NUMBER)
                    .and_then(|n| n.integer(errs, SESSION_NUMBER)),
                vni: s.integer(errs, "vni", VNI),
                packet_length: s.integer(errs, "packet_length", PACKET_LENGTH),
                name,
            });
        }
    }
    raw
}

fn mirror_rules(node: &Node<'_>, errs: &mut Errors) -> Vec<MirrorRuleRaw> {
    let mut out = Vec::new();
    for item in node.seq(errs) {
        let Some(m) = item.map(errs, MIRROR_RULE_KEYS) else {
            continue;
        };
        out.push(MirrorRuleRaw {
            at: item.at(()),
            number: m
                .required(errs, "rule", MIRROR_RULE_NUMBER)
                .and_then(|n| n.integer(errs, MIRROR_RULE_NUMBER)),
            action: required_string(&m, errs, "action", MIRROR_ACTION),
            protocol: m.text(errs, "protocol", PROTOCOL),
            source_ports: m.text(errs, "source_ports", PORTS),
            destination_ports: m.text(errs, "destination_ports", PORTS),
            source_cidr: m.string(errs, "source_cidr", CIDR),
            destination_cidr: m.string(errs, "destination_cidr", CIDR),
        });
    }
    out
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
    m.unsupported(errs, "ipv6");
    Some(SubnetRaw {
        name,
        cidr: required_string(&m, errs, "cidr", "an IPv4 CIDR like 10.0.1.0/24"),
        az: m.string(errs, "az", "an availability zone like us-east-1a"),
        route_table: m.string(errs, "route_table", NAME),
        network_acl: m.string(errs, "network_acl", NAME),
        map_public_ip_on_launch: m.boolean(errs, "map_public_ip_on_launch"),
    })
}

fn route_table(name: At<String>, node: &Node<'_>, errs: &mut Errors) -> Option<RouteTableRaw> {
    let m = node.map(errs, &["main", "propagate", "routes"])?;
    m.unsupported(errs, "propagate");
    let mut routes = Vec::new();
    for item in m.get("routes").map(|n| n.seq(errs)).unwrap_or_default() {
        if let Some(r) = item.map(errs, &["destination", "target"]) {
            routes.push(RouteRaw {
                destination: required_string(&r, errs, "destination", CIDR),
                target: required_string(
                    &r,
                    errs,
                    "target",
                    "blackhole, pcx:NAME, igw:NAME or nat:NAME",
                ),
            });
        }
    }
    Some(RouteTableRaw {
        name,
        main: m.boolean(errs, "main"),
        routes,
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
    m.unsupported(errs, "ipv6");
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
        public_ip,
    })
}

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
