//! The lab compiled for fast decisions: route tables as longest-prefix-first lists with a
//! longest-prefix-match index (`lookup`), per-VPC address maps, the member addresses of each
//! security group, and a stable tag per VPC for connection tracking. Built once per `up`,
//! swapped whole on change.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::scenario::{
    EndpointId, HostId, InstanceId, InternetHostId, Lab, MirrorSessionId, NatGatewayId, PeeringId,
    RouteTarget, SecurityGroupId, VpcId,
};

use super::conntrack::EniTag;
use super::eni::{self, Eni, EniId};
use super::lookup::{AddrMap, PrefixIndex};

/// Which route of a table matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteRef {
    /// The implicit local route for the VPC's CIDR with this index.
    Local(usize),
    /// The declared route with this index in `RouteTable::routes`.
    Declared(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompiledTarget {
    Local,
    Blackhole,
    Peering(PeeringId),
    InternetGateway,
    NatGateway(NatGatewayId),
    GatewayEndpoint(EndpointId),
    /// An instance's interface: a NAT instance or an appliance forwards what arrives.
    Instance(InstanceId),
}

/// Who a public IPv4 of the lab belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicOwner {
    Instance(InstanceId),
    NatGateway(NatGatewayId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompiledRoute {
    pub destination: Ipv4Net,
    pub target: CompiledTarget,
    pub route: RouteRef,
}

/// A lab ready for the decision function.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub lab: Lab,
    /// Per route table: every route, local ones included, longest prefix first.
    pub(super) tables: Vec<Vec<CompiledRoute>>,
    /// Per route table: its destinations indexed for longest-prefix match.
    prefixes: Vec<PrefixIndex>,
    /// Every network interface: instances' first (same index), then endpoints'.
    enis: Vec<Eni>,
    /// Per VPC: which interface holds which private address.
    pub(super) addresses: Vec<AddrMap<EniId>>,
    /// Per security group: the private addresses of its members, sorted (SG references match
    /// these, aws-rules.md §2.2).
    members: Vec<Vec<Ipv4Addr>>,
    /// Per VPC: a tag derived from its name, so tracked flows survive a recompile that
    /// renumbers VPCs or instances.
    vpc_tags: Vec<u64>,
    /// Public IPv4s (instances' and NAT gateways') and who holds each.
    public: AddrMap<PublicOwner>,
    /// Per VPC: the same pairs the other way, private address to public IPv4, as the
    /// internet gateway translates outbound.
    public_by_private: Vec<AddrMap<Ipv4Addr>>,
    /// Internet hosts by address, as host ids.
    internet: AddrMap<HostId>,
    /// Per NAT gateway: a tag from its name, so translations survive a recompile.
    nat_tags: Vec<u64>,
    /// Per internet host: the gateway endpoints whose service it serves.
    endpoints_of_host: Vec<Vec<EndpointId>>,
    /// Per internet host: the interface-endpoint interfaces whose addresses it holds.
    enis_of_host: Vec<Vec<(Ipv4Addr, EniId)>>,
    /// Per instance: the traffic mirror sessions whose source it is, by ascending session
    /// number (the order AWS tries them in).
    mirror_sessions: Vec<Vec<MirrorSessionId>>,
}

impl Compiled {
    pub fn new(lab: Lab) -> Compiled {
        let tables = lab
            .route_tables
            .iter()
            .map(|table| {
                let vpc = &lab.vpcs[table.vpc];
                let local = vpc.cidrs.iter().enumerate().map(|(i, cidr)| CompiledRoute {
                    destination: *cidr,
                    target: CompiledTarget::Local,
                    route: RouteRef::Local(i),
                });
                let declared = table.routes.iter().enumerate().map(|(i, r)| CompiledRoute {
                    destination: r.destination,
                    target: match r.target {
                        RouteTarget::Blackhole => CompiledTarget::Blackhole,
                        RouteTarget::Peering(p) => CompiledTarget::Peering(p),
                        RouteTarget::InternetGateway => CompiledTarget::InternetGateway,
                        RouteTarget::NatGateway(g) => CompiledTarget::NatGateway(g),
                        RouteTarget::GatewayEndpoint(e) => CompiledTarget::GatewayEndpoint(e),
                        RouteTarget::Instance(i) => CompiledTarget::Instance(i),
                        // VPN: wired by the lead (until then a VGW route drops as a blackhole).
                        RouteTarget::VpnGateway(_) => CompiledTarget::Blackhole,
                    },
                    route: RouteRef::Declared(i),
                });
                let mut routes: Vec<CompiledRoute> = local.chain(declared).collect();
                // Longest prefix first; the sort is stable, so local (listed first) wins a tie,
                // as the local route beats propagated ones (aws-rules.md §1.3).
                routes.sort_by_key(|r| std::cmp::Reverse(r.destination.prefix_len()));
                routes
            })
            .collect::<Vec<_>>();
        let prefixes = tables
            .iter()
            .map(|routes| PrefixIndex::new(routes.iter().map(|r| r.destination)))
            .collect();
        let enis = eni::enis(&lab);
        let mut addresses = vec![AddrMap::default(); lab.vpcs.len()];
        let mut members = vec![Vec::new(); lab.security_groups.len()];
        let mut enis_of_host = vec![Vec::new(); lab.internet.hosts.len()];
        for (id, e) in enis.iter().enumerate() {
            addresses[e.vpc].insert(e.ip, id);
            for &g in &e.security_groups {
                members[g].push(e.ip);
            }
            if let Some(n) = e.host.checked_sub(lab.instances.len()) {
                enis_of_host[n].push((e.ip, id));
            }
        }
        for m in &mut members {
            m.sort();
            m.dedup();
        }
        let vpc_tags = lab.vpcs.iter().map(|v| name_tag(&v.name)).collect();
        let mut public = AddrMap::default();
        let mut public_by_private = vec![AddrMap::default(); lab.vpcs.len()];
        for (id, i) in lab.instances.iter().enumerate() {
            if let Some(p) = i.public_ip {
                public.insert(p.addr, PublicOwner::Instance(id));
                public_by_private[i.vpc].insert(i.private_ip, p.addr);
            }
        }
        for (id, g) in lab.nat_gateways.iter().enumerate() {
            public.insert(g.public_ip, PublicOwner::NatGateway(id));
            public_by_private[g.vpc].insert(g.private_ip, g.public_ip);
        }
        let internet = (0..lab.internet.hosts.len())
            .map(|n| (lab.internet.hosts[n].ip, lab.internet_host_id(n)))
            .collect();
        let nat_tags = lab.nat_gateways.iter().map(|g| name_tag(&g.name)).collect();
        let mut endpoints_of_host = vec![Vec::new(); lab.internet.hosts.len()];
        for (id, e) in lab.endpoints.iter().enumerate() {
            endpoints_of_host[lab.services[e.service].host].push(id);
        }
        let mut mirror_sessions = vec![Vec::new(); lab.instances.len()];
        for (id, session) in lab.mirror_sessions.iter().enumerate() {
            mirror_sessions[session.source].push(id);
        }
        for sessions in &mut mirror_sessions {
            sessions.sort_by_key(|&s| lab.mirror_sessions[s].session_number);
        }
        Compiled {
            lab,
            tables,
            prefixes,
            addresses,
            members,
            vpc_tags,
            public,
            public_by_private,
            internet,
            nat_tags,
            endpoints_of_host,
            enis_of_host,
            enis,
            mirror_sessions,
        }
    }

    /// The traffic mirror sessions of `eni` as a source, by ascending session number.
    pub fn mirror_sessions_of(&self, eni: InstanceId) -> &[MirrorSessionId] {
        // Internet hosts (host ids past the instances) have no ENI to mirror.
        self.mirror_sessions.get(eni).map_or(&[], Vec::as_slice)
    }

    /// True when `addr` is the private address of a member of security group `group`.
    pub fn is_member(&self, group: SecurityGroupId, addr: Ipv4Addr) -> bool {
        self.members[group].binary_search(&addr).is_ok()
    }

    /// Network interface `eni`.
    pub fn eni(&self, eni: EniId) -> &Eni {
        &self.enis[eni]
    }

    /// The connection-tracking identity of a network interface.
    pub fn eni_tag(&self, eni: EniId) -> EniTag {
        let e = &self.enis[eni];
        EniTag {
            vpc: self.vpc_tags[e.vpc],
            addr: e.ip,
        }
    }

    /// The interface-endpoint interfaces whose addresses internet host `n` answers on.
    pub fn enis_of_host(&self, n: InternetHostId) -> &[(Ipv4Addr, EniId)] {
        &self.enis_of_host[n]
    }

    /// Longest-prefix match in one route table.
    pub fn lookup(&self, table: usize, dst: Ipv4Addr) -> Option<&CompiledRoute> {
        let found = self.prefixes[table].find(dst)?;
        Some(&self.tables[table][found])
    }

    /// The network interface holding `addr` in `vpc`, if any.
    pub fn eni_at(&self, vpc: VpcId, addr: Ipv4Addr) -> Option<EniId> {
        self.addresses[vpc].get(addr).copied()
    }

    /// The instance holding `addr` in `vpc`, if any.
    pub fn instance_at(&self, vpc: VpcId, addr: Ipv4Addr) -> Option<InstanceId> {
        self.eni_at(vpc, addr)
            .filter(|&e| e < self.lab.instances.len())
    }

    pub fn vpc_contains(&self, vpc: VpcId, addr: Ipv4Addr) -> bool {
        self.lab.vpcs[vpc].cidrs.iter().any(|c| c.contains(&addr))
    }

    /// The instance that owns `addr` in any VPC (for naming a probe's destination).
    pub fn instance_anywhere(&self, addr: Ipv4Addr) -> Option<InstanceId> {
        let instances = self.lab.instances.len();
        self.addresses
            .iter()
            .find_map(|m| m.get(addr).copied().filter(|&e| e < instances))
    }

    /// Who holds public IPv4 `addr`, if anyone.
    pub fn public_owner(&self, addr: Ipv4Addr) -> Option<PublicOwner> {
        self.public.get(addr).copied()
    }

    /// The internet host at `addr`, if any.
    pub fn internet_host_at(&self, addr: Ipv4Addr) -> Option<HostId> {
        self.internet.get(addr).copied()
    }

    /// The public IPv4 the internet gateway of `vpc` maps private address `addr` to: an
    /// instance's public IP, or a NAT gateway's Elastic IP.
    pub fn public_of(&self, vpc: VpcId, addr: Ipv4Addr) -> Option<Ipv4Addr> {
        self.public_by_private[vpc].get(addr).copied()
    }

    /// The gateway endpoints whose service internet host `n` serves.
    pub fn endpoints_of_host(&self, n: InternetHostId) -> &[EndpointId] {
        &self.endpoints_of_host[n]
    }

    /// The connection-tracking identity of a gateway endpoint: it has no interface, but it
    /// must know which VPC a service's reply goes back to.
    pub fn endpoint_tag(&self, endpoint: EndpointId) -> EniTag {
        let e = &self.lab.endpoints[endpoint];
        EniTag {
            vpc: self.vpc_tags[e.vpc] ^ name_tag(&e.name),
            addr: self.lab.services[e.service].prefix_list.network(),
        }
    }

    /// The translation identity of a NAT gateway.
    pub fn nat_tag(&self, gateway: NatGatewayId) -> u64 {
        self.nat_tags[gateway]
    }
}

/// FNV-1a of a name: stable across runs and builds, unlike `DefaultHasher`'s promise.
fn name_tag(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
