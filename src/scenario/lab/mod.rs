//! Scenario layer: the typed, validated lab. A `Lab` cannot express an invalid topology:
//! every reference is an index that exists, every address sits inside its subnet.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

mod edge;
mod flowlogs;
mod mirroring;
mod tgw;
mod vpn;
mod wgkey;

pub use edge::*;
pub use flowlogs::*;
pub use mirroring::*;
pub use tgw::*;
pub use vpn::*;

pub type VpcId = usize;
pub type SubnetId = usize;
pub type RouteTableId = usize;
pub type InstanceId = usize;
pub type PeeringId = usize;
pub type SecurityGroupId = usize;
pub type NetworkAclId = usize;
pub type MirrorTargetId = usize;
pub type MirrorFilterId = usize;
pub type MirrorSessionId = usize;
pub type NatGatewayId = usize;
pub type ServiceId = usize;
pub type EndpointId = usize;
pub type InternetHostId = usize;
/// Any host with a namespace: the instances first (a `HostId` below `instances.len()` is an
/// `InstanceId`), then the internet hosts (sites' routers among them), then the sites' hosts
/// (see `vpn.rs`).
pub type HostId = usize;

/// A whole lab, resolved from a scenario file.
#[derive(Debug, Clone, PartialEq)]
pub struct Lab {
    /// `[a-z0-9-]{1,12}`; used in namespace names `vl-LAB-HOST`.
    pub name: String,
    pub description: Option<String>,
    /// The file it came from (for messages only).
    pub source: String,
    pub vpcs: Vec<Vpc>,
    pub subnets: Vec<Subnet>,
    pub route_tables: Vec<RouteTable>,
    pub security_groups: Vec<SecurityGroup>,
    pub network_acls: Vec<NetworkAcl>,
    pub instances: Vec<Instance>,
    pub peerings: Vec<Peering>,
    pub flow_logs: Vec<FlowLog>,
    pub mirror_targets: Vec<MirrorTarget>,
    pub mirror_filters: Vec<MirrorFilter>,
    pub mirror_sessions: Vec<MirrorSession>,
    pub expectations: Vec<Expectation>,
    /// The simulated internet: public addresses come from `public_pool`.
    pub internet: Internet,
    pub nat_gateways: Vec<NatGateway>,
    /// Simulated regional AWS services, each served by an internet host of its own.
    pub services: Vec<AwsService>,
    pub endpoints: Vec<Endpoint>,
    /// On-premises sites; their routers are internet hosts, their hosts come after those.
    pub sites: Vec<Site>,
    pub vpn_gateways: Vec<VpnGateway>,
    pub vpn_connections: Vec<VpnConnection>,
    pub transit_gateways: Vec<TransitGateway>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Vpc {
    pub name: String,
    /// Primary first, then secondary blocks.
    pub cidrs: Vec<Ipv4Net>,
    pub region: String,
    pub account: String,
    /// The table implicitly associated with subnets that name none.
    pub main_route_table: RouteTableId,
    /// The NACL of subnets that name none.
    pub default_network_acl: NetworkAclId,
    /// The SG of instances that name none.
    pub default_security_group: SecurityGroupId,
    /// The Amazon-provided IPv6 block (a /56), when the VPC is dual stack.
    pub ipv6_cidr: Option<Ipv6Net>,
    /// An internet gateway (`igw:NAME`, named after the VPC) is attached.
    pub internet_gateway: bool,
    /// An egress-only internet gateway (`eigw:NAME`, named after the VPC) is attached.
    pub egress_only_internet_gateway: bool,
    /// The Amazon DNS resolver answers at the primary CIDR's base + 2 and 169.254.169.253
    /// (`enableDnsSupport`).
    pub dns: bool,
}

impl Vpc {
    /// The blocks the local routes cover, as `RouteRef::Local` numbers them: the IPv4 blocks,
    /// then the IPv6 block.
    pub fn local_blocks(&self) -> impl Iterator<Item = IpNet> + '_ {
        let v4 = self.cidrs.iter().map(|c| IpNet::V4(*c));
        v4.chain(self.ipv6_cidr.map(IpNet::V6))
    }

    /// The Amazon DNS resolver's address in this VPC: the primary CIDR's base + 2, if DNS is on.
    pub fn resolver(&self) -> Option<Ipv4Addr> {
        let primary = self.cidrs.first().filter(|_| self.dns)?;
        Some(Ipv4Addr::from(u32::from(primary.network()) + 2))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Subnet {
    pub name: String,
    pub vpc: VpcId,
    pub cidr: Ipv4Net,
    /// A /64 of the VPC's IPv6 block, when the subnet is dual stack.
    pub ipv6_cidr: Option<Ipv6Net>,
    pub az: String,
    pub route_table: RouteTableId,
    /// False when the subnet uses the main table implicitly.
    pub explicit_route_table: bool,
    pub network_acl: NetworkAclId,
    /// Instances launched here get a public IP unless they say otherwise.
    pub map_public_ip_on_launch: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouteTable {
    pub name: String,
    pub vpc: VpcId,
    pub main: bool,
    /// True for the table the lab made because the VPC declared no main table.
    pub implicit: bool,
    /// Declared routes only; the local routes (one per VPC CIDR) are implied.
    pub routes: Vec<Route>,
    /// VGWs (of this table's VPC) whose routes propagate into this table (`propagate:`).
    pub propagate: Vec<VpnGatewayId>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub destination: IpNet,
    pub target: RouteTarget,
    /// Set for the route a gateway endpoint adds: its destination is the service's prefix
    /// list (`pl:NAME`), not a CIDR written in the file.
    pub prefix_list: Option<ServiceId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteTarget {
    Blackhole,
    Peering(PeeringId),
    /// The VPC's own internet gateway.
    InternetGateway,
    /// The VPC's own egress-only internet gateway (IPv6 destinations only).
    EgressOnlyInternetGateway,
    NatGateway(NatGatewayId),
    GatewayEndpoint(EndpointId),
    /// An instance's primary interface (`eni:HOST`): a NAT instance or an appliance.
    Instance(InstanceId),
    /// A transit gateway the VPC is attached to.
    TransitGateway(TransitGatewayId),
    /// The VPC's virtual private gateway (`vgw:NAME`).
    VpnGateway(VpnGatewayId),
}

/// IANA protocol number, or all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    All,
    Number(u8),
}

impl Protocol {
    pub const TCP: Protocol = Protocol::Number(6);
    pub const UDP: Protocol = Protocol::Number(17);
    pub const ICMP: Protocol = Protocol::Number(1);
    pub const ICMPV6: Protocol = Protocol::Number(58);

    pub fn matches(self, proto: u8) -> bool {
        match self {
            Protocol::All => true,
            Protocol::Number(n) => n == proto,
        }
    }
}

impl Subnet {
    /// True when `addr` is in the subnet's IPv4 block or its IPv6 /64.
    pub fn contains(&self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(a) => self.cidr.contains(&a),
            IpAddr::V6(a) => self.ipv6_cidr.is_some_and(|c| c.contains(&a)),
        }
    }
}

/// Inclusive port range; `all` is 0-65535.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    pub const ALL: PortRange = PortRange {
        first: 0,
        last: 65535,
    };

    pub fn contains(self, port: u16) -> bool {
        self.first <= port && port <= self.last
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SecurityGroup {
    pub name: String,
    pub vpc: VpcId,
    pub ingress: Vec<SgRule>,
    pub egress: Vec<SgRule>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SgRule {
    pub protocol: Protocol,
    /// Matched against the destination port (tcp/udp); ALL for other protocols.
    pub ports: PortRange,
    pub icmp_type: Option<u8>,
    pub icmp_code: Option<u8>,
    pub peer: SgPeer,
}

/// The `source` of an ingress rule or the `destination` of an egress rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SgPeer {
    Cidr(IpNet),
    Group(SecurityGroupId),
}

#[derive(Debug, Clone, PartialEq)]
pub struct NetworkAcl {
    pub name: String,
    pub vpc: VpcId,
    /// Sorted by rule number; the final `*` deny is implied.
    pub inbound: Vec<AclRule>,
    pub outbound: Vec<AclRule>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AclRule {
    /// 1..=32766
    pub number: u16,
    pub protocol: Protocol,
    pub ports: PortRange,
    pub icmp_type: Option<u8>,
    pub icmp_code: Option<u8>,
    pub cidr: IpNet,
    pub allow: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub name: String,
    pub vpc: VpcId,
    pub subnet: SubnetId,
    pub private_ip: Ipv4Addr,
    /// Its IPv6 address, from the subnet's /64 (globally unique: never translated).
    pub ipv6: Option<Ipv6Addr>,
    pub security_groups: Vec<SecurityGroupId>,
    pub source_dest_check: bool,
    pub services: Vec<Service>,
    /// A command started inside the host at `up`.
    pub run: Option<String>,
    /// The public IPv4 the internet gateway maps to `private_ip` (the instance never sees it).
    pub public_ip: Option<PublicIp>,
    /// Its OS forwards packets routed to it (a NAT instance or an appliance).
    pub forwarding: Option<Forwarding>,
}

/// What an instance's OS does with packets routed to it that are not its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forwarding {
    /// Forwards them unchanged (`net.ipv4.ip_forward=1`): an appliance.
    Route,
    /// Forwards them with its own address as the source (nftables masquerade): a NAT instance.
    Masquerade,
}

/// Built-in listeners a host runs on real sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// GET answers 200 with a short text naming the host.
    Http(u16),
    /// Echoes what it receives.
    Tcp(u16),
    /// Echoes each datagram.
    Udp(u16),
    /// The kernel's own echo reply (always on).
    Icmp,
    /// A real OpenSSH server (`/usr/sbin/sshd`) that admits the lab's client key for root.
    Ssh(u16),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Peering {
    pub name: String,
    pub requester: VpcId,
    pub accepter: VpcId,
    pub cross_region: bool,
    pub cross_account: bool,
}

impl Peering {
    /// The other side of this peering seen from `vpc`, if `vpc` is one of its ends.
    pub fn peer_of(&self, vpc: VpcId) -> Option<VpcId> {
        if self.requester == vpc {
            Some(self.accepter)
        } else if self.accepter == vpc {
            Some(self.requester)
        } else {
            None
        }
    }
}

/// How `vpclab check` probes an expectation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    Icmp,
    Tcp,
    Udp,
    Http,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    /// 1-based line of the entry in the scenario file.
    pub line: usize,
    pub from: HostId,
    /// As written (`db1`, `10.1.1.20`).
    pub to_text: String,
    /// The address it resolves to.
    pub to: IpAddr,
    pub probe: Probe,
    /// tcp/udp/http only; http defaults to 80.
    pub port: Option<u16>,
    pub reachable: bool,
    /// An AWS explanation code, e.g. `NO_ROUTE_TO_DESTINATION`.
    pub reason: Option<String>,
    /// Components that must be crossed, in order, as written (`pcx:ab`).
    pub via: Vec<String>,
}

impl Lab {
    pub fn instance_by_name(&self, name: &str) -> Option<InstanceId> {
        self.instances.iter().position(|i| i.name == name)
    }

    /// Instances and internet hosts together: the hosts with a port on the fabric.
    pub fn host_count(&self) -> usize {
        self.instances.len() + self.internet.hosts.len()
    }

    /// What host `id` is.
    pub fn host(&self, id: HostId) -> HostRef<'_> {
        match self.instances.get(id) {
            Some(i) => HostRef::Instance(id, i),
            None => {
                let n = id - self.instances.len();
                HostRef::Internet(n, &self.internet.hosts[n])
            }
        }
    }

    pub fn host_by_name(&self, name: &str) -> Option<HostId> {
        (0..self.host_count()).find(|&id| self.host(id).name() == name)
    }

    /// The internet host `n` as a `HostId`.
    pub fn internet_host_id(&self, n: InternetHostId) -> HostId {
        self.instances.len() + n
    }

    /// Namespace name of a host: `vl-LAB-HOST`.
    pub fn netns_name(&self, host: &str) -> String {
        format!("vl-{}-{}", self.name, host)
    }
}

/// A host seen through its kind.
#[derive(Debug, Clone, Copy)]
pub enum HostRef<'a> {
    Instance(InstanceId, &'a Instance),
    Internet(InternetHostId, &'a InternetHost),
}

impl<'a> HostRef<'a> {
    pub fn name(self) -> &'a str {
        match self {
            HostRef::Instance(_, i) => &i.name,
            HostRef::Internet(_, h) => &h.name,
        }
    }

    /// The address the host itself has on `eth0`.
    pub fn ip(self) -> Ipv4Addr {
        match self {
            HostRef::Instance(_, i) => i.private_ip,
            HostRef::Internet(_, h) => h.ip,
        }
    }

    /// The IPv6 address the host has on `eth0`, if it is dual stack.
    pub fn ipv6(self) -> Option<Ipv6Addr> {
        match self {
            HostRef::Instance(_, i) => i.ipv6,
            HostRef::Internet(_, h) => h.ipv6,
        }
    }

    pub fn services(self) -> &'a [Service] {
        match self {
            HostRef::Instance(_, i) => &i.services,
            HostRef::Internet(_, h) => &h.services,
        }
    }

    pub fn run(self) -> Option<&'a str> {
        match self {
            HostRef::Instance(_, i) => i.run.as_deref(),
            HostRef::Internet(_, h) => h.run.as_deref(),
        }
    }
}

/// A stable AWS-shaped id (`eni-0a1b...`, 17 hex digits) for a named thing of a lab, so that
/// logs and explanations name the same interface across runs.
pub fn aws_id(prefix: &str, lab: &str, name: &str) -> String {
    // FNV-1a, 64 bits: stable across Rust versions, unlike the std hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in lab
        .bytes()
        .chain([0u8])
        .chain(name.bytes())
        .chain(prefix.bytes())
    {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{prefix}-0{:016x}", hash)
}
