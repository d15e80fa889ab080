//! Instances that forward (NAT instances, appliances): a route to an interface, and in the
//! model the part the instance's kernel plays in the data plane (routing, masquerade).

use std::net::IpAddr;

use crate::scenario::{Forwarding, SubnetId};

use super::super::eni::EniId;
use super::super::{proto, DropCode, Hop, Outcome, Trace};
use super::Ctx;

impl<T: Trace> Ctx<'_, T> {
    /// To an instance's interface by a route (a NAT instance, an appliance): it takes a packet
    /// that is not addressed to it only with source/destination check off. Then its subnet's
    /// NACL (unless the packet comes from that subnet) and its security groups.
    pub(super) fn route_to_appliance(&mut self, from_subnet: SubnetId, eni: EniId) -> Outcome {
        if !self.cross_gateway() {
            return Outcome::Drop(DropCode::NoPath);
        }
        let target = self.lab.eni(eni);
        if target.source_dest_check && !target.owns(self.key.dst) {
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
    pub(super) fn forward_in_model(&mut self, eni: EniId) -> Option<Outcome> {
        let lab = self.lab;
        let instance = lab.lab.instances.get(eni)?;
        let forwarding = instance.forwarding?;
        // The lab turns on IPv4 forwarding only (`net.ipv4.ip_forward`): the kernel keeps
        // IPv6 packets that are not its own, as the data plane shows.
        if self.key.is_ipv6() {
            return None;
        }
        let tag = lab.eni_tag(eni).vpc ^ u64::from(u32::from(instance.private_ip));
        if self.key.dst != IpAddr::V4(instance.private_ip) {
            if forwarding == Forwarding::Masquerade {
                let port = self.flows.nat().outbound(tag, &self.key, self.now).port()?;
                let before = (self.key.src, self.key.src_port);
                self.key.src = instance.private_ip.into();
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
}
