//! Site-to-Site VPN in the decision: out of a VPC through its virtual private gateway into the
//! active tunnel of the connection that leads to the destination's site, and in from a tunnel
//! (only from the site's own prefixes) to the VPC, or on to another site of the same gateway
//! (VPN CloudHub). In the model, a packet from an on-premises host takes the way its site's
//! router gives it: into the tunnel toward the VPC that holds the destination, else out to the
//! internet as it is.

use std::net::IpAddr;

use crate::scenario::{HostId, VpnConnectionId, VpnGatewayId, VpnRouting};

use super::super::compiled::RouteRef;
use super::super::tunnels::TunnelRef;
use super::super::{Direction, DropCode, Hop, Outcome, Trace};
use super::Ctx;

impl<T: Trace> Ctx<'_, T> {
    /// Out through virtual private gateway `gateway` by route `route`: the connection whose
    /// static route matched (or, for a route written to `vgw:NAME`, the one whose site holds
    /// the destination), its active tunnel, the site.
    pub(super) fn vgw_egress(&mut self, gateway: VpnGatewayId, route: RouteRef) -> Outcome {
        if !self.cross_gateway() {
            return Outcome::Drop(DropCode::NoPath);
        }
        let connection = match route {
            RouteRef::Propagated { connection, .. } => Some(connection),
            _ => self.connection_toward(gateway, self.key.dst),
        };
        match connection {
            // A VGW's tunnels carry IPv4 (aws-rules.md §11).
            Some(connection) if !self.key.is_ipv6() => self.send_into_tunnel(gateway, connection),
            _ => Outcome::Drop(DropCode::NoRouteToDestination),
        }
    }

    /// Into the active tunnel of `connection` and through the site's router to the host.
    fn send_into_tunnel(&mut self, gateway: VpnGatewayId, connection: VpnConnectionId) -> Outcome {
        let lab = self.lab;
        let Some(tunnel) = lab.tunnels.active(connection) else {
            return Outcome::Drop(DropCode::BadStateVpn);
        };
        self.trace.hop(Hop::VpnGateway {
            gateway,
            connection,
            tunnel: tunnel.index,
            direction: Direction::Outbound,
        });
        let site = &lab.lab.sites[lab.lab.vpn_connections[connection].site];
        let to = match lab.site_host_at(self.key.dst) {
            Some(host) if site.hosts.iter().any(|h| IpAddr::V4(h.ip) == self.key.dst) => host,
            _ if self.key.dst == IpAddr::V4(site.lan_ip) => {
                lab.lab.internet_host_id(site.customer_gateway.router)
            }
            // Nobody on the site's network holds the address.
            _ => return Outcome::Drop(DropCode::NoPossibleDestination),
        };
        self.tunnel = Some(tunnel);
        self.trace.hop(Hop::ToSite(to));
        Outcome::Deliver(to)
    }

    /// The connection of `gateway` that leads to `dst`: one whose static routes, or whose
    /// site's network, hold it.
    fn connection_toward(&self, gateway: VpnGatewayId, dst: IpAddr) -> Option<VpnConnectionId> {
        let lab = self.lab;
        (0..lab.lab.vpn_connections.len())
            .find(|&c| lab.lab.vpn_connections[c].gateway == gateway && lab.site_side(c, dst))
    }

    /// A packet out of `tunnel` at its AWS end: from one of the site's prefixes, into the
    /// gateway's VPC (its subnet's NACL and the interface's groups decide next), or on to
    /// another site of the same gateway (CloudHub).
    pub(super) fn out_of_tunnel(&mut self, tunnel: TunnelRef) -> Outcome {
        let lab = self.lab;
        let c = &lab.lab.vpn_connections[tunnel.connection];
        let gateway = c.gateway;
        self.trace.hop(Hop::VpnGateway {
            gateway,
            connection: tunnel.connection,
            tunnel: tunnel.index,
            direction: Direction::Inbound,
        });
        if !self.cross_gateway() {
            return Outcome::Drop(DropCode::NoPath);
        }
        if !lab.site_side(tunnel.connection, self.key.src) {
            return Outcome::Drop(DropCode::VgwPrivateIpAssociationForIngress);
        }
        let vpc = lab.lab.vpn_gateways[gateway].vpc;
        if lab.vpc_contains(vpc, self.key.dst) {
            return self.enter_vpc(vpc);
        }
        match self.connection_toward(gateway, self.key.dst) {
            Some(other) if other != tunnel.connection => self.send_into_tunnel(gateway, other),
            _ => Outcome::Drop(DropCode::NoRouteToDestination),
        }
    }

    /// True when the site's router sends the packet into `connection`'s tunnels: its gateway's
    /// VPC holds the destination, or (with BGP) another site of the same gateway announced it.
    fn routed_into(&self, connection: VpnConnectionId) -> bool {
        let lab = self.lab;
        let c = &lab.lab.vpn_connections[connection];
        if lab.vpc_contains(lab.lab.vpn_gateways[c.gateway].vpc, self.key.dst) {
            return true;
        }
        c.routing == VpnRouting::Bgp
            && (0..lab.lab.vpn_connections.len()).any(|other| {
                let o = &lab.lab.vpn_connections[other];
                other != connection
                    && o.gateway == c.gateway
                    && o.routing == VpnRouting::Bgp
                    && lab
                        .learned(other)
                        .iter()
                        .any(|r| matches!(self.key.dst, IpAddr::V4(a) if r.prefix.contains(&a)))
            })
    }

    /// In the model: a packet an on-premises host sends. Its site's router sends it into the
    /// active tunnel of the connection whose gateway's VPC holds the destination (its routes
    /// to the VPC go through the tunnels), and anything else out to the internet as it is.
    pub(super) fn send_from_site(&mut self, host: HostId, site: usize) -> Outcome {
        let lab = self.lab;
        self.trace.hop(Hop::FromSite(host));
        let toward = (0..lab.lab.vpn_connections.len()).find(|&c| {
            let conn = &lab.lab.vpn_connections[c];
            conn.site == site && self.routed_into(c)
        });
        if let Some(connection) = toward {
            return match lab.tunnels.active(connection) {
                Some(tunnel) => self.out_of_tunnel(tunnel),
                None => Outcome::Drop(DropCode::BadStateVpn),
            };
        }
        let router = lab.lab.sites[site].customer_gateway.router;
        self.send_from_internet(router)
    }
}
