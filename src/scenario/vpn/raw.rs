//! Scenario layer: sites and Site-to-Site VPN as written (`FooRaw`), every value with its
//! place in the file; `decode/vpn.rs` fills them, this module's resolution reads them.

use super::super::yaml::At;

/// `sites:`, `vpn_gateways:` and `vpn_connections:`.
#[derive(Default)]
pub(in crate::scenario) struct VpnRaw {
    pub sites: Vec<SiteRaw>,
    pub gateways: Vec<VpnGatewayRaw>,
    pub connections: Vec<VpnConnectionRaw>,
}

pub(in crate::scenario) struct SiteRaw {
    pub name: At<String>,
    pub cidr: Option<At<String>>,
    /// None when `customer_gateway` is missing or broken (already reported).
    pub customer_gateway: Option<CustomerGatewayRaw>,
    pub hosts: Vec<SiteHostRaw>,
}

pub(in crate::scenario) struct CustomerGatewayRaw {
    /// The router sits behind a NAT device that remaps its source ports.
    pub behind_nat: Option<At<bool>>,
    pub public_ip: Option<At<String>>,
    pub asn: Option<At<i64>>,
}

pub(in crate::scenario) struct SiteHostRaw {
    pub name: At<String>,
    pub ip: Option<At<String>>,
    pub services: Vec<At<String>>,
    pub run: Option<String>,
}

pub(in crate::scenario) struct VpnGatewayRaw {
    pub name: At<String>,
    pub vpc: Option<At<String>>,
    pub asn: Option<At<i64>>,
}

pub(in crate::scenario) struct VpnConnectionRaw {
    pub name: At<String>,
    pub site: Option<At<String>>,
    /// `vgw:NAME` (or `tgw:NAME`, not supported yet).
    pub gateway: Option<At<String>>,
    /// `static` or `bgp`.
    pub routing: Option<At<String>>,
    /// None: the key is absent.
    pub static_routes: Option<At<Vec<At<String>>>>,
}
