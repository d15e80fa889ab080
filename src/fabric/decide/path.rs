//! The walk of a packet through a VPC: out of an interface (source/destination check, its
//! security groups), inside the subnet or out through the router (NACL, route table, target),
//! into the destination subnet (NACL) and interface (security groups, connection tracking).

use crate::scenario::{HostId, HostRef, SubnetId, VpcId};

use super::super::compiled::CompiledTarget;
use super::super::eni::{EniId, EniOwner};
use super::super::rules;
use super::super::{Direction, DropCode, Hop, Outcome, SgVerdict, Trace};
use super::{Ctx, Metered, MAX_GATEWAYS};

impl<T: Trace> Ctx<'_, T> {
    pub(super) fn from(&mut self, from: HostId) -> Outcome {
        if let Some((site, _)) = self.lab.lab.site_host(from) {
            return self.send_from_site(from, site);
        }
        match self.lab.lab.host(from) {
            HostRef::Instance(id, _) => self.send_from_eni(id),
            HostRef::Internet(n, _) => {
                self.trace.hop(Hop::FromInternet(n));
                self.send_from_internet(n)
            }
        }
    }

    /// Out of network interface `from` (an instance's, or an interface endpoint's answering
    /// for its service).
    pub(super) fn send_from_eni(&mut self, from: EniId) -> Outcome {
        let lab = self.lab;
        let source = lab.eni(from);
        self.trace.hop(Hop::SourceEni(from));
        if source.source_dest_check && !source.owns(self.key.src) {
            return Outcome::Drop(DropCode::EniSourceDestCheckRestriction);
        }
        if !self.mirror_copy && !self.security_groups(from, Direction::Outbound) {
            return Outcome::Drop(DropCode::EniSgRulesMismatch);
        }
        let subnet = &lab.lab.subnets[source.subnet];
        // Inside one subnet the frame goes straight to the neighbour: no route table, no NACL.
        if subnet.contains(self.key.dst) {
            if let Some(target) = lab.eni_at(source.vpc, self.key.dst) {
                if lab.eni(target).subnet == source.subnet {
                    self.trace.hop(Hop::SameSubnet(source.subnet));
                    return self.arrive(target);
                }
            }
        }
        self.leave_subnet(source.subnet)
    }

    /// Out of `subnet` through the VPC router: its NACL outbound, its route table, the target.
    pub(super) fn leave_subnet(&mut self, subnet_id: SubnetId) -> Outcome {
        let lab = self.lab;
        let subnet = &lab.lab.subnets[subnet_id];
        self.trace.hop(Hop::LeaveSubnet(subnet_id));
        if !self.network_acl(subnet_id, Direction::Outbound) {
            return Outcome::Drop(DropCode::SubnetAclRestriction);
        }
        let Some(route) = lab.lookup(subnet.route_table, self.key.dst) else {
            return Outcome::Drop(DropCode::NoRouteToDestination);
        };
        self.trace.hop(Hop::Route {
            table: subnet.route_table,
            route: route.route,
        });
        let vpc = subnet.vpc;
        match route.target {
            CompiledTarget::Blackhole => Outcome::Drop(DropCode::BadStateRoute),
            CompiledTarget::Local => self.enter_vpc(vpc),
            CompiledTarget::Peering(pcx) => {
                // The route was validated to belong to a peering of this VPC.
                let peer = lab.lab.peerings[pcx].peer_of(vpc).unwrap_or(vpc);
                if !lab.vpc_contains(vpc, self.key.src) || !lab.vpc_contains(peer, self.key.dst) {
                    return Outcome::Drop(DropCode::PcxRequiresAddressInVpcCidr);
                }
                self.trace.hop(Hop::Peering {
                    peering: pcx,
                    into: peer,
                });
                self.enter_vpc(peer)
            }
            CompiledTarget::InternetGateway => self.igw_egress(vpc),
            CompiledTarget::EgressOnlyInternetGateway => self.eigw_egress(vpc),
            CompiledTarget::NatGateway(gateway) => self.nat_outbound(subnet_id, gateway),
            CompiledTarget::GatewayEndpoint(endpoint) => self.gateway_endpoint(endpoint),
            CompiledTarget::Instance(eni) => self.route_to_appliance(subnet_id, eni),
            CompiledTarget::VpnGateway(gateway) => self.vgw_egress(gateway, route.route),
            CompiledTarget::TransitGateway(tgw) => self.tgw_forward(tgw, subnet_id),
        }
    }

    /// Counts a gateway crossed; false once the path has crossed too many to be anything but
    /// a loop.
    pub(super) fn cross_gateway(&mut self) -> bool {
        self.gateways += 1;
        self.gateways <= MAX_GATEWAYS
    }

    /// Delivery by the VPC router to the subnet that holds the destination.
    pub(super) fn enter_vpc(&mut self, vpc: VpcId) -> Outcome {
        let Some(target) = self.lab.eni_at(vpc, self.key.dst) else {
            return Outcome::Drop(DropCode::NoPossibleDestination);
        };
        self.enter_subnet(target)
    }

    /// Into the subnet of interface `target`: its NACL inbound, then the interface.
    pub(super) fn enter_subnet(&mut self, target: EniId) -> Outcome {
        let subnet: SubnetId = self.lab.eni(target).subnet;
        if !self.network_acl(subnet, Direction::Inbound) {
            return Outcome::Drop(DropCode::SubnetAclRestriction);
        }
        self.trace.hop(Hop::EnterSubnet(subnet));
        self.arrive(target)
    }

    pub(super) fn arrive(&mut self, target: EniId) -> Outcome {
        if !self.security_groups(target, Direction::Inbound) {
            return Outcome::Drop(DropCode::EniSgRulesMismatch);
        }
        self.trace.hop(Hop::DestinationEni(target));
        if self.model {
            if let Some(outcome) = self.forward_in_model(target) {
                return outcome;
            }
        }
        let eni = self.lab.eni(target);
        if let EniOwner::Endpoint(e) = eni.owner {
            self.metered = Some(Metered::InterfaceEndpoint(e));
        }
        Outcome::Deliver(eni.host)
    }

    /// The security groups of `eni` in `direction`: a tracked flow passes whatever the rules;
    /// otherwise a rule must allow it, and the flow is tracked from then on.
    pub(super) fn security_groups(&mut self, eni: EniId, direction: Direction) -> bool {
        let tag = self.lab.eni_tag(eni);
        let verdict = if self.flows.refresh(tag, &self.key, self.now) {
            SgVerdict::Tracked
        } else if self
            .quoted
            .is_some_and(|q| self.flows.is_tracked(tag, q, self.now))
        {
            SgVerdict::Related
        } else {
            match rules::sg_allows(self.lab, eni, direction, &self.key) {
                Some((group, rule)) if rules::untracked(self.lab, eni, direction, &self.key) => {
                    SgVerdict::Untracked { group, rule }
                }
                Some((group, rule)) => {
                    self.flows.track(tag, &self.key, self.now);
                    SgVerdict::Rule { group, rule }
                }
                None => SgVerdict::NoRule,
            }
        };
        self.trace.hop(Hop::SecurityGroup {
            eni,
            direction,
            verdict,
        });
        verdict != SgVerdict::NoRule
    }

    /// The network ACL of `subnet` in `direction`; stateless, first match by rule number.
    pub(super) fn network_acl(&mut self, subnet: SubnetId, direction: Direction) -> bool {
        let acl = self.lab.lab.subnets[subnet].network_acl;
        let (rule, allow) =
            rules::acl_decides(&self.lab.lab.network_acls[acl], direction, &self.key);
        self.trace.hop(Hop::NetworkAcl {
            acl,
            subnet,
            direction,
            rule,
            allow,
        });
        allow
    }
}
