//! Helpers the decision function's tests share: a host by name, a TCP header, one packet sent.

use std::net::IpAddr;
use std::time::Duration;

use super::*;
use crate::scenario::HostId;
use crate::wire::FlowKey;

pub const SYN: u8 = 0x02;
pub const SYN_ACK: u8 = 0x12;

pub fn host(lab: &Compiled, name: &str) -> HostId {
    lab.lab
        .host_by_name(name)
        .unwrap_or_else(|| panic!("no host {name}"))
}

pub fn tcp(
    src: impl Into<IpAddr>,
    sport: u16,
    dst: impl Into<IpAddr>,
    dport: u16,
    flags: u8,
) -> FlowKey {
    FlowKey {
        src: src.into(),
        dst: dst.into(),
        protocol: 6,
        src_port: sport,
        dst_port: dport,
        icmp_type: 0,
        icmp_code: 0,
        tcp_flags: flags,
    }
}

/// One packet from `from`: the outcome and the header as delivered.
pub fn send(lab: &Compiled, flows: &Conntrack, from: &str, key: FlowKey) -> (Outcome, FlowKey) {
    let d = decide_packet(
        lab,
        flows,
        Duration::ZERO,
        host(lab, from),
        &key,
        None,
        &mut (),
    );
    (d.outcome, d.delivered)
}
