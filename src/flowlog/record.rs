//! Flow-log layer: one flow-log record and its text form in any field selection
//! (aws-rules.md §6.2, §6.3). A field that does not apply prints `-`.

use std::fmt::Write;
use std::net::IpAddr;
use std::sync::Arc;

use super::observation::Direction;
use crate::scenario::{aws_id, FlowLogField, InstanceId, Lab};

pub const TCP_FIN: u8 = 1;
pub const TCP_SYN: u8 = 2;
pub const TCP_RST: u8 = 4;
pub const TCP_ACK: u8 = 16;

/// The part of a TCP flag byte that AWS reports for one packet: FIN, SYN and RST, and ACK only
/// together with SYN (SYN-ACK = 18). PSH, URG and a bare ACK are not reported, so a record of
/// only ACKs shows 0, a short client connection 3 (SYN+FIN), its server side 19 (SYN-ACK+FIN).
pub fn reported_tcp_flags(flags: u8) -> u8 {
    let mut out = flags & (TCP_FIN | TCP_SYN | TCP_RST);
    if flags & TCP_SYN != 0 && flags & TCP_ACK != 0 {
        out |= TCP_ACK;
    }
    out
}

/// What records say about their interface; one per logged interface (`logged_interfaces`),
/// shared by all its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EniInfo {
    /// Its index among the logged interfaces: the instances' (at their own index), then the
    /// NAT gateways'.
    pub instance: InstanceId,
    /// The owner of the ENI: its VPC's account.
    pub account: String,
    /// `eni-0…`, stable across runs.
    pub interface_id: String,
    pub vpc_id: String,
    pub subnet_id: String,
    pub instance_id: String,
    pub region: String,
    /// `use1-az1` for us-east-1a.
    pub az_id: String,
    pub primary_ip: IpAddr,
}

impl EniInfo {
    /// The ENI of `instance`, which must be an index into `lab.instances`.
    pub fn new(lab: &Lab, instance: InstanceId) -> EniInfo {
        let i = &lab.instances[instance];
        let vpc = &lab.vpcs[i.vpc];
        let subnet = &lab.subnets[i.subnet];
        EniInfo {
            instance,
            account: vpc.account.clone(),
            interface_id: aws_id("eni", &lab.name, &i.name),
            vpc_id: aws_id("vpc", &lab.name, &vpc.name),
            subnet_id: aws_id("subnet", &lab.name, &subnet.name),
            instance_id: aws_id("i", &lab.name, &i.name),
            region: vpc.region.clone(),
            az_id: az_id(&vpc.region, &subnet.az),
            primary_ip: i.private_ip.into(),
        }
    }
}

/// Every interface flow logs can cover, in the order observations number them: each
/// instance's, then each NAT gateway's (requester-managed: its `instance-id` is `-`).
pub fn logged_interfaces(lab: &Lab) -> Vec<EniInfo> {
    let instances = (0..lab.instances.len()).map(|i| EniInfo::new(lab, i));
    let gateways = lab.nat_gateways.iter().enumerate().map(|(n, g)| {
        let vpc = &lab.vpcs[g.vpc];
        let subnet = &lab.subnets[g.subnet];
        EniInfo {
            instance: lab.instances.len() + n,
            account: vpc.account.clone(),
            interface_id: nat_gateway_interface_id(lab, g),
            vpc_id: aws_id("vpc", &lab.name, &vpc.name),
            subnet_id: aws_id("subnet", &lab.name, &subnet.name),
            instance_id: "-".to_string(),
            region: vpc.region.clone(),
            az_id: az_id(&vpc.region, &subnet.az),
            primary_ip: g.private_ip.into(),
        }
    });
    instances.chain(gateways).collect()
}

/// The `eni-…` id of a NAT gateway's interface (stable, and apart from the instances' ids).
pub fn nat_gateway_interface_id(lab: &Lab, g: &crate::scenario::NatGateway) -> String {
    aws_id("eni", &lab.name, &format!("nat/{}", g.name))
}

/// The zone id of an availability zone, derived simply: the region's short code (`us-east-1` →
/// `use1`, `ap-southeast-2` → `apse2`) and the zone letter as a number (a → az1, b → az2, …).
/// Real AWS shuffles letters per account; a lab keeps them in order.
pub fn az_id(region: &str, az: &str) -> String {
    let mut code = String::new();
    let parts: Vec<&str> = region.split('-').collect();
    for (n, part) in parts.iter().enumerate() {
        if n == 0 || part.chars().all(|c| c.is_ascii_digit()) {
            code.push_str(part);
            continue;
        }
        let short = match *part {
            "northeast" => "ne",
            "southeast" => "se",
            "northwest" => "nw",
            "southwest" => "sw",
            p => &p[..p.len().min(1)],
        };
        code.push_str(short);
    }
    let letter = az.strip_prefix(region).and_then(|l| l.bytes().next());
    match letter {
        Some(l @ b'a'..=b'z') => format!("{code}-az{}", l - b'a' + 1),
        _ => format!("{code}-az1"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Accept,
    Reject,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Accept => "ACCEPT",
            Action::Reject => "REJECT",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogStatus {
    Ok,
    /// No traffic on the ENI in the window.
    NoData,
    /// Records were skipped (capacity); one line stands for many flows.
    SkipData,
}

impl LogStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LogStatus::Ok => "OK",
            LogStatus::NoData => "NODATA",
            LogStatus::SkipData => "SKIPDATA",
        }
    }
}

/// One flow (5-tuple, direction, action) on one ENI within one window; addresses as in the
/// packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    pub direction: Direction,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub protocol: u8,
    pub packets: u64,
    pub bytes: u64,
    pub action: Action,
    /// Already reduced to what AWS reports, OR-ed over the window.
    pub tcp_flags: u8,
    pub traffic_path: Option<u8>,
}

/// A flow-log record: every value any `FlowLogField` may ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRecord {
    pub eni: Arc<EniInfo>,
    /// Unix seconds of the first and last packet (for NODATA, the window's bounds).
    pub start: u64,
    pub end: u64,
    pub log_status: LogStatus,
    /// None for NODATA and SKIPDATA.
    pub flow: Option<Flow>,
}

/// The `version` a record prints: the highest version among the chosen fields.
pub fn version_of(fields: &[FlowLogField]) -> u8 {
    fields.iter().map(|f| f.version()).max().unwrap_or(2)
}

/// The header line AWS writes at the top of each S3 file: the field names, space-separated.
pub fn header_line(fields: &[FlowLogField]) -> String {
    let names: Vec<&str> = fields.iter().map(|f| f.name()).collect();
    names.join(" ")
}

impl FlowRecord {
    pub fn no_data(eni: Arc<EniInfo>, start: u64, end: u64) -> FlowRecord {
        FlowRecord {
            eni,
            start,
            end,
            log_status: LogStatus::NoData,
            flow: None,
        }
    }

    /// Records of the ENI were skipped in the window [start, end): one line for all of them.
    pub fn skip_data(eni: Arc<EniInfo>, start: u64, end: u64) -> FlowRecord {
        FlowRecord {
            log_status: LogStatus::SkipData,
            ..FlowRecord::no_data(eni, start, end)
        }
    }

    /// `srcaddr`: the ENI's primary private address on egress (its IPv6 address, the
    /// packet's own source, for IPv6), the packet source on ingress.
    pub fn srcaddr(&self) -> Option<IpAddr> {
        self.flow.map(|f| match f.direction {
            Direction::Egress if f.src.is_ipv6() => f.src,
            Direction::Egress => self.eni.primary_ip,
            Direction::Ingress => f.src,
        })
    }

    /// `dstaddr`: the ENI's primary private address on ingress (for IPv6 the packet's own
    /// destination, the ENI's IPv6 address), the packet destination on egress.
    pub fn dstaddr(&self) -> Option<IpAddr> {
        self.flow.map(|f| match f.direction {
            Direction::Ingress if f.dst.is_ipv6() => f.dst,
            Direction::Ingress => self.eni.primary_ip,
            Direction::Egress => f.dst,
        })
    }

    /// The record as AWS writes it: the chosen fields in order, space-separated.
    pub fn render(&self, fields: &[FlowLogField]) -> String {
        let mut out = String::with_capacity(fields.len() * 12);
        for (n, field) in fields.iter().enumerate() {
            if n > 0 {
                out.push(' ');
            }
            self.write_field(&mut out, *field, fields);
        }
        out
    }

    fn write_field(&self, out: &mut String, field: FlowLogField, fields: &[FlowLogField]) {
        use FlowLogField as F;
        let e = &self.eni;
        let f = self.flow.as_ref();
        // Writing to a String cannot fail.
        let _ = match field {
            F::Version => write!(out, "{}", version_of(fields)),
            F::AccountId => write!(out, "{}", e.account),
            F::InterfaceId => write!(out, "{}", e.interface_id),
            F::SrcAddr => dash(out, self.srcaddr()),
            F::DstAddr => dash(out, self.dstaddr()),
            F::SrcPort => dash(out, f.map(|f| f.src_port)),
            F::DstPort => dash(out, f.map(|f| f.dst_port)),
            F::Protocol => dash(out, f.map(|f| f.protocol)),
            F::Packets => dash(out, f.map(|f| f.packets)),
            F::Bytes => dash(out, f.map(|f| f.bytes)),
            F::Start => write!(out, "{}", self.start),
            F::End => write!(out, "{}", self.end),
            F::Action => dash(out, f.map(|f| f.action.as_str())),
            F::LogStatus => write!(out, "{}", self.log_status.as_str()),
            F::VpcId => write!(out, "{}", e.vpc_id),
            F::SubnetId => write!(out, "{}", e.subnet_id),
            F::InstanceId => write!(out, "{}", e.instance_id),
            F::TcpFlags => dash(out, f.map(|f| f.tcp_flags)),
            F::Type => dash(
                out,
                f.map(|f| if f.src.is_ipv6() { "IPv6" } else { "IPv4" }),
            ),
            F::PktSrcAddr => dash(out, f.map(|f| f.src)),
            F::PktDstAddr => dash(out, f.map(|f| f.dst)),
            F::Region => write!(out, "{}", e.region),
            F::AzId => write!(out, "{}", e.az_id),
            F::SublocationType | F::SublocationId | F::PktSrcAwsService | F::PktDstAwsService => {
                dash(out, None::<u8>)
            }
            F::FlowDirection => dash(out, f.map(|f| f.direction.as_str())),
            F::TrafficPath => dash(
                out,
                f.filter(|f| f.direction == Direction::Egress)
                    .and_then(|f| f.traffic_path),
            ),
        };
    }
}

fn dash<T: std::fmt::Display>(out: &mut String, v: Option<T>) -> std::fmt::Result {
    match v {
        Some(v) => write!(out, "{v}"),
        None => {
            out.push('-');
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eni() -> Arc<EniInfo> {
        Arc::new(EniInfo {
            instance: 0,
            account: "123456789010".into(),
            interface_id: "eni-1235b8ca123456789".into(),
            vpc_id: "vpc-1".into(),
            subnet_id: "subnet-1".into(),
            instance_id: "i-1".into(),
            region: "us-east-1".into(),
            az_id: "use1-az1".into(),
            primary_ip: IpAddr::from([172, 31, 16, 139]),
        })
    }

    fn flow(direction: Direction) -> Flow {
        Flow {
            direction,
            src: IpAddr::from([172, 31, 16, 139]),
            dst: IpAddr::from([172, 31, 16, 21]),
            src_port: 20641,
            dst_port: 22,
            protocol: 6,
            packets: 20,
            bytes: 4249,
            action: Action::Accept,
            tcp_flags: 3,
            traffic_path: Some(1),
        }
    }

    #[test]
    fn aws_example_shapes() {
        let r = FlowRecord {
            eni: eni(),
            start: 1418530010,
            end: 1418530070,
            log_status: LogStatus::Ok,
            flow: Some(flow(Direction::Egress)),
        };
        assert_eq!(
            r.render(&FlowLogField::DEFAULT_FORMAT),
            "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 \
             1418530010 1418530070 ACCEPT OK"
        );
        let nodata = FlowRecord::no_data(eni(), 1431280876, 1431280934);
        assert_eq!(
            nodata.render(&FlowLogField::DEFAULT_FORMAT),
            "2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA"
        );
    }

    #[test]
    fn every_field_renders_and_traffic_path_is_egress_only() {
        let mut r = FlowRecord {
            eni: eni(),
            start: 1,
            end: 2,
            log_status: LogStatus::Ok,
            flow: Some(flow(Direction::Egress)),
        };
        let all = r.render(FlowLogField::ALL);
        assert_eq!(all.split(' ').count(), FlowLogField::ALL.len());
        assert!(all.starts_with("5 "), "{all}");
        assert!(all.ends_with(" - - - - egress 1"), "{all}");
        r.flow = Some(flow(Direction::Ingress));
        assert!(r.render(FlowLogField::ALL).ends_with(" ingress -"));
        let v3 = [
            FlowLogField::Version,
            FlowLogField::TcpFlags,
            FlowLogField::Type,
        ];
        assert_eq!(r.render(&v3), "3 3 IPv4");
    }

    #[test]
    fn ingress_shows_the_eni_address_as_destination() {
        let mut f = flow(Direction::Ingress);
        f.src = IpAddr::from([203, 0, 113, 50]);
        f.dst = IpAddr::from([198, 51, 100, 7]);
        let r = FlowRecord {
            eni: eni(),
            start: 1,
            end: 2,
            log_status: LogStatus::Ok,
            flow: Some(f),
        };
        let fields = [
            FlowLogField::SrcAddr,
            FlowLogField::DstAddr,
            FlowLogField::PktSrcAddr,
            FlowLogField::PktDstAddr,
        ];
        assert_eq!(
            r.render(&fields),
            "203.0.113.50 172.31.16.139 203.0.113.50 198.51.100.7"
        );
    }

    #[test]
    fn tcp_flags_as_aws_reports_them() {
        assert_eq!(reported_tcp_flags(TCP_ACK), 0);
        assert_eq!(reported_tcp_flags(TCP_ACK | 8), 0);
        assert_eq!(reported_tcp_flags(TCP_SYN | TCP_ACK), 18);
        assert_eq!(
            reported_tcp_flags(TCP_FIN | TCP_ACK) | reported_tcp_flags(TCP_SYN),
            3
        );
        assert_eq!(reported_tcp_flags(TCP_RST | TCP_ACK), 4);
    }

    #[test]
    fn az_ids() {
        assert_eq!(az_id("us-east-1", "us-east-1a"), "use1-az1");
        assert_eq!(az_id("us-west-2", "us-west-2c"), "usw2-az3");
        assert_eq!(az_id("eu-west-1", "eu-west-1b"), "euw1-az2");
        assert_eq!(az_id("ap-southeast-2", "ap-southeast-2a"), "apse2-az1");
        assert_eq!(az_id("us-gov-west-1", "us-gov-west-1a"), "usgw1-az1");
    }

    #[test]
    fn header_and_version() {
        assert_eq!(
            header_line(&FlowLogField::DEFAULT_FORMAT),
            "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets \
             bytes start end action log-status"
        );
        assert_eq!(version_of(&FlowLogField::DEFAULT_FORMAT), 2);
        assert_eq!(version_of(&[FlowLogField::Region]), 4);
    }
}
