//! The decision function: one packet, arriving from an instance, in AWS's order of checks
//! (aws-rules.md §0.4): source/destination check, SG outbound of the source interface, then
//! either straight to the neighbour inside one subnet (no NACL, no route table) or NACL outbound
//! of the source subnet, route lookup and target, NACL inbound of the destination subnet; last
//! the SG inbound of the destination interface. The data plane and `vpclab explain` both call
//! this; `flows` is the connection-tracking table (the data plane's, or a scratch one).

use std::time::Duration;

use crate::scenario::{InstanceId, SubnetId, VpcId};
use crate::wire::FlowKey;

use super::compiled::CompiledTarget;
use super::rules;
use super::{proto, Compiled, Conntrack, Direction, DropCode, Hop, Outcome, SgVerdict, Trace};

/// What one decision reads besides the packet: the lab, the tracked flows and the time.
struct Ctx<'a, T> {
    lab: &'a Compiled,
    flows: &'a Conntrack,
    now: Duration,
    key: &'a FlowKey,
    /// For an ICMP error: the header it quotes (the packet it reports on).
    quoted: Option<&'a FlowKey>,
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

/// Decides what happens to a packet sent by instance `from` at time `now` (any fixed epoch;
/// only differences matter).
pub fn decide(
    lab: &Compiled,
    flows: &Conntrack,
    now: Duration,
    from: InstanceId,
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
    from: InstanceId,
    key: &FlowKey,
    quoted: Option<&FlowKey>,
    trace: &mut impl Trace,
) -> Outcome {
    let mut cx = Ctx {
        lab,
        flows,
        now,
        key,
        quoted,
        trace,
    };
    cx.from(from)
}

impl<T: Trace> Ctx<'_, T> {
    fn from(&mut self, from: InstanceId) -> Outcome {
        let (lab, key) = (self.lab, self.key);
        let source = &lab.lab.instances[from];
        self.trace.hop(Hop::SourceEni(from));
        if source.source_dest_check && key.src != source.private_ip {
            return Outcome::Drop(DropCode::EniSourceDestCheckRestriction);
        }
        if !self.security_groups(from, Direction::Outbound) {
            return Outcome::Drop(DropCode::EniSgRulesMismatch);
        }
        let subnet = &lab.lab.subnets[source.subnet];
        // Inside one subnet the frame goes straight to the neighbour: no route table, no NACL.
        if subnet.cidr.contains(&key.dst) {
            if let Some(target) = lab.instance_at(source.vpc, key.dst) {
                if lab.lab.instances[target].subnet == source.subnet {
                    self.trace.hop(Hop::SameSubnet(source.subnet));
                    return self.arrive(target);
                }
            }
        }
        self.trace.hop(Hop::LeaveSubnet(source.subnet));
        if !self.network_acl(source.subnet, Direction::Outbound) {
            return Outcome::Drop(DropCode::SubnetAclRestriction);
        }
        let Some(route) = lab.lookup(subnet.route_table, key.dst) else {
            return Outcome::Drop(DropCode::NoRouteToDestination);
        };
        self.trace.hop(Hop::Route {
            table: subnet.route_table,
            route: route.route,
        });
        match route.target {
            CompiledTarget::Blackhole => Outcome::Drop(DropCode::BadStateRoute),
            CompiledTarget::Local => self.enter_vpc(source.vpc),
            CompiledTarget::Peering(pcx) => {
                // The route was validated to belong to a peering of this VPC.
                let peer = lab.lab.peerings[pcx]
                    .peer_of(source.vpc)
                    .unwrap_or(source.vpc);
                if !lab.vpc_contains(source.vpc, key.src) || !lab.vpc_contains(peer, key.dst) {
                    return Outcome::Drop(DropCode::PcxRequiresAddressInVpcCidr);
                }
                self.trace.hop(Hop::Peering {
                    peering: pcx,
                    into: peer,
                });
                self.enter_vpc(peer)
            }
        }
    }

    /// Delivery by the VPC router to the subnet that holds the destination.
    fn enter_vpc(&mut self, vpc: VpcId) -> Outcome {
        let Some(target) = self.lab.instance_at(vpc, self.key.dst) else {
            return Outcome::Drop(DropCode::NoPossibleDestination);
        };
        let subnet: SubnetId = self.lab.lab.instances[target].subnet;
        if !self.network_acl(subnet, Direction::Inbound) {
            return Outcome::Drop(DropCode::SubnetAclRestriction);
        }
        self.trace.hop(Hop::EnterSubnet(subnet));
        self.arrive(target)
    }

    fn arrive(&mut self, target: InstanceId) -> Outcome {
        if !self.security_groups(target, Direction::Inbound) {
            return Outcome::Drop(DropCode::EniSgRulesMismatch);
        }
        self.trace.hop(Hop::DestinationEni(target));
        Outcome::Deliver(target)
    }

    /// The security groups of `eni` in `direction`: a tracked flow passes whatever the rules;
    /// otherwise a rule must allow it, and the flow is tracked from then on.
    fn security_groups(&mut self, eni: InstanceId, direction: Direction) -> bool {
        let tag = self.lab.eni_tag(eni);
        let verdict = if self.flows.refresh(tag, self.key, self.now) {
            SgVerdict::Tracked
        } else if self
            .quoted
            .is_some_and(|q| self.flows.is_tracked(tag, q, self.now))
        {
            SgVerdict::Related
        } else {
            match rules::sg_allows(self.lab, eni, direction, self.key) {
                Some((group, rule)) => {
                    self.flows.track(tag, self.key, self.now);
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
            rules::acl_decides(&self.lab.lab.network_acls[acl], direction, self.key);
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
