//! Tier 3: the internet edge in a real lab, as root: public and Elastic IPs seen from the
//! internet, S3 through a gateway endpoint with the real AWS CLI, an interface endpoint found
//! by private DNS.

#[macro_use]
mod common;

use common::*;

#[test]
fn the_internet_sees_public_ips_and_the_nat_gateways_elastic_ip() {
    require_root!();
    let lab = "t-edge";
    let file = variant("internet-nat.yaml", lab, |t| t);
    let _guard = up(&file, lab);
    // web1 has the pool's first public IP; the NAT gateway's Elastic IP comes after the
    // instances' (scenario order).
    let (web1_public, nat_public) = ("203.0.113.10", "203.0.113.11");
    let status = text(&vpclab(&["status", lab]));
    assert!(status.contains(web1_public), "{status}");
    // A real capture on the internet host: the SYNs of two requests, one from each subnet.
    let mut capture = capture(
        lab,
        "example",
        "2",
        "tcp[tcpflags] & tcp-syn != 0 and tcp[tcpflags] & tcp-ack == 0 and dst port 80",
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
    for from in ["web1", "app1"] {
        let out = exec(lab, from, &["curl", "-s", "-m", "5", "http://example.com/"]);
        assert!(
            text(&out).contains("hello from example"),
            "{from}: {}",
            text(&out)
        );
    }
    let seen = capture.read_stdout();
    println!("{seen}");
    let sources: Vec<&str> = seen
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .map(|a| a.rsplit_once('.').map_or(a, |(ip, _port)| ip))
        .collect();
    assert_eq!(sources, vec![web1_public, nat_public], "{seen}");
    // The NAT gateway processed (and would bill) app1's request and its reply.
    let cost = text(&vpclab(&["status", lab, "--cost"]));
    let line = cost_line(&cost, "nat:a-nat");
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert!(
        fields.len() == 4 && fields[2].parse::<u64>().unwrap() > 200,
        "{cost}"
    );
    assert!(fields[3].parse::<f64>().unwrap() >= 0.045, "{cost}");
    // The instance itself never sees its public IP.
    let addrs = text(&exec(lab, "web1", &["ip", "-4", "-o", "addr"]));
    assert!(!addrs.contains(web1_public), "{addrs}");
    assert!(addrs.contains("10.0.0."), "{addrs}");
    down_clean(lab);
}

/// The AWS CLI, run inside `host` against the lab's S3 with throwaway credentials, trying
/// each request `attempts` times.
fn aws_cli(lab: &str, host: &str, attempts: u8, args: &[&str]) -> Output {
    let attempts = format!("AWS_MAX_ATTEMPTS={attempts}");
    let mut argv = vec![
        "env",
        "AWS_ACCESS_KEY_ID=lab",
        "AWS_SECRET_ACCESS_KEY=lab",
        "AWS_DEFAULT_REGION=us-east-1",
        "AWS_EC2_METADATA_DISABLED=true",
        &attempts,
        "timeout",
        "30",
        "aws",
        "--cli-connect-timeout",
        "3",
        "--endpoint-url",
        "http://s3.us-east-1.amazonaws.com",
    ];
    argv.extend_from_slice(args);
    exec(lab, host, &argv)
}

#[test]
fn the_aws_cli_reaches_s3_through_a_gateway_endpoint_only() {
    require_root!();
    let lab = "t-s3";
    let file = variant("s3-gateway-endpoint.yaml", lab, |t| t);
    let _guard = up(&file, lab);
    let made = aws_cli(lab, "app1", 2, &["s3", "mb", "s3://lab-bucket"]);
    assert!(made.status.success(), "{}", text(&made));
    let object = std::env::temp_dir().join(format!("vpclab-s3-{}.txt", std::process::id()));
    std::fs::write(&object, "through vpce:a-s3\n").unwrap();
    let put = aws_cli(
        lab,
        "app1",
        2,
        &[
            "s3",
            "cp",
            object.to_str().unwrap(),
            "s3://lab-bucket/hello.txt",
        ],
    );
    let _ = std::fs::remove_file(&object);
    assert!(put.status.success(), "{}", text(&put));
    let listed = aws_cli(lab, "app1", 2, &["s3", "ls", "s3://lab-bucket/"]);
    assert!(text(&listed).contains("hello.txt"), "{}", text(&listed));
    // S3 saw the instance's private address: no translation on the endpoint path.
    let log = std::fs::read_to_string(format!("/run/vpclab/{lab}/s3.log")).unwrap();
    assert!(log.contains("10.0.1.4 - -"), "{log}");
    // The endpoint carried those bytes, for nothing.
    let cost = text(&vpclab(&["status", lab, "--cost"]));
    let line = cost_line(&cost, "vpce:a-s3");
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert!(
        fields.len() == 4 && fields[2].parse::<u64>().unwrap() > 1000,
        "{cost}"
    );
    assert_eq!(fields[3], "0.0000", "{cost}");
    // The subnet whose table lacks the endpoint route gets nowhere.
    let denied = aws_cli(lab, "other1", 1, &["s3", "ls"]);
    assert!(!denied.status.success(), "{}", text(&denied));
    down_clean(lab);
}

#[test]
fn an_interface_endpoint_answers_by_private_dns_with_its_own_security_group() {
    require_root!();
    let lab = "t-iface";
    let file = variant("interface-endpoint.yaml", lab, |t| t);
    let _guard = up(&file, lab);
    let run = |host: &str, args: &[&str]| {
        let mut argv = vec!["timeout", "10"];
        argv.extend_from_slice(args);
        text(&exec(lab, host, &argv))
    };
    // Private DNS: inside VPC a the public name is the endpoint's interface; in b it is not.
    let name = "sqs.us-east-1.amazonaws.com";
    assert_eq!(run("app1", &["dig", "+short", name]).trim(), "10.0.2.4");
    assert_eq!(run("peer1", &["dig", "+short", name]).trim(), "192.0.2.10");
    let url = format!("http://{name}/");
    let code = run(
        "app1",
        &["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", &url],
    );
    assert_eq!(code, "200");
    // The endpoint's group refuses other-sg: the connection times out.
    let refused = run(
        "other1",
        &["curl", "-s", "-m", "3", "-o", "/dev/null", &url],
    );
    assert!(!refused.contains("200"), "{refused}");
    // The service saw the instance's private address, and the endpoint metered the bytes.
    let log = std::fs::read_to_string(format!("/run/vpclab/{lab}/sqs.log")).unwrap();
    assert!(log.contains("10.0.1.4 - -"), "{log}");
    let cost = text(&vpclab(&["status", lab, "--cost"]));
    assert!(cost.contains("vpce:a-sqs"), "{cost}");
    down_clean(lab);
}

#[test]
fn ipv6_leaves_untranslated_through_the_egress_only_gateway_and_nothing_comes_in() {
    require_root!();
    let lab = "t-six";
    // A flow log on app's interface, with the fields that show the family.
    let file = variant("ipv6-egress-only.yaml", lab, |t| {
        t.replace(
            "    instances:\n",
            "    flow_logs:\n      six: { resource: eni:app, traffic: ALL, aggregation_interval: 1, \
             format: \"${type} ${srcaddr} ${dstaddr} ${dstport} ${action}\" }\n    instances:\n",
        )
    });
    let _guard = up(&file, lab);
    let addr = text(&exec(
        lab,
        "app",
        &["ip", "-6", "-o", "addr", "show", "dev", "eth0"],
    ));
    assert!(addr.contains("2001:db8:0:100::a/64"), "{addr}");
    // The VPC resolver answers AAAA for the internet host's name.
    let aaaa = text(&exec(lab, "app", &["dig", "+short", "AAAA", "example.com"]));
    assert_eq!(aaaa.trim(), "2001:db8:ffff::10", "{aaaa}");
    // A real capture on the internet host: the SYN comes from app's own IPv6 address.
    let mut capture = capture(lab, "example", "1", "ip6 and tcp dst port 80");
    std::thread::sleep(std::time::Duration::from_secs(2));
    // By name: curl finds only the AAAA usable (the subnet has no IPv4 route out).
    let out = exec(
        lab,
        "app",
        &["curl", "-s", "-m", "5", "http://example.com/"],
    );
    assert!(text(&out).contains("hello from example"), "{}", text(&out));
    let seen = capture.read_stdout();
    println!("{seen}");
    assert!(
        seen.contains("2001:db8:0:100::a."),
        "the source is app's own address: {seen}"
    );
    // The internet cannot open a connection in, though app's security group allows it.
    let out = exec(
        lab,
        "example",
        &["curl", "-s", "-m", "2", "-g", "http://[2001:db8:0:100::a]/"],
    );
    assert!(!out.status.success(), "{}", text(&out));
    let status = text(&vpclab(&["status", lab]));
    assert!(status.contains("EIGW_NO_INBOUND_INITIATION="), "{status}");
    // app's flow log: IPv6 records, accepted out, with its own IPv6 as srcaddr.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let logs = text(&vpclab(&["logs", "--lab", lab]));
    println!("{logs}");
    assert!(
        logs.lines()
            .any(|l| l.contains("IPv6 2001:db8:0:100::a 2001:db8:ffff::10 80 ACCEPT")),
        "{logs}"
    );
    down_clean(lab);
}
