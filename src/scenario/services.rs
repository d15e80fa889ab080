//! Scenario layer: simulated regional AWS services (`services:`) and the VPC endpoints that
//! reach them (`endpoints:`). A service is an internet host of its own, on an address of
//! 192.0.2.0/24, named `SERVICE.REGION.amazonaws.com`; its prefix list `pl:NAME` is that
//! address. A gateway endpoint adds the route `pl:NAME -> vpce:ENDPOINT` to its route tables.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use ipnet::{IpNet, Ipv4Net};

use super::internet::DOCUMENTATION_RANGES;
use super::lab::*;
use super::raw::{EndpointRaw, ServiceRaw, VpcRaw};
use super::resolve::{list, Ctx};
use super::security::sorted_names;
use super::values::{check_name, check_region, first_free};
use super::yaml::At;

/// TEST-NET-1: where the lab's AWS services live.
const SERVICE_RANGE: Ipv4Net = DOCUMENTATION_RANGES[0];

/// The services AWS offers gateway endpoints for.
const GATEWAY_SERVICES: [&str; 2] = ["s3", "dynamodb"];

/// `services:`, after the internet hosts (a service is one more internet host).
pub(super) fn services(ctx: &mut Ctx, raw: &[ServiceRaw], default_region: &str) {
    let taken: Vec<Ipv4Addr> = ctx.lab.internet.hosts.iter().map(|h| h.ip).collect();
    let pool = ctx.lab.internet.public_pool;
    let mut free = (u32::from(SERVICE_RANGE.network()) + 10..u32::from(SERVICE_RANGE.broadcast()))
        .map(Ipv4Addr::from)
        .filter(move |ip| !taken.contains(ip) && !pool.contains(ip));
    for s in raw {
        let fresh = ctx.claim("host", &s.name);
        let kind = s.kind.as_ref().unwrap_or(&s.name);
        if let Err(m) = check_name("service", &kind.value) {
            ctx.error(kind, m);
        }
        let region = match &s.region {
            Some(r) => match check_region(&r.value) {
                Ok(()) => r.value.clone(),
                Err(m) => {
                    ctx.error(r, m);
                    default_region.to_string()
                }
            },
            None => default_region.to_string(),
        };
        let Some(ip) = free.next() else {
            let msg = format!(
                "no address left in {SERVICE_RANGE} for service {}",
                s.name.value
            );
            ctx.error(&s.name, msg);
            continue;
        };
        let host = ctx.lab.internet.hosts.len();
        let service = AwsService {
            name: s.name.value.clone(),
            kind: kind.value.clone(),
            region,
            host,
            prefix_list: Ipv4Net::from(ip),
        };
        if let Some(other) = ctx
            .lab
            .internet
            .hosts
            .iter()
            .find(|h| h.dns.as_deref() == Some(&service.dns_name()))
        {
            let msg = format!(
                "DNS name `{}` is already the name of host {}",
                service.dns_name(),
                other.name
            );
            ctx.error(&s.name, msg);
        }
        ctx.lab.internet.hosts.push(InternetHost {
            name: s.name.value.clone(),
            ip,
            ipv6: None,
            // What serves it is the daemon's choice (moto's server when installed).
            services: Vec::new(),
            dns: Some(service.dns_name()),
            run: None,
        });
        if fresh {
            let id = ctx.lab.instances.len() + host;
            ctx.host_ids.insert(s.name.value.clone(), Some(id));
        }
        ctx.service_ids
            .insert(s.name.value.clone(), ctx.lab.services.len());
        ctx.lab.services.push(service);
    }
}

/// `endpoints:` of every VPC, after the services and the route tables.
pub(super) fn endpoints(ctx: &mut Ctx, vpcs: &[VpcRaw]) {
    for (vpc, v) in vpcs.iter().enumerate() {
        for e in &v.endpoints {
            ctx.claim("VPC endpoint", &e.name);
            let Some(service) = e.service.as_ref().and_then(|s| service_ref(ctx, s)) else {
                continue;
            };
            let Some(kind) = &e.kind else { continue };
            if kind.value == "interface" {
                interface_endpoint(ctx, vpc, service, e);
                continue;
            }
            if kind.value != "gateway" {
                let msg = format!(
                    "invalid type `{}`: expected gateway or interface",
                    kind.value
                );
                ctx.error(kind, msg);
                continue;
            }
            for (key, given) in [
                ("subnets", !e.subnets.is_empty()),
                ("security_groups", e.security_groups.is_some()),
                ("private_dns", e.private_dns.is_some()),
            ] {
                if given {
                    let msg = format!(
                        "`{key}` is for interface endpoints: a gateway endpoint has no interface, \
                         no security group and no DNS name of its own"
                    );
                    ctx.error(kind, msg);
                }
            }
            if !gateway_checks(ctx, vpc, service, e.service.as_ref().unwrap_or(&e.name)) {
                continue;
            }
            let id = ctx.lab.endpoints.len();
            let mut tables = Vec::new();
            let mut seen: HashMap<RouteTableId, ()> = HashMap::new();
            for t in &e.route_tables {
                let Some(table) = ctx.route_table_ids.get(&(vpc, t.value.clone())).copied() else {
                    let names = list(
                        ctx.lab
                            .route_tables
                            .iter()
                            .filter(|r| r.vpc == vpc)
                            .map(|r| r.name.as_str()),
                    );
                    let msg = format!(
                        "unknown route table `{}`; route tables of vpc {}: {names}",
                        t.value,
                        ctx.vpc_name(vpc)
                    );
                    ctx.error(t, msg);
                    continue;
                };
                let Some(table) = table else { continue };
                if seen.insert(table, ()).is_some() {
                    ctx.error(t, format!("route table `{}` is listed twice", t.value));
                    continue;
                }
                if add_route(ctx, table, id, service, t) {
                    tables.push(table);
                }
            }
            ctx.lab.endpoints.push(Endpoint {
                name: e.name.value.clone(),
                vpc,
                service,
                kind: EndpointKind::Gateway,
                route_tables: tables,
                interfaces: Vec::new(),
                security_groups: Vec::new(),
                private_dns: false,
            });
        }
    }
}

fn service_ref(ctx: &mut Ctx, s: &At<String>) -> Option<ServiceId> {
    let found = ctx.service_ids.get(&s.value).copied();
    if found.is_none() {
        let mut names: Vec<&str> = ctx.service_ids.keys().map(String::as_str).collect();
        names.sort();
        let msg = format!(
            "unknown service `{}`: declare it under `services:` (e.g. `services: {{ {}: {{ region: us-east-1 }} }}`); services: {}",
            s.value,
            s.value,
            list(names.into_iter())
        );
        ctx.error(s, msg);
    }
    found
}

/// AWS offers gateway endpoints for S3 and DynamoDB only, in the VPC's own Region.
fn gateway_checks(ctx: &mut Ctx, vpc: VpcId, service: ServiceId, at: &At<String>) -> bool {
    let s = &ctx.lab.services[service];
    let region = &ctx.lab.vpcs[vpc].region;
    let msg = if !GATEWAY_SERVICES.contains(&s.kind.as_str()) {
        format!(
            "service {} ({}) has no gateway endpoint: AWS offers them for s3 and dynamodb only",
            s.name, s.kind
        )
    } else if &s.region != region {
        format!(
            "gateway endpoints are same-Region only: service {} is in {}, vpc {} in {region}",
            s.name,
            s.region,
            ctx.vpc_name(vpc)
        )
    } else {
        return true;
    };
    ctx.error(at, msg);
    false
}

/// Adds `pl:SERVICE -> vpce:ENDPOINT` to `table`; one endpoint route per service per table.
fn add_route(
    ctx: &mut Ctx,
    table: RouteTableId,
    endpoint: EndpointId,
    service: ServiceId,
    at: &At<String>,
) -> bool {
    let destination = ctx.lab.services[service].prefix_list;
    let clash = ctx.lab.route_tables[table]
        .routes
        .iter()
        .find(|r| r.destination == IpNet::V4(destination));
    if let Some(r) = clash {
        let what = match r.target {
            RouteTarget::GatewayEndpoint(e) => format!("endpoint {}", ctx.lab.endpoints[e].name),
            _ => format!("a route to {destination}"),
        };
        let msg = format!(
            "route table `{}` already has {what} for pl:{}: one endpoint route per service and table",
            at.value, ctx.lab.services[service].name
        );
        ctx.error(at, msg);
        return false;
    }
    ctx.lab.route_tables[table].routes.push(Route {
        destination: IpNet::V4(destination),
        target: RouteTarget::GatewayEndpoint(endpoint),
        prefix_list: Some(service),
    });
    true
}

/// An interface endpoint: subnets of its VPC (one per Availability Zone), security groups of
/// its VPC (default: the VPC's default group), the service in the VPC's Region. Addresses are
/// given later, by `endpoint_addresses`, once instances and NAT gateways hold theirs.
fn interface_endpoint(ctx: &mut Ctx, vpc: VpcId, service: ServiceId, e: &EndpointRaw) {
    let region = ctx.lab.vpcs[vpc].region.clone();
    let s = &ctx.lab.services[service];
    if s.region != region {
        let msg = format!(
            "an interface endpoint reaches its Region's services: service {} is in {}, vpc {} in {region}",
            s.name,
            s.region,
            ctx.vpc_name(vpc)
        );
        ctx.error(e.service.as_ref().unwrap_or(&e.name), msg);
        return;
    }
    if !e.route_tables.is_empty() {
        ctx.error(
            &e.name,
            "`route_tables` is for gateway endpoints: an interface endpoint is reached by its addresses",
        );
    }
    if e.subnets.is_empty() {
        ctx.error(
            &e.name,
            "an interface endpoint needs `subnets:` (one per Availability Zone)",
        );
        return;
    }
    let mut interfaces = Vec::new();
    let mut zones: HashMap<String, String> = HashMap::new();
    for at in &e.subnets {
        let Some(subnet) = ctx.subnet_of(vpc, at) else {
            continue;
        };
        let az = ctx.lab.subnets[subnet].az.clone();
        if let Some(other) = zones.insert(az.clone(), at.value.clone()) {
            let msg = format!(
                "subnets `{other}` and `{}` are both in {az}: an interface endpoint takes one subnet per Availability Zone",
                at.value
            );
            ctx.error(at, msg);
            continue;
        }
        interfaces.push(EndpointInterface {
            subnet,
            private_ip: Ipv4Addr::UNSPECIFIED,
        });
    }
    let security_groups = match &e.security_groups {
        None => vec![ctx.lab.vpcs[vpc].default_security_group],
        Some(names) => names
            .iter()
            .filter_map(|n| {
                let found = ctx.sg_ids[vpc].get(&n.value).copied();
                if found.is_none() {
                    let valid = sorted_names(&ctx.sg_ids[vpc]);
                    let msg = format!(
                        "unknown security group `{}`; security groups of vpc {}: {}",
                        n.value,
                        ctx.vpc_name(vpc),
                        list(valid.iter().map(String::as_str))
                    );
                    ctx.error(n, msg);
                }
                found
            })
            .collect(),
    };
    ctx.lab.endpoints.push(Endpoint {
        name: e.name.value.clone(),
        vpc,
        service,
        kind: EndpointKind::Interface,
        route_tables: Vec::new(),
        interfaces,
        security_groups,
        // AWS's default for AWS services.
        private_dns: e.private_dns.as_ref().is_none_or(|b| b.value),
    });
}

/// After instances and NAT gateways: each interface of an interface endpoint gets the next
/// free address of its subnet, as AWS's requester-managed interfaces do.
pub(super) fn endpoint_addresses(ctx: &mut Ctx, vpcs: &[VpcRaw]) {
    let mut taken: Vec<Ipv4Addr> = ctx
        .lab
        .instances
        .iter()
        .map(|i| i.private_ip)
        .chain(ctx.lab.nat_gateways.iter().map(|g| g.private_ip))
        .collect();
    for e in 0..ctx.lab.endpoints.len() {
        for n in 0..ctx.lab.endpoints[e].interfaces.len() {
            let subnet = ctx.lab.endpoints[e].interfaces[n].subnet;
            let cidr = ctx.lab.subnets[subnet].cidr;
            let free = first_free(cidr, |ip| taken.contains(&ip));
            if let Some(ip) = free {
                taken.push(ip);
                ctx.lab.endpoints[e].interfaces[n].private_ip = ip;
                continue;
            }
            let name = ctx.lab.endpoints[e].name.clone();
            let msg = format!(
                "InsufficientFreeAddressesInSubnet: subnet {} ({cidr}) has no free address left for endpoint {name}",
                ctx.lab.subnets[subnet].name
            );
            let at = vpcs
                .iter()
                .flat_map(|v| &v.endpoints)
                .find(|r| r.name.value == name)
                .map(|r| r.name.clone());
            if let Some(at) = at {
                ctx.error(&at, msg);
            }
        }
    }
}
