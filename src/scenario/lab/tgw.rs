//! Scenario layer: the typed lab's transit gateways: VPC attachments (a subnet per
//! Availability Zone), route tables with their associations (the table an attachment's
//! packets are looked up in), propagations (the attachments whose VPC CIDRs the table learns)
//! and static routes (to an attachment, or blackhole).

use ipnet::Ipv4Net;

use super::{SubnetId, VpcId};

pub type TransitGatewayId = usize;
/// An index into `TransitGateway::attachments`.
pub type TgwAttachmentId = usize;
/// An index into `TransitGateway::route_tables`.
pub type TgwRouteTableId = usize;

#[derive(Debug, Clone, PartialEq)]
pub struct TransitGateway {
    pub name: String,
    pub region: String,
    pub asn: u32,
    pub attachments: Vec<TgwAttachment>,
    pub route_tables: Vec<TgwRouteTable>,
}

/// A VPC attachment: the TGW's interfaces in one subnet per Availability Zone of the VPC.
#[derive(Debug, Clone, PartialEq)]
pub struct TgwAttachment {
    pub name: String,
    pub vpc: VpcId,
    pub subnets: Vec<SubnetId>,
    /// The route table its packets are looked up in (at most one), if any.
    pub association: Option<TgwRouteTableId>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TgwRouteTable {
    pub name: String,
    /// Attachments whose VPC CIDRs propagate into this table.
    pub propagations: Vec<TgwAttachmentId>,
    /// Static routes; they beat propagated ones of the same prefix.
    pub routes: Vec<TgwRoute>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TgwRoute {
    pub destination: Ipv4Net,
    /// None: a blackhole route.
    pub attachment: Option<TgwAttachmentId>,
}

impl TransitGateway {
    /// The attachment of VPC `vpc`, if it is attached (at most one per TGW).
    pub fn attachment_of(&self, vpc: VpcId) -> Option<TgwAttachmentId> {
        self.attachments.iter().position(|a| a.vpc == vpc)
    }
}
