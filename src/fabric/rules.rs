//! Security group and network ACL rule matching (aws-rules.md §2.2, §2.4): pure functions over
//! the compiled lab and a packet's header. No state: connection tracking is in `conntrack`.

use std::net::Ipv4Addr;

use super::proto::ICMP as PROTO_ICMP;
use crate::scenario::{AclRule, InstanceId, NetworkAcl, Protocol, SecurityGroupId, SgPeer};
use crate::wire::FlowKey;

use super::{AclRuleRef, Compiled, Direction};

/// What a rule matches besides addresses: protocol, destination port, ICMP type and code.
fn matches_packet(
    protocol: Protocol,
    ports: crate::scenario::PortRange,
    icmp_type: Option<u8>,
    icmp_code: Option<u8>,
    key: &FlowKey,
) -> bool {
    if !protocol.matches(key.protocol) {
        return false;
    }
    // Ports are ALL unless the rule is tcp or udp (the loader guarantees it), and they match
    // the destination port in both directions.
    if !ports.contains(key.dst_port) {
        return false;
    }
    if key.protocol == PROTO_ICMP {
        icmp_type.is_none_or(|t| t == key.icmp_type) && icmp_code.is_none_or(|c| c == key.icmp_code)
    } else {
        true
    }
}

/// The address at the other end of the packet, as a rule of `direction` sees it: the source
/// of an inbound packet, the destination of an outbound one.
pub fn remote(direction: Direction, key: &FlowKey) -> Ipv4Addr {
    match direction {
        Direction::Inbound => key.src,
        Direction::Outbound => key.dst,
    }
}

/// The first rule (group, index) of the security groups of `eni` that allows the packet in
/// `direction`. Their rules are a union: the order only picks which one to report.
pub fn sg_allows(
    lab: &Compiled,
    eni: InstanceId,
    direction: Direction,
    key: &FlowKey,
) -> Option<(SecurityGroupId, usize)> {
    let other = remote(direction, key);
    for &group in &lab.lab.instances[eni].security_groups {
        let sg = &lab.lab.security_groups[group];
        let rules = match direction {
            Direction::Inbound => &sg.ingress,
            Direction::Outbound => &sg.egress,
        };
        let found = rules.iter().position(|r| {
            matches_packet(r.protocol, r.ports, r.icmp_type, r.icmp_code, key)
                && match r.peer {
                    SgPeer::Cidr(net) => net.contains(&other),
                    SgPeer::Group(g) => lab.is_member(g, other),
                }
        });
        if let Some(rule) = found {
            return Some((group, rule));
        }
    }
    None
}

/// The rule of `acl` that decides the packet in `direction` (first match by rule number, else
/// the final `*` deny), and whether it allows.
pub fn acl_decides(acl: &NetworkAcl, direction: Direction, key: &FlowKey) -> (AclRuleRef, bool) {
    let (rules, addr) = match direction {
        Direction::Inbound => (&acl.inbound, key.src),
        Direction::Outbound => (&acl.outbound, key.dst),
    };
    // The loader keeps the rules sorted by number.
    let hit = rules.iter().position(|r: &AclRule| {
        r.cidr.contains(&addr) && matches_packet(r.protocol, r.ports, r.icmp_type, r.icmp_code, key)
    });
    match hit {
        Some(i) => (AclRuleRef::Numbered(i), rules[i].allow),
        None => (AclRuleRef::Default, false),
    }
}
