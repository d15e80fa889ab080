//! Scenario layer: the typed lab's internet edge: the simulated internet and its hosts, public
//! IPs, NAT gateways, AWS services and VPC endpoints.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::{InternetHostId, RouteTableId, SecurityGroupId, Service, ServiceId, SubnetId, VpcId};

/// A regional AWS service (s3, dynamodb, ...) on a public address of the lab's internet.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsService {
    /// The key in `services:`, also the name of its host and of its prefix list `pl:NAME`.
    pub name: String,
    /// What it is: s3, dynamodb, sqs, ...
    pub kind: String,
    pub region: String,
    /// The internet host that serves it.
    pub host: InternetHostId,
    /// Its prefix list: the addresses the service answers on.
    pub prefix_list: Ipv4Net,
}

impl AwsService {
    /// `s3.us-east-1.amazonaws.com`.
    pub fn dns_name(&self) -> String {
        format!("{}.{}.amazonaws.com", self.kind, self.region)
    }
}

/// A VPC endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub name: String,
    pub vpc: VpcId,
    pub service: ServiceId,
    pub kind: EndpointKind,
    /// Gateway endpoints add a route `pl:SERVICE -> vpce:NAME` to these tables.
    pub route_tables: Vec<RouteTableId>,
    /// Interface endpoints: a network interface in each chosen subnet.
    pub interfaces: Vec<EndpointInterface>,
    /// Interface endpoints: the groups of those interfaces.
    pub security_groups: Vec<SecurityGroupId>,
    /// Interface endpoints: the service's public name resolves, inside the VPC, to the
    /// endpoint's interfaces.
    pub private_dns: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointKind {
    /// Routes to the service's prefix list; no interface, no security group (S3, DynamoDB).
    Gateway,
    /// PrivateLink: an interface with a private address in each chosen subnet.
    Interface,
}

/// One network interface of an interface endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointInterface {
    pub subnet: SubnetId,
    pub private_ip: Ipv4Addr,
}

/// The simulated internet: its hosts and the pool public IPs and Elastic IPs come from.
#[derive(Debug, Clone, PartialEq)]
pub struct Internet {
    pub public_pool: Ipv4Net,
    pub hosts: Vec<InternetHost>,
}

/// A host on the internet side of the lab, on a public (documentation) address.
#[derive(Debug, Clone, PartialEq)]
pub struct InternetHost {
    pub name: String,
    pub ip: Ipv4Addr,
    pub ipv6: Option<std::net::Ipv6Addr>,
    pub services: Vec<Service>,
    /// Its name in DNS (e.g. example.com), resolvable from every host of the lab.
    pub dns: Option<String>,
    pub run: Option<String>,
}

/// A public NAT gateway: an interface in a public subnet with an Elastic IP.
#[derive(Debug, Clone, PartialEq)]
pub struct NatGateway {
    pub name: String,
    pub vpc: VpcId,
    pub subnet: SubnetId,
    pub private_ip: Ipv4Addr,
    pub public_ip: Ipv4Addr,
}

/// A public IPv4 of an instance: auto-assigned, or an Elastic IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicIp {
    pub addr: Ipv4Addr,
    pub elastic: bool,
}
