//! The edge of a VPC: the internet gateway's 1:1 NAT both ways (IPv6 untranslated), the
//! egress-only internet gateway (IPv6 out, replies in), the internet itself, NAT gateways
//! (source NAT, replies only), gateway endpoints (untranslated, replies by flow) and services
//! answering from interface endpoints.

use std::net::IpAddr;

use crate::scenario::{
    EndpointId, HostRef, InstanceId, InternetHostId, NatGatewayId, SubnetId, VpcId,
};

use super::super::compiled::PublicOwner;
use super::super::eni::EniOwner;
use super::super::nat::Outbound;
use super::super::{proto, Direction, DropCode, Hop, Outcome, Trace};
use super::{Ctx, Metered};

impl<T: Trace> Ctx<'_, T> {
    /// Through gateway endpoint `endpoint` straight to its service, the source unchanged (the
    /// service sees the private address). No security group, no translation; the flow is
    /// remembered so the service's reply finds its way back into this VPC.
    pub(super) fn gateway_endpoint(&mut self, endpoint: EndpointId) -> Outcome {
        let lab = self.lab;
        if !self.cross_gateway() {
            return Outcome::Drop(DropCode::NoPath);
        }
        if self.key.protocol != proto::TCP && !self.key.is_echo_request() {
            return Outcome::Drop(DropCode::VpceGatewayProtocolRestriction);
        }
        self.trace.hop(Hop::GatewayEndpoint {
            endpoint,
            direction: Direction::Outbound,
        });
        self.metered = Some(Metered::GatewayEndpoint(endpoint));
        let service = &lab.lab.services[lab.lab.endpoints[endpoint].service];
        self.flows
            .track(lab.endpoint_tag(endpoint), &self.key, self.now);
        self.trace.hop(Hop::ToInternet(service.host));
        Outcome::Deliver(lab.lab.internet_host_id(service.host))
    }

    /// A packet from internet host `n`: a service answering from an interface endpoint's
    /// address leaves by that interface, one answering through a gateway endpoint goes back
    /// into the endpoint's VPC; everything else crosses the internet.
    pub(super) fn send_from_internet(&mut self, n: InternetHostId) -> Outcome {
        let lab = self.lab;
        if let Some(&(_, eni)) = lab
            .enis_of_host(n)
            .iter()
            .find(|(ip, _)| IpAddr::V4(*ip) == self.key.src)
        {
            // An endpoint answers; it never opens a connection into the VPC.
            if !self.flows.is_tracked(lab.eni_tag(eni), &self.key, self.now) {
                return Outcome::Drop(DropCode::VpceIntraVpcTraffic);
            }
            if let EniOwner::Endpoint(e) = lab.eni(eni).owner {
                self.metered = Some(Metered::InterfaceEndpoint(e));
            }
            return self.send_from_eni(eni);
        }
        for &endpoint in lab.endpoints_of_host(n) {
            if self
                .flows
                .refresh(lab.endpoint_tag(endpoint), &self.key, self.now)
            {
                self.trace.hop(Hop::GatewayEndpoint {
                    endpoint,
                    direction: Direction::Inbound,
                });
                self.metered = Some(Metered::GatewayEndpoint(endpoint));
                return self.enter_vpc(lab.lab.endpoints[endpoint].vpc);
            }
        }
        self.internet()
    }

    /// Out through the internet gateway of `vpc`: the source becomes its public IP. IPv6
    /// goes out as it is, from an address of the VPC (globally unique: no translation).
    pub(super) fn igw_egress(&mut self, vpc: VpcId) -> Outcome {
        if !self.cross_gateway() {
            return Outcome::Drop(DropCode::NoPath);
        }
        if self.key.is_ipv6() {
            if !self.lab.vpc_contains(vpc, self.key.src) {
                return Outcome::Drop(DropCode::IgwPublicIpAssociationForEgress);
            }
            self.trace.hop(Hop::InternetGateway {
                vpc,
                direction: Direction::Outbound,
                from: self.key.src,
                to: self.key.src,
            });
            return self.internet();
        }
        let Some(public) = self.lab.public_of(vpc, self.key.src) else {
            return Outcome::Drop(DropCode::IgwPublicIpAssociationForEgress);
        };
        if is_rfc1918(self.key.dst) {
            return Outcome::Drop(DropCode::IgwDestinationAddressNotInRfc1918Egress);
        }
        self.trace.hop(Hop::InternetGateway {
            vpc,
            direction: Direction::Outbound,
            from: self.key.src,
            to: public.into(),
        });
        self.key.src = public.into();
        self.internet()
    }

    /// Out through the egress-only internet gateway of `vpc` (IPv6 only, no security group,
    /// untranslated): it remembers the flow, so that the replies, and only they, come back.
    pub(super) fn eigw_egress(&mut self, vpc: VpcId) -> Outcome {
        if !self.cross_gateway() {
            return Outcome::Drop(DropCode::NoPath);
        }
        if !self.key.is_ipv6() || !self.lab.vpc_contains(vpc, self.key.src) {
            return Outcome::Drop(DropCode::UnsupportedPacket);
        }
        self.trace.hop(Hop::EgressOnlyInternetGateway {
            vpc,
            direction: Direction::Outbound,
        });
        let tag = self.lab.egress_only_tag(vpc);
        // A flow always tracked (aws-rules.md §3.4); a full table only costs the replies.
        if !self.flows.refresh(tag, &self.key, self.now) {
            self.flows.track(tag, &self.key, self.now);
        }
        self.internet()
    }

    /// An IPv6 packet from the internet to an address of `vpc`'s block: a reply to a flow
    /// its egress-only gateway let out comes in through it; anything else needs an internet
    /// gateway. Either way the subnet's NACL and the interface's groups decide next.
    fn ipv6_ingress(&mut self, vpc: VpcId) -> Outcome {
        let lab = self.lab;
        if !self.cross_gateway() {
            return Outcome::Drop(DropCode::NoPath);
        }
        let v = &lab.lab.vpcs[vpc];
        let reply = v.egress_only_internet_gateway
            && self
                .flows
                .refresh(lab.egress_only_tag(vpc), &self.key, self.now);
        if reply {
            self.trace.hop(Hop::EgressOnlyInternetGateway {
                vpc,
                direction: Direction::Inbound,
            });
        } else if v.internet_gateway {
            self.trace.hop(Hop::InternetGateway {
                vpc,
                direction: Direction::Inbound,
                from: self.key.dst,
                to: self.key.dst,
            });
        } else if v.egress_only_internet_gateway {
            return Outcome::Drop(DropCode::EigwNoInboundInitiation);
        } else {
            return Outcome::Drop(DropCode::NoRouteToDestination);
        }
        self.enter_vpc(vpc)
    }

    /// The internet: an internet host, or a public IP of the lab behind its internet gateway.
    pub(super) fn internet(&mut self) -> Outcome {
        let lab = self.lab;
        if let Some(host) = lab.internet_host_at(self.key.dst) {
            if let HostRef::Internet(n, _) = lab.lab.host(host) {
                self.trace.hop(Hop::ToInternet(n));
            }
            return Outcome::Deliver(host);
        }
        if let Some(vpc) = lab.vpc_of_ipv6(self.key.dst) {
            return self.ipv6_ingress(vpc);
        }
        match lab.public_owner(self.key.dst) {
            Some(PublicOwner::Instance(i)) => self.igw_ingress(lab.lab.instances[i].vpc, i),
            Some(PublicOwner::NatGateway(g)) => self.nat_inbound(g),
            None if matches!(self.key.dst, IpAddr::V4(a) if lab.lab.internet.public_pool.contains(&a)) => {
                Outcome::Drop(DropCode::IgwPrivateIpAssociationForIngress)
            }
            None => Outcome::Drop(DropCode::NoRouteToDestination),
        }
    }

    /// In through the internet gateway of `vpc` to instance `target`: the destination becomes
    /// its private address; then its subnet's NACL and its security groups.
    pub(super) fn igw_ingress(&mut self, vpc: VpcId, target: InstanceId) -> Outcome {
        if !self.cross_gateway() {
            return Outcome::Drop(DropCode::NoPath);
        }
        let private = self.lab.eni(target).ip;
        self.trace.hop(Hop::InternetGateway {
            vpc,
            direction: Direction::Inbound,
            from: self.key.dst,
            to: private.into(),
        });
        self.key.dst = private.into();
        self.enter_subnet(target)
    }

    /// Into NAT gateway `gateway` from a subnet of its VPC: its subnet's NACL inbound (unless
    /// the packet comes from that subnet), the source translated to the gateway's address and a
    /// port of its own, then out by the gateway subnet's route table.
    pub(super) fn nat_outbound(&mut self, from_subnet: SubnetId, gateway: NatGatewayId) -> Outcome {
        let lab = self.lab;
        let g = &lab.lab.nat_gateways[gateway];
        if !self.cross_gateway() {
            return Outcome::Drop(DropCode::NoPath);
        }
        if !lab.vpc_contains(g.vpc, self.key.src) {
            return Outcome::Drop(DropCode::NgwRequiresSourceInVpc);
        }
        if from_subnet != g.subnet {
            if !self.network_acl(g.subnet, Direction::Inbound) {
                return Outcome::Drop(DropCode::SubnetAclRestriction);
            }
            self.trace.hop(Hop::EnterSubnet(g.subnet));
        }
        if self.key.is_ipv6() || !matches!(self.key.protocol, proto::TCP | proto::UDP | proto::ICMP)
        {
            // A NAT gateway carries TCP, UDP and ICMP only (aws-rules.md §3.2).
            return Outcome::Drop(DropCode::UnsupportedPacket);
        }
        let tag = lab.nat_tag(gateway);
        let port = match self.flows.nat().outbound(tag, &self.key, self.now) {
            Outbound::Mapped(port) => port,
            Outbound::Expired => return Outcome::Drop(DropCode::NgwIdleTimeout),
            Outbound::Exhausted => return Outcome::Drop(DropCode::NgwErrorPortAllocation),
        };
        self.metered = Some(Metered::NatGateway(gateway));
        let before = (self.key.src, self.key.src_port);
        self.key.src = g.private_ip.into();
        self.key.src_port = port;
        if self.key.protocol == proto::ICMP {
            // The echo identifier is both "ports".
            self.key.dst_port = port;
        }
        self.trace.hop(Hop::NatGateway {
            gateway,
            direction: Direction::Outbound,
            from: before,
            to: (g.private_ip.into(), port),
        });
        self.leave_subnet(g.subnet)
    }

    /// A packet from the internet to a NAT gateway's Elastic IP: the internet gateway maps it
    /// to the gateway's private address, its subnet's NACL lets it in, and it passes only as a
    /// reply to a translated inside flow, whose address and port it gets back.
    pub(super) fn nat_inbound(&mut self, gateway: NatGatewayId) -> Outcome {
        let lab = self.lab;
        let g = &lab.lab.nat_gateways[gateway];
        if !self.cross_gateway() {
            return Outcome::Drop(DropCode::NoPath);
        }
        self.trace.hop(Hop::InternetGateway {
            vpc: g.vpc,
            direction: Direction::Inbound,
            from: self.key.dst,
            to: g.private_ip.into(),
        });
        self.key.dst = g.private_ip.into();
        if !self.network_acl(g.subnet, Direction::Inbound) {
            return Outcome::Drop(DropCode::SubnetAclRestriction);
        }
        self.trace.hop(Hop::EnterSubnet(g.subnet));
        let Some((inside, port)) =
            self.flows
                .nat()
                .inbound(lab.nat_tag(gateway), &self.key, self.now)
        else {
            return Outcome::Drop(DropCode::NgwNoInboundInitiation);
        };
        self.metered = Some(Metered::NatGateway(gateway));
        let before = (self.key.dst, self.key.dst_port);
        self.key.dst = inside;
        self.key.dst_port = port;
        if self.key.protocol == proto::ICMP {
            self.key.src_port = port;
        }
        self.trace.hop(Hop::NatGateway {
            gateway,
            direction: Direction::Inbound,
            from: before,
            to: (inside, port),
        });
        self.leave_subnet(g.subnet)
    }
}

/// RFC 1918 private space, which an internet gateway never routes to.
fn is_rfc1918(addr: IpAddr) -> bool {
    matches!(addr, IpAddr::V4(a) if a.is_private())
}
