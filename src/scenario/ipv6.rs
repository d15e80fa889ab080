//! Scenario layer: IPv6 addressing as AWS hands it out (aws-rules.md §11): a fixed /56 per VPC
//! that asks for one, a /64 per subnet out of it, and an address per instance out of its
//! subnet's /64. The lab takes the blocks from the documentation range 2001:db8::/32, in the
//! order VPCs are declared, so that addresses are stable and readable.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

/// The `k`-th VPC with IPv6 (from 0) gets `2001:db8:0:K00::/56` with K = k + 1 in hex, so its
/// subnets read `2001:db8:0:100::/64`, `2001:db8:0:101::/64`, ... Internet hosts keep the
/// rest of 2001:db8::/32 (2001:db8:ffff::/48 in the examples).
pub fn vpc_block(k: usize) -> Option<Ipv6Net> {
    let k = u128::try_from(k)
        .ok()?
        .checked_add(1)
        .filter(|k| *k < 0x100)?;
    let base = (0x2001_0db8_u128 << 96) | (k << 72);
    Ipv6Net::new(Ipv6Addr::from(base), 56).ok()
}

/// The `j`-th /64 of a VPC's /56 (from 0), one per subnet in declaration order.
pub fn subnet_block(vpc: Ipv6Net, j: usize) -> Option<Ipv6Net> {
    let j = u128::try_from(j).ok().filter(|j| *j < 0x100)?;
    let base = u128::from(vpc.network()) | (j << 64);
    Ipv6Net::new(Ipv6Addr::from(base), 64).ok()
}

/// An instance's IPv6 address: its subnet's /64 with the offset of its IPv4 address in the
/// subnet (10.0.1.10 in 10.0.1.0/24 is `::a`). Unique, and never one of the four addresses
/// AWS reserves at the start of a /64, because the IPv4 offset is at least 4.
pub fn instance_address(subnet6: Ipv6Net, subnet4: Ipv4Net, ip: Ipv4Addr) -> Ipv6Addr {
    let offset = u32::from(ip) - u32::from(subnet4.network());
    Ipv6Addr::from(u128::from(subnet6.network()) | u128::from(offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_and_addresses_are_readable_and_distinct() {
        let a = vpc_block(0).unwrap();
        assert_eq!(a.to_string(), "2001:db8:0:100::/56");
        assert_eq!(vpc_block(1).unwrap().to_string(), "2001:db8:0:200::/56");
        assert_eq!(
            subnet_block(a, 1).unwrap().to_string(),
            "2001:db8:0:101::/64"
        );
        assert!(a.contains(&subnet_block(a, 255).unwrap()));
        assert_eq!(subnet_block(a, 256), None);
        assert_eq!(vpc_block(255), None);
        let s = subnet_block(a, 1).unwrap();
        let v4: Ipv4Net = "10.0.1.0/24".parse().unwrap();
        assert_eq!(
            instance_address(s, v4, Ipv4Addr::new(10, 0, 1, 10)).to_string(),
            "2001:db8:0:101::a"
        );
    }
}
