//! Flow logs end to end without a kernel: a scenario with `flow_logs`, observations on a virtual
//! clock, records in AWS's text format, files in the S3 layout, and the analyses read back.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use vpclab::flowlog::{
    files, parse_header, parse_line, port_scans, read_log_file, write_batch, Aggregator, Batch,
    Direction, Observation,
};
use vpclab::scenario::{aws_id, load_str, FlowLogField, Lab};

const LAB: &str = r#"
name: fl
defaults: { region: us-east-1, account: "123456789012" }
vpcs:
  a:
    cidr: 10.0.0.0/16
    subnets: { a1: { cidr: 10.0.1.0/24, az: us-east-1b } }
    instances:
      web1: { subnet: a1, private_ip: 10.0.1.10 }
      app1: { subnet: a1, private_ip: 10.0.1.11 }
    flow_logs:
      all: { resource: vpc:a, traffic: ALL, aggregation_interval: 60 }
      acc: { resource: eni:web1, traffic: ACCEPT, aggregation_interval: 60 }
      rej: { resource: eni:web1, traffic: REJECT, aggregation_interval: 60 }
      v5:
        resource: subnet:a1
        traffic: ALL
        aggregation_interval: 10
        format: "${version} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${action} ${tcp-flags} ${flow-direction} ${traffic-path} ${az-id} ${log-status}"
"#;

const WEB1: usize = 0;
const APP1: usize = 1;
const T0: u64 = 1_700_000_000 - 1_700_000_000 % 60; // 1699999980: a 60 s window starts here

fn lab() -> Lab {
    load_str(LAB, "fl.yaml").expect("the test lab loads")
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn tcp(
    direction: Direction,
    src: &str,
    sport: u16,
    dst: &str,
    dport: u16,
    flags: u8,
) -> Observation {
    Observation {
        eni: WEB1,
        direction,
        src: ip(src),
        dst: ip(dst),
        src_port: sport,
        dst_port: dport,
        protocol: 6,
        tcp_flags: flags,
        bytes: 60,
        accepted: true,
        traffic_path: Some(1),
    }
}

/// The rendered lines of one flow log's batches.
fn lines(lab: &Lab, batches: &[Batch], log: &str) -> Vec<String> {
    let n = lab.flow_logs.iter().position(|f| f.name == log).unwrap();
    batches
        .iter()
        .filter(|b| b.flow_log == n)
        .flat_map(|b| b.records.iter().map(|r| r.render(&lab.flow_logs[n].fields)))
        .collect()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vpclab-flowlog-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn default_format_matches_the_aws_shape() {
    let lab = lab();
    let mut agg = Aggregator::new(&lab);
    let out = tcp(Direction::Egress, "10.0.1.10", 40000, "10.1.1.20", 80, 2);
    agg.observe(T0 + 5, &out);
    agg.observe(
        T0 + 6,
        &Observation {
            tcp_flags: 16,
            ..out
        },
    );
    agg.observe(
        T0 + 9,
        &Observation {
            tcp_flags: 17,
            ..out
        },
    );
    let batches = agg.flush(T0 + 60);
    let eni = aws_id("eni", "fl", "web1");
    assert!(eni.starts_with("eni-0") && eni.len() == 21, "{eni}");
    let all = lines(&lab, &batches, "all");
    assert_eq!(
        all,
        [
            format!(
                "2 123456789012 {eni} 10.0.1.10 10.1.1.20 40000 80 6 3 180 {} {} ACCEPT OK",
                T0 + 5,
                T0 + 9
            ),
            format!(
                "2 123456789012 {} - - - - - - - {T0} {} - NODATA",
                aws_id("eni", "fl", "app1"),
                T0 + 60
            ),
        ]
    );
}

#[test]
fn icmp_has_ports_zero_and_tcp_flags_are_or_ed() {
    let lab = lab();
    let mut agg = Aggregator::new(&lab);
    agg.observe(
        T0,
        &Observation::icmp(
            APP1,
            Direction::Ingress,
            ip("192.0.2.7"),
            ip("10.0.1.11"),
            84,
            true,
        ),
    );
    // A whole client connection: SYN, ACK, PSH+ACK, FIN+ACK -> 3 (SYN+FIN).
    for flags in [2, 16, 24, 17] {
        agg.observe(
            T0 + 1,
            &tcp(
                Direction::Egress,
                "10.0.1.10",
                40001,
                "10.0.1.11",
                80,
                flags,
            ),
        );
    }
    // Only ACKs -> 0.
    agg.observe(
        T0 + 2,
        &tcp(Direction::Egress, "10.0.1.10", 40002, "10.0.1.11", 80, 16),
    );
    let v5 = lines(&lab, &agg.flush(T0 + 10), "v5");
    assert_eq!(
        v5,
        [
            "5 10.0.1.10 10.0.1.11 40001 80 6 ACCEPT 3 egress 1 use1-az2 OK",
            "5 10.0.1.10 10.0.1.11 40002 80 6 ACCEPT 0 egress 1 use1-az2 OK",
            // Ingress records never show a traffic path.
            "5 192.0.2.7 10.0.1.11 0 0 1 ACCEPT 0 ingress - use1-az2 OK",
        ]
    );
}

#[test]
fn accept_and_reject_logs_split_the_traffic() {
    let lab = lab();
    let mut agg = Aggregator::new(&lab);
    let ok = tcp(
        Direction::Ingress,
        "198.51.100.4",
        50000,
        "10.0.1.10",
        443,
        2,
    );
    let bad = Observation {
        dst_port: 22,
        accepted: false,
        ..ok
    };
    agg.observe(T0 + 1, &ok);
    agg.observe(T0 + 2, &bad);
    let batches = agg.flush(T0 + 60);
    let acc = lines(&lab, &batches, "acc");
    let rej = lines(&lab, &batches, "rej");
    assert_eq!(acc.len(), 1);
    assert!(
        acc[0].contains(" 50000 443 6 1 60 ") && acc[0].ends_with("ACCEPT OK"),
        "{acc:?}"
    );
    assert_eq!(rej.len(), 1);
    assert!(
        rej[0].contains(" 50000 22 6 1 60 ") && rej[0].ends_with("REJECT OK"),
        "{rej:?}"
    );
    // ALL keeps both, and web1 had traffic, so only app1 is NODATA.
    assert_eq!(lines(&lab, &batches, "all").len(), 3);
}

#[test]
fn windows_close_on_the_virtual_clock() {
    let lab = lab();
    let mut agg = Aggregator::new(&lab);
    let out = tcp(Direction::Egress, "10.0.1.10", 40000, "192.0.2.80", 80, 2);
    agg.observe(T0 + 59, &out);
    agg.observe(T0 + 60, &out); // the next 60 s window
    let first = agg.flush(T0 + 59);
    assert!(lines(&lab, &first, "all").is_empty());
    let at_60 = agg.flush(T0 + 60);
    let all = lines(&lab, &at_60, "all");
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all[0].contains(&format!(" 1 60 {} {} ACCEPT OK", T0 + 59, T0 + 59)));
    assert!(lines(&lab, &agg.flush(T0 + 119), "all").is_empty());
    let all = lines(&lab, &agg.flush(T0 + 120), "all");
    assert!(
        all[0].contains(&format!(" 1 60 {} {} ACCEPT OK", T0 + 60, T0 + 60)),
        "{all:?}"
    );
    // The 10 s log's first window is the one of its first packet, [T0+50, T0+60): web1's
    // packet, and app1 quiet.
    assert_eq!(
        lines(&lab, &at_60, "v5"),
        [
            "5 10.0.1.10 192.0.2.80 40000 80 6 ACCEPT 2 egress 1 use1-az2 OK",
            "5 - - - - - - - - - use1-az2 NODATA"
        ]
    );
}

#[test]
fn s3_path_for_a_known_time() {
    let key = files::s3_key(
        "123456789012",
        "us-east-1",
        "fl-0abc",
        1_700_000_000,
        "0123abcd",
    );
    assert_eq!(
        key,
        "AWSLogs/123456789012/vpcflowlogs/us-east-1/2023/11/14/\
         123456789012_vpcflowlogs_us-east-1_fl-0abc_20231114T2213Z_0123abcd.log.gz"
    );
}

#[test]
fn gzip_files_round_trip_with_the_header() {
    let lab = lab();
    let dir = scratch("gzip");
    let mut agg = Aggregator::new(&lab);
    agg.observe(
        T0,
        &tcp(Direction::Egress, "10.0.1.10", 40000, "10.1.1.20", 80, 2),
    );
    let batches = agg.flush(T0 + 60);
    let all = lab.flow_logs.iter().position(|f| f.name == "all").unwrap();
    let batch = batches.iter().find(|b| b.flow_log == all).unwrap();
    let written = write_batch(&dir, &lab, batch).unwrap();
    let s3 = &written[0];
    let rel = s3
        .strip_prefix(&dir)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let fl = aws_id("fl", "fl", "all");
    let prefix = format!(
        "AWSLogs/123456789012/vpcflowlogs/us-east-1/2023/11/14/\
         123456789012_vpcflowlogs_us-east-1_{fl}_20231114T2214Z_"
    );
    assert!(
        rel.starts_with(&prefix) && rel.ends_with(".log.gz"),
        "{rel}"
    );
    let text = read_log_file(s3).unwrap();
    let mut it = text.lines();
    let header = it.next().unwrap();
    assert_eq!(
        header,
        "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes \
         start end action log-status"
    );
    let fields = parse_header(header).unwrap();
    let recs: Vec<_> = it.map(|l| parse_line(&fields, l).unwrap()).collect();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].dstaddr, Some(ip("10.1.1.20")));
    assert_eq!(recs[0].packets, Some(1));
    // CloudWatch streams: one per ENI, no header, appended.
    assert_eq!(written.len(), 3);
    let cw = dir
        .join("cloudwatch/all")
        .join(format!("{}-all.log", aws_id("eni", "fl", "web1")));
    assert!(written.contains(&cw));
    write_batch(&dir, &lab, batch).unwrap();
    let cw_text = std::fs::read_to_string(&cw).unwrap();
    assert_eq!(cw_text.lines().count(), 2);
    assert!(!cw_text.starts_with("version"));
    // The second delivery of the same window got a file of its own.
    let n = count_files(&dir, "gz");
    assert_eq!(n, 2);
    let _ = std::fs::remove_dir_all(&dir);
}

fn count_files(dir: &Path, ext: &str) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            n += count_files(&p, ext);
        } else if p.extension().is_some_and(|x| x == ext) {
            n += 1;
        }
    }
    n
}

/// Twenty REJECTed ports from one source and three from another, through files and back.
fn scan_batches(lab: &Lab) -> Vec<Batch> {
    let mut agg = Aggregator::new(lab);
    for p in 0..20u16 {
        let probe = Observation {
            accepted: false,
            ..tcp(
                Direction::Ingress,
                "192.0.2.66",
                61000,
                "10.0.1.10",
                1000 + p,
                2,
            )
        };
        agg.observe(T0 + u64::from(p), &probe);
    }
    for p in [22, 23, 25] {
        let probe = Observation {
            accepted: false,
            ..tcp(Direction::Ingress, "198.51.100.9", 61000, "10.0.1.10", p, 2)
        };
        agg.observe(T0 + 3, &probe);
    }
    agg.observe(
        T0 + 4,
        &tcp(
            Direction::Ingress,
            "198.51.100.9",
            61001,
            "10.0.1.10",
            443,
            2,
        ),
    );
    agg.flush(T0 + 60)
}

#[test]
fn a_port_scan_is_found_in_the_files() {
    let lab = lab();
    let dir = scratch("scan");
    for b in scan_batches(&lab) {
        write_batch(&dir, &lab, &b).unwrap();
    }
    let rej = dir.join("cloudwatch/rej");
    let mut records = Vec::new();
    let fields = &lab.flow_logs[2].fields;
    for e in std::fs::read_dir(&rej).unwrap().flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap();
        records.extend(text.lines().filter_map(|l| parse_line(fields, l)));
    }
    assert_eq!(records.len(), 23);
    let scans = port_scans(&records, 60, 10);
    assert_eq!(scans.len(), 1, "{scans:?}");
    assert_eq!(scans[0].src, ip("192.0.2.66"));
    assert_eq!(scans[0].dst, ip("10.0.1.10"));
    assert_eq!(scans[0].ports, 20);
    assert_eq!((scans[0].first, scans[0].last), (T0, T0 + 19));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn athena_columns_query_with_duckdb() {
    let probe = Command::new("python3")
        .args(["-c", "import duckdb"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: python3 with duckdb is not available (pip install duckdb)");
        return;
    }
    let lab = lab();
    let dir = scratch("duckdb");
    // Only the default-format logs (all, acc, rej): one table, Athena's v2 columns.
    let default_format =
        |b: &Batch| lab.flow_logs[b.flow_log].fields == FlowLogField::DEFAULT_FORMAT;
    let mut agg = Aggregator::new(&lab);
    agg.observe(
        T0 + 1,
        &tcp(Direction::Egress, "10.0.1.10", 40000, "10.1.1.20", 80, 2),
    );
    let mut batches = agg.flush(T0 + 60);
    batches.extend(scan_batches(&lab));
    for b in batches.iter().filter(|b| default_format(b)) {
        write_batch(&dir, &lab, b).unwrap();
    }
    let script = format!(
        r#"
import duckdb
cols = "{{'version': 'INTEGER', 'account_id': 'VARCHAR', 'interface_id': 'VARCHAR', \
'srcaddr': 'VARCHAR', 'dstaddr': 'VARCHAR', 'srcport': 'INTEGER', 'dstport': 'INTEGER', \
'protocol': 'BIGINT', 'numpackets': 'BIGINT', 'numbytes': 'BIGINT', 'start': 'BIGINT', \
'end': 'BIGINT', 'action': 'VARCHAR', 'log_status': 'VARCHAR'}}"
con = duckdb.connect()
con.execute(f"CREATE VIEW flows AS SELECT * FROM read_csv('{dir}/AWSLogs/**/*.log.gz', \
delim=' ', header=true, nullstr='-', columns={{cols}})")
q = lambda s: con.execute(s).fetchall()[0][0]
print(q("SELECT count(*) FROM flows WHERE log_status = 'OK'"))
print(q("SELECT count(*) FROM flows WHERE action = 'REJECT'"))
print(q("SELECT count(*) FROM flows WHERE log_status = 'NODATA'"))
print(q("SELECT count(DISTINCT dstport) FROM flows WHERE action = 'REJECT' AND srcaddr = '192.0.2.66'"))
print(q("SELECT sum(numbytes) FROM flows WHERE interface_id LIKE 'eni-%'"))
"#,
        dir = dir.display()
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "duckdb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let counts: Vec<u64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    // OK: first run all 1 + acc 1; scan run all 24 + acc 1 + rej 23. REJECT: 23 on all and rej.
    // NODATA: app1 on `all` in both runs. Bytes: 50 OK records of one 60-byte packet each.
    assert_eq!(counts, [50, 46, 2, 20, 3000]);
    let _ = std::fs::remove_dir_all(&dir);
}
