//! Scenario layer: the typed lab's traffic mirroring: targets, filters and sessions.

use ipnet::IpNet;

use super::{InstanceId, MirrorFilterId, MirrorTargetId, PortRange, Protocol};

/// Where a traffic mirror session sends its copies: an instance's primary interface.
#[derive(Debug, Clone, PartialEq)]
pub struct MirrorTarget {
    pub name: String,
    pub eni: InstanceId,
}

/// Which packets a traffic mirror session copies, per direction as the source ENI sees them.
#[derive(Debug, Clone, PartialEq)]
pub struct MirrorFilter {
    pub name: String,
    /// Sorted by rule number, lowest first; empty means nothing of that direction is mirrored.
    pub inbound: Vec<MirrorRule>,
    pub outbound: Vec<MirrorRule>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MirrorRule {
    /// 1..=32766, unique within its direction.
    pub number: u16,
    pub accept: bool,
    pub protocol: Protocol,
    /// ALL unless the protocol is tcp or udp.
    pub source_ports: PortRange,
    pub destination_ports: PortRange,
    pub source_cidr: IpNet,
    pub destination_cidr: IpNet,
}

/// A traffic mirror session: copies of what its filter accepts on `source` go, VXLAN
/// encapsulated, to `target`.
#[derive(Debug, Clone, PartialEq)]
pub struct MirrorSession {
    pub name: String,
    pub source: InstanceId,
    pub target: MirrorTargetId,
    pub filter: MirrorFilterId,
    /// 1..=32766, unique per source; the lowest whose filter accepts a packet mirrors it.
    pub session_number: u16,
    /// The VXLAN network identifier, 24 bits.
    pub vni: u32,
    /// Bytes after the VXLAN header to keep; None keeps the whole packet.
    pub packet_length: Option<u16>,
}
