//! Scenario layer: what scalar values mean: names, CIDRs, addresses, protocols, ports,
//! services and route targets. Each parser returns a message naming the bad value and the
//! expected form; the caller adds the place.

use ipnet::{IpNet, Ipv4Net};
use std::net::{Ipv4Addr, Ipv6Addr};

use super::lab::{PortRange, Protocol, Service};

/// Why an IPv6 block is refused where AWS takes IPv4 only.
pub(super) const IPV6_ASSIGNED: &str =
    "VPC and subnet blocks are IPv4; AWS assigns the IPv6 /56 and /64s (set `ipv6: true`)";

/// Lowercase letters, digits and hyphens only: what goes into namespace and host names.
fn name_chars(name: &str) -> bool {
    name.chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// `[a-z0-9][a-z0-9-]*`, at most 24 characters.
pub(super) fn check_name(kind: &str, name: &str) -> Result<(), String> {
    let ok = name.len() <= 24 && !name.starts_with('-') && !name.is_empty() && name_chars(name);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid {kind} name `{name}`: expected [a-z0-9][a-z0-9-]*, at most 24 characters"
        ))
    }
}

/// `[a-z0-9-]{1,12}`: it goes into namespace names.
pub(super) fn check_lab_name(name: &str) -> Result<(), String> {
    let ok = (1..=12).contains(&name.len()) && name_chars(name);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid lab name `{name}`: expected [a-z0-9-]{{1,12}}"
        ))
    }
}

/// `us-east-1`, `eu-west-3`, `us-gov-west-1`.
pub(super) fn check_region(region: &str) -> Result<(), String> {
    let parts: Vec<&str> = region.split('-').collect();
    let ok = parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok();
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid region `{region}`: expected a region like us-east-1"
        ))
    }
}

pub(super) fn check_account(account: &str) -> Result<(), String> {
    if account.len() == 12 && account.chars().all(|c| c.is_ascii_digit()) {
        Ok(())
    } else {
        Err(format!(
            "invalid account `{account}`: expected 12 digits, quoted, like \"111111111111\""
        ))
    }
}

/// A canonical IPv4 CIDR: `10.0.0.1/16` is refused with its canonical form.
pub(super) fn parse_cidr(text: &str) -> Result<Ipv4Net, String> {
    if text.contains(':') {
        return Err(format!("`{text}` is an IPv6 CIDR: {IPV6_ASSIGNED}"));
    }
    let net: Ipv4Net = text
        .parse()
        .map_err(|_| format!("invalid CIDR `{text}`: expected an IPv4 CIDR like 10.0.0.0/16"))?;
    if net.trunc() != net {
        return Err(format!(
            "CIDR `{text}` has host bits set: expected {}",
            net.trunc()
        ));
    }
    Ok(net)
}

/// A canonical IPv4 or IPv6 CIDR, for rules and routes: `::/0` and `0.0.0.0/0` are distinct
/// (aws-rules.md §1.3: the two families never match each other).
pub(super) fn parse_net(text: &str) -> Result<IpNet, String> {
    let net: IpNet = text.parse().map_err(|_| {
        format!("invalid CIDR `{text}`: expected an IPv4 CIDR like 10.0.0.0/16 or an IPv6 CIDR like ::/0")
    })?;
    if net.trunc() != net {
        return Err(format!(
            "CIDR `{text}` has host bits set: expected {}",
            net.trunc()
        ));
    }
    Ok(net)
}

/// A public IPv6 address of an internet host.
pub(super) fn parse_ipv6(text: &str) -> Result<Ipv6Addr, String> {
    text.parse().map_err(|_| {
        format!("invalid IPv6 address `{text}`: expected an address like 2001:db8:ffff::10")
    })
}

/// A canonical IPv4 CIDR with a prefix length in `min..=max`.
pub(super) fn parse_sized_cidr(text: &str, min: u8, max: u8) -> Result<Ipv4Net, String> {
    let net = parse_cidr(text)?;
    if !(min..=max).contains(&net.prefix_len()) {
        return Err(format!(
            "CIDR {net} is a /{}: expected a prefix length from /{min} to /{max}",
            net.prefix_len()
        ));
    }
    Ok(net)
}

pub(super) fn parse_ipv4(text: &str) -> Result<Ipv4Addr, String> {
    if text.contains(':') {
        return Err(format!(
            "`{text}` is an IPv6 address: expected an IPv4 address here; IPv6 addresses are \
             assigned from the subnet's /64 (set `ipv6: true`)"
        ));
    }
    text.parse()
        .map_err(|_| format!("invalid IPv4 address `{text}`: expected an address like 10.0.1.10"))
}

pub(super) fn parse_protocol(text: &str) -> Result<Protocol, String> {
    match text {
        "tcp" => Ok(Protocol::TCP),
        "udp" => Ok(Protocol::UDP),
        "icmp" => Ok(Protocol::ICMP),
        "icmpv6" => Ok(Protocol::Number(58)),
        "all" | "-1" => Ok(Protocol::All),
        _ => text.parse::<u8>().map(Protocol::Number).map_err(|_| {
            format!(
                "invalid protocol `{text}`: expected tcp, udp, icmp, icmpv6, all or a number 0-255"
            )
        }),
    }
}

pub(super) fn parse_ports(text: &str) -> Result<PortRange, String> {
    let bad =
        || format!("invalid ports `{text}`: expected a port (80), a range (1024-65535) or all");
    if text == "all" {
        return Ok(PortRange::ALL);
    }
    let (first, last) = match text.split_once('-') {
        Some((a, b)) => (a.trim().parse::<u16>(), b.trim().parse::<u16>()),
        None => (text.parse::<u16>(), text.parse::<u16>()),
    };
    match (first, last) {
        (Ok(first), Ok(last)) if first <= last => Ok(PortRange { first, last }),
        _ => Err(bad()),
    }
}

fn parse_port(text: &str) -> Option<u16> {
    text.parse::<u16>().ok().filter(|p| *p > 0)
}

/// `http:PORT`, `tcp:PORT`, `udp:PORT`, `icmp`, or `ssh` (a real sshd on 22) / `ssh:PORT`.
pub(super) fn parse_service(text: &str) -> Result<Service, String> {
    let bad = || {
        format!(
            "invalid service `{text}`: expected http:PORT, tcp:PORT, udp:PORT, ssh[:PORT] or icmp"
        )
    };
    match text {
        "icmp" => return Ok(Service::Icmp),
        "ssh" => return Ok(Service::Ssh(22)),
        _ => {}
    }
    let (kind, port) = text.split_once(':').ok_or_else(bad)?;
    let port = parse_port(port).ok_or_else(bad)?;
    match kind {
        "http" => Ok(Service::Http(port)),
        "tcp" => Ok(Service::Tcp(port)),
        "udp" => Ok(Service::Udp(port)),
        "ssh" => Ok(Service::Ssh(port)),
        _ => Err(bad()),
    }
}

/// A route target as written, before the peering name is looked up.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum TargetText<'a> {
    Blackhole,
    Peering(&'a str),
    InternetGateway(&'a str),
    EgressOnlyInternetGateway(&'a str),
    NatGateway(&'a str),
    Instance(&'a str),
    VpnGateway(&'a str),
    TransitGateway(&'a str),
}

const TARGET_KINDS: &str =
    "blackhole, pcx:NAME, igw:NAME, eigw:NAME, nat:NAME, tgw:NAME, vgw:NAME, vpce:NAME, eni:HOST";

pub(super) fn parse_target(text: &str) -> Result<TargetText<'_>, String> {
    if text == "blackhole" {
        return Ok(TargetText::Blackhole);
    }
    if text == "local" {
        return Err(
            "the `local` route is implicit (one per VPC CIDR) and cannot be written".into(),
        );
    }
    match text.split_once(':') {
        Some(("pcx", name)) if !name.is_empty() => Ok(TargetText::Peering(name)),
        Some(("igw", name)) if !name.is_empty() => Ok(TargetText::InternetGateway(name)),
        Some(("eigw", name)) if !name.is_empty() => Ok(TargetText::EgressOnlyInternetGateway(name)),
        Some(("nat", name)) if !name.is_empty() => Ok(TargetText::NatGateway(name)),
        Some(("eni", name)) if !name.is_empty() => Ok(TargetText::Instance(name)),
        Some(("vgw", name)) if !name.is_empty() => Ok(TargetText::VpnGateway(name)),
        Some(("vpce", _)) => Err(format!(
            "route target `{text}`: a gateway endpoint adds its routes itself, to the tables its `route_tables:` names"
        )),
        Some(("tgw", name)) if !name.is_empty() => Ok(TargetText::TransitGateway(name)),
        _ => Err(format!(
            "invalid route target `{text}`: expected one of {TARGET_KINDS}"
        )),
    }
}

/// The lowest address of `subnet` that AWS does not reserve and `taken` does not hold.
pub(super) fn first_free(subnet: Ipv4Net, taken: impl Fn(Ipv4Addr) -> bool) -> Option<Ipv4Addr> {
    (u32::from(subnet.network())..=u32::from(subnet.broadcast()))
        .map(Ipv4Addr::from)
        .find(|ip| !is_reserved(subnet, *ip) && !taken(*ip))
}

/// The five addresses AWS keeps in every subnet: network, router, DNS, future use, broadcast.
pub(super) fn is_reserved(subnet: Ipv4Net, ip: Ipv4Addr) -> bool {
    let offset = u32::from(ip).wrapping_sub(u32::from(subnet.network()));
    offset <= 3 || ip == subnet.broadcast()
}

/// Whether two networks share any address.
pub(super) fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}
