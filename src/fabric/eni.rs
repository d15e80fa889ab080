//! The network interfaces the fabric filters at and delivers to: each instance's primary
//! interface (at the instance's own index), then every interface of the interface endpoints
//! (requester-managed, with security groups of their own). Packets for an endpoint's
//! interface go to the host that serves its service, which holds those addresses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::scenario::{
    EndpointId, EndpointKind, HostId, InstanceId, Lab, SecurityGroupId, SubnetId, VpcId,
};

/// An index into `Compiled::enis`; below `lab.instances.len()` it is also an `InstanceId`.
pub type EniId = usize;

/// Who an interface belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EniOwner {
    Instance(InstanceId),
    /// An interface endpoint's interface in one of its subnets.
    Endpoint(EndpointId),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Eni {
    pub owner: EniOwner,
    pub vpc: VpcId,
    pub subnet: SubnetId,
    pub ip: Ipv4Addr,
    /// Its IPv6 address, on a dual-stack instance.
    pub ipv6: Option<Ipv6Addr>,
    pub security_groups: Vec<SecurityGroupId>,
    pub source_dest_check: bool,
    /// The host whose TUN its packets are written to.
    pub host: HostId,
    /// `eni:HOST` for an instance, `vpce:NAME` for an endpoint (as `via:` names it).
    pub component: String,
}

impl Eni {
    /// True when `addr` is one of the interface's own addresses (its IPv4 or its IPv6).
    pub fn owns(&self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(a) => a == self.ip,
            IpAddr::V6(a) => self.ipv6 == Some(a),
        }
    }

    /// Its addresses: the IPv4, then the IPv6 if it has one.
    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> {
        std::iter::once(IpAddr::V4(self.ip)).chain(self.ipv6.map(IpAddr::V6))
    }
}

/// Every interface of `lab`, instances first.
pub fn enis(lab: &Lab) -> Vec<Eni> {
    let instances = lab.instances.iter().enumerate().map(|(id, i)| Eni {
        owner: EniOwner::Instance(id),
        vpc: i.vpc,
        subnet: i.subnet,
        ip: i.private_ip,
        ipv6: i.ipv6,
        security_groups: i.security_groups.clone(),
        source_dest_check: i.source_dest_check,
        host: id,
        component: format!("eni:{}", i.name),
    });
    let endpoints = lab
        .endpoints
        .iter()
        .enumerate()
        .filter(|(_, e)| e.kind == EndpointKind::Interface)
        .flat_map(|(id, e)| {
            let host = lab.internet_host_id(lab.services[e.service].host);
            e.interfaces.iter().map(move |nic| Eni {
                owner: EniOwner::Endpoint(id),
                vpc: e.vpc,
                subnet: nic.subnet,
                ip: nic.private_ip,
                ipv6: None,
                security_groups: e.security_groups.clone(),
                // Requester-managed: it answers only for its own address.
                source_dest_check: true,
                host,
                component: format!("vpce:{}", e.name),
            })
        });
    instances.chain(endpoints).collect()
}
