//! Daemon layer: VPC Flow Logs in the running lab. Packet loops report what each interface saw
//! through a bounded channel (no lock, no allocation per packet); one task aggregates and, when
//! a capture window closes, writes the records under the lab's folder (`flowlogs/`). When the
//! channel is full, a per-interface counter notes the skip and the interface gets a SKIPDATA
//! record for that window.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use tokio::sync::mpsc;

use super::state::lab_dir;
use crate::fabric::{Compiled, Decision, Direction as SgDirection, Hop, Outcome, SgVerdict, Trace};
use crate::flowlog::{write_batch, Aggregator, Direction, Observation};
use crate::scenario::{HostId, InstanceId, Lab};
use crate::wire::FlowKey;

/// Observations queued between the packet loops and the writer; beyond it records are skipped
/// (AWS's SKIPDATA), never the packets.
const QUEUE: usize = 65536;

enum Message {
    Observe(Observation),
    /// The new lab and its skip counters, already in use by the packet loops.
    Reload(Box<Lab>, Arc<SkipCounts>),
}

/// Per logged interface of the lab (instances', then NAT gateways'): observations the channel
/// had no room for since the writer last looked.
type SkipCounts = Box<[AtomicU64]>;

fn skip_counts(lab: &Lab) -> Arc<SkipCounts> {
    let interfaces = lab.instances.len() + lab.nat_gateways.len();
    Arc::new((0..interfaces).map(|_| AtomicU64::new(0)).collect())
}

/// The packet loops' end of the flow-log pipeline.
pub struct FlowLogSink {
    tx: mpsc::Sender<Message>,
    /// Swapped whole on reload (instance numbers change); read without a lock.
    skipped: ArcSwap<SkipCounts>,
}

/// Where a lab's flow logs are written.
pub fn output_dir(lab: &str) -> PathBuf {
    lab_dir(lab).join("flowlogs")
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl FlowLogSink {
    /// Starts the writer task for `lab`; must be called inside the runtime.
    pub fn start(lab: &Lab) -> FlowLogSink {
        let (tx, rx) = mpsc::channel(QUEUE);
        let skipped = skip_counts(lab);
        tokio::spawn(writer(lab.clone(), rx, Arc::clone(&skipped)));
        FlowLogSink {
            tx,
            skipped: ArcSwap::new(skipped),
        }
    }

    pub fn report(&self, observation: Observation) {
        if self.tx.try_send(Message::Observe(observation)).is_err() {
            // The record is skipped, never the packet.
            if let Some(n) = self.skipped.load().get(observation.eni) {
                n.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// After an edit: close the open windows of the old lab and go on with the new one. Call it
    /// just before the packet loops switch to the new lab, so that their skip counts follow.
    pub async fn reload(&self, lab: &Lab) {
        let skipped = skip_counts(lab);
        self.skipped.store(Arc::clone(&skipped));
        let _ = self
            .tx
            .send(Message::Reload(Box::new(lab.clone()), skipped))
            .await;
    }
}

async fn writer(mut lab: Lab, mut rx: mpsc::Receiver<Message>, mut skipped: Arc<SkipCounts>) {
    let out = output_dir(&lab.name);
    let mut aggregator = Aggregator::new(&lab);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            message = rx.recv() => match message {
                Some(Message::Observe(o)) => aggregator.observe(unix_now(), &o),
                Some(Message::Reload(new, new_skipped)) => {
                    // Everything of the old version is written out, whatever its window.
                    drain_skips(&skipped, &mut aggregator, unix_now());
                    write_all(&out, &lab, aggregator.flush(u64::MAX / 2));
                    lab = *new;
                    skipped = new_skipped;
                    aggregator = Aggregator::new(&lab);
                }
                None => return,
            },
            _ = tick.tick() => {
                let now = unix_now();
                drain_skips(&skipped, &mut aggregator, now);
                write_all(&out, &lab, aggregator.flush(now));
            }
        }
    }
}

/// Hands the skips counted since the last call to the aggregator, as of `now`: a skip lands in
/// the window open when the writer sees it, at most one tick after the packet.
fn drain_skips(skipped: &[AtomicU64], aggregator: &mut Aggregator, now: u64) {
    for (eni, n) in skipped.iter().enumerate() {
        if n.swap(0, Ordering::Relaxed) > 0 {
            aggregator.skip(now, eni);
        }
    }
}

fn write_all(out: &std::path::Path, lab: &Lab, batches: Vec<crate::flowlog::Batch>) {
    for batch in batches {
        if let Err(e) = write_batch(out, lab, &batch) {
            eprintln!(
                "flow logs of lab {}: write under {}: {e}",
                lab.name,
                out.display()
            );
        }
    }
}

/// Records, while a packet is decided, what the flow logs need: whether its source interface
/// let it out, which interface it reached or was refused at, and the path it took.
#[derive(Default)]
pub struct FlowTrace {
    /// Refused by the source's security groups or its subnet's NACL on the way out.
    pub rejected_out: bool,
    /// Refused at the destination (its subnet's NACL or its security groups) in that subnet.
    pub rejected_in_subnet: Option<usize>,
    /// The destination's interface when its security groups refused the packet.
    pub rejected_at: Option<InstanceId>,
    /// Crossed a peering: Some(true) for inter-Region.
    pub peering_inter_region: Option<bool>,
    pub peering: Option<usize>,
    /// The sender's part is over: the packet left its subnet (or reached its neighbour), so
    /// what refuses it later (a NAT gateway's subnet, a forwarding instance) is not the
    /// sender's rejection.
    pub left_source: bool,
    /// AWS's traffic-path of the first hop out of the VPC, as the sender's record shows it:
    /// 8 through the internet gateway, 7 through a gateway endpoint (a NAT gateway is inside
    /// the VPC, so traffic to it stays 1).
    pub edge_path: Option<u8>,
    /// A NAT gateway was crossed: what follows is the gateway's traffic, not the sender's.
    pub nat_crossed: bool,
    /// The NAT gateway crossing, as its own interface logs it.
    pub nat: Option<NatCrossing>,
}

/// A packet through a NAT gateway: the gateway, which way, and the address and port it
/// translated (the source on the way out, the destination of a reply on the way in).
#[derive(Debug, Clone, Copy)]
pub struct NatCrossing {
    pub gateway: usize,
    pub direction: SgDirection,
    pub from: (IpAddr, u16),
    pub to: (IpAddr, u16),
}

impl Trace for FlowTrace {
    fn hop(&mut self, hop: Hop) {
        match hop {
            Hop::SecurityGroup {
                eni,
                direction,
                verdict: SgVerdict::NoRule,
            } => match direction {
                SgDirection::Outbound if !self.left_source => self.rejected_out = true,
                SgDirection::Outbound => {}
                SgDirection::Inbound => self.rejected_at = Some(eni),
            },
            Hop::NetworkAcl {
                subnet,
                direction,
                allow: false,
                ..
            } => match direction {
                SgDirection::Outbound if !self.left_source => self.rejected_out = true,
                SgDirection::Outbound => {}
                SgDirection::Inbound => self.rejected_in_subnet = Some(subnet),
            },
            Hop::Peering { peering, .. } => self.peering = Some(peering),
            Hop::Route { .. } | Hop::SameSubnet(_) => self.left_source = true,
            Hop::NatGateway {
                gateway,
                direction,
                from,
                to,
            } => {
                self.nat_crossed = true;
                self.nat = Some(NatCrossing {
                    gateway,
                    direction,
                    from,
                    to,
                });
            }
            Hop::InternetGateway {
                direction: SgDirection::Outbound,
                ..
            } if !self.nat_crossed => self.edge_path = Some(8),
            Hop::GatewayEndpoint {
                direction: SgDirection::Outbound,
                ..
            } => self.edge_path = Some(7),
            // Through a virtual private gateway (AWS's traffic-path 3).
            Hop::VpnGateway {
                direction: SgDirection::Outbound,
                ..
            } if !self.nat_crossed => self.edge_path = Some(3),
            _ => {}
        }
    }
}

/// `observe` for a packet the fabric decided (`decision`, with the header as sent `key`),
/// sent by host `sender` (None: out of a VPN tunnel). Only instances' interfaces log here;
/// the other hosts of a lab (internet hosts, site hosts) have none.
pub fn observe_decision(
    sink: &FlowLogSink,
    lab: &Compiled,
    sender: Option<HostId>,
    key: &FlowKey,
    decision: &Decision,
    bytes: u32,
    trace: &FlowTrace,
) {
    let instances = lab.lab.instances.len();
    let instance = |host: HostId| Some(host).filter(|&host| host < instances);
    let delivered = match decision.outcome {
        Outcome::Deliver(to) => instance(to),
        Outcome::Drop(_) => None,
    };
    let from = sender.and_then(instance);
    let arrived = &decision.delivered;
    observe(sink, lab, from, key, arrived, bytes, delivered, trace);
}

/// The observations of one decided packet: egress at the sender, ingress at the receiver
/// (or at the interface that refused it).
///
/// `from` is None for a packet from an internet host (no interface of the lab sent it); `key`
/// is the header as sent, `arrived` as it was when it reached (or was refused at) the other
/// end: the internet gateway and NAT gateways translate it, and each interface logs what it
/// saw (aws-rules.md §3.1: an instance's records show its private address).
#[allow(clippy::too_many_arguments)]
pub fn observe(
    sink: &FlowLogSink,
    lab: &Compiled,
    from: Option<InstanceId>,
    key: &FlowKey,
    arrived: &FlowKey,
    bytes: u32,
    delivered_to: Option<InstanceId>,
    trace: &FlowTrace,
) {
    // ICMP is logged with ports 0 (the flow key keeps the echo id there).
    let icmp = key.is_icmp();
    let at = |eni, direction, k: &FlowKey, accepted, traffic_path| Observation {
        eni,
        direction,
        src: k.src,
        dst: k.dst,
        src_port: if icmp { 0 } else { k.src_port },
        dst_port: if icmp { 0 } else { k.dst_port },
        protocol: k.protocol,
        tcp_flags: k.tcp_flags,
        bytes,
        accepted,
        traffic_path,
    };
    let traffic_path = match (trace.peering, trace.edge_path) {
        (Some(p), _) if lab.lab.peerings[p].cross_region => 5,
        (Some(_), _) => 4,
        (None, Some(edge)) => edge,
        (None, None) => 1,
    };
    if let Some(from) = from {
        let sent = at(
            from,
            Direction::Egress,
            key,
            !trace.rejected_out,
            Some(traffic_path),
        );
        sink.report(sent);
    }
    if trace.rejected_out {
        return;
    }
    if let Some(nat) = trace.nat {
        // The gateway's own interface sees the packet come in and go out (aws-rules.md §3.2:
        // srcaddr/dstaddr show its private address, pkt-* the real ends).
        let eni = lab.lab.instances.len() + nat.gateway;
        let (mut inside, mut outside) = (*key, *key);
        // The path of what the gateway sends on: out through the internet gateway (8), or
        // back to the instance inside the VPC (1).
        let path = match nat.direction {
            SgDirection::Outbound => {
                (outside.src, outside.src_port) = nat.to;
                8
            }
            SgDirection::Inbound => {
                (inside.dst, inside.dst_port) = nat.from;
                (outside.dst, outside.dst_port) = nat.to;
                1
            }
        };
        sink.report(at(eni, Direction::Ingress, &inside, true, None));
        sink.report(at(eni, Direction::Egress, &outside, true, Some(path)));
    }
    // Only instances' interfaces are logged here (an interface endpoint's are AWS-managed).
    let instances = lab.lab.instances.len();
    let refused_at = trace.rejected_at.filter(|&eni| eni < instances);
    let receiver = delivered_to.or(refused_at).or_else(|| {
        // Refused by the destination subnet's NACL: the interface it was for, by the VPC's
        // address map (one hash lookup, no scan of the instances).
        let subnet = trace.rejected_in_subnet?;
        let vpc = lab.lab.subnets.get(subnet)?.vpc;
        lab.instance_at(vpc, arrived.dst)
            .filter(|&i| lab.lab.instances[i].subnet == subnet)
    });
    if let Some(eni) = receiver {
        let received = at(
            eni,
            Direction::Ingress,
            arrived,
            delivered_to.is_some(),
            None,
        );
        sink.report(received);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::fabric::{decide, Conntrack};
    use crate::scenario::{load_str, FlowLogField};

    /// Two subnets; b1's NACL admits nothing, so a packet from a1 is refused on entering it.
    const LAB: &str = "name: t\ndefaults: { account: \"123456789012\" }\nvpcs:\n  a:\n\
        \x20   cidr: 10.0.0.0/16\n\
        \x20   subnets: { a1: { cidr: 10.0.1.0/24 }, b1: { cidr: 10.0.2.0/24, network_acl: shut } }\n\
        \x20   network_acls: { shut: {} }\n\
        \x20   instances:\n\
        \x20     web1: { subnet: a1, private_ip: 10.0.1.10 }\n\
        \x20     db1: { subnet: b1, private_ip: 10.0.2.20 }\n\
        \x20     db2: { subnet: b1, private_ip: 10.0.2.21 }\n\
        \x20   flow_logs:\n\
        \x20     all: { resource: vpc:a, traffic: ALL, aggregation_interval: 60 }\n";

    fn sink(lab: &Lab, queue: usize) -> (FlowLogSink, mpsc::Receiver<Message>) {
        let (tx, rx) = mpsc::channel(queue);
        let sink = FlowLogSink {
            tx,
            skipped: ArcSwap::new(skip_counts(lab)),
        };
        (sink, rx)
    }

    fn syn(src: [u8; 4], dst: [u8; 4]) -> FlowKey {
        FlowKey {
            src: src.into(),
            dst: dst.into(),
            protocol: 6,
            src_port: 40000,
            dst_port: 5432,
            icmp_type: 0,
            icmp_code: 0,
            tcp_flags: 0x02,
        }
    }

    fn observations(rx: &mut mpsc::Receiver<Message>) -> Vec<Observation> {
        let mut out = Vec::new();
        while let Ok(Message::Observe(o)) = rx.try_recv() {
            out.push(o);
        }
        out
    }

    #[test]
    fn a_packet_the_destination_nacl_refuses_is_logged_at_its_interface() {
        let lab = Compiled::new(load_str(LAB, "t.yaml").unwrap());
        let (sink, mut rx) = sink(&lab.lab, 16);
        let (web1, db2) = (0, 2);
        let key = syn([10, 0, 1, 10], [10, 0, 2, 21]);
        let mut trace = FlowTrace::default();
        let outcome = decide(
            &lab,
            &Conntrack::scratch(),
            Duration::ZERO,
            web1,
            &key,
            &mut trace,
        );
        assert!(matches!(outcome, crate::fabric::Outcome::Drop(_)));
        assert_eq!(trace.rejected_in_subnet, Some(1));
        observe(&sink, &lab, Some(web1), &key, &key, 60, None, &trace);
        let seen = observations(&mut rx);
        let at: Vec<(InstanceId, Direction, bool)> = seen
            .iter()
            .map(|o| (o.eni, o.direction, o.accepted))
            .collect();
        assert_eq!(
            at,
            [
                (web1, Direction::Egress, true),
                (db2, Direction::Ingress, false)
            ]
        );
        // No interface holds the address: only the sender's record.
        let nobody = syn([10, 0, 1, 10], [10, 0, 2, 99]);
        observe(&sink, &lab, Some(web1), &nobody, &nobody, 60, None, &trace);
        assert_eq!(observations(&mut rx).len(), 1);
    }

    /// Instances behind a NAT gateway whose subnet refuses what leaves toward the internet,
    /// and a public instance that goes out by the internet gateway.
    const EDGE: &str = "name: t\n\
        internet: { hosts: { ex: { ip: 198.51.100.10 } } }\n\
        vpcs:\n\
        \x20 a:\n\
        \x20   cidr: 10.0.0.0/16\n\
        \x20   internet_gateway: true\n\
        \x20   subnets:\n\
        \x20     pub: { cidr: 10.0.0.0/24, route_table: pub-rt, network_acl: no-out }\n\
        \x20     priv: { cidr: 10.0.1.0/24, route_table: priv-rt }\n\
        \x20     open: { cidr: 10.0.2.0/24, route_table: pub-rt }\n\
        \x20   route_tables:\n\
        \x20     pub-rt: { routes: [{ destination: 0.0.0.0/0, target: igw:a }] }\n\
        \x20     priv-rt: { routes: [{ destination: 0.0.0.0/0, target: nat:gw }] }\n\
        \x20   network_acls:\n\
        \x20     no-out: { inbound: [{ rule: 100, protocol: all, cidr: 0.0.0.0/0, action: allow }] }\n\
        \x20   nat_gateways: { gw: { subnet: pub } }\n\
        \x20   instances:\n\
        \x20     app: { subnet: priv, private_ip: 10.0.1.10 }\n\
        \x20     web: { subnet: open, private_ip: 10.0.2.10, public_ip: true }\n";

    #[test]
    fn the_sender_is_judged_on_its_own_part_and_the_path_out_is_named() {
        let lab = Compiled::new(load_str(EDGE, "t.yaml").unwrap());
        let ex = [198, 51, 100, 10];
        // app's packet leaves app and its subnet; the NAT gateway's subnet refuses it later.
        let mut trace = FlowTrace::default();
        let key = syn([10, 0, 1, 10], ex);
        let out = decide(
            &lab,
            &Conntrack::scratch(),
            Duration::ZERO,
            0,
            &key,
            &mut trace,
        );
        assert!(matches!(out, crate::fabric::Outcome::Drop(_)));
        assert!(!trace.rejected_out, "app's own SG and NACL let it out");
        assert_eq!(trace.edge_path, None, "to the NAT gateway, inside the VPC");
        // web goes out by the internet gateway: traffic-path 8.
        let mut trace = FlowTrace::default();
        let key = syn([10, 0, 2, 10], ex);
        let out = decide(
            &lab,
            &Conntrack::scratch(),
            Duration::ZERO,
            1,
            &key,
            &mut trace,
        );
        assert!(matches!(out, crate::fabric::Outcome::Deliver(_)));
        assert_eq!(trace.edge_path, Some(8));
    }

    /// A NAT gateway between app and the internet, under a VPC flow log with the fields of
    /// AWS's NAT gateway example.
    const NAT: &str = "name: t\n\
        internet: { hosts: { ex: { ip: 198.51.100.10 } } }\n\
        vpcs:\n\
        \x20 a:\n\
        \x20   cidr: 10.0.0.0/16\n\
        \x20   internet_gateway: true\n\
        \x20   subnets:\n\
        \x20     pub: { cidr: 10.0.0.0/24, route_table: pub-rt }\n\
        \x20     priv: { cidr: 10.0.1.0/24, route_table: priv-rt }\n\
        \x20   route_tables:\n\
        \x20     pub-rt: { routes: [{ destination: 0.0.0.0/0, target: igw:a }] }\n\
        \x20     priv-rt: { routes: [{ destination: 0.0.0.0/0, target: nat:gw }] }\n\
        \x20   nat_gateways: { gw: { subnet: pub } }\n\
        \x20   instances:\n\
        \x20     app: { subnet: priv, private_ip: 10.0.1.10 }\n\
        \x20   flow_logs:\n\
        \x20     all: { resource: vpc:a, traffic: ALL, aggregation_interval: 60,\n\
        \x20            format: \"${instance-id} ${interface-id} ${srcaddr} ${dstaddr} ${pkt-srcaddr} ${pkt-dstaddr}\" }\n";

    #[test]
    fn the_nat_gateways_own_interface_logs_both_sides_of_each_packet() {
        let lab = Compiled::new(load_str(NAT, "t.yaml").unwrap());
        let (sink, mut rx) = sink(&lab.lab, 64);
        let flows = Conntrack::scratch();
        let (app, ex) = (0, lab.lab.internet_host_id(0));
        // Out: app -> the internet through the gateway, and the reply back.
        for (from, key) in [
            (app, syn([10, 0, 1, 10], [198, 51, 100, 10])),
            (ex, {
                let gw = lab.lab.nat_gateways[0].public_ip.octets();
                let mut k = syn([198, 51, 100, 10], gw);
                (k.src_port, k.dst_port, k.tcp_flags) = (5432, 40000, 0x12);
                k
            }),
        ] {
            let mut trace = FlowTrace::default();
            let d = crate::fabric::decide_packet(
                &lab,
                &flows,
                Duration::ZERO,
                from,
                &key,
                None,
                &mut trace,
            );
            let delivered = match d.outcome {
                crate::fabric::Outcome::Deliver(h) => h,
                other => panic!("{other:?}"),
            };
            let sender = (from < lab.lab.instances.len()).then_some(from);
            let receiver = (delivered < lab.lab.instances.len()).then_some(delivered);
            observe(
                &sink,
                &lab,
                sender,
                &key,
                &d.delivered,
                60,
                receiver,
                &trace,
            );
        }
        let mut aggregator = Aggregator::new(&lab.lab);
        let t0 = 1_700_000_000 - 1_700_000_000 % 60;
        for o in observations(&mut rx) {
            aggregator.observe(t0 + 1, &o);
        }
        let fields = &lab.lab.flow_logs[0].fields;
        let lines: Vec<String> = aggregator
            .flush(t0 + 60)
            .iter()
            .flat_map(|b| b.records.iter().map(|r| r.render(fields)))
            .collect();
        let nat_eni = crate::flowlog::nat_gateway_interface_id(&lab.lab, &lab.lab.nat_gateways[0]);
        let nat: Vec<&str> = lines
            .iter()
            .filter(|l| l.contains(&nat_eni))
            .map(String::as_str)
            .collect();
        let ip = lab.lab.nat_gateways[0].private_ip;
        // As in AWS's example: srcaddr/dstaddr name the gateway, pkt-* the real ends; the
        // interface is requester-managed (instance-id `-`).
        let expected = [
            format!("- {nat_eni} 10.0.1.10 {ip} 10.0.1.10 198.51.100.10"),
            format!("- {nat_eni} {ip} 198.51.100.10 {ip} 198.51.100.10"),
            format!("- {nat_eni} 198.51.100.10 {ip} 198.51.100.10 {ip}"),
            format!("- {nat_eni} {ip} 10.0.1.10 198.51.100.10 10.0.1.10"),
        ];
        let mut nat_sorted = nat.clone();
        nat_sorted.sort();
        let mut expected_sorted: Vec<&str> = expected.iter().map(String::as_str).collect();
        expected_sorted.sort();
        assert_eq!(
            nat_sorted,
            expected_sorted,
            "all records:\n{}",
            lines.join("\n")
        );
    }

    #[test]
    fn a_full_queue_turns_into_a_skipdata_record() {
        let lab = load_str(LAB, "t.yaml").unwrap();
        let (sink, mut rx) = sink(&lab, 1);
        let o = Observation::icmp(
            0,
            Direction::Egress,
            [10, 0, 1, 10].into(),
            [10, 0, 2, 20].into(),
            84,
            true,
        );
        sink.report(o);
        sink.report(o);
        sink.report(Observation { eni: 1, ..o });
        let counts: Vec<u64> = sink
            .skipped
            .load()
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .collect();
        assert_eq!(counts, [1, 1, 0]);

        let t0 = 1_700_000_000 - 1_700_000_000 % 60;
        let mut aggregator = Aggregator::new(&lab);
        for o in observations(&mut rx) {
            aggregator.observe(t0 + 1, &o);
        }
        drain_skips(&sink.skipped.load(), &mut aggregator, t0 + 2);
        assert!(sink
            .skipped
            .load()
            .iter()
            .all(|n| n.load(Ordering::Relaxed) == 0));
        let batches = aggregator.flush(t0 + 60);
        let lines: Vec<String> = batches[0]
            .records
            .iter()
            .map(|r| r.render(&FlowLogField::DEFAULT_FORMAT))
            .collect();
        let eni = |name: &str| crate::scenario::aws_id("eni", "t", name);
        assert_eq!(
            lines,
            [
                format!(
                    "2 123456789012 {} 10.0.1.10 10.0.2.20 0 0 1 1 84 {} {} ACCEPT OK",
                    eni("web1"),
                    t0 + 1,
                    t0 + 1
                ),
                format!(
                    "2 123456789012 {} - - - - - - - {t0} {} - SKIPDATA",
                    eni("web1"),
                    t0 + 60
                ),
                format!(
                    "2 123456789012 {} - - - - - - - {t0} {} - SKIPDATA",
                    eni("db1"),
                    t0 + 60
                ),
                format!(
                    "2 123456789012 {} - - - - - - - {t0} {} - NODATA",
                    eni("db2"),
                    t0 + 60
                ),
            ]
        );
    }
}
