//! Scenario layer: the scenario as written (`FooRaw`), every value with its place in the file.
//! Decoding fills these; resolution turns them into a `Lab`. A `None` for a required value
//! means its absence or its bad type has already been reported.

use super::yaml::At;

pub(super) struct ScenarioRaw {
    pub name: Option<At<String>>,
    pub description: Option<String>,
    pub region: Option<At<String>>,
    pub account: Option<At<String>>,
    pub vpcs: Vec<VpcRaw>,
    pub peerings: Vec<PeeringRaw>,
    pub internet: InternetRaw,
    pub mirroring: MirroringRaw,
    pub services: Vec<ServiceRaw>,
    pub expect: Vec<ExpectRaw>,
    pub transit_gateways: Vec<TgwRaw>,
    /// Sites, VGWs and VPN connections.
    pub vpn: super::vpn::raw::VpnRaw,
}

pub(super) struct ServiceRaw {
    pub name: At<String>,
    /// What it is (s3, dynamodb, ...); default: the name.
    pub kind: Option<At<String>>,
    pub region: Option<At<String>>,
}

pub(super) struct EndpointRaw {
    pub name: At<String>,
    pub service: Option<At<String>>,
    /// `gateway` or `interface`.
    pub kind: Option<At<String>>,
    pub route_tables: Vec<At<String>>,
    /// Interface endpoints: one network interface in each of these subnets.
    pub subnets: Vec<At<String>>,
    pub security_groups: Option<Vec<At<String>>>,
    pub private_dns: Option<At<bool>>,
}

#[derive(Default)]
pub(super) struct InternetRaw {
    pub public_pool: Option<At<String>>,
    pub hosts: Vec<InternetHostRaw>,
}

pub(super) struct InternetHostRaw {
    pub name: At<String>,
    pub ip: Option<At<String>>,
    pub ipv6: Option<At<String>>,
    pub services: Vec<At<String>>,
    pub dns: Option<At<String>>,
    pub run: Option<String>,
}

pub(super) struct NatGatewayRaw {
    pub name: At<String>,
    pub subnet: Option<At<String>>,
}

pub(super) struct VpcRaw {
    pub name: At<String>,
    pub cidrs: Option<Vec<At<String>>>,
    pub region: Option<At<String>>,
    pub account: Option<At<String>>,
    pub subnets: Vec<SubnetRaw>,
    pub route_tables: Vec<RouteTableRaw>,
    pub security_groups: Vec<SecurityGroupRaw>,
    pub network_acls: Vec<NetworkAclRaw>,
    pub instances: Vec<InstanceRaw>,
    pub flow_logs: Vec<FlowLogRaw>,
    pub internet_gateway: Option<At<bool>>,
    pub egress_only_internet_gateway: Option<At<bool>>,
    /// An Amazon-provided /56 IPv6 block.
    pub ipv6: Option<At<bool>>,
    pub dns: Option<At<bool>>,
    pub nat_gateways: Vec<NatGatewayRaw>,
    pub endpoints: Vec<EndpointRaw>,
}

pub(super) struct SubnetRaw {
    pub name: At<String>,
    pub cidr: Option<At<String>>,
    pub az: Option<At<String>>,
    pub route_table: Option<At<String>>,
    pub network_acl: Option<At<String>>,
    pub map_public_ip_on_launch: Option<At<bool>>,
    /// A /64 of the VPC's IPv6 block; default: the VPC's `ipv6`.
    pub ipv6: Option<At<bool>>,
}

pub(super) struct RouteTableRaw {
    pub name: At<String>,
    pub main: Option<At<bool>>,
    pub routes: Vec<RouteRaw>,
    /// `vgw:NAME` of each VGW whose routes propagate into the table.
    pub propagate: Vec<At<String>>,
}

pub(super) struct RouteRaw {
    pub destination: Option<At<String>>,
    pub target: Option<At<String>>,
}

pub(super) struct SecurityGroupRaw {
    pub name: At<String>,
    pub ingress: Vec<RuleRaw>,
    /// None: the key is absent, which means "allow all out".
    pub egress: Option<Vec<RuleRaw>>,
}

pub(super) struct NetworkAclRaw {
    pub name: At<String>,
    pub inbound: Vec<RuleRaw>,
    pub outbound: Vec<RuleRaw>,
}

/// A security group or network ACL rule.
pub(super) struct RuleRaw {
    /// NACL only.
    pub number: Option<At<i64>>,
    pub protocol: Option<At<String>>,
    pub ports: Option<At<String>>,
    pub icmp_type: Option<At<i64>>,
    pub icmp_code: Option<At<i64>>,
    /// SG `source`/`destination`, NACL `cidr`.
    pub peer: Option<At<String>>,
    /// NACL only.
    pub action: Option<At<String>>,
}

pub(super) struct InstanceRaw {
    pub name: At<String>,
    pub subnet: Option<At<String>>,
    pub private_ip: Option<At<String>>,
    pub security_groups: Option<Vec<At<String>>>,
    pub source_dest_check: Option<At<bool>>,
    pub services: Vec<At<String>>,
    pub run: Option<String>,
    /// `true`, `eip` or `false`, already checked to be one of these.
    pub public_ip: Option<At<String>>,
    /// `route` or `masquerade`: the instance's OS forwards what is routed to it.
    pub forwarding: Option<At<String>>,
    /// An IPv6 address from the subnet's /64; default: the subnet's `ipv6`.
    pub ipv6: Option<At<bool>>,
}

pub(super) struct FlowLogRaw {
    pub name: At<String>,
    /// `vpc:NAME`, `subnet:NAME` or `eni:HOST`.
    pub resource: Option<At<String>>,
    pub traffic: Option<At<String>>,
    /// `${field} ${field} ...`; None for AWS's default format.
    pub format: Option<At<String>>,
    pub aggregation_interval: Option<At<i64>>,
}

pub(super) struct PeeringRaw {
    pub name: At<String>,
    pub requester: Option<At<String>>,
    pub accepter: Option<At<String>>,
}

pub(super) struct ExpectRaw {
    pub at: At<()>,
    pub from: Option<At<String>>,
    pub to: Option<At<String>>,
    pub protocol: Option<At<String>>,
    pub port: Option<At<i64>>,
    pub reachable: Option<At<bool>>,
    pub reason: Option<At<String>>,
    pub via: Vec<At<String>>,
}

/// `traffic_mirroring`: targets, filters and sessions, each a mapping of names.
#[derive(Default)]
pub(super) struct MirroringRaw {
    pub targets: Vec<MirrorTargetRaw>,
    pub filters: Vec<MirrorFilterRaw>,
    pub sessions: Vec<MirrorSessionRaw>,
}

pub(super) struct MirrorTargetRaw {
    pub name: At<String>,
    /// `HOST` or `eni:HOST`.
    pub eni: Option<At<String>>,
}

pub(super) struct MirrorFilterRaw {
    pub name: At<String>,
    pub inbound: Vec<MirrorRuleRaw>,
    pub outbound: Vec<MirrorRuleRaw>,
}

pub(super) struct MirrorRuleRaw {
    /// Where the rule is written, for errors about the rule as a whole.
    pub at: At<()>,
    pub number: Option<At<i64>>,
    pub action: Option<At<String>>,
    /// None: all protocols.
    pub protocol: Option<At<String>>,
    pub source_ports: Option<At<String>>,
    pub destination_ports: Option<At<String>>,
    pub source_cidr: Option<At<String>>,
    pub destination_cidr: Option<At<String>>,
}

pub(super) struct MirrorSessionRaw {
    pub name: At<String>,
    /// `eni:HOST` or `HOST`.
    pub source: Option<At<String>>,
    pub target: Option<At<String>>,
    pub filter: Option<At<String>>,
    pub session_number: Option<At<i64>>,
    pub vni: Option<At<i64>>,
    pub packet_length: Option<At<i64>>,
}

/// A transit gateway as written.
pub(super) struct TgwRaw {
    pub name: At<String>,
    pub region: Option<At<String>>,
    pub asn: Option<At<i64>>,
    /// Auto-associate and auto-propagate every attachment into one default table (default on).
    pub default_route_table: Option<At<bool>>,
    pub attachments: Vec<TgwAttachmentRaw>,
    pub route_tables: Vec<TgwRouteTableRaw>,
}

pub(super) struct TgwAttachmentRaw {
    pub name: At<String>,
    pub vpc: Option<At<String>>,
    pub subnets: Vec<At<String>>,
}

pub(super) struct TgwRouteTableRaw {
    pub name: At<String>,
    pub associations: Vec<At<String>>,
    pub propagations: Vec<At<String>>,
    pub routes: Vec<TgwRouteRaw>,
}

pub(super) struct TgwRouteRaw {
    pub at: At<()>,
    pub destination: Option<At<String>>,
    pub attachment: Option<At<String>>,
    pub blackhole: Option<At<bool>>,
}
