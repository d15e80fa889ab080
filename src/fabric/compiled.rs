//! The lab compiled for fast decisions: route tables as longest-prefix-first lists, per-VPC
//! address maps, the member addresses of each security group, and a stable tag per VPC for
//! connection tracking. Built once per `up`, swapped whole on change.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::scenario::{InstanceId, Lab, PeeringId, RouteTarget, SecurityGroupId, VpcId};

use super::conntrack::EniTag;

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
    /// Per VPC: which instance holds which private address.
    pub(super) addresses: Vec<HashMap<Ipv4Addr, InstanceId>>,
    /// Per security group: the private addresses of its members, sorted (SG references match
    /// these, aws-rules.md §2.2).
    members: Vec<Vec<Ipv4Addr>>,
    /// Per VPC: a tag derived from its name, so tracked flows survive a recompile that
    /// renumbers VPCs or instances.
    vpc_tags: Vec<u64>,
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
                    },
                    route: RouteRef::Declared(i),
                });
                let mut routes: Vec<CompiledRoute> = local.chain(declared).collect();
                // Longest prefix first; the sort is stable, so local (listed first) wins a tie,
                // as the local route beats propagated ones (aws-rules.md §1.3).
                routes.sort_by_key(|r| std::cmp::Reverse(r.destination.prefix_len()));
                routes
            })
            .collect();
        let mut addresses = vec![HashMap::new(); lab.vpcs.len()];
        for (id, instance) in lab.instances.iter().enumerate() {
            addresses[instance.vpc].insert(instance.private_ip, id);
        }
        let mut members = vec![Vec::new(); lab.security_groups.len()];
        for instance in &lab.instances {
            for &g in &instance.security_groups {
                members[g].push(instance.private_ip);
            }
        }
        for m in &mut members {
            m.sort();
            m.dedup();
        }
        let vpc_tags = lab.vpcs.iter().map(|v| name_tag(&v.name)).collect();
        Compiled {
            lab,
            tables,
            addresses,
            members,
            vpc_tags,
        }
    }

    /// True when `addr` is the private address of a member of security group `group`.
    pub fn is_member(&self, group: SecurityGroupId, addr: Ipv4Addr) -> bool {
        self.members[group].binary_search(&addr).is_ok()
    }

    /// The connection-tracking identity of an instance's interface.
    pub fn eni_tag(&self, eni: InstanceId) -> EniTag {
        let i = &self.lab.instances[eni];
        EniTag {
            vpc: self.vpc_tags[i.vpc],
            addr: i.private_ip,
        }
    }

    /// Longest-prefix match in one route table.
    pub fn lookup(&self, table: usize, dst: Ipv4Addr) -> Option<&CompiledRoute> {
        self.tables[table]
            .iter()
            .find(|r| r.destination.contains(&dst))
    }

    /// The instance holding `addr` in `vpc`, if any.
    pub fn instance_at(&self, vpc: VpcId, addr: Ipv4Addr) -> Option<InstanceId> {
        self.addresses[vpc].get(&addr).copied()
    }

    pub fn vpc_contains(&self, vpc: VpcId, addr: Ipv4Addr) -> bool {
        self.lab.vpcs[vpc].cidrs.iter().any(|c| c.contains(&addr))
    }

    /// The instance that owns `addr` in any VPC (for naming a probe's destination).
    pub fn instance_anywhere(&self, addr: Ipv4Addr) -> Option<InstanceId> {
        self.addresses.iter().find_map(|m| m.get(&addr).copied())
    }
}

/// FNV-1a of a name: stable across runs and builds, unlike `DefaultHasher`'s promise.
fn name_tag(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
