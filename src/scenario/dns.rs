//! Scenario layer: the names of a lab in DNS (aws-rules.md §11) and what the Amazon DNS
//! resolver of a VPC answers for each of them, depending on who asks. Pure; the daemon answers
//! packets with it.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::lab::{EndpointKind, InstanceId, Lab, VpcId};

/// The region where EC2 names differ from every other region's (its names predate the rest).
const FIRST_REGION: &str = "us-east-1";

/// The domain of private DNS names in `region`: `ec2.internal` in us-east-1,
/// `REGION.compute.internal` elsewhere. Also the search domain AWS's DHCP options hand out.
pub fn internal_domain(region: &str) -> String {
    if region == FIRST_REGION {
        "ec2.internal".to_string()
    } else {
        format!("{region}.compute.internal")
    }
}

/// The domain of public DNS names in `region`: `compute-1.amazonaws.com` in us-east-1,
/// `REGION.compute.amazonaws.com` elsewhere.
pub fn public_domain(region: &str) -> String {
    if region == FIRST_REGION {
        "compute-1.amazonaws.com".to_string()
    } else {
        format!("{region}.compute.amazonaws.com")
    }
}

fn is_internal_domain(region: &str, domain: &str) -> bool {
    if region == FIRST_REGION {
        domain == "ec2.internal"
    } else {
        domain.strip_suffix(".compute.internal") == Some(region)
    }
}

fn is_public_domain(region: &str, domain: &str) -> bool {
    if region == FIRST_REGION {
        domain == "compute-1.amazonaws.com"
    } else {
        domain.strip_suffix(".compute.amazonaws.com") == Some(region)
    }
}

/// `10-0-1-10` → 10.0.1.10.
fn dashed_ip(text: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = text.split('-');
    for octet in &mut octets {
        *octet = parts.next()?.parse().ok()?;
    }
    parts.next().is_none().then(|| Ipv4Addr::from(octets))
}

fn dashed(ip: Ipv4Addr) -> String {
    let [a, b, c, d] = ip.octets();
    format!("{a}-{b}-{c}-{d}")
}

impl Lab {
    /// An instance's private DNS name, as its `hostname` says: `ip-10-0-1-10.ec2.internal`.
    pub fn private_dns_name(&self, i: InstanceId) -> String {
        let instance = &self.instances[i];
        let region = &self.vpcs[instance.vpc].region;
        format!(
            "ip-{}.{}",
            dashed(instance.private_ip),
            internal_domain(region)
        )
    }

    /// An instance's public DNS name when it has a public IPv4:
    /// `ec2-203-0-113-10.compute-1.amazonaws.com`.
    pub fn public_dns_name(&self, i: InstanceId) -> Option<String> {
        let instance = &self.instances[i];
        let public = instance.public_ip?.addr;
        let region = &self.vpcs[instance.vpc].region;
        Some(format!("ec2-{}.{}", dashed(public), public_domain(region)))
    }

    /// What the Amazon DNS resolver answers instance `asker` for `name` (lowercase, without
    /// the final dot); None is NXDOMAIN:
    /// - a host name of the lab: its own address (an instance's private IPv4), as the hosts'
    ///   /etc/hosts says;
    /// - an internet host's `dns:` name: its address;
    /// - a private DNS name (`ip-A-B-C-D.ec2.internal`) of an instance of the asker's VPC or of
    ///   a peered VPC: that address;
    /// - a public DNS name (`ec2-A-B-C-D.compute-1.amazonaws.com`) of an instance: its private
    ///   IPv4 to an asker of the same VPC, its public IPv4 to anyone else (split horizon).
    ///
    /// Allocates nothing.
    pub fn resolve_dns(&self, asker: InstanceId, name: &str) -> Option<Ipv4Addr> {
        let vpc = self.instances.get(asker)?.vpc;
        if let Some(id) = self.host_by_name(name) {
            return Some(self.host(id).ip());
        }
        if let Some(ip) = self.endpoint_private_dns(asker, name) {
            return Some(ip);
        }
        let internet = &self.internet.hosts;
        if let Some(h) = internet.iter().find(|h| h.dns.as_deref() == Some(name)) {
            return Some(h.ip);
        }
        let (first, domain) = name.split_once('.')?;
        if let Some(ip) = first.strip_prefix("ip-").and_then(dashed_ip) {
            let known = self.instances.iter().any(|i| {
                i.private_ip == ip
                    && self.sees_privately(vpc, i.vpc)
                    && is_internal_domain(&self.vpcs[i.vpc].region, domain)
            });
            return known.then_some(ip);
        }
        let ip = first.strip_prefix("ec2-").and_then(dashed_ip)?;
        let i = self.instances.iter().find(|i| {
            i.public_ip.is_some_and(|p| p.addr == ip)
                && is_public_domain(&self.vpcs[i.vpc].region, domain)
        })?;
        Some(if i.vpc == vpc { i.private_ip } else { ip })
    }

    /// The IPv6 address (AAAA) of `name`: a dual-stack host's, by its name or its DNS name.
    pub fn resolve_dns_ipv6(&self, name: &str) -> Option<Ipv6Addr> {
        if let Some(id) = self.host_by_name(name) {
            return self.host(id).ipv6();
        }
        let internet = &self.internet.hosts;
        internet
            .iter()
            .find(|h| h.dns.as_deref() == Some(name))
            .and_then(|h| h.ipv6)
    }

    /// A service's public name, inside a VPC with an interface endpoint for it and private
    /// DNS on: the endpoint's interface in the asker's Availability Zone (else its first).
    fn endpoint_private_dns(&self, asker: InstanceId, name: &str) -> Option<Ipv4Addr> {
        let instance = &self.instances[asker];
        let az = &self.subnets[instance.subnet].az;
        let e = self.endpoints.iter().find(|e| {
            e.vpc == instance.vpc
                && e.kind == EndpointKind::Interface
                && e.private_dns
                && self.services[e.service].dns_name() == name
        })?;
        let same_az = e
            .interfaces
            .iter()
            .find(|i| &self.subnets[i.subnet].az == az);
        same_az.or(e.interfaces.first()).map(|i| i.private_ip)
    }

    /// Whether the resolver of `asker` knows the private names of `vpc`'s instances: its own
    /// VPC's and those of VPCs peered with it.
    fn sees_privately(&self, asker: VpcId, vpc: VpcId) -> bool {
        asker == vpc || self.peerings.iter().any(|p| p.peer_of(asker) == Some(vpc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::load_str;

    const LAB: &str = r#"
name: names
defaults: { region: us-east-1 }
internet:
  public_pool: 203.0.113.0/24
  hosts:
    example: { ip: 198.51.100.10, dns: example.com }
vpcs:
  a:
    cidr: 10.0.0.0/16
    internet_gateway: true
    subnets:
      pub: { cidr: 10.0.0.0/24, route_table: pub-rt, map_public_ip_on_launch: true }
    route_tables:
      pub-rt: { routes: [{ destination: 0.0.0.0/0, target: igw:a }] }
    instances:
      web1: { subnet: pub, private_ip: 10.0.0.10, public_ip: true }
      web2: { subnet: pub, private_ip: 10.0.0.11, public_ip: false }
  b:
    cidr: 10.1.0.0/16
    subnets:
      b1: { cidr: 10.1.1.0/24 }
    instances:
      peer1: { subnet: b1, private_ip: 10.1.1.10 }
  c:
    cidr: 10.2.0.0/16
    region: eu-west-1
    dns: false
    internet_gateway: true
    subnets:
      c1: { cidr: 10.2.1.0/24, map_public_ip_on_launch: true }
    instances:
      far: { subnet: c1, private_ip: 10.2.1.10 }
peering_connections:
  ab: { requester: a, accepter: b }
"#;

    fn lab() -> Lab {
        load_str(LAB, "names.yaml").unwrap_or_else(|e| panic!("{e}"))
    }

    fn ip(text: &str) -> Option<Ipv4Addr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn names_follow_the_region() {
        let lab = lab();
        let web1 = lab.instance_by_name("web1").unwrap();
        let far = lab.instance_by_name("far").unwrap();
        let public = lab.instances[web1].public_ip.unwrap().addr;
        assert_eq!(lab.private_dns_name(web1), "ip-10-0-0-10.ec2.internal");
        assert_eq!(
            lab.public_dns_name(web1),
            Some(format!("ec2-{}.compute-1.amazonaws.com", dashed(public)))
        );
        let web2 = lab.instance_by_name("web2").unwrap();
        assert_eq!(lab.public_dns_name(web2), None);
        assert_eq!(
            lab.private_dns_name(far),
            "ip-10-2-1-10.eu-west-1.compute.internal"
        );
        let far_public = lab.instances[far].public_ip.unwrap().addr;
        assert_eq!(
            lab.public_dns_name(far),
            Some(format!(
                "ec2-{}.eu-west-1.compute.amazonaws.com",
                dashed(far_public)
            ))
        );
        assert_eq!(internal_domain("us-east-1"), "ec2.internal");
        assert!(lab.vpcs[0].dns && !lab.vpcs[2].dns);
        assert_eq!(lab.vpcs[0].resolver(), ip("10.0.0.2"));
        assert_eq!(lab.vpcs[2].resolver(), None);
    }

    #[test]
    fn host_and_internet_names_resolve_for_everyone() {
        let lab = lab();
        for asker in ["web1", "peer1", "far"] {
            let asker = lab.instance_by_name(asker).unwrap();
            assert_eq!(lab.resolve_dns(asker, "web1"), ip("10.0.0.10"));
            assert_eq!(lab.resolve_dns(asker, "peer1"), ip("10.1.1.10"));
            assert_eq!(lab.resolve_dns(asker, "example"), ip("198.51.100.10"));
            assert_eq!(lab.resolve_dns(asker, "example.com"), ip("198.51.100.10"));
            assert_eq!(lab.resolve_dns(asker, "nothing.example.com"), None);
            assert_eq!(lab.resolve_dns(asker, ""), None);
        }
    }

    #[test]
    fn private_names_resolve_in_the_vpc_and_its_peers_only() {
        let lab = lab();
        let [web1, peer1, far] = ["web1", "peer1", "far"].map(|n| lab.instance_by_name(n).unwrap());
        let name = "ip-10-0-0-11.ec2.internal";
        assert_eq!(lab.resolve_dns(web1, name), ip("10.0.0.11"));
        assert_eq!(lab.resolve_dns(peer1, name), ip("10.0.0.11"));
        assert_eq!(lab.resolve_dns(far, name), None, "not peered");
        // No instance there, the wrong region's domain, malformed addresses.
        assert_eq!(lab.resolve_dns(web1, "ip-10-0-0-99.ec2.internal"), None);
        assert_eq!(
            lab.resolve_dns(web1, "ip-10-0-0-11.eu-west-1.compute.internal"),
            None
        );
        assert_eq!(
            lab.resolve_dns(far, "ip-10-2-1-10.eu-west-1.compute.internal"),
            ip("10.2.1.10")
        );
        assert_eq!(lab.resolve_dns(far, "ip-10-2-1-10.ec2.internal"), None);
        for bad in [
            "ip-10-0-0.ec2.internal",
            "ip-10-0-0-11-1.ec2.internal",
            "ip-10-0-0-256.ec2.internal",
            "ip-.ec2.internal",
        ] {
            assert_eq!(lab.resolve_dns(web1, bad), None, "{bad}");
        }
    }

    #[test]
    fn public_names_are_split_horizon() {
        let lab = lab();
        let [web1, web2, peer1, far] =
            ["web1", "web2", "peer1", "far"].map(|n| lab.instance_by_name(n).unwrap());
        let public = lab.instances[web1].public_ip.unwrap().addr;
        let name = lab.public_dns_name(web1).unwrap();
        // Inside its VPC: the private address; from anywhere else, even a peer: the public one.
        assert_eq!(lab.resolve_dns(web1, &name), ip("10.0.0.10"));
        assert_eq!(lab.resolve_dns(web2, &name), ip("10.0.0.10"));
        assert_eq!(lab.resolve_dns(peer1, &name), Some(public));
        assert_eq!(lab.resolve_dns(far, &name), Some(public));
        let wrong_region = name.replace("compute-1", "eu-west-1.compute");
        assert_eq!(lab.resolve_dns(web1, &wrong_region), None);
        assert_eq!(
            lab.resolve_dns(web1, "ec2-203-0-113-250.compute-1.amazonaws.com"),
            None
        );
        // Only instances ask: an internet host's id is no asker.
        assert_eq!(lab.resolve_dns(lab.internet_host_id(0), "web1"), None);
    }
}
