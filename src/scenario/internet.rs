//! Scenario layer: the internet edge. The simulated internet's hosts and public pool, NAT
//! gateways, and the public IPv4 addresses the internet gateway maps to private ones. Every
//! public address stays inside the documentation ranges, so no lab address is anyone's real one.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

use super::lab::*;
use super::raw::{InternetRaw, VpcRaw};
use super::resolve::Ctx;
use super::values::{first_free, parse_cidr, parse_ipv4, parse_ipv6};
use super::yaml::At;

/// RFC 5737's TEST-NET-1, -2 and -3: the only public IPv4 space a lab uses.
pub const DOCUMENTATION_RANGES: [Ipv4Net; 3] = [
    Ipv4Net::new_assert(Ipv4Addr::new(192, 0, 2, 0), 24),
    Ipv4Net::new_assert(Ipv4Addr::new(198, 51, 100, 0), 24),
    Ipv4Net::new_assert(Ipv4Addr::new(203, 0, 113, 0), 24),
];

/// Where public IPs and Elastic IPs come from when `internet.public_pool` is not given.
pub const DEFAULT_PUBLIC_POOL: Ipv4Net = DOCUMENTATION_RANGES[2];

fn documentation(net: Ipv4Net) -> bool {
    DOCUMENTATION_RANGES.iter().any(|r| r.contains(&net))
}

const DOCUMENTATION_TEXT: &str =
    "the documentation ranges 192.0.2.0/24, 198.51.100.0/24 or 203.0.113.0/24";

/// Gives each NAT gateway its id before route tables name them; `nat_gateways` fills them in.
pub(super) fn declare_nat_gateways(ctx: &mut Ctx, vpcs: &[VpcRaw]) {
    let mut next = 0;
    for (vpc, v) in vpcs.iter().enumerate() {
        for g in &v.nat_gateways {
            if ctx.claim("NAT gateway", &g.name) {
                ctx.nat_ids.insert(g.name.value.clone(), Some((vpc, next)));
                next += 1;
            }
        }
    }
}

/// `internet:`: the public pool and the internet hosts (which share the hosts' name space).
pub(super) fn internet(ctx: &mut Ctx, raw: &InternetRaw) {
    let pool = match &raw.public_pool {
        Some(at) => match parse_cidr(&at.value) {
            Ok(net) if documentation(net) => net,
            Ok(net) => {
                let msg = format!("public_pool {net} must lie inside {DOCUMENTATION_TEXT}");
                ctx.error(at, msg);
                DEFAULT_PUBLIC_POOL
            }
            Err(m) => {
                ctx.error(at, m);
                DEFAULT_PUBLIC_POOL
            }
        },
        None => DEFAULT_PUBLIC_POOL,
    };
    ctx.lab.internet.public_pool = pool;
    let mut ips: HashMap<Ipv4Addr, String> = HashMap::new();
    let mut names: HashSet<String> = HashSet::new();
    let mut ips6: HashMap<Ipv6Addr, String> = HashMap::new();
    for h in &raw.hosts {
        let fresh = ctx.claim("host", &h.name);
        let ip =
            h.ip.as_ref()
                .and_then(|at| host_ip(ctx, at, pool, &mut ips, &h.name.value));
        let services = ctx.services(&h.services);
        let ipv6 = h
            .ipv6
            .as_ref()
            .and_then(|at| host_ipv6(ctx, at, &mut ips6, &h.name.value));
        if let Some(d) = &h.dns {
            dns_name(ctx, d, &mut names);
        }
        let id = ip.map(|ip| {
            ctx.lab.internet.hosts.push(InternetHost {
                name: h.name.value.clone(),
                ip,
                ipv6,
                services,
                dns: h.dns.as_ref().map(|d| d.value.to_ascii_lowercase()),
                run: h.run.clone(),
            });
            ctx.lab.instances.len() + ctx.lab.internet.hosts.len() - 1
        });
        if fresh {
            ctx.host_ids.insert(h.name.value.clone(), id);
        }
    }
}

fn host_ip(
    ctx: &mut Ctx,
    at: &At<String>,
    pool: Ipv4Net,
    ips: &mut HashMap<Ipv4Addr, String>,
    host: &str,
) -> Option<Ipv4Addr> {
    let ip = match parse_ipv4(&at.value) {
        Ok(ip) => ip,
        Err(m) => {
            ctx.error(at, m);
            return None;
        }
    };
    let net = Ipv4Net::from(ip);
    let msg = if !documentation(net) {
        format!("internet host address {ip} must lie inside {DOCUMENTATION_TEXT}")
    } else if pool.contains(&ip) {
        format!(
            "internet host address {ip} is inside the public pool {pool}, which the lab hands \
             out as public IPs: pick an address outside it or set internet.public_pool"
        )
    } else if let Some(other) = ips.get(&ip) {
        format!("internet host address {ip} is already the address of {other}")
    } else {
        ips.insert(ip, host.to_string());
        return Some(ip);
    };
    ctx.error(at, msg);
    None
}

/// The IPv6 documentation range internet hosts take their addresses from.
const DOCUMENTATION_V6: Ipv6Net =
    Ipv6Net::new_assert(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32);

/// Where the lab takes VPCs' /56 blocks from (see `ipv6::vpc_block`).
const VPC_BLOCKS_V6: Ipv6Net =
    Ipv6Net::new_assert(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 48);

/// An internet host's IPv6: a documentation address outside the VPCs' blocks, unique.
fn host_ipv6(
    ctx: &mut Ctx,
    at: &At<String>,
    ips: &mut HashMap<Ipv6Addr, String>,
    host: &str,
) -> Option<Ipv6Addr> {
    let ip = match parse_ipv6(&at.value) {
        Ok(ip) => ip,
        Err(m) => {
            ctx.error(at, m);
            return None;
        }
    };
    let msg = if !DOCUMENTATION_V6.contains(&ip) {
        format!(
            "internet host address {ip} must lie inside the documentation range {DOCUMENTATION_V6}"
        )
    } else if VPC_BLOCKS_V6.contains(&ip) {
        format!(
            "internet host address {ip} is inside {VPC_BLOCKS_V6}, where the lab takes VPCs' IPv6 \
             blocks from: pick an address like 2001:db8:ffff::10"
        )
    } else if let Some(other) = ips.get(&ip) {
        format!("internet host address {ip} is already the address of {other}")
    } else {
        ips.insert(ip, host.to_string());
        return Some(ip);
    };
    ctx.error(at, msg);
    None
}

/// A DNS name: dot-separated labels of letters, digits and hyphens, unique in the lab.
fn dns_name(ctx: &mut Ctx, at: &At<String>, names: &mut HashSet<String>) {
    let name = at.value.to_ascii_lowercase();
    let valid = name.contains('.')
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !valid {
        let msg = format!(
            "invalid DNS name `{}`: expected a name like example.com",
            at.value
        );
        ctx.error(at, msg);
    } else if !names.insert(name) {
        ctx.error(at, format!("DNS name `{}` is given to two hosts", at.value));
    }
}

/// Hands out public addresses from the pool, lowest first, skipping the first ten of a pool
/// large enough (a learner reads 203.0.113.10 more easily as "a host" than 203.0.113.1).
pub(super) struct Pool {
    next: u32,
    last: u32,
}

impl Pool {
    pub(super) fn new(net: Ipv4Net) -> Pool {
        let skip = if net.prefix_len() <= 27 { 10 } else { 1 };
        Pool {
            next: u32::from(net.network()) + skip,
            last: u32::from(net.broadcast()) - 1,
        }
    }

    pub(super) fn take(&mut self) -> Option<Ipv4Addr> {
        (self.next <= self.last).then(|| {
            self.next += 1;
            Ipv4Addr::from(self.next - 1)
        })
    }
}

/// After instances: public IPs of instances, then NAT gateways (interface and Elastic IP).
pub(super) fn public_addresses(ctx: &mut Ctx, vpcs: &[VpcRaw]) {
    let mut pool = Pool::new(ctx.lab.internet.public_pool);
    for v in vpcs {
        for i in &v.instances {
            let Some(Some(id)) = ctx.host_ids.get(&i.name.value).copied() else {
                continue;
            };
            let instance = &ctx.lab.instances[id];
            let (vpc, subnet) = (instance.vpc, instance.subnet);
            let wanted = match &i.public_ip {
                Some(p) => match p.value.as_str() {
                    "true" => Some(false),
                    "eip" => Some(true),
                    _ => None,
                },
                None => ctx.lab.subnets[subnet]
                    .map_public_ip_on_launch
                    .then_some(false),
            };
            let Some(elastic) = wanted else { continue };
            if !ctx.lab.vpcs[vpc].internet_gateway {
                let msg = format!(
                    "instance {} gets a public IP, but vpc {} has no internet gateway: \
                     set `internet_gateway: true` on the VPC (AWS refuses a public IP without one)",
                    i.name.value, ctx.lab.vpcs[vpc].name
                );
                let at = i.public_ip.as_ref().map_or(i.name.pos, |p| p.pos);
                ctx.errs.at(at, &i.name.path, msg);
                continue;
            }
            match pool.take() {
                Some(addr) => ctx.lab.instances[id].public_ip = Some(PublicIp { addr, elastic }),
                None => exhausted(ctx, &i.name),
            }
        }
    }
    nat_gateways(ctx, vpcs, &mut pool);
}

fn exhausted(ctx: &mut Ctx, at: &At<String>) {
    let msg = format!(
        "AddressLimitExceeded: the public pool {} has no address left for {}",
        ctx.lab.internet.public_pool, at.value
    );
    ctx.error(at, msg);
}

fn nat_gateways(ctx: &mut Ctx, vpcs: &[VpcRaw], pool: &mut Pool) {
    let mut taken: HashSet<Ipv4Addr> = ctx.lab.instances.iter().map(|i| i.private_ip).collect();
    for (vpc, v) in vpcs.iter().enumerate() {
        for g in &v.nat_gateways {
            let Some(Some((_, id))) = ctx.nat_ids.get(&g.name.value).copied() else {
                continue;
            };
            let Some(s) = &g.subnet else { continue };
            let Some(subnet) = ctx.subnet_of(vpc, s) else {
                continue;
            };
            if !ctx.lab.vpcs[vpc].internet_gateway {
                let msg = format!(
                    "a public NAT gateway needs an internet gateway: set `internet_gateway: true` on vpc {}",
                    ctx.vpc_name(vpc)
                );
                ctx.error(&g.name, msg);
                continue;
            }
            let cidr = ctx.lab.subnets[subnet].cidr;
            let private_ip = first_free(cidr, |ip| taken.contains(&ip));
            let Some(private_ip) = private_ip else {
                let msg = format!(
                    "InsufficientFreeAddressesInSubnet: subnet {} ({cidr}) has no free address left for NAT gateway {}",
                    s.value, g.name.value
                );
                ctx.error(&g.name, msg);
                continue;
            };
            taken.insert(private_ip);
            let Some(public_ip) = pool.take() else {
                exhausted(ctx, &g.name);
                continue;
            };
            // Ids were given in this same order; a gap means an error was reported already.
            let _ = id;
            ctx.lab.nat_gateways.push(NatGateway {
                name: g.name.value.clone(),
                vpc,
                subnet,
                private_ip,
                public_ip,
            });
        }
    }
}
