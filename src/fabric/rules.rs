//! Security group and network ACL rule matching (aws-rules.md §2.2, §2.4): pure functions over
//! the compiled lab and a packet's header. No state: connection tracking is in `conntrack`.

use std::net::IpAddr;

use super::proto::{TCP as PROTO_TCP, UDP as PROTO_UDP};
use crate::scenario::{AclRule, NetworkAcl, Protocol, SecurityGroupId, SgPeer};
use crate::wire::FlowKey;

use super::lookup::net_contains;
use super::{AclRuleRef, Compiled, Direction, EniId};

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
    if key.is_icmp() {
        icmp_type.is_none_or(|t| t == key.icmp_type) && icmp_code.is_none_or(|c| c == key.icmp_code)
    } else {
        true
    }
}

/// The address at the other end of the packet, as a rule of `direction` sees it: the source
/// of an inbound packet, the destination of an outbound one.
pub fn remote(direction: Direction, key: &FlowKey) -> IpAddr {
    match direction {
        Direction::Inbound => key.src,
        Direction::Outbound => key.dst,
    }
}

/// The first rule (group, index) of the security groups of `eni` that allows the packet in
/// `direction`. Their rules are a union: the order only picks which one to report.
pub fn sg_allows(
    lab: &Compiled,
    eni: EniId,
    direction: Direction,
    key: &FlowKey,
) -> Option<(SecurityGroupId, usize)> {
    let other = remote(direction, key);
    for &group in &lab.eni(eni).security_groups {
        let sg = &lab.lab.security_groups[group];
        let rules = match direction {
            Direction::Inbound => &sg.ingress,
            Direction::Outbound => &sg.egress,
        };
        let found = rules.iter().position(|r| {
            matches_packet(r.protocol, r.ports, r.icmp_type, r.icmp_code, key)
                && match r.peer {
                    SgPeer::Cidr(net) => net_contains(&net, other),
                    SgPeer::Group(g) => lab.is_member(g, other),
                }
        });
        if let Some(rule) = found {
            return Some((group, rule));
        }
    }
    None
}

/// True when a TCP or UDP packet the groups of `eni` allow in `direction` belongs to an
/// untracked flow (aws-rules.md §2.3): the flow is admitted by a rule open to all addresses
/// while the other direction has a rule open to all addresses on all ports. Checked from
/// either end of the flow (the request, or the reply of a request so admitted), so that both
/// directions of one flow agree. Untracked flows pass by those open rules alone, which is why
/// removing the admitting rule cuts them at once. ICMP and other protocols are always tracked.
pub fn untracked(lab: &Compiled, eni: EniId, direction: Direction, key: &FlowKey) -> bool {
    // Flows through interface endpoints are always tracked (aws-rules.md §2.3).
    let endpoint = matches!(lab.eni(eni).owner, super::EniOwner::Endpoint(_));
    if endpoint || !matches!(key.protocol, PROTO_TCP | PROTO_UDP) {
        return false;
    }
    let opposite = match direction {
        Direction::Inbound => Direction::Outbound,
        Direction::Outbound => Direction::Inbound,
    };
    (admitted_from_anywhere(lab, eni, direction, key) && open_to_all(lab, eni, opposite, key))
        || (admitted_from_anywhere(lab, eni, opposite, &key.reversed())
            && open_to_all(lab, eni, direction, key))
}

/// The rules of `eni`'s groups in `direction`.
fn sg_rules(
    lab: &Compiled,
    eni: EniId,
    direction: Direction,
) -> impl Iterator<Item = &crate::scenario::SgRule> {
    lab.eni(eni).security_groups.iter().flat_map(move |&g| {
        let sg = &lab.lab.security_groups[g];
        match direction {
            Direction::Inbound => sg.ingress.iter(),
            Direction::Outbound => sg.egress.iter(),
        }
    })
}

fn open_cidr(peer: SgPeer) -> bool {
    matches!(peer, SgPeer::Cidr(net) if net.prefix_len() == 0)
}

/// A rule open to all addresses allows the packet.
fn admitted_from_anywhere(lab: &Compiled, eni: EniId, direction: Direction, key: &FlowKey) -> bool {
    sg_rules(lab, eni, direction).any(|r| {
        open_cidr(r.peer) && matches_packet(r.protocol, r.ports, r.icmp_type, r.icmp_code, key)
    })
}

/// A rule open to all addresses on all ports of the packet's protocol.
fn open_to_all(lab: &Compiled, eni: EniId, direction: Direction, key: &FlowKey) -> bool {
    sg_rules(lab, eni, direction).any(|r| {
        open_cidr(r.peer)
            && r.protocol.matches(key.protocol)
            && r.ports == crate::scenario::PortRange::ALL
    })
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
        net_contains(&r.cidr, addr)
            && matches_packet(r.protocol, r.ports, r.icmp_type, r.icmp_code, key)
    });
    match hit {
        Some(i) => (AclRuleRef::Numbered(i), rules[i].allow),
        None => (AclRuleRef::Default, false),
    }
}
