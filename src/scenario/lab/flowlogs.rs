//! Scenario layer: the typed lab's VPC Flow Logs: what each covers and keeps, and the record
//! fields of AWS's formats (v2-v5).

use super::{InstanceId, NatGatewayId, SubnetId, VpcId};

/// A VPC flow log: which interfaces it covers, which records it keeps, how it writes them.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowLog {
    pub name: String,
    pub resource: FlowLogResource,
    pub traffic: TrafficFilter,
    /// The fields of each record, in order; the default is AWS's version 2 format.
    pub fields: Vec<FlowLogField>,
    /// Seconds: 60 or 600 as in AWS, or 1-59 for a lab that should not wait.
    pub aggregation_interval: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowLogResource {
    Vpc(VpcId),
    Subnet(SubnetId),
    Eni(InstanceId),
    /// The requester-managed interface of a NAT gateway (`eni:NAT`).
    NatGateway(NatGatewayId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrafficFilter {
    All,
    Accept,
    Reject,
}

macro_rules! flow_log_fields {
    ($($variant:ident = $name:literal, $version:literal;)*) => {
        /// A field of a flow-log record (aws-rules.md §6.2, §6.3), with the version that added it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum FlowLogField { $($variant,)* }

        impl FlowLogField {
            pub const ALL: &'static [FlowLogField] = &[$(FlowLogField::$variant,)*];

            /// The name as written in a format: `${srcaddr}` is `srcaddr`.
            pub fn name(self) -> &'static str {
                match self { $(FlowLogField::$variant => $name,)* }
            }

            pub fn version(self) -> u8 {
                match self { $(FlowLogField::$variant => $version,)* }
            }

            pub fn from_name(name: &str) -> Option<FlowLogField> {
                match name { $($name => Some(FlowLogField::$variant),)* _ => None }
            }
        }
    };
}

flow_log_fields! {
    Version = "version", 2;
    AccountId = "account-id", 2;
    InterfaceId = "interface-id", 2;
    SrcAddr = "srcaddr", 2;
    DstAddr = "dstaddr", 2;
    SrcPort = "srcport", 2;
    DstPort = "dstport", 2;
    Protocol = "protocol", 2;
    Packets = "packets", 2;
    Bytes = "bytes", 2;
    Start = "start", 2;
    End = "end", 2;
    Action = "action", 2;
    LogStatus = "log-status", 2;
    VpcId = "vpc-id", 3;
    SubnetId = "subnet-id", 3;
    InstanceId = "instance-id", 3;
    TcpFlags = "tcp-flags", 3;
    Type = "type", 3;
    PktSrcAddr = "pkt-srcaddr", 3;
    PktDstAddr = "pkt-dstaddr", 3;
    Region = "region", 4;
    AzId = "az-id", 4;
    SublocationType = "sublocation-type", 4;
    SublocationId = "sublocation-id", 4;
    PktSrcAwsService = "pkt-src-aws-service", 5;
    PktDstAwsService = "pkt-dst-aws-service", 5;
    FlowDirection = "flow-direction", 5;
    TrafficPath = "traffic-path", 5;
}

impl FlowLogField {
    /// AWS's default format: the version 2 fields in their fixed order.
    pub const DEFAULT_FORMAT: [FlowLogField; 14] = [
        FlowLogField::Version,
        FlowLogField::AccountId,
        FlowLogField::InterfaceId,
        FlowLogField::SrcAddr,
        FlowLogField::DstAddr,
        FlowLogField::SrcPort,
        FlowLogField::DstPort,
        FlowLogField::Protocol,
        FlowLogField::Packets,
        FlowLogField::Bytes,
        FlowLogField::Start,
        FlowLogField::End,
        FlowLogField::Action,
        FlowLogField::LogStatus,
    ];
}
