//! The lab compiled for fast decisions: route tables as longest-prefix-first lists with a
//! longest-prefix-match index (`lookup`), per-VPC address maps, the member addresses of each
//! security group, and a stable tag per VPC for connection tracking. Built once per `up`,
//! swapped whole on change.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};

use crate::scenario::{
    EndpointId, HostId, InstanceId, InternetHostId, Lab, MirrorSessionId, NatGatewayId, PeeringId,
    RouteTarget, SecurityGroupId, SiteId, TgwAttachmentId, TransitGatewayId, VpcId, VpnGatewayId,
};

use super::conntrack::EniTag;
use super::eni::{self, Eni, EniId};
use super::lookup::{AddrMap, PrefixIndex};
use super::tunnels::{TunnelRef, TunnelStates};
use crate::wire::FlowKey;

/// Which route of a table matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteRef {
    /// The implicit local route for the VPC's CIDR with this index.
    Local(usize),
    /// The declared route with this index in `RouteTable::routes`.
    Declared(usize),
    /// The `index`-th static route of VPN connection `connection`, propagated from its VGW
    /// into the table (`propagate:`).
    Propagated { connection: usize, index: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompiledTarget {
    Local,
    Blackhole,
    Peering(PeeringId),
    InternetGateway,
    EgressOnlyInternetGateway,
    NatGateway(NatGatewayId),
    GatewayEndpoint(EndpointId),
    /// An instance's interface: a NAT instance or an appliance forwards what arrives.
    Instance(InstanceId),
    /// A virtual private gateway: on through one of its VPN connections.
    VpnGateway(VpnGatewayId),
    /// A transit gateway: on by the route table its attachment from this VPC is associated with.
    TransitGateway(TransitGatewayId),
}

/// Which route of a transit gateway's route table matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TgwRouteRef {
    /// The static route with this index in `TgwRouteTable::routes`.
    Static(usize),
    /// A CIDR of the VPC of the attachment that propagates it.
    Propagated(TgwAttachmentId),
}

/// One route of a transit gateway route table, compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TgwCompiledRoute {
    pub destination: IpNet,
    /// None: blackhole.
    pub attachment: Option<TgwAttachmentId>,
    pub route: TgwRouteRef,
}

/// Who a public IPv4 of the lab belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicOwner {
    Instance(InstanceId),
    NatGateway(NatGatewayId),
}

/// A prefix a VPN connection learned by BGP, with what AWS ranks equal prefixes by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LearnedRoute {
    pub prefix: Ipv4Net,
    pub as_path_len: usize,
    pub med: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompiledRoute {
    pub destination: IpNet,
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
    /// Per VPC: which interface holds which private IPv4 or IPv6 address.
    pub(super) addresses: Vec<AddrMap<EniId>>,
    /// Per security group: the private IPv4 and the IPv6 addresses of its members, sorted
    /// (SG references match these, aws-rules.md §2.2).
    members: Vec<Vec<IpAddr>>,
    /// The IPv6 blocks of the VPCs that have one, and which VPC each is.
    ipv6_blocks: PrefixIndex,
    ipv6_block_vpcs: Vec<VpcId>,
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
    /// Which VPN tunnels are up (shared by every copy of this lab).
    pub tunnels: TunnelStates,
    /// The AWS ends of the VPN tunnels, by outside address.
    vpn_endpoints: AddrMap<TunnelRef>,
    /// Hosts of the on-premises sites, by address.
    site_hosts: AddrMap<HostId>,
    /// Per VPN connection: what its BGP sessions learned.
    learned: Vec<Vec<LearnedRoute>>,
    /// Per transit gateway, per route table: its routes, longest prefix first, and their index.
    tgw_tables: Vec<Vec<(Vec<TgwCompiledRoute>, PrefixIndex)>>,
}

impl Compiled {
    /// The lab as designed: each BGP connection's sessions up and its site announcing its
    /// own network (the model without a running lab; the daemon compiles what the sessions
    /// really learned, with `with_learned`).
    pub fn new(lab: Lab) -> Compiled {
        let tunnels = TunnelStates::new(lab.vpn_connections.len());
        let learned = lab
            .vpn_connections
            .iter()
            .map(|c| match c.routing {
                crate::scenario::VpnRouting::Bgp => vec![LearnedRoute {
                    prefix: lab.sites[c.site].cidr,
                    as_path_len: 1,
                    med: None,
                }],
                crate::scenario::VpnRouting::Static => Vec::new(),
            })
            .collect();
        Compiled::with_learned(lab, learned, tunnels)
    }

    /// The lab with what its BGP sessions learned (per VPN connection, `learned[c]`) in its
    /// route tables, and the tunnel states of the version it follows.
    pub fn with_learned(
        lab: Lab,
        learned: Vec<Vec<LearnedRoute>>,
        tunnels: TunnelStates,
    ) -> Compiled {
        let learned: Vec<Vec<LearnedRoute>> = (0..lab.vpn_connections.len())
            .map(|c| learned.get(c).cloned().unwrap_or_default())
            .collect();
        let tables = lab
            .route_tables
            .iter()
            .map(|table| {
                let vpc = &lab.vpcs[table.vpc];
                // The local routes: one per IPv4 block, then the IPv6 block (aws-rules.md §1.3).
                let local = vpc
                    .local_blocks()
                    .enumerate()
                    .map(|(i, cidr)| CompiledRoute {
                        destination: cidr,
                        target: CompiledTarget::Local,
                        route: RouteRef::Local(i),
                    });
                let declared = table.routes.iter().enumerate().map(|(i, r)| CompiledRoute {
                    destination: r.destination,
                    target: match r.target {
                        RouteTarget::Blackhole => CompiledTarget::Blackhole,
                        RouteTarget::Peering(p) => CompiledTarget::Peering(p),
                        RouteTarget::InternetGateway => CompiledTarget::InternetGateway,
                        RouteTarget::EgressOnlyInternetGateway => {
                            CompiledTarget::EgressOnlyInternetGateway
                        }
                        RouteTarget::NatGateway(g) => CompiledTarget::NatGateway(g),
                        RouteTarget::GatewayEndpoint(e) => CompiledTarget::GatewayEndpoint(e),
                        RouteTarget::Instance(i) => CompiledTarget::Instance(i),
                        RouteTarget::VpnGateway(g) => CompiledTarget::VpnGateway(g),
                        RouteTarget::TransitGateway(t) => CompiledTarget::TransitGateway(t),
                    },
                    route: RouteRef::Declared(i),
                });
                // The routes of the VPN connections of each VGW the table propagates from:
                // static ones first, then learned ones by AS path length and MED, so that of
                // equal prefixes the one AWS prefers comes first (aws-rules.md §1.3).
                let mut propagated: Vec<(usize, u32, CompiledRoute)> = Vec::new();
                for &g in &table.propagate {
                    for (connection, c) in lab.vpn_connections.iter().enumerate() {
                        if c.gateway != g {
                            continue;
                        }
                        let prefixes = propagated_prefixes(c, &learned[connection]);
                        for (index, (prefix, rank)) in prefixes.enumerate() {
                            propagated.push((
                                rank.0,
                                rank.1,
                                CompiledRoute {
                                    destination: IpNet::V4(prefix),
                                    target: CompiledTarget::VpnGateway(g),
                                    route: RouteRef::Propagated { connection, index },
                                },
                            ));
                        }
                    }
                }
                propagated.sort_by_key(|(path, med, _)| (*path, *med));
                let mut routes: Vec<CompiledRoute> = local
                    .chain(declared)
                    .chain(propagated.into_iter().map(|(_, _, r)| r))
                    .collect();
                // Longest prefix first; the sort is stable, so of equal prefixes local (listed
                // first) wins, then a static route of the table, then a propagated one
                // (aws-rules.md §1.3).
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
            for addr in e.addresses() {
                addresses[e.vpc].insert(addr, id);
                for &g in &e.security_groups {
                    members[g].push(addr);
                }
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
        let mut internet = AddrMap::default();
        for (n, h) in lab.internet.hosts.iter().enumerate() {
            internet.insert(h.ip, lab.internet_host_id(n));
            if let Some(v6) = h.ipv6 {
                internet.insert(v6, lab.internet_host_id(n));
            }
        }
        let mut blocks: Vec<(IpNet, VpcId)> = (lab.vpcs.iter().enumerate())
            .filter_map(|(id, v)| Some((IpNet::V6(v.ipv6_cidr?), id)))
            .collect();
        blocks.sort_by_key(|(net, _)| std::cmp::Reverse(net.prefix_len()));
        let ipv6_blocks = PrefixIndex::new(blocks.iter().map(|(net, _)| *net));
        let ipv6_block_vpcs = blocks.iter().map(|(_, vpc)| *vpc).collect();
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
        let tgw_tables = lab
            .transit_gateways
            .iter()
            .map(|g| {
                g.route_tables
                    .iter()
                    .map(|t| tgw_table(&lab, g, t))
                    .collect()
            })
            .collect();
        let mut vpn_endpoints = AddrMap::default();
        for (connection, c) in lab.vpn_connections.iter().enumerate() {
            for (index, t) in c.tunnels.iter().enumerate() {
                vpn_endpoints.insert(t.outside_ip, TunnelRef { connection, index });
            }
        }
        let site_hosts = (lab.host_count()..lab.all_host_count())
            .map(|id| (lab.host_ip(id), id))
            .collect();
        Compiled {
            lab,
            tables,
            prefixes,
            addresses,
            members,
            ipv6_blocks,
            ipv6_block_vpcs,
            vpc_tags,
            public,
            public_by_private,
            internet,
            nat_tags,
            endpoints_of_host,
            enis_of_host,
            enis,
            mirror_sessions,
            tunnels,
            vpn_endpoints,
            site_hosts,
            learned,
            tgw_tables,
        }
    }

    /// Longest-prefix match in route table `table` of transit gateway `tgw`.
    pub fn tgw_lookup(&self, tgw: usize, table: usize, dst: IpAddr) -> Option<&TgwCompiledRoute> {
        let (routes, index) = self.tgw_tables.get(tgw)?.get(table)?;
        routes.get(index.find(dst)?)
    }

    /// The `index`-th prefix VPN connection `connection` propagates (`RouteRef::Propagated`).
    pub fn propagated_prefix(&self, connection: usize, index: usize) -> Option<Ipv4Net> {
        let c = self.lab.vpn_connections.get(connection)?;
        propagated_prefixes(c, &self.learned[connection])
            .nth(index)
            .map(|(p, _)| p)
    }

    /// What every VPN connection learned by BGP.
    pub fn all_learned(&self) -> Vec<Vec<LearnedRoute>> {
        self.learned.clone()
    }

    /// What VPN connection `connection` learned by BGP.
    pub fn learned(&self, connection: usize) -> &[LearnedRoute] {
        self.learned.get(connection).map_or(&[], Vec::as_slice)
    }

    /// True when VPN connection `connection` carries packets from or to `addr` on the site's
    /// side: its site's network, its static routes, or what it learned by BGP.
    pub fn site_side(&self, connection: usize, addr: IpAddr) -> bool {
        let IpAddr::V4(a) = addr else { return false };
        let c = &self.lab.vpn_connections[connection];
        self.lab.sites[c.site].cidr.contains(&a)
            || c.static_routes.iter().any(|r| r.contains(&a))
            || self
                .learned(connection)
                .iter()
                .any(|r| r.prefix.contains(&a))
    }

    /// The traffic mirror sessions of `eni` as a source, by ascending session number.
    pub fn mirror_sessions_of(&self, eni: InstanceId) -> &[MirrorSessionId] {
        // Internet hosts (host ids past the instances) have no ENI to mirror.
        self.mirror_sessions.get(eni).map_or(&[], Vec::as_slice)
    }

    /// True when `addr` is the private address of a member of security group `group`.
    pub fn is_member(&self, group: SecurityGroupId, addr: IpAddr) -> bool {
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
    pub fn lookup(&self, table: usize, dst: IpAddr) -> Option<&CompiledRoute> {
        let found = self.prefixes[table].find(dst)?;
        Some(&self.tables[table][found])
    }

    /// The network interface holding `addr` in `vpc`, if any.
    pub fn eni_at(&self, vpc: VpcId, addr: IpAddr) -> Option<EniId> {
        self.addresses[vpc].get(addr).copied()
    }

    /// The instance holding `addr` in `vpc`, if any.
    pub fn instance_at(&self, vpc: VpcId, addr: IpAddr) -> Option<InstanceId> {
        self.eni_at(vpc, addr)
            .filter(|&e| e < self.lab.instances.len())
    }

    /// True when `addr` lies in one of `vpc`'s IPv4 blocks or in its IPv6 block.
    pub fn vpc_contains(&self, vpc: VpcId, addr: IpAddr) -> bool {
        let v = &self.lab.vpcs[vpc];
        match addr {
            IpAddr::V4(a) => v.cidrs.iter().any(|c| c.contains(&a)),
            IpAddr::V6(a) => v.ipv6_cidr.is_some_and(|c| c.contains(&a)),
        }
    }

    /// The VPC whose IPv6 block holds `addr`, if any (IPv6 addresses are global: the
    /// internet reaches them untranslated).
    pub fn vpc_of_ipv6(&self, addr: IpAddr) -> Option<VpcId> {
        let found = self.ipv6_blocks.find(addr)?;
        Some(self.ipv6_block_vpcs[found])
    }

    /// The instance that owns `addr` in any VPC (for naming a probe's destination).
    pub fn instance_anywhere(&self, addr: IpAddr) -> Option<InstanceId> {
        let instances = self.lab.instances.len();
        self.addresses
            .iter()
            .find_map(|m| m.get(addr).copied().filter(|&e| e < instances))
    }

    /// Who holds public IPv4 `addr`, if anyone.
    pub fn public_owner(&self, addr: IpAddr) -> Option<PublicOwner> {
        self.public.get(addr).copied()
    }

    /// The internet host at `addr`, if any.
    pub fn internet_host_at(&self, addr: IpAddr) -> Option<HostId> {
        self.internet.get(addr).copied()
    }

    /// The public IPv4 the internet gateway of `vpc` maps private address `addr` to: an
    /// instance's public IP, or a NAT gateway's Elastic IP.
    pub fn public_of(&self, vpc: VpcId, addr: IpAddr) -> Option<Ipv4Addr> {
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

    /// The tunnel whose AWS end a datagram from the internet is for: UDP to the tunnel's
    /// outside address and port, from its customer gateway.
    pub fn vpn_endpoint(&self, key: &FlowKey) -> Option<TunnelRef> {
        if key.protocol != crate::wire::PROTO_UDP {
            return None;
        }
        let t = *self.vpn_endpoints.get(key.dst)?;
        let connection = &self.lab.vpn_connections[t.connection];
        let tunnel = &connection.tunnels[t.index];
        let cgw = self.lab.sites[connection.site].customer_gateway.public_ip;
        (key.dst_port == tunnel.aws_port && key.src == IpAddr::V4(cgw)).then_some(t)
    }

    /// The on-premises host at `addr`, if any.
    pub fn site_host_at(&self, addr: IpAddr) -> Option<HostId> {
        self.site_hosts.get(addr).copied()
    }

    /// The site whose network holds `addr`, if any.
    pub fn site_of(&self, addr: IpAddr) -> Option<SiteId> {
        let IpAddr::V4(a) = addr else { return None };
        self.lab.sites.iter().position(|s| s.cidr.contains(&a))
    }

    /// The connection-tracking identity of the egress-only internet gateway of `vpc`: it
    /// remembers the flows its VPC opened, so that only their replies come in.
    pub fn egress_only_tag(&self, vpc: VpcId) -> EniTag {
        EniTag {
            vpc: self.vpc_tags[vpc] ^ name_tag("eigw"),
            addr: Ipv4Addr::UNSPECIFIED,
        }
    }

    /// The translation identity of a NAT gateway.
    pub fn nat_tag(&self, gateway: NatGatewayId) -> u64 {
        self.nat_tags[gateway]
    }
}

/// The prefixes a VPN connection propagates, in `RouteRef::Propagated` order, each with its
/// rank among equal prefixes (AS path length, MED): static routes first (rank 0), then what
/// BGP learned.
fn propagated_prefixes<'a>(
    c: &'a crate::scenario::VpnConnection,
    learned: &'a [LearnedRoute],
) -> impl Iterator<Item = (Ipv4Net, (usize, u32))> + 'a {
    let fixed = c.static_routes.iter().map(|p| (*p, (0, 0)));
    let dynamic = learned
        .iter()
        .map(|r| (r.prefix, (r.as_path_len, r.med.unwrap_or(0))));
    fixed.chain(dynamic)
}

/// A transit gateway route table's routes, static first, then the CIDRs its propagating
/// attachments' VPCs have, sorted longest prefix first (static winning a tie, aws-rules.md §9.3).
fn tgw_table(
    lab: &Lab,
    g: &crate::scenario::TransitGateway,
    t: &crate::scenario::TgwRouteTable,
) -> (Vec<TgwCompiledRoute>, PrefixIndex) {
    let fixed = t.routes.iter().enumerate().map(|(i, r)| TgwCompiledRoute {
        destination: IpNet::V4(r.destination),
        attachment: r.attachment,
        route: TgwRouteRef::Static(i),
    });
    let learned = t.propagations.iter().flat_map(|&a| {
        lab.vpcs[g.attachments[a].vpc]
            .cidrs
            .iter()
            .map(move |c| TgwCompiledRoute {
                destination: IpNet::V4(*c),
                attachment: Some(a),
                route: TgwRouteRef::Propagated(a),
            })
    });
    let mut routes: Vec<TgwCompiledRoute> = fixed.chain(learned).collect();
    routes.sort_by_key(|r| std::cmp::Reverse(r.destination.prefix_len()));
    let index = PrefixIndex::new(routes.iter().map(|r| r.destination));
    (routes, index)
}

/// FNV-1a of a name: stable across runs and builds, unlike `DefaultHasher`'s promise.
fn name_tag(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
