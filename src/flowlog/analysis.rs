//! Flow-log layer: reading records back and the questions a class asks of them (who scanned
//! whom, who talks most), plus the filter behind `vpclab logs`. Works on any field selection
//! that has the fields a question needs; a record without them is ignored.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use super::observation::Direction;
use super::record::{Action, LogStatus};
use crate::scenario::FlowLogField;

/// A record read back from text. Fields absent from the format, or `-`, are None.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedRecord {
    pub version: Option<u8>,
    pub account_id: Option<String>,
    pub interface_id: Option<String>,
    pub srcaddr: Option<IpAddr>,
    pub dstaddr: Option<IpAddr>,
    pub srcport: Option<u16>,
    pub dstport: Option<u16>,
    pub protocol: Option<u8>,
    pub packets: Option<u64>,
    pub bytes: Option<u64>,
    pub start: Option<u64>,
    pub end: Option<u64>,
    pub action: Option<Action>,
    pub log_status: Option<LogStatus>,
    pub tcp_flags: Option<u8>,
    pub flow_direction: Option<Direction>,
    pub traffic_path: Option<u8>,
}

/// The fields of a header line (`version account-id ...`); None if one is unknown.
pub fn parse_header(line: &str) -> Option<Vec<FlowLogField>> {
    line.split_whitespace()
        .map(FlowLogField::from_name)
        .collect()
}

/// One record in the format `header`; None if it has the wrong number of values or a value
/// that does not parse.
pub fn parse_line(header: &[FlowLogField], line: &str) -> Option<ParsedRecord> {
    let values: Vec<&str> = line.split_whitespace().collect();
    if values.len() != header.len() {
        return None;
    }
    let mut r = ParsedRecord::default();
    for (field, value) in header.iter().zip(values) {
        if value == "-" {
            continue;
        }
        use FlowLogField as F;
        match field {
            F::Version => r.version = Some(value.parse().ok()?),
            F::AccountId => r.account_id = Some(value.to_string()),
            F::InterfaceId => r.interface_id = Some(value.to_string()),
            F::SrcAddr => r.srcaddr = Some(value.parse().ok()?),
            F::DstAddr => r.dstaddr = Some(value.parse().ok()?),
            F::SrcPort => r.srcport = Some(value.parse().ok()?),
            F::DstPort => r.dstport = Some(value.parse().ok()?),
            F::Protocol => r.protocol = Some(value.parse().ok()?),
            F::Packets => r.packets = Some(value.parse().ok()?),
            F::Bytes => r.bytes = Some(value.parse().ok()?),
            F::Start => r.start = Some(value.parse().ok()?),
            F::End => r.end = Some(value.parse().ok()?),
            F::Action => {
                r.action = Some(match value {
                    "ACCEPT" => Action::Accept,
                    "REJECT" => Action::Reject,
                    _ => return None,
                })
            }
            F::LogStatus => {
                r.log_status = Some(match value {
                    "OK" => LogStatus::Ok,
                    "NODATA" => LogStatus::NoData,
                    "SKIPDATA" => LogStatus::SkipData,
                    _ => return None,
                })
            }
            F::TcpFlags => r.tcp_flags = Some(value.parse().ok()?),
            F::FlowDirection => {
                r.flow_direction = Some(match value {
                    "ingress" => Direction::Ingress,
                    "egress" => Direction::Egress,
                    _ => return None,
                })
            }
            F::TrafficPath => r.traffic_path = Some(value.parse().ok()?),
            _ => {}
        }
    }
    Some(r)
}

/// One source REJECTed on many destination ports of one target within a time window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Distinct destination ports in the busiest window.
    pub ports: usize,
    /// Unix seconds of the first and last REJECT of that window.
    pub first: u64,
    pub last: u64,
}

/// Port scans: for each (source, target), the busiest `window_secs` of REJECTs, reported when
/// it holds at least `min_ports` distinct destination ports. Sorted by ports, most first.
pub fn port_scans(records: &[ParsedRecord], window_secs: u64, min_ports: usize) -> Vec<Scan> {
    let mut by_pair: BTreeMap<(IpAddr, IpAddr), Vec<(u64, u16)>> = BTreeMap::new();
    for r in records {
        if r.action != Some(Action::Reject) {
            continue;
        }
        let (Some(src), Some(dst), Some(port)) = (r.srcaddr, r.dstaddr, r.dstport) else {
            continue;
        };
        let Some(time) = r.start.or(r.end) else {
            continue;
        };
        by_pair.entry((src, dst)).or_default().push((time, port));
    }
    let mut scans = Vec::new();
    for ((src, dst), mut hits) in by_pair {
        hits.sort_unstable();
        let mut counts: HashMap<u16, usize> = HashMap::new();
        let mut best: Option<Scan> = None;
        let mut lo = 0;
        for hi in 0..hits.len() {
            *counts.entry(hits[hi].1).or_default() += 1;
            while hits[hi].0 - hits[lo].0 > window_secs {
                let port = hits[lo].1;
                if let Some(c) = counts.get_mut(&port) {
                    *c -= 1;
                    if *c == 0 {
                        counts.remove(&port);
                    }
                }
                lo += 1;
            }
            if counts.len() >= min_ports && best.as_ref().is_none_or(|b| counts.len() > b.ports) {
                best = Some(Scan {
                    src,
                    dst,
                    ports: counts.len(),
                    first: hits[lo].0,
                    last: hits[hi].0,
                });
            }
        }
        scans.extend(best);
    }
    scans.sort_by(|a, b| {
        b.ports
            .cmp(&a.ports)
            .then((a.src, a.dst).cmp(&(b.src, b.dst)))
    });
    scans
}

/// The `n` (source, destination) pairs with the most bytes, most first. A flow between two
/// covered ENIs is logged on both, so counting egress records only avoids counting it twice
/// when the format has `flow-direction`.
pub fn top_talkers(records: &[ParsedRecord], n: usize) -> Vec<(IpAddr, IpAddr, u64)> {
    let mut sums: HashMap<(IpAddr, IpAddr), u64> = HashMap::new();
    for r in records {
        if r.flow_direction == Some(Direction::Ingress) {
            continue;
        }
        if let (Some(src), Some(dst), Some(bytes)) = (r.srcaddr, r.dstaddr, r.bytes) {
            *sums.entry((src, dst)).or_default() += bytes;
        }
    }
    let mut out: Vec<(IpAddr, IpAddr, u64)> =
        sums.into_iter().map(|((s, d), b)| (s, d, b)).collect();
    out.sort_by(|a, b| b.2.cmp(&a.2).then((a.0, a.1).cmp(&(b.0, b.1))));
    out.truncate(n);
    out
}

/// What `vpclab logs` keeps; every set condition must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    pub action: Option<Action>,
    /// Source or destination.
    pub address: Option<IpAddr>,
    /// Source or destination port.
    pub port: Option<u16>,
    /// `eni-…`
    pub interface: Option<String>,
}

impl LogFilter {
    pub fn matches(&self, r: &ParsedRecord) -> bool {
        self.action.is_none_or(|a| r.action == Some(a))
            && self
                .address
                .is_none_or(|a| r.srcaddr == Some(a) || r.dstaddr == Some(a))
            && self
                .port
                .is_none_or(|p| r.srcport == Some(p) || r.dstport == Some(p))
            && self
                .interface
                .as_ref()
                .is_none_or(|i| r.interface_id.as_ref() == Some(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "version account-id interface-id srcaddr dstaddr srcport dstport \
                          protocol packets bytes start end action log-status";

    fn reject(src: [u8; 4], dport: u16, t: u64) -> ParsedRecord {
        ParsedRecord {
            srcaddr: Some(src.into()),
            dstaddr: Some(IpAddr::from([10, 0, 1, 10])),
            srcport: Some(40000),
            dstport: Some(dport),
            start: Some(t),
            action: Some(Action::Reject),
            ..ParsedRecord::default()
        }
    }

    #[test]
    fn parses_default_and_nodata_lines() {
        let h = parse_header(HEADER).unwrap();
        let r = parse_line(
            &h,
            "2 123456789010 eni-1235b8ca123456789 172.31.9.69 172.31.9.12 49761 3389 6 20 4249 \
             1418530010 1418530070 REJECT OK",
        )
        .unwrap();
        assert_eq!(r.dstport, Some(3389));
        assert_eq!(r.action, Some(Action::Reject));
        assert_eq!(r.bytes, Some(4249));
        let n = parse_line(
            &h,
            "2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA",
        )
        .unwrap();
        assert_eq!((n.srcaddr, n.log_status), (None, Some(LogStatus::NoData)));
        assert!(parse_line(&h, "2 1 eni-1").is_none());
        assert!(parse_header("version colour").is_none());
    }

    #[test]
    fn scans_need_enough_ports_in_the_window() {
        let mut recs: Vec<ParsedRecord> = (0..20)
            .map(|p| reject([192, 0, 2, 9], 1000 + p, 100 + u64::from(p)))
            .collect();
        recs.extend((0..3).map(|p| reject([198, 51, 100, 1], 22 + p, 100)));
        let scans = port_scans(&recs, 60, 10);
        assert_eq!(scans.len(), 1);
        assert_eq!(
            scans[0],
            Scan {
                src: IpAddr::from([192, 0, 2, 9]),
                dst: IpAddr::from([10, 0, 1, 10]),
                ports: 20,
                first: 100,
                last: 119
            }
        );
        // Spread over more than the window: no 10 ports within 5 s.
        assert!(port_scans(&recs, 5, 10).is_empty());
    }

    #[test]
    fn talkers_and_filter() {
        let mut a = reject([192, 0, 2, 9], 80, 1);
        a.bytes = Some(100);
        a.action = Some(Action::Accept);
        let mut b = a.clone();
        b.bytes = Some(50);
        let mut c = reject([198, 51, 100, 1], 22, 1);
        c.bytes = Some(120);
        let recs = [a.clone(), b, c.clone()];
        let top = top_talkers(&recs, 1);
        assert_eq!(
            top,
            [(
                IpAddr::from([192, 0, 2, 9]),
                IpAddr::from([10, 0, 1, 10]),
                150
            )]
        );
        let f = LogFilter {
            action: Some(Action::Reject),
            port: Some(22),
            ..LogFilter::default()
        };
        assert!(f.matches(&c) && !f.matches(&a));
        let f = LogFilter {
            address: Some(IpAddr::from([10, 0, 1, 10])),
            interface: Some("eni-x".into()),
            ..LogFilter::default()
        };
        assert!(!f.matches(&c));
    }
}
