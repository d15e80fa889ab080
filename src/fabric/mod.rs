//! Fabric core: the compiled lab, security group and NACL rules, connection tracking and the
//! one decision function shared by the data plane and `vpclab explain`. No I/O, no clock: time
//! is passed in.

mod compiled;
mod conntrack;
mod decide;
mod eni;
mod explain;
mod lookup;
pub mod mirror;
pub mod nat;
mod render;
mod rules;
pub mod tunnels;
mod verdict;

#[cfg(test)]
mod internet_tests;
#[cfg(test)]
mod ipv6_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tgw_tests;
#[cfg(test)]
mod untracked_tests;
#[cfg(test)]
mod vpn_tests;

/// IANA protocol numbers the rules and the tracking treat specially (the wire layer's).
pub mod proto {
    pub use crate::wire::{
        PROTO_ICMP as ICMP, PROTO_ICMPV6 as ICMPV6, PROTO_TCP as TCP, PROTO_UDP as UDP,
    };
}

pub use compiled::{Compiled, CompiledRoute, LearnedRoute, RouteRef};
pub use conntrack::{timeout, Conntrack, EniTag};
pub use decide::{
    decide, decide_from_tunnel, decide_mirror_copy, decide_model, decide_packet, decide_quoting,
    read_packet, Decision, Metered, Packet,
};
pub use eni::{Eni, EniId, EniOwner};
pub use explain::{explain, probe_key, Explanation, Leg};
pub use nat::NatTable;
pub use rules::{acl_decides, sg_allows};
pub use verdict::{AclRuleRef, Direction, DropCode, Hop, Outcome, SgVerdict, Trace};
