//! The decision function: one packet, arriving from a host, in AWS's order of checks
//! (aws-rules.md §0.4): source/destination check, SG outbound of the source interface, then
//! either straight to the neighbour inside one subnet (no NACL, no route table) or NACL outbound
//! of the source subnet, route lookup and target (local, peering, internet gateway, NAT
//! gateway), NACL inbound of the destination subnet; last the SG inbound of the destination
//! interface. Packets from internet hosts enter through the internet gateway that holds their
//! destination's public IP. Gateways translate addresses on the way; the decision returns the
//! header as delivered. The data plane and `vpclab explain` both call this; `flows` holds the
//! tracked connections and NAT translations (the data plane's, or a scratch one).

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::scenario::{
    EndpointId, Forwarding, HostId, HostRef, InstanceId, InternetHostId, NatGatewayId, SubnetId,
    VpcId,
};
use crate::wire::FlowKey;

use super::compiled::{CompiledTarget, PublicOwner};
use super::eni::{EniId, EniOwner};
use super::nat::Outbound;
use super::rules;
use super::{proto, Compiled, Conntrack, Direction, DropCode, Hop, Outcome, SgVerdict, Trace};

/// How many gateways one packet may cross before the path counts as a loop.
const MAX_GATEWAYS: u8 = 4;

/// What one decision reads besides the packet: the lab, the tracked flows and the time.
struct Ctx<'a, T> {
    lab: &'a Compiled,
    flows: &'a Conntrack,
    now: Duration,
    /// The header as it is at this point of the path (gateways rewrite it).
    key: FlowKey,
    /// Gateways crossed so far.
    gateways: u8,
    /// The last metered component crossed.
    metered: Option<Metered>,
    /// Deciding for `vpclab explain`: what the OS of a forwarding instance does (the kernel's
    /// part in the data plane) is decided here too.
    model: bool,
    /// For an ICMP error: the header it quotes (the packet it reports on).
    quoted: Option<&'a FlowKey>,
    /// A traffic mirror copy: the source's security groups do not see it (aws-rules.md §10).
    mirror_copy: bool,
    trace: &'a mut T,
}

/// A packet as the decision reads it: its header and, for an ICMP error, the header it quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    pub key: FlowKey,
    pub quoted: Option<FlowKey>,
}

/// Reads a packet's headers; what the fabric cannot carry is `UNSUPPORTED_PACKET`.
pub fn read_packet(bytes: &[u8]) -> Result<Packet, DropCode> {
    let key = FlowKey::parse(bytes).map_err(|_| DropCode::UnsupportedPacket)?;
    // An ICMP error (destination unreachable, time exceeded) carries the IP header and first
    // 8 bytes of the packet it reports on, after its own 8-byte header.
    let quoted = if key.protocol == proto::ICMP && matches!(key.icmp_type, 3 | 11) {
        // `parse` accepted the packet, so its header length is at least 20 and fits.
        let header_len = usize::from(bytes[0] & 0x0f) * 4;
        bytes
            .get(header_len + 8..)
            .and_then(|q| FlowKey::parse(q).ok())
    } else {
        None
    };
    Ok(Packet { key, quoted })
}

/// Decides what happens to a packet sent by host `from` at time `now` (any fixed epoch;
/// only differences matter).
pub fn decide(
    lab: &Compiled,
    flows: &Conntrack,
    now: Duration,
    from: HostId,
    key: &FlowKey,
    trace: &mut impl Trace,
) -> Outcome {
    decide_quoting(lab, flows, now, from, key, None, trace)
}

/// As `decide`, for an ICMP error (destination unreachable, time exceeded) that quotes the
/// header `quoted`: when that header is a flow the interface tracks, the error passes its
/// security groups as related traffic (aws-rules.md §2.3). NACLs still apply.
pub fn decide_quoting(
    lab: &Compiled,
    flows: &Conntrack,
    now: Duration,
    from: HostId,
    key: &FlowKey,
    quoted: Option<&FlowKey>,
    trace: &mut impl Trace,
) -> Outcome {
    decide_packet(lab, flows, now, from, key, quoted, trace).outcome
}

/// A managed component AWS bills per byte processed (or, for gateway endpoints, shows as free).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metered {
    NatGateway(NatGatewayId),
    GatewayEndpoint(EndpointId),
    InterfaceEndpoint(EndpointId),
}

/// What `decide_packet` found: the outcome, the header as delivered, and the metered
/// component the packet crossed, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub outcome: Outcome,
    /// Gateways on the way may have translated addresses and ports; the data plane rewrites
    /// the packet to match.
    pub delivered: FlowKey,
    pub metered: Option<Metered>,
}

/// As `decide_quoting`, with the header as delivered and what the packet crossed.
pub fn decide_packet(
    lab: &Compiled,
    flows: &Conntrack,
    now: Duration,
    from: HostId,
    key: &FlowKey,
    quoted: Option<&FlowKey>,
    trace: &mut impl Trace,
) -> Decision {
    let mode = Mode {
        model: false,
        mirror_copy: false,
    };
    run(lab, flows, now, from, key, quoted, mode, trace)
}

/// As `decide_packet`, for the model (`vpclab explain`, `vpclab check`'s model half): the
/// forwarding that instances' kernels do in the data plane is decided too.
pub fn decide_model(
    lab: &Compiled,
    flows: &Conntrack,
    now: Duration,
    from: HostId,
    key: &FlowKey,
    quoted: Option<&FlowKey>,
    trace: &mut impl Trace,
) -> Decision {
    let mode = Mode {
        model: true,
        mirror_copy: false,
    };
    run(lab, flows, now, from, key, quoted, mode, trace)
}

/// Who is asking: the data plane or the model, for a packet or a mirror copy.
#[derive(Clone, Copy)]
struct Mode {
    model: bool,
    mirror_copy: bool,
}

#[allow(clippy::too_many_arguments)]
fn run(
    lab: &Compiled,
    flows: &Conntrack,
    now: Duration,
    from: HostId,
    key: &FlowKey,
    quoted: Option<&FlowKey>,
    mode: Mode,
    trace: &mut impl Trace,
) -> Decision {
    let mut cx = Ctx {
        lab,
        flows,
        now,
        key: *key,
        gateways: 0,
        metered: None,
        model: mode.model,
        quoted,
        mirror_copy: mode.mirror_copy,
        trace,
    };
    let outcome = cx.from(from);
    Decision {
        outcome,
        delivered: cx.key,
        metered: cx.metered,
    }
}

/// As `decide`, for a traffic mirror copy that `from`'s ENI sends to its session's target
/// (`key` is the copy's outer header): routed with the source subnet's route table and met by
/// the NACLs and the target's security groups like any packet, but not evaluated by the
/// source's security groups (aws-rules.md §10).
pub fn decide_mirror_copy(
    lab: &Compiled,
    flows: &Conntrack,
    now: Duration,
    from: InstanceId,
    key: &FlowKey,
    trace: &mut impl Trace,
) -> Outcome {
    let mode = Mode {
        model: false,
        mirror_copy: true,
    };
    run(lab, flows, now, from, key, None, mode, trace).outcome
}

impl<T: Trace> Ctx<'_, T> {
    fn from(&mut self, from: HostId) -> Outcome {
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
    fn send_from_eni(&mut self, from: EniId) -> Outcome {
        let lab = self.lab;
        let source = lab.eni(from);
        self.trace.hop(Hop::SourceEni(from));
        if source.source_dest_check && self.key.src != source.ip {
            return Outcome::Drop(DropCode::EniSourceDestCheckRestriction);
        }
        if !self.mirror_copy && !self.security_groups(from, Direction::Outbound) {
            return Outcome::Drop(DropCode::EniSgRulesMismatch);
        }
        let subnet = &lab.lab.subnets[source.subnet];
        // Inside one subnet the frame goes straight to the neighbour: no route table, no NACL.
        if subnet.cidr.contains(&self.key.dst) {
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
    fn leave_subnet(&mut self, subnet_id: SubnetId) -> Outcome {
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
            CompiledTarget::NatGateway(gateway) => self.nat_outbound(subnet_id, gateway),
            CompiledTarget::GatewayEndpoint(endpoint) => self.gateway_endpoint(endpoint),
            CompiledTarget::Instance(eni) => self.route_to_appliance(subnet_id, eni),
        }
    }

    /// To an instance's interface by a route (a NAT instance, an appliance): it takes a packet
    /// that is not addressed to it only with source/destination check off. Then its subnet's
    /// NACL (unless the packet comes from that subnet) and its security groups.
    fn route_to_appliance(&mut self, from_subnet: SubnetId, eni: EniId) -> Outcome {
        if !self.cross_gateway() {
            return Outcome::Drop(DropCode::NoPath);
        }
        let target = self.lab.eni(eni);
        if target.source_dest_check && self.key.dst != target.ip {
            return Outcome::Drop(DropCode::EniSourceDestCheckRestriction);
        }
        if target.subnet == from_subnet {
            return self.arrive(eni);
        }
        self.enter_subnet(eni)
    }

    /// In the model only: what the OS of an instance with `forwarding` does with a packet it
    /// received, as the kernel really does in the data plane: a packet for someone else goes
    /// on (masqueraded: from the instance's own address), and a reply to a masqueraded flow
    /// goes back to the host that opened it. None when the instance keeps the packet.
    fn forward_in_model(&mut self, eni: EniId) -> Option<Outcome> {
        let lab = self.lab;
        let instance = lab.lab.instances.get(eni)?;
        let forwarding = instance.forwarding?;
        let tag = lab.eni_tag(eni).vpc ^ u64::from(u32::from(instance.private_ip));
        if self.key.dst != instance.private_ip {
            if forwarding == Forwarding::Masquerade {
                let port = self.flows.nat().outbound(tag, &self.key, self.now).port()?;
                let before = (self.key.src, self.key.src_port);
                self.key.src = instance.private_ip;
                self.key.src_port = port;
                if self.key.protocol == proto::ICMP {
                    self.key.dst_port = port;
                }
                self.trace.hop(Hop::Forwarded {
                    eni,
                    from: before,
                    to: (self.key.src, port),
                });
            } else {
                let at = (self.key.src, self.key.src_port);
                self.trace.hop(Hop::Forwarded {
                    eni,
                    from: at,
                    to: at,
                });
            }
        } else {
            let (inside, port) = self.flows.nat().inbound(tag, &self.key, self.now)?;
            let before = (self.key.dst, self.key.dst_port);
            self.key.dst = inside;
            self.key.dst_port = port;
            if self.key.protocol == proto::ICMP {
                self.key.src_port = port;
            }
            self.trace.hop(Hop::Forwarded {
                eni,
                from: before,
                to: (inside, port),
            });
        }
        if !self.cross_gateway() {
            return Some(Outcome::Drop(DropCode::NoPath));
        }
        Some(self.send_from_eni(eni))
    }

    /// Through gateway endpoint `endpoint` straight to its service, the source unchanged (the
    /// service sees the private address). No security group, no translation; the flow is
    /// remembered so the service's reply finds its way back into this VPC.
    fn gateway_endpoint(&mut self, endpoint: EndpointId) -> Outcome {
        let lab = self.lab;
        if !self.cross_gateway() {
            return Outcome::Drop(DropCode::NoPath);
        }
        let echo = self.key.protocol == proto::ICMP && self.key.icmp_type == 8;
        if self.key.protocol != proto::TCP && !echo {
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
    fn send_from_internet(&mut self, n: InternetHostId) -> Outcome {
        let lab = self.lab;
        if let Some(&(_, eni)) = lab
            .enis_of_host(n)
            .iter()
            .find(|(ip, _)| *ip == self.key.src)
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

    /// Counts a gateway crossed; false once the path has crossed too many to be anything but
    /// a loop.
    fn cross_gateway(&mut self) -> bool {
        self.gateways += 1;
        self.gateways <= MAX_GATEWAYS
    }

    /// Out through the internet gateway of `vpc`: the source becomes its public IP.
    fn igw_egress(&mut self, vpc: VpcId) -> Outcome {
        if !self.cross_gateway() {
            return Outcome::Drop(DropCode::NoPath);
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
            to: public,
        });
        self.key.src = public;
        self.internet()
    }

    /// The internet: an internet host, or a public IP of the lab behind its internet gateway.
    fn internet(&mut self) -> Outcome {
        let lab = self.lab;
        if let Some(host) = lab.internet_host_at(self.key.dst) {
            if let HostRef::Internet(n, _) = lab.lab.host(host) {
                self.trace.hop(Hop::ToInternet(n));
            }
            return Outcome::Deliver(host);
        }
        match lab.public_owner(self.key.dst) {
            Some(PublicOwner::Instance(i)) => self.igw_ingress(lab.lab.instances[i].vpc, i),
            Some(PublicOwner::NatGateway(g)) => self.nat_inbound(g),
            None if lab.lab.internet.public_pool.contains(&self.key.dst) => {
                Outcome::Drop(DropCode::IgwPrivateIpAssociationForIngress)
            }
            None => Outcome::Drop(DropCode::NoRouteToDestination),
        }
    }

    /// In through the internet gateway of `vpc` to instance `target`: the destination becomes
    /// its private address; then its subnet's NACL and its security groups.
    fn igw_ingress(&mut self, vpc: VpcId, target: InstanceId) -> Outcome {
        if !self.cross_gateway() {
            return Outcome::Drop(DropCode::NoPath);
        }
        let private = self.lab.eni(target).ip;
        self.trace.hop(Hop::InternetGateway {
            vpc,
            direction: Direction::Inbound,
            from: self.key.dst,
            to: private,
        });
        self.key.dst = private;
        self.enter_subnet(target)
    }

    /// Into NAT gateway `gateway` from a subnet of its VPC: its subnet's NACL inbound (unless
    /// the packet comes from that subnet), the source translated to the gateway's address and a
    /// port of its own, then out by the gateway subnet's route table.
    fn nat_outbound(&mut self, from_subnet: SubnetId, gateway: NatGatewayId) -> Outcome {
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
        if !matches!(self.key.protocol, proto::TCP | proto::UDP | proto::ICMP) {
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
        self.key.src = g.private_ip;
        self.key.src_port = port;
        if self.key.protocol == proto::ICMP {
            // The echo identifier is both "ports".
            self.key.dst_port = port;
        }
        self.trace.hop(Hop::NatGateway {
            gateway,
            direction: Direction::Outbound,
            from: before,
            to: (g.private_ip, port),
        });
        self.leave_subnet(g.subnet)
    }

    /// A packet from the internet to a NAT gateway's Elastic IP: the internet gateway maps it
    /// to the gateway's private address, its subnet's NACL lets it in, and it passes only as a
    /// reply to a translated inside flow, whose address and port it gets back.
    fn nat_inbound(&mut self, gateway: NatGatewayId) -> Outcome {
        let lab = self.lab;
        let g = &lab.lab.nat_gateways[gateway];
        if !self.cross_gateway() {
            return Outcome::Drop(DropCode::NoPath);
        }
        self.trace.hop(Hop::InternetGateway {
            vpc: g.vpc,
            direction: Direction::Inbound,
            from: self.key.dst,
            to: g.private_ip,
        });
        self.key.dst = g.private_ip;
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

    /// Delivery by the VPC router to the subnet that holds the destination.
    fn enter_vpc(&mut self, vpc: VpcId) -> Outcome {
        let Some(target) = self.lab.eni_at(vpc, self.key.dst) else {
            return Outcome::Drop(DropCode::NoPossibleDestination);
        };
        self.enter_subnet(target)
    }

    /// Into the subnet of interface `target`: its NACL inbound, then the interface.
    fn enter_subnet(&mut self, target: EniId) -> Outcome {
        let subnet: SubnetId = self.lab.eni(target).subnet;
        if !self.network_acl(subnet, Direction::Inbound) {
            return Outcome::Drop(DropCode::SubnetAclRestriction);
        }
        self.trace.hop(Hop::EnterSubnet(subnet));
        self.arrive(target)
    }

    fn arrive(&mut self, target: EniId) -> Outcome {
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
    fn security_groups(&mut self, eni: EniId, direction: Direction) -> bool {
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
    fn network_acl(&mut self, subnet: SubnetId, direction: Direction) -> bool {
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

/// RFC 1918 private space, which an internet gateway never routes to.
fn is_rfc1918(addr: Ipv4Addr) -> bool {
    addr.is_private()
}
