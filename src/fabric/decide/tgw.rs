//! A transit gateway in the decision (aws-rules.md §9.3): in by the attachment of the source's
//! VPC (which must have a subnet in the source subnet's Availability Zone), looked up in the
//! route table that attachment is associated with, out by the matching route's attachment
//! into its VPC, whose destination subnet's NACL and interface's groups decide next.

use crate::scenario::{SubnetId, TransitGatewayId};

use super::super::{DropCode, Hop, Outcome, Trace};
use super::Ctx;

impl<T: Trace> Ctx<'_, T> {
    pub(super) fn tgw_forward(&mut self, tgw: TransitGatewayId, from_subnet: SubnetId) -> Outcome {
        let lab = self.lab;
        if !self.cross_gateway() {
            return Outcome::Drop(DropCode::NoPath);
        }
        let g = &lab.lab.transit_gateways[tgw];
        let subnet = &lab.lab.subnets[from_subnet];
        // The route was validated to name a TGW this VPC is attached to.
        let Some(from) = g.attachment_of(subnet.vpc) else {
            return Outcome::Drop(DropCode::NoRouteToDestination);
        };
        let attachment = &g.attachments[from];
        let in_az = attachment
            .subnets
            .iter()
            .any(|&s| lab.lab.subnets[s].az == subnet.az);
        if !in_az {
            return Outcome::Drop(DropCode::TgwRouteAzRestriction);
        }
        let Some(table) = attachment.association else {
            self.trace.hop(Hop::TransitGateway {
                tgw,
                from,
                table: None,
                route: None,
            });
            return Outcome::Drop(DropCode::TgwAttachMissingTgwRtbAssociation);
        };
        let found = lab.tgw_lookup(tgw, table, self.key.dst).copied();
        self.trace.hop(Hop::TransitGateway {
            tgw,
            from,
            table: Some(table),
            route: found.map(|r| r.route),
        });
        match found {
            None => Outcome::Drop(DropCode::TgwRtbCannotRoute),
            Some(r) => match r.attachment {
                None => Outcome::Drop(DropCode::TgwRtbBadStateRoute),
                Some(to) => self.enter_vpc(g.attachments[to].vpc),
            },
        }
    }
}
