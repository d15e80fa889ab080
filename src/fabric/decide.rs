//! The decision function: one packet, arriving from an instance, in AWS's order of checks
//! (aws-rules.md §0.4). The data plane and `vpclab explain` both call this.

use crate::scenario::{InstanceId, SubnetId, VpcId};
use crate::wire::FlowKey;

use super::compiled::CompiledTarget;
use super::{Compiled, DropCode, Hop, Outcome, Trace};

/// Decides what happens to a packet sent by instance `from`.
pub fn decide(lab: &Compiled, from: InstanceId, key: &FlowKey, trace: &mut impl Trace) -> Outcome {
    let source = &lab.lab.instances[from];
    trace.hop(Hop::SourceEni(from));
    if source.source_dest_check && key.src != source.private_ip {
        return Outcome::Drop(DropCode::EniSourceDestCheckRestriction);
    }
    let subnet = &lab.lab.subnets[source.subnet];
    // Inside one subnet the frame goes straight to the neighbour: no route table, no NACL.
    if subnet.cidr.contains(&key.dst) {
        if let Some(target) = lab.instance_at(source.vpc, key.dst) {
            if lab.lab.instances[target].subnet == source.subnet {
                trace.hop(Hop::SameSubnet(source.subnet));
                return arrive(lab, target, trace);
            }
        }
    }
    trace.hop(Hop::LeaveSubnet(source.subnet));
    let Some(route) = lab.lookup(subnet.route_table, key.dst) else {
        return Outcome::Drop(DropCode::NoRouteToDestination);
    };
    trace.hop(Hop::Route {
        table: subnet.route_table,
        route: route.route,
    });
    match route.target {
        CompiledTarget::Blackhole => Outcome::Drop(DropCode::BadStateRoute),
        CompiledTarget::Local => enter_vpc(lab, source.vpc, key, trace),
        CompiledTarget::Peering(pcx) => {
            // The route was validated to belong to a peering of this VPC.
            let peer = lab.lab.peerings[pcx]
                .peer_of(source.vpc)
                .unwrap_or(source.vpc);
            if !lab.vpc_contains(source.vpc, key.src) || !lab.vpc_contains(peer, key.dst) {
                return Outcome::Drop(DropCode::PcxRequiresAddressInVpcCidr);
            }
            trace.hop(Hop::Peering {
                peering: pcx,
                into: peer,
            });
            enter_vpc(lab, peer, key, trace)
        }
    }
}

/// Delivery by the VPC router to the subnet that holds the destination.
fn enter_vpc(lab: &Compiled, vpc: VpcId, key: &FlowKey, trace: &mut impl Trace) -> Outcome {
    let Some(target) = lab.instance_at(vpc, key.dst) else {
        return Outcome::Drop(DropCode::NoPossibleDestination);
    };
    let subnet: SubnetId = lab.lab.instances[target].subnet;
    trace.hop(Hop::EnterSubnet(subnet));
    arrive(lab, target, trace)
}

fn arrive(_lab: &Compiled, target: InstanceId, trace: &mut impl Trace) -> Outcome {
    trace.hop(Hop::DestinationEni(target));
    Outcome::Deliver(target)
}
