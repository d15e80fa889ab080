//! What a decision returns: the outcome, the AWS explanation code of a drop, and the hops taken.

use std::net::IpAddr;

use crate::scenario::{
    EndpointId, HostId, InstanceId, InternetHostId, NatGatewayId, NetworkAclId, PeeringId,
    RouteTableId, SecurityGroupId, SubnetId, TgwAttachmentId, TgwRouteTableId, TransitGatewayId,
    VpcId, VpnConnectionId, VpnGatewayId,
};

use super::compiled::TgwRouteRef;
use super::RouteRef;

/// Why a packet was dropped, named as AWS Reachability Analyzer names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropCode {
    /// The route table has no route for the destination.
    NoRouteToDestination,
    /// The matching route is a blackhole.
    BadStateRoute,
    /// A peering only carries packets whose addresses are inside the two peered VPCs.
    PcxRequiresAddressInVpcCidr,
    /// The sender used a source address that is not its own.
    EniSourceDestCheckRestriction,
    /// The destination is inside the VPC but no interface holds that address.
    NoPossibleDestination,
    /// Not an IP packet, too short to read, or of a kind the component does not carry.
    UnsupportedPacket,
    /// No rule of the security groups of the interface allows the packet (and it is not part
    /// of a tracked connection).
    EniSgRulesMismatch,
    /// A network ACL rule denies the packet where it leaves or enters a subnet.
    SubnetAclRestriction,
    /// The internet gateway has no public IP for the packet's source address.
    IgwPublicIpAssociationForEgress,
    /// The destination is a public address no interface of the VPC is mapped to.
    IgwPrivateIpAssociationForIngress,
    /// An internet gateway does not carry packets to private (RFC 1918) addresses.
    IgwDestinationAddressNotInRfc1918Egress,
    /// A NAT gateway only translates sources inside its own VPC.
    NgwRequiresSourceInVpc,
    /// Lab code (not Reachability Analyzer's): nothing outside may open a connection through
    /// a NAT gateway; only replies to inside flows come back.
    NgwNoInboundInitiation,
    /// Lab code after the `ErrorPortAllocation` metric: no free port toward this destination.
    NgwErrorPortAllocation,
    /// Lab code: a TCP segment of a connection the NAT gateway forgot after 350 s idle; the
    /// gateway answers it with a RST (aws-rules.md §3.2).
    NgwIdleTimeout,
    /// The path loops (e.g. a NAT gateway's subnet routes back to a NAT gateway).
    NoPath,
    /// A gateway endpoint carries TCP and ICMP echo only.
    VpceGatewayProtocolRestriction,
    /// An interface endpoint only answers: it cannot open connections into its VPC.
    VpceIntraVpcTraffic,
    /// Lab code (Reachability Analyzer names none): an egress-only internet gateway lets in
    /// only replies to IPv6 flows its VPC opened (aws-rules.md §3.4).
    EigwNoInboundInitiation,
    /// Both tunnels of the VPN connection are down.
    BadStateVpn,
    /// The source subnet's Availability Zone has no subnet of the transit gateway attachment.
    TgwRouteAzRestriction,
    /// The transit gateway attachment is associated with no route table.
    TgwAttachMissingTgwRtbAssociation,
    /// The transit gateway route table has no route for the destination.
    TgwRtbCannotRoute,
    /// The matching transit gateway route is a blackhole.
    TgwRtbBadStateRoute,
    /// Lab code after the VPN's traffic selectors: a tunnel carries only packets from the
    /// site's own networks (WireGuard's allowed IPs; a VGW routes nothing else in).
    VgwPrivateIpAssociationForIngress,
}

impl DropCode {
    pub const ALL: [DropCode; 25] = [
        DropCode::NoRouteToDestination,
        DropCode::BadStateRoute,
        DropCode::PcxRequiresAddressInVpcCidr,
        DropCode::EniSourceDestCheckRestriction,
        DropCode::NoPossibleDestination,
        DropCode::UnsupportedPacket,
        DropCode::EniSgRulesMismatch,
        DropCode::SubnetAclRestriction,
        DropCode::IgwPublicIpAssociationForEgress,
        DropCode::IgwPrivateIpAssociationForIngress,
        DropCode::IgwDestinationAddressNotInRfc1918Egress,
        DropCode::NgwRequiresSourceInVpc,
        DropCode::NgwNoInboundInitiation,
        DropCode::NgwErrorPortAllocation,
        DropCode::NgwIdleTimeout,
        DropCode::NoPath,
        DropCode::VpceGatewayProtocolRestriction,
        DropCode::VpceIntraVpcTraffic,
        DropCode::EigwNoInboundInitiation,
        DropCode::BadStateVpn,
        DropCode::TgwRouteAzRestriction,
        DropCode::TgwAttachMissingTgwRtbAssociation,
        DropCode::TgwRtbCannotRoute,
        DropCode::TgwRtbBadStateRoute,
        DropCode::VgwPrivateIpAssociationForIngress,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropCode::NoRouteToDestination => "NO_ROUTE_TO_DESTINATION",
            DropCode::BadStateRoute => "BAD_STATE_ROUTE",
            DropCode::PcxRequiresAddressInVpcCidr => "PCX_REQUIRES_ADDRESS_IN_VPC_CIDR",
            DropCode::EniSourceDestCheckRestriction => "ENI_SOURCE_DEST_CHECK_RESTRICTION",
            DropCode::NoPossibleDestination => "NO_POSSIBLE_DESTINATION",
            DropCode::UnsupportedPacket => "UNSUPPORTED_PACKET",
            DropCode::EniSgRulesMismatch => "ENI_SG_RULES_MISMATCH",
            DropCode::SubnetAclRestriction => "SUBNET_ACL_RESTRICTION",
            DropCode::IgwPublicIpAssociationForEgress => "IGW_PUBLIC_IP_ASSOCIATION_FOR_EGRESS",
            DropCode::IgwPrivateIpAssociationForIngress => "IGW_PRIVATE_IP_ASSOCIATION_FOR_INGRESS",
            DropCode::IgwDestinationAddressNotInRfc1918Egress => {
                "IGW_DESTINATION_ADDRESS_NOT_IN_RFC1918_EGRESS"
            }
            DropCode::NgwRequiresSourceInVpc => "NGW_REQUIRES_SOURCE_IN_VPC",
            DropCode::NgwNoInboundInitiation => "NGW_NO_INBOUND_INITIATION",
            DropCode::NgwErrorPortAllocation => "NGW_ERROR_PORT_ALLOCATION",
            DropCode::NgwIdleTimeout => "NGW_IDLE_TIMEOUT",
            DropCode::NoPath => "NO_PATH",
            DropCode::VpceGatewayProtocolRestriction => "VPCE_GATEWAY_PROTOCOL_RESTRICTION",
            DropCode::VpceIntraVpcTraffic => "VPCE_INTRA_VPC_TRAFFIC",
            DropCode::EigwNoInboundInitiation => "EIGW_NO_INBOUND_INITIATION",
            DropCode::BadStateVpn => "BAD_STATE_VPN",
            DropCode::TgwRouteAzRestriction => "TGW_ROUTE_AZ_RESTRICTION",
            DropCode::TgwAttachMissingTgwRtbAssociation => "TGW_ATTACH_MISSING_TGW_RTB_ASSOCIATION",
            DropCode::TgwRtbCannotRoute => "TGW_RTB_CANNOT_ROUTE",
            DropCode::TgwRtbBadStateRoute => "TGW_RTB_BAD_STATE_ROUTE",
            DropCode::VgwPrivateIpAssociationForIngress => "VGW_PRIVATE_IP_ASSOCIATION_FOR_INGRESS",
        }
    }

    pub fn from_name(name: &str) -> Option<DropCode> {
        DropCode::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// One sentence for a learner.
    pub fn meaning(self) -> &'static str {
        match self {
            DropCode::NoRouteToDestination => "the route table has no route to the destination",
            DropCode::BadStateRoute => "the matching route is a blackhole: its target does not work",
            DropCode::PcxRequiresAddressInVpcCidr => {
                "a peering connection carries only traffic between addresses of the two peered VPCs (peering is not transitive)"
            }
            DropCode::EniSourceDestCheckRestriction => {
                "source/destination check: an instance may only send from its own address"
            }
            DropCode::NoPossibleDestination => "no network interface in the VPC holds the destination address",
            DropCode::UnsupportedPacket => {
                "the fabric cannot read this packet, or the component does not carry its kind (a NAT gateway carries IPv4 TCP, UDP and ICMP)"
            }
            DropCode::EniSgRulesMismatch => {
                "no security group rule of the network interface allows the packet: security groups only allow, and only replies of tracked connections pass without a rule"
            }
            DropCode::SubnetAclRestriction => {
                "a network ACL rule denies the packet: NACLs are stateless, so replies need their own rule, usually for the ephemeral ports 1024-65535"
            }
            DropCode::IgwPublicIpAssociationForEgress => {
                "the internet gateway translates only addresses that have a public IP or Elastic IP: an instance without one cannot reach the internet, even in a public subnet (use a NAT gateway from a private subnet)"
            }
            DropCode::IgwPrivateIpAssociationForIngress => {
                "no network interface holds this public IP, so the internet gateway has nowhere to deliver it"
            }
            DropCode::IgwDestinationAddressNotInRfc1918Egress => {
                "an internet gateway does not route to private (RFC 1918) addresses"
            }
            DropCode::NgwRequiresSourceInVpc => {
                "a NAT gateway translates only traffic from its own VPC: not from a peered VPC, a VPN or Direct Connect"
            }
            DropCode::NgwNoInboundInitiation => {
                "a NAT gateway lets only replies to connections opened from inside come back: nothing on the internet can open a connection through it"
            }
            DropCode::NgwErrorPortAllocation => {
                "the NAT gateway has no free source port left toward this destination (55,000 connections per destination)"
            }
            DropCode::NgwIdleTimeout => {
                "the NAT gateway forgot this connection after 350 seconds idle and answers it with a TCP RST (keepalives shorter than 350 s avoid it)"
            }
            DropCode::NoPath => "the path loops back through a gateway it already crossed",
            DropCode::VpceGatewayProtocolRestriction => {
                "a gateway endpoint carries only TCP and ICMP echo to its service"
            }
            DropCode::VpceIntraVpcTraffic => {
                "an interface endpoint only answers connections opened to it: it cannot initiate traffic into its VPC"
            }
            DropCode::TgwRouteAzRestriction => {
                "the transit gateway attachment has no subnet in the source subnet's Availability Zone, so the subnet's route to the transit gateway is not honoured"
            }
            DropCode::TgwAttachMissingTgwRtbAssociation => {
                "the transit gateway attachment the packet enters by is associated with no route table: the transit gateway has nowhere to look it up"
            }
            DropCode::TgwRtbCannotRoute => {
                "the transit gateway route table associated with the attachment has no route to the destination (no propagation or static route covers it)"
            }
            DropCode::TgwRtbBadStateRoute => {
                "the matching transit gateway route is a blackhole: the transit gateway drops it"
            }
            DropCode::BadStateVpn => {
                "both tunnels of the VPN connection are down: the virtual private gateway has no way to the site"
            }
            DropCode::VgwPrivateIpAssociationForIngress => {
                "the VPN tunnel carries only packets between the site's networks and the VPC: the source is not one of the site's prefixes"
            }
            DropCode::EigwNoInboundInitiation => {
                "an egress-only internet gateway lets IPv6 out and only the replies back in: nothing on the internet can open a connection through it (an internet gateway would let it in)"
            }
        }
    }
}

impl std::fmt::Display for DropCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the packet ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Deliver(InstanceId),
    Drop(DropCode),
}

/// One step on the path, with the rule or route that matched there. Ids only, so that
/// recording a hop never allocates; names come from the `Lab` when rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hop {
    /// The packet left this instance's primary interface.
    SourceEni(InstanceId),
    /// It was delivered inside one subnet without the router (no route table, no NACL).
    SameSubnet(SubnetId),
    /// It left this subnet through the VPC router.
    LeaveSubnet(SubnetId),
    /// This route of this table matched.
    Route {
        table: RouteTableId,
        route: RouteRef,
    },
    /// It crossed this peering connection into `into`.
    Peering { peering: PeeringId, into: VpcId },
    /// The security groups of this interface decided the packet in this direction.
    SecurityGroup {
        eni: InstanceId,
        direction: Direction,
        verdict: SgVerdict,
    },
    /// The network ACL of this subnet decided the packet in this direction.
    NetworkAcl {
        acl: NetworkAclId,
        subnet: SubnetId,
        direction: Direction,
        rule: AclRuleRef,
        allow: bool,
    },
    /// It entered this subnet.
    EnterSubnet(SubnetId),
    /// It reached this instance's interface.
    DestinationEni(InstanceId),
    /// It left this internet host.
    FromInternet(InternetHostId),
    /// It reached this internet host.
    ToInternet(InternetHostId),
    /// It crossed the internet gateway of this VPC, which translated one IPv4 address: the
    /// source on the way out (private to public), the destination on the way in (public to
    /// private). IPv6 crosses it untranslated (`from` equals `to`).
    InternetGateway {
        vpc: VpcId,
        direction: Direction,
        from: IpAddr,
        to: IpAddr,
    },
    /// It crossed the virtual private gateway `gateway` through tunnel `tunnel` (0 or 1) of
    /// VPN connection `connection`: out to the site, or in from it.
    VpnGateway {
        gateway: VpnGatewayId,
        connection: VpnConnectionId,
        tunnel: usize,
        direction: Direction,
    },
    /// It crossed transit gateway `tgw`, in by `from` (an attachment), looked up in route table
    /// `table` (None when the attachment has no association), by `route` if one matched.
    TransitGateway {
        tgw: TransitGatewayId,
        from: TgwAttachmentId,
        table: Option<TgwRouteTableId>,
        route: Option<TgwRouteRef>,
    },
    /// It left this on-premises host, through its site's router.
    FromSite(HostId),
    /// It reached this on-premises host, through its site's router.
    ToSite(HostId),
    /// It crossed the egress-only internet gateway of this VPC (IPv6, untranslated).
    EgressOnlyInternetGateway { vpc: VpcId, direction: Direction },
    /// The OS of this instance forwarded it (`forwarding:`), masquerading the source or, for
    /// a reply, giving back the destination it had translated (`from` and `to` are equal when
    /// it only routed it).
    Forwarded {
        eni: InstanceId,
        from: (IpAddr, u16),
        to: (IpAddr, u16),
    },
    /// It crossed this gateway endpoint, outbound to its service or inbound with the reply.
    GatewayEndpoint {
        endpoint: EndpointId,
        direction: Direction,
    },
    /// It crossed this NAT gateway, which translated the source (outbound: inside address and
    /// port to the gateway's) or the destination (inbound: back to the inside ones).
    NatGateway {
        gateway: NatGatewayId,
        direction: Direction,
        from: (IpAddr, u16),
        to: (IpAddr, u16),
    },
}

/// Which way a packet crosses a security group or a network ACL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// How the security groups of an interface decided a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SgVerdict {
    /// Rule `rule` (index in that direction's list) of group `group` allows it.
    Rule { group: SecurityGroupId, rule: usize },
    /// As `Rule`, but the flow is not tracked: open rules admit it both ways, so a rule change
    /// cuts it at once (aws-rules.md §2.3).
    Untracked { group: SecurityGroupId, rule: usize },
    /// It belongs to a connection this interface tracks: it passes whatever the rules say.
    Tracked,
    /// An ICMP error quoting a tracked connection of this interface: it passes as related.
    Related,
    /// No rule of any of the interface's groups allows it.
    NoRule,
}

/// Which rule of a network ACL decided a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclRuleRef {
    /// The rule with this index in that direction's list (sorted by rule number).
    Numbered(usize),
    /// The final `*` rule (32767 in the API), which denies everything.
    Default,
}

impl AclRuleRef {
    /// The API number of the final `*` rule.
    pub const DEFAULT_NUMBER: u16 = 32767;
}

/// Receives the hops of a decision. The data plane passes `()`, which records nothing.
pub trait Trace {
    fn hop(&mut self, hop: Hop);
}

impl Trace for () {
    #[inline]
    fn hop(&mut self, _hop: Hop) {}
}

impl Trace for Vec<Hop> {
    fn hop(&mut self, hop: Hop) {
        self.push(hop);
    }
}
