//! Scenario layer: the typed lab's on-premises sites and Site-to-Site VPN: sites with their
//! hosts and customer gateway, virtual private gateways (VGW) attached to VPCs, and VPN
//! connections of two tunnels each, with every address, port and key a tunnel end needs.
//!
//! Host ids: a site's router is an internet host of its own (on the customer gateway's public
//! IP, as an AWS service's host is), so the fabric gives it a port like any internet host;
//! the sites' hosts have no port on the fabric (they sit behind their router on a LAN) and
//! take the ids after every host that has one: `host_count()..all_host_count()`.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::{HostId, InternetHostId, Lab, Service, VpcId};

pub use super::wgkey::WgSecret;

pub type SiteId = usize;
pub type VpnGatewayId = usize;
pub type VpnConnectionId = usize;

/// An on-premises data centre: a router namespace (kernel forwarding) and hosts on one LAN.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    pub name: String,
    pub cidr: Ipv4Net,
    /// The router's address on the site's LAN (its bridge `br0`): the first address of
    /// `cidr`, every site host's default gateway.
    pub lan_ip: Ipv4Addr,
    pub customer_gateway: CustomerGateway,
    pub hosts: Vec<SiteHost>,
}

/// AWS's customer gateway resource, and the router that plays the device.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerGateway {
    /// The router's address on the internet (its `eth0`, a TUN into the fabric).
    pub public_ip: Ipv4Addr,
    /// BGP ASN; needed for `routing: bgp`.
    pub asn: Option<u32>,
    /// The router: internet host `router` (named `SITE-router`).
    pub router: InternetHostId,
    /// The router reaches the internet through a NAT device: what leaves it gets the public
    /// IP and another source port, so the AWS end answers the address and port it sees
    /// (WireGuard's NAT traversal), not the configured ones.
    pub behind_nat: bool,
}

/// A host of a site, on the site's LAN behind the router.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteHost {
    pub name: String,
    pub ip: Ipv4Addr,
    pub services: Vec<Service>,
    pub run: Option<String>,
}

/// A virtual private gateway: the AWS end of VPN connections, attached to one VPC.
#[derive(Debug, Clone, PartialEq)]
pub struct VpnGateway {
    pub name: String,
    pub vpc: VpcId,
    /// Amazon side ASN (default 64512).
    pub asn: u32,
}

/// How a VPN connection learns the site's prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VpnRouting {
    /// `static_routes` of the connection.
    Static,
    /// One eBGP session per tunnel, over its inside addresses.
    Bgp,
}

/// A Site-to-Site VPN connection between a site's customer gateway and a VGW.
#[derive(Debug, Clone, PartialEq)]
pub struct VpnConnection {
    pub name: String,
    pub site: SiteId,
    pub gateway: VpnGatewayId,
    pub routing: VpnRouting,
    /// Static routing: the prefixes the VGW sends into the tunnel (propagated to the route
    /// tables that propagate from the VGW). Empty with BGP.
    pub static_routes: Vec<Ipv4Net>,
    /// Always two, as in AWS; tunnel 1 is the active one (see `VpnTunnel::metric`).
    pub tunnels: [VpnTunnel; 2],
}

/// One tunnel of a VPN connection: WireGuard over UDP between the AWS outside address (in
/// the fabric) and the customer gateway's public IP (wireguard-go in the site's router).
#[derive(Debug, Clone, PartialEq)]
pub struct VpnTunnel {
    /// 1 or 2.
    pub number: u8,
    /// A /30 out of 169.254.0.0/16: AWS's end is its first host, the customer's the second.
    pub inside: Ipv4Net,
    /// AWS's outside address, from `internet.public_pool`.
    pub outside_ip: Ipv4Addr,
    /// The UDP port AWS's end answers on at `outside_ip`.
    pub aws_port: u16,
    /// The UDP port the customer's end listens on at the customer gateway's public IP.
    pub customer_port: u16,
    /// AWS's private key: the fabric's end of the tunnel.
    pub aws_key: WgSecret,
    /// The customer's private key: in the exported configuration.
    pub customer_key: WgSecret,
    /// The customer side's WireGuard interface in the router (also the exported file's stem,
    /// as wg-quick names the interface after its file). Unique on the machine, since
    /// wireguard-go's control sockets share `/var/run/wireguard/` across namespaces.
    pub interface: String,
}

impl VpnTunnel {
    /// AWS's inside address (`.1` of the /30).
    pub fn aws_inside(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.inside.network()) + 1)
    }

    /// The customer gateway's inside address (`.2` of the /30).
    pub fn customer_inside(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.inside.network()) + 2)
    }

    /// The metric of the site's routes through this tunnel: tunnel 1 is active, tunnel 2
    /// the standby that a route with a higher metric keeps ready.
    pub fn metric(&self) -> u32 {
        100 * u32::from(self.number)
    }
}

impl Lab {
    /// Hosts with a namespace: the fabric's hosts, then the sites' hosts.
    pub fn all_host_count(&self) -> usize {
        self.host_count() + self.sites.iter().map(|s| s.hosts.len()).sum::<usize>()
    }

    /// Host `n` of site `site` as a `HostId`.
    pub fn site_host_id(&self, site: SiteId, n: usize) -> HostId {
        self.host_count()
            + self.sites[..site]
                .iter()
                .map(|s| s.hosts.len())
                .sum::<usize>()
            + n
    }

    /// The site host `id` is, if it is one.
    pub fn site_host(&self, id: HostId) -> Option<(SiteId, &SiteHost)> {
        let mut n = id.checked_sub(self.host_count())?;
        for (site, s) in self.sites.iter().enumerate() {
            match s.hosts.get(n) {
                Some(h) => return Some((site, h)),
                None => n -= s.hosts.len(),
            }
        }
        None
    }

    /// Any host's name, site hosts included (`host()` knows the fabric's hosts only).
    pub fn host_name(&self, id: HostId) -> &str {
        match self.site_host(id) {
            Some((_, h)) => &h.name,
            None => self.host(id).name(),
        }
    }

    /// Any host's own address, site hosts included.
    pub fn host_ip(&self, id: HostId) -> Ipv4Addr {
        match self.site_host(id) {
            Some((_, h)) => h.ip,
            None => self.host(id).ip(),
        }
    }

    /// Any host's IPv6 address, if it has one (site hosts are IPv4-only).
    pub fn host_ipv6(&self, id: HostId) -> Option<std::net::Ipv6Addr> {
        match self.site_host(id) {
            Some(_) => None,
            None => self.host(id).ipv6(),
        }
    }

    /// The address any host sends from toward `dst`: its IPv4, or its IPv6 toward an IPv6
    /// address (None when it has none: its kernel has no route there).
    pub fn host_source_for(&self, id: HostId, dst: std::net::IpAddr) -> Option<std::net::IpAddr> {
        match dst {
            std::net::IpAddr::V4(_) => Some(self.host_ip(id).into()),
            std::net::IpAddr::V6(_) => self.host_ipv6(id).map(Into::into),
        }
    }

    pub fn site_host_by_name(&self, name: &str) -> Option<HostId> {
        (self.host_count()..self.all_host_count()).find(|&id| self.host_name(id) == name)
    }

    /// The site whose router is internet host `n`, if it is one.
    pub fn site_of_router(&self, n: InternetHostId) -> Option<SiteId> {
        self.sites
            .iter()
            .position(|s| s.customer_gateway.router == n)
    }

    /// The VPN connection named `name`, or a message naming the lab's connections.
    pub fn vpn_connection_by_name(&self, name: &str) -> Result<VpnConnectionId, String> {
        if let Some(id) = self.vpn_connections.iter().position(|c| c.name == name) {
            return Ok(id);
        }
        let names: Vec<&str> = self
            .vpn_connections
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        let names = if names.is_empty() {
            "(none)".to_string()
        } else {
            names.join(", ")
        };
        Err(format!(
            "lab {} has no VPN connection {name}; its VPN connections: {names}",
            self.name
        ))
    }

    /// The VGW attached to `vpc`, if any (at most one).
    pub fn vpn_gateway_of(&self, vpc: VpcId) -> Option<VpnGatewayId> {
        self.vpn_gateways.iter().position(|g| g.vpc == vpc)
    }
}
