//! Flow-log layer: what the data plane reports for one packet on one ENI.

use std::net::IpAddr;

use crate::scenario::InstanceId;

/// The side of the ENI a packet crossed, as AWS's `flow-direction` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// Into the instance.
    Ingress,
    /// Out of the instance.
    Egress,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }
}

/// One packet as seen at one ENI, with the fabric's decision on it. Addresses and ports are the
/// packet's own; the record shows the ENI's primary address on its side (see `FlowRecord`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    pub eni: InstanceId,
    pub direction: Direction,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Taken as given. The caller passes 0 for ICMP (AWS logs ICMP with ports 0, even though
    /// the fabric's flow key uses the echo id as a port); `Observation::icmp` does so.
    pub src_port: u16,
    /// As `src_port`: 0 for ICMP.
    pub dst_port: u16,
    /// IANA number: 1 ICMP, 6 TCP, 17 UDP.
    pub protocol: u8,
    /// The TCP header's flag byte as on the wire (0 for other protocols); the record keeps only
    /// what AWS reports (`record::reported_tcp_flags`).
    pub tcp_flags: u8,
    /// IP total length.
    pub bytes: u32,
    /// Permitted by the security groups and network ACLs.
    pub accepted: bool,
    /// AWS's traffic-path code (1 same VPC, 2 IGW/gateway endpoint, 4 intra-Region peering, ...),
    /// meaningful on egress only.
    pub traffic_path: Option<u8>,
}

impl Observation {
    /// An ICMP packet: ports 0 and no TCP flags, as AWS logs it.
    pub fn icmp(
        eni: InstanceId,
        direction: Direction,
        src: IpAddr,
        dst: IpAddr,
        bytes: u32,
        accepted: bool,
    ) -> Observation {
        Observation {
            eni,
            direction,
            src,
            dst,
            src_port: 0,
            dst_port: 0,
            protocol: 1,
            tcp_flags: 0,
            bytes,
            accepted,
            traffic_path: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icmp_has_ports_zero() {
        let o = Observation::icmp(
            3,
            Direction::Egress,
            IpAddr::from([10, 0, 1, 10]),
            IpAddr::from([192, 0, 2, 1]),
            84,
            true,
        );
        assert_eq!((o.src_port, o.dst_port, o.protocol, o.eni), (0, 0, 1, 3));
        assert_eq!(Direction::Ingress.as_str(), "ingress");
    }
}
