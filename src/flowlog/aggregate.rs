//! Flow-log layer: aggregation of observations into records, per flow log and capture window.
//!
//! Windows are aligned to multiples of the flow log's `aggregation_interval` in Unix time (a
//! 60 s log has windows [k·60, (k+1)·60)), so that every flow log of a lab closes its windows
//! at predictable times and two runs of a test agree. A log's first window is the one holding
//! its first observation or first `flush`. `flush(now)` hands out every window whose end is
//! `<= now`, with a NODATA record for each covered ENI that saw no packet at all in it (a packet
//! filtered out by ACCEPT/REJECT still counts as traffic). After a long pause only the last
//! `MAX_EMPTY_WINDOWS` windows without traffic get NODATA records.
//!
//! The aggregator holds at most `MAX_FLOWS` flows at once; a packet of a new flow beyond that,
//! or one the data plane could not hand over (`skip`), is not counted, and its ENI gets one
//! SKIPDATA record for that window instead (aws-rules.md §6.2), as AWS does when its capture
//! runs out of capacity.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use super::observation::{Direction, Observation};
use super::record::{
    logged_interfaces, reported_tcp_flags, Action, EniInfo, Flow, FlowRecord, LogStatus,
};
use crate::scenario::{FlowLogResource, InstanceId, Lab, SubnetId, TrafficFilter, VpcId};

/// How many trailing windows without traffic one flush reports after a pause.
const MAX_EMPTY_WINDOWS: u64 = 16;
/// Initial capacity of the flow table: a class lab has a few hundred flows per window.
const FLOW_CAPACITY: usize = 4096;
/// Flows held at once over all open windows, about 100 bytes each: bounds the writer's memory
/// (a few MB) when a scan or a flood makes a new flow of every packet.
pub const MAX_FLOWS: usize = 65_536;

/// AWS does not log these (aws-rules.md §6.6): metadata, Time Sync, the Amazon DNS resolver.
const UNLOGGED: [Ipv4Addr; 3] = [
    Ipv4Addr::new(169, 254, 169, 254),
    Ipv4Addr::new(169, 254, 169, 123),
    Ipv4Addr::new(169, 254, 169, 253),
];

/// The records of one flow log for one ended window.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Index into `Lab::flow_logs`.
    pub flow_log: usize,
    pub window_start: u64,
    /// Exclusive: `window_start + aggregation_interval`.
    pub window_end: u64,
    /// Sorted by interface, then first packet; then SKIPDATA records, then NODATA ones.
    pub records: Vec<FlowRecord>,
}

struct LogState {
    interval: u64,
    traffic: TrafficFilter,
    enis: Vec<InstanceId>,
    /// Start of the oldest window not yet flushed; None before the first observe or flush.
    next_window: Option<u64>,
}

impl LogState {
    /// The start of the window that a packet at `now` counts in; opens the log's first window.
    fn window_at(&mut self, now: u64) -> u64 {
        let aligned = now - now % self.interval;
        // A packet stamped before the oldest open window (a clock step back) joins it.
        match self.next_window {
            Some(w) => aligned.max(w),
            None => {
                self.next_window = Some(aligned);
                aligned
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FlowKey {
    log: usize,
    window: u64,
    eni: InstanceId,
    direction: Direction,
    src: IpAddr,
    dst: IpAddr,
    src_port: u16,
    dst_port: u16,
    protocol: u8,
    action: Action,
}

#[derive(Debug, Clone, Copy)]
struct FlowAcc {
    packets: u64,
    bytes: u64,
    first: u64,
    last: u64,
    tcp_flags: u8,
    traffic_path: Option<u8>,
}

/// Addresses whose traffic an ENI does not log: the subnet router and the DNS addresses.
struct Unlogged {
    router: Ipv4Addr,
    subnet_dns: Ipv4Addr,
    vpc_dns: Ipv4Addr,
}

/// Turns observations into flow-log records for every flow log of a lab.
pub struct Aggregator {
    logs: Vec<LogState>,
    /// Per logged interface (instances', then NAT gateways'): the flow logs covering it.
    covering: Vec<Vec<usize>>,
    enis: Vec<Arc<EniInfo>>,
    unlogged: Vec<Unlogged>,
    flows: HashMap<FlowKey, FlowAcc>,
    /// Beyond this many held flows, a new flow is skipped.
    max_flows: usize,
    /// (log, window, eni) that saw any packet, kept or filtered out.
    active: HashSet<(usize, u64, InstanceId)>,
    /// (log, window, eni) that skipped at least one record: a SKIPDATA record each.
    skipped: HashSet<(usize, u64, InstanceId)>,
}

impl Aggregator {
    pub fn new(lab: &Lab) -> Aggregator {
        Aggregator::with_max_flows(lab, MAX_FLOWS)
    }

    /// As `new`, holding at most `max_flows` flows at once (tests use a small number).
    pub fn with_max_flows(lab: &Lab, max_flows: usize) -> Aggregator {
        // Where each logged interface is: the instances', then the NAT gateways'.
        let places: Vec<(VpcId, SubnetId)> = (lab.instances.iter().map(|i| (i.vpc, i.subnet)))
            .chain(lab.nat_gateways.iter().map(|g| (g.vpc, g.subnet)))
            .collect();
        let instances = lab.instances.len();
        let mut covering = vec![Vec::new(); places.len()];
        let mut logs = Vec::with_capacity(lab.flow_logs.len());
        for (n, fl) in lab.flow_logs.iter().enumerate() {
            let enis: Vec<InstanceId> = (0..places.len())
                .filter(|&i| {
                    let (vpc, subnet) = places[i];
                    match fl.resource {
                        FlowLogResource::Vpc(v) => vpc == v,
                        FlowLogResource::Subnet(s) => subnet == s,
                        FlowLogResource::Eni(e) => i == e,
                        FlowLogResource::NatGateway(g) => i == instances + g,
                    }
                })
                .collect();
            for &i in &enis {
                covering[i].push(n);
            }
            logs.push(LogState {
                interval: u64::from(fl.aggregation_interval.max(1)),
                traffic: fl.traffic,
                enis,
                next_window: None,
            });
        }
        let enis = logged_interfaces(lab).into_iter().map(Arc::new).collect();
        let unlogged = places
            .iter()
            .map(|&(vpc, subnet)| {
                let subnet = lab.subnets[subnet].cidr.network();
                let vpc = lab.vpcs[vpc].cidrs.first().map_or(subnet, |c| c.network());
                Unlogged {
                    router: offset(subnet, 1),
                    subnet_dns: offset(subnet, 2),
                    vpc_dns: offset(vpc, 2),
                }
            })
            .collect();
        Aggregator {
            logs,
            covering,
            enis,
            unlogged,
            flows: HashMap::with_capacity(FLOW_CAPACITY.min(max_flows)),
            max_flows,
            active: HashSet::with_capacity(FLOW_CAPACITY),
            skipped: HashSet::new(),
        }
    }

    /// True when no flow log covers any ENI: the data plane may skip observing.
    pub fn is_idle(&self) -> bool {
        self.covering.iter().all(Vec::is_empty)
    }

    /// Whether AWS would log this packet at all (aws-rules.md §6.6).
    fn is_logged(&self, obs: &Observation) -> bool {
        let Some(u) = self.unlogged.get(obs.eni) else {
            return false;
        };
        let dhcp = obs.protocol == 17 && matches!(obs.dst_port, 67 | 68);
        let special = |a: IpAddr| {
            let IpAddr::V4(a) = a else {
                // IPv6 neighbour discovery never reaches the fabric; other IPv6 is logged.
                return false;
            };
            UNLOGGED.contains(&a) || a == u.router || a == u.subnet_dns || a == u.vpc_dns
        };
        !dhcp && !special(obs.src) && !special(obs.dst)
    }

    /// Counts one packet at `now` (Unix seconds) in every flow log covering its ENI.
    pub fn observe(&mut self, now: u64, obs: &Observation) {
        if !self.is_logged(obs) {
            return;
        }
        let action = if obs.accepted {
            Action::Accept
        } else {
            Action::Reject
        };
        let flags = if obs.protocol == 6 {
            reported_tcp_flags(obs.tcp_flags)
        } else {
            0
        };
        for &log in &self.covering[obs.eni] {
            let window = self.logs[log].window_at(now);
            self.active.insert((log, window, obs.eni));
            let kept = match self.logs[log].traffic {
                TrafficFilter::All => true,
                TrafficFilter::Accept => obs.accepted,
                TrafficFilter::Reject => !obs.accepted,
            };
            if !kept {
                continue;
            }
            let key = FlowKey {
                log,
                window,
                eni: obs.eni,
                direction: obs.direction,
                src: obs.src,
                dst: obs.dst,
                src_port: obs.src_port,
                dst_port: obs.dst_port,
                protocol: obs.protocol,
                action,
            };
            let full = self.flows.len() >= self.max_flows;
            let acc = match self.flows.entry(key) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(_) if full => {
                    self.skipped.insert((log, window, obs.eni));
                    continue;
                }
                Entry::Vacant(e) => e.insert(FlowAcc {
                    packets: 0,
                    bytes: 0,
                    first: now,
                    last: now,
                    tcp_flags: 0,
                    traffic_path: None,
                }),
            };
            acc.packets += 1;
            acc.bytes += u64::from(obs.bytes);
            acc.first = acc.first.min(now);
            acc.last = acc.last.max(now);
            acc.tcp_flags |= flags;
            if obs.traffic_path.is_some() {
                acc.traffic_path = obs.traffic_path;
            }
        }
    }

    /// Notes that a packet of `eni` at `now` could not be observed (the data plane's queue was
    /// full): every flow log covering the ENI gets a SKIPDATA record for that window. The
    /// packet's flow is unknown, so logs that would have filtered it out or not logged it at
    /// all (aws-rules.md §6.6) get one too.
    pub fn skip(&mut self, now: u64, eni: InstanceId) {
        let Some(logs) = self.covering.get(eni) else {
            return;
        };
        for &log in logs {
            let window = self.logs[log].window_at(now);
            self.active.insert((log, window, eni));
            self.skipped.insert((log, window, eni));
        }
    }

    /// The records of every window that has ended by `now`, one batch per flow log and window,
    /// oldest first. Batches of logs that cover no ENI are not returned.
    pub fn flush(&mut self, now: u64) -> Vec<Batch> {
        let logs = &self.logs;
        let ended = |log: usize, window: u64| window + logs[log].interval <= now;
        let mut records: BTreeMap<(usize, u64), Vec<FlowRecord>> = BTreeMap::new();
        let enis = &self.enis;
        self.flows.retain(|k, acc| {
            if !ended(k.log, k.window) {
                return true;
            }
            records
                .entry((k.log, k.window))
                .or_default()
                .push(record(enis, k, acc));
            false
        });
        self.skipped.retain(|&(log, window, eni)| {
            if !ended(log, window) {
                return true;
            }
            let end = window + logs[log].interval;
            records
                .entry((log, window))
                .or_default()
                .push(FlowRecord::skip_data(Arc::clone(&enis[eni]), window, end));
            false
        });
        let mut seen: HashSet<(usize, u64, InstanceId)> = HashSet::new();
        self.active.retain(|&(log, window, eni)| {
            if ended(log, window) {
                seen.insert((log, window, eni));
                false
            } else {
                true
            }
        });
        let mut batches = Vec::new();
        for (log, state) in self.logs.iter_mut().enumerate() {
            let interval = state.interval;
            let Some(next) = state.next_window else {
                state.next_window = Some(now - now % interval);
                continue;
            };
            if next + interval > now {
                continue;
            }
            // The last window that ended, and the oldest one still reported when empty.
            let last = (now - interval) - (now - interval) % interval;
            let first_empty = next.max(last.saturating_sub((MAX_EMPTY_WINDOWS - 1) * interval));
            let mut windows: Vec<u64> = records
                .range((log, 0)..=(log, u64::MAX))
                .map(|((_, w), _)| *w)
                .filter(|w| *w < first_empty)
                .collect();
            windows.extend((first_empty..=last).step_by(interval as usize));
            for window in windows {
                let mut recs = records.remove(&(log, window)).unwrap_or_default();
                recs.sort_by_key(|r| {
                    let f = r
                        .flow
                        .map(|f| (f.direction, f.src, f.dst, f.src_port, f.dst_port));
                    (
                        r.log_status == LogStatus::SkipData,
                        r.eni.instance,
                        r.start,
                        f,
                    )
                });
                for &eni in &state.enis {
                    if !seen.contains(&(log, window, eni)) {
                        recs.push(FlowRecord::no_data(
                            Arc::clone(&enis[eni]),
                            window,
                            window + interval,
                        ));
                    }
                }
                if !recs.is_empty() {
                    batches.push(Batch {
                        flow_log: log,
                        window_start: window,
                        window_end: window + interval,
                        records: recs,
                    });
                }
            }
            state.next_window = Some(last + interval);
        }
        batches.sort_by_key(|b| (b.window_end, b.flow_log));
        batches
    }
}

fn offset(net: Ipv4Addr, n: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(net).wrapping_add(n))
}

fn record(enis: &[Arc<EniInfo>], k: &FlowKey, acc: &FlowAcc) -> FlowRecord {
    FlowRecord {
        eni: Arc::clone(&enis[k.eni]),
        start: acc.first,
        end: acc.last,
        log_status: LogStatus::Ok,
        flow: Some(Flow {
            direction: k.direction,
            src: k.src,
            dst: k.dst,
            src_port: k.src_port,
            dst_port: k.dst_port,
            protocol: k.protocol,
            packets: acc.packets,
            bytes: acc.bytes,
            action: k.action,
            tcp_flags: acc.tcp_flags,
            traffic_path: acc.traffic_path,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{load_str, FlowLogField};
    use std::net::IpAddr;

    const LAB: &str =
        "name: t\ndefaults: { account: \"123456789012\" }\nvpcs:\n  a:\n    cidr: 10.0.0.0/16\n\
        \x20   subnets: { a1: { cidr: 10.0.1.0/24 }, a2: { cidr: 10.0.2.0/24 } }\n\
        \x20   instances:\n\
        \x20     web1: { subnet: a1, private_ip: 10.0.1.10 }\n\
        \x20     app1: { subnet: a1, private_ip: 10.0.1.11 }\n\
        \x20     db1: { subnet: a2, private_ip: 10.0.2.20 }\n\
        \x20   flow_logs:\n\
        \x20     all: { resource: vpc:a, traffic: ALL, aggregation_interval: 60 }\n\
        \x20     rj: { resource: eni:web1, traffic: REJECT, aggregation_interval: 10 }\n\
        \x20     db: { resource: subnet:a2, traffic: ACCEPT, aggregation_interval: 5 }\n";

    fn lab() -> Lab {
        load_str(LAB, "t.yaml").unwrap()
    }

    fn tcp(eni: InstanceId, sport: u16, dport: u16, flags: u8, accepted: bool) -> Observation {
        Observation {
            eni,
            direction: Direction::Ingress,
            src: IpAddr::from([10, 0, 2, 20]),
            dst: IpAddr::from([10, 0, 1, 10]),
            src_port: sport,
            dst_port: dport,
            protocol: 6,
            tcp_flags: flags,
            bytes: 60,
            accepted,
            traffic_path: None,
        }
    }

    #[test]
    fn coverage_follows_the_resource() {
        let a = Aggregator::new(&lab());
        assert_eq!(a.covering, [vec![0, 1], vec![0], vec![0, 2]]);
        assert!(!a.is_idle());
    }

    #[test]
    fn packets_of_one_flow_make_one_record() {
        let lab = lab();
        let mut a = Aggregator::new(&lab);
        a.observe(1000, &tcp(0, 40000, 80, 2, true));
        a.observe(1001, &tcp(0, 40000, 80, 16, true));
        a.observe(1003, &tcp(0, 40000, 80, 17, true));
        let all = |b: Vec<Batch>| {
            b.into_iter()
                .filter(|b| b.flow_log == 0)
                .collect::<Vec<_>>()
        };
        assert!(
            all(a.flush(1019)).is_empty(),
            "the 60 s window [960, 1020) is still open"
        );
        let batches = all(a.flush(1020));
        assert_eq!(batches.len(), 1);
        let b = &batches[0];
        assert_eq!((b.flow_log, b.window_start, b.window_end), (0, 960, 1020));
        let f = b.records[0].flow.unwrap();
        assert_eq!((f.packets, f.bytes, f.tcp_flags), (3, 180, 3));
        assert_eq!((b.records[0].start, b.records[0].end), (1000, 1003));
        // app1 and db1 were quiet.
        let statuses: Vec<LogStatus> = b.records.iter().map(|r| r.log_status).collect();
        assert_eq!(
            statuses,
            [LogStatus::Ok, LogStatus::NoData, LogStatus::NoData]
        );
        assert_eq!(
            b.records[1].render(&FlowLogField::DEFAULT_FORMAT),
            format!(
                "2 123456789012 {} - - - - - - - 960 1020 - NODATA",
                b.records[1].eni.interface_id
            )
        );
    }

    #[test]
    fn traffic_filter_keeps_only_its_action() {
        let lab = lab();
        let mut a = Aggregator::new(&lab);
        a.observe(100, &tcp(0, 40000, 80, 2, true));
        a.observe(101, &tcp(0, 40001, 22, 2, false));
        let batches = a.flush(110);
        // Only the 10 s REJECT log on web1 has ended.
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].flow_log, 1);
        assert_eq!(batches[0].records.len(), 1);
        let f = batches[0].records[0].flow.unwrap();
        assert_eq!((f.dst_port, f.action), (22, Action::Reject));
    }

    #[test]
    fn filtered_traffic_is_still_traffic_for_nodata() {
        let lab = lab();
        let mut a = Aggregator::new(&lab);
        a.observe(100, &tcp(2, 5432, 40000, 16, false));
        let db: Vec<Batch> = a
            .flush(105)
            .into_iter()
            .filter(|b| b.flow_log == 2)
            .collect();
        assert!(
            db.is_empty(),
            "db1 had (rejected) traffic, so no NODATA: {db:?}"
        );
        let db: Vec<Batch> = a
            .flush(110)
            .into_iter()
            .filter(|b| b.flow_log == 2)
            .collect();
        assert_eq!(db.len(), 1);
        assert_eq!(db[0].records[0].log_status, LogStatus::NoData);
        assert_eq!((db[0].window_start, db[0].window_end), (105, 110));
    }

    #[test]
    fn quiet_logs_report_nodata_from_their_first_flush() {
        let lab = lab();
        let mut a = Aggregator::new(&lab);
        assert!(a.flush(3).is_empty());
        let b = a.flush(5);
        assert_eq!(b.len(), 1);
        assert_eq!((b[0].flow_log, b[0].window_start), (2, 0));
        // A long pause reports at most MAX_EMPTY_WINDOWS empty windows.
        let b = a.flush(1000);
        let db = b.iter().filter(|b| b.flow_log == 2).count() as u64;
        assert_eq!(db, MAX_EMPTY_WINDOWS);
        assert!(b.windows(2).all(|w| w[0].window_end <= w[1].window_end));
    }

    #[test]
    fn a_flow_beyond_capacity_makes_one_skipdata_record() {
        let lab = lab();
        let mut a = Aggregator::with_max_flows(&lab, 1);
        a.observe(1000, &tcp(0, 40000, 80, 2, true));
        // Two new flows find the table full: one SKIPDATA line stands for both.
        a.observe(1001, &tcp(0, 40001, 80, 2, true));
        a.observe(1002, &tcp(0, 40002, 80, 2, true));
        // The first flow goes on being counted.
        a.observe(1003, &tcp(0, 40000, 80, 16, true));
        let batches: Vec<Batch> = a
            .flush(1020)
            .into_iter()
            .filter(|b| b.flow_log == 0)
            .collect();
        assert_eq!(batches.len(), 1);
        let lines: Vec<String> = batches[0]
            .records
            .iter()
            .map(|r| r.render(&FlowLogField::DEFAULT_FORMAT))
            .collect();
        let eni = |i: usize| &a.enis[i].interface_id;
        assert_eq!(
            lines,
            [
                format!(
                    "2 123456789012 {} 10.0.2.20 10.0.1.10 40000 80 6 2 120 1000 1003 ACCEPT OK",
                    eni(0)
                ),
                format!(
                    "2 123456789012 {} - - - - - - - 960 1020 - SKIPDATA",
                    eni(0)
                ),
                format!("2 123456789012 {} - - - - - - - 960 1020 - NODATA", eni(1)),
                format!("2 123456789012 {} - - - - - - - 960 1020 - NODATA", eni(2)),
            ]
        );
        // The flush made room: the next window has no skip.
        a.observe(1030, &tcp(0, 40001, 80, 2, true));
        let next = a.flush(1080);
        let statuses: Vec<LogStatus> = next
            .iter()
            .filter(|b| b.flow_log == 0)
            .flat_map(|b| b.records.iter().map(|r| r.log_status))
            .collect();
        assert_eq!(
            statuses,
            [LogStatus::Ok, LogStatus::NoData, LogStatus::NoData]
        );
    }

    #[test]
    fn a_skipped_observation_makes_skipdata_in_every_covering_log() {
        let lab = lab();
        let mut a = Aggregator::new(&lab);
        // db1's packet was lost between the data plane and the aggregator.
        a.skip(1001, 2);
        let batches = a.flush(1020);
        let db1 = &a.enis[2].interface_id;
        let of = |log: usize| {
            batches
                .iter()
                .filter(|b| b.flow_log == log)
                .flat_map(|b| b.records.iter())
                .filter(|r| r.eni.instance == 2)
                .map(|r| r.render(&FlowLogField::DEFAULT_FORMAT))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            of(0),
            [format!(
                "2 123456789012 {db1} - - - - - - - 960 1020 - SKIPDATA"
            )]
        );
        // The 5 s log: SKIPDATA in [1000, 1005), NODATA in the windows after it.
        let db = of(2);
        assert_eq!(
            db[0],
            format!("2 123456789012 {db1} - - - - - - - 1000 1005 - SKIPDATA")
        );
        assert!(db[1..].iter().all(|l| l.ends_with(" - NODATA")), "{db:?}");
        assert_eq!(db.len(), 4);
        // web1's REJECT log does not cover db1.
        assert!(of(1).is_empty());
    }

    #[test]
    fn unlogged_destinations_are_skipped() {
        let lab = lab();
        let mut a = Aggregator::new(&lab);
        let mut o = tcp(0, 40000, 80, 2, true);
        o.dst = IpAddr::from([169, 254, 169, 254]);
        a.observe(100, &o);
        o.dst = IpAddr::from([10, 0, 0, 2]);
        o.protocol = 17;
        a.observe(100, &o);
        assert!(a.flows.is_empty());
        assert!(a.active.is_empty());
    }
}
