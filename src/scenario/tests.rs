//! Scenario layer tests: value parsers, error formatting and the decoding corners that the
//! integration tests (tests/scenario_errors.rs) do not reach.

use std::net::Ipv4Addr;

use super::values::*;
use super::*;

fn errors(text: &str) -> Vec<String> {
    match load_str(text, "u.yaml") {
        Ok(lab) => panic!("loaded, but errors were expected: {lab:?}"),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn cidrs_must_be_canonical_ipv4() {
    assert_eq!(
        parse_cidr("10.0.0.0/16").unwrap().to_string(),
        "10.0.0.0/16"
    );
    assert_eq!(
        parse_cidr("10.0.0.1/16").unwrap_err(),
        "CIDR `10.0.0.1/16` has host bits set: expected 10.0.0.0/16"
    );
    assert!(parse_cidr("10.0.0.0")
        .unwrap_err()
        .starts_with("invalid CIDR `10.0.0.0`"));
    assert!(parse_cidr("2001:db8::/56")
        .unwrap_err()
        .contains("AWS assigns the IPv6 /56"));
    assert_eq!(parse_net("::/0").unwrap().to_string(), "::/0");
    assert!(parse_net("2001:db8::1/64")
        .unwrap_err()
        .contains("host bits"));
    assert!(parse_sized_cidr("10.0.0.0/29", 16, 28).is_err());
    assert!(parse_sized_cidr("10.0.0.0/28", 16, 28).is_ok());
}

#[test]
fn protocols_and_ports() {
    assert_eq!(parse_protocol("tcp"), Ok(Protocol::TCP));
    assert_eq!(parse_protocol("6"), Ok(Protocol::TCP));
    assert_eq!(parse_protocol("icmpv6"), Ok(Protocol::Number(58)));
    assert_eq!(parse_protocol("all"), Ok(Protocol::All));
    assert!(parse_protocol("256").is_err());
    assert_eq!(parse_ports("all"), Ok(PortRange::ALL));
    assert_eq!(
        parse_ports("80"),
        Ok(PortRange {
            first: 80,
            last: 80
        })
    );
    assert_eq!(
        parse_ports("1024-65535"),
        Ok(PortRange {
            first: 1024,
            last: 65535
        })
    );
    assert!(parse_ports("65536").is_err());
    assert!(parse_ports("80-").is_err());
}

#[test]
fn services_and_targets() {
    assert_eq!(parse_service("http:8080"), Ok(Service::Http(8080)));
    assert_eq!(parse_service("udp:53"), Ok(Service::Udp(53)));
    assert_eq!(parse_service("icmp"), Ok(Service::Icmp));
    assert!(parse_service("tcp:0").is_err());
    assert_eq!(parse_service("ssh"), Ok(Service::Ssh(22)));
    assert_eq!(parse_service("ssh:2222"), Ok(Service::Ssh(2222)));
    assert!(parse_service("ssh:0").is_err());
    assert!(parse_service("ftp:21").is_err());
    assert_eq!(parse_target("pcx:ab"), Ok(TargetText::Peering("ab")));
    assert_eq!(parse_target("blackhole"), Ok(TargetText::Blackhole));
    assert_eq!(parse_target("nat:n1"), Ok(TargetText::NatGateway("n1")));
    assert_eq!(parse_target("igw:a"), Ok(TargetText::InternetGateway("a")));
    assert_eq!(parse_target("tgw:t1"), Ok(TargetText::TransitGateway("t1")));
    assert!(parse_target("pcx:")
        .unwrap_err()
        .starts_with("invalid route target"));
}

#[test]
fn reserved_addresses() {
    let net = parse_cidr("10.0.1.0/28").unwrap();
    let reserved: Vec<u8> = (0..16u8)
        .filter(|i| is_reserved(net, Ipv4Addr::new(10, 0, 1, *i)))
        .collect();
    assert_eq!(reserved, [0, 1, 2, 3, 15]);
}

#[test]
fn names() {
    assert!(check_name("VPC", "a-1").is_ok());
    assert!(check_name("VPC", "-a").is_err());
    assert!(check_name("VPC", &"a".repeat(25)).is_err());
    assert!(check_lab_name("peering").is_ok());
    assert!(check_lab_name("thirteen-char").is_err());
    assert!(check_account("111111111111").is_ok());
    assert!(check_account("11111111111").is_err());
    assert!(check_region("us-gov-west-1").is_ok());
    assert!(check_region("useast1").is_err());
}

#[test]
fn display_is_one_error_per_line() {
    let e = LoadErrors {
        errors: vec![
            LoadError {
                file: "p.yaml".into(),
                line: 31,
                column: 7,
                path: "peering_connections.ab".into(),
                message: "CIDRs overlap".into(),
            },
            LoadError {
                file: "p.yaml".into(),
                line: 2,
                column: 1,
                path: String::new(),
                message: "YAML syntax error: x".into(),
            },
        ],
    };
    assert_eq!(
        e.to_string(),
        "p.yaml:31:7: peering_connections.ab: CIDRs overlap\np.yaml:2:1: YAML syntax error: x"
    );
    let _: &dyn std::error::Error = &e;
}

#[test]
fn empty_collections_and_single_strings() {
    let text = "name: t\nvpcs:\n  a:\n    cidr: 10.0.0.0/16\n    subnets:\n    instances:\n\
                peering_connections:\nexpect: []\ninternet: {}\nsites:\n";
    let lab = load_str(text, "u.yaml").unwrap();
    assert_eq!(lab.vpcs[0].cidrs.len(), 1);
    assert!(lab.subnets.is_empty() && lab.instances.is_empty());
    let lab = load_str("", "empty.yaml").unwrap();
    assert_eq!(lab.name, "empty");
    assert!(lab.vpcs.is_empty());
}

#[test]
fn anchors_and_aliases_are_expanded() {
    let text = "vpcs:\n  a:\n    cidr: 10.0.0.0/16\n    subnets: { a1: { cidr: 10.0.1.0/24 } }\n\
                instances:\n      web: &h { subnet: a1 }\n      db: *h\n";
    let text = text.replace("instances", "    instances");
    let lab = load_str(&text, "u.yaml").unwrap();
    assert_eq!(lab.instances.len(), 2);
}

#[test]
fn account_may_be_an_unquoted_number_and_is_checked() {
    let text = "vpcs:\n  a: { cidr: 10.0.0.0/16, account: 222222222222 }\n  b: { cidr: 10.1.0.0/16, account: 12 }\n";
    assert_eq!(
        errors(text),
        ["u.yaml:3:36: vpcs.b.account: invalid account `12`: expected 12 digits, quoted, like \"111111111111\""]
    );
}

#[test]
fn az_must_be_in_the_vpc_region() {
    let text = "vpcs:\n  a:\n    cidr: 10.0.0.0/16\n    region: eu-west-1\n    subnets: { a1: { cidr: 10.0.1.0/24, az: us-east-1a } }\n";
    assert_eq!(
        errors(text),
        ["u.yaml:5:45: vpcs.a.subnets.a1.az: az `us-east-1a` is not in vpc a's region eu-west-1: \
          expected eu-west-1a, eu-west-1b, ..."]
    );
}

#[test]
fn implicit_main_table_name_is_taken() {
    let text = "vpcs:\n  a:\n    cidr: 10.0.0.0/16\n    route_tables: { a-main: {} }\n";
    assert_eq!(
        errors(text),
        ["u.yaml:4:21: vpcs.a.route_tables.a-main: route table name `a-main` is the name of vpc a's \
          implicit main table: mark one of its tables `main: true` or rename this one"]
    );
}

#[test]
fn ambiguous_sg_reference_in_two_peers() {
    let text = "vpcs:\n  a:\n    cidr: 10.0.0.0/16\n    security_groups: { g: { ingress: [{ protocol: all, source: sg:app }] } }\n\
                \x20 b: { cidr: 10.1.0.0/16, security_groups: { app: {} } }\n\
                \x20 c: { cidr: 10.2.0.0/16, security_groups: { app: {} } }\n\
                peering_connections:\n  ab: { requester: a, accepter: b }\n  ac: { requester: c, accepter: a }\n";
    assert_eq!(
        errors(text),
        ["u.yaml:4:64: vpcs.a.security_groups.g.ingress[0].source: security group `app` is ambiguous: \
          it exists in several peered VPCs (b, c)"]
    );
}

#[test]
fn a_custom_default_sg_and_nacl_replace_the_builtin_ones() {
    let text =
        "vpcs:\n  a:\n    cidr: 10.0.0.0/16\n    security_groups: { default: { ingress: [] } }\n\
                \x20   network_acls: { default: { inbound: [] } }\n";
    let lab = load_str(text, "u.yaml").unwrap();
    assert_eq!(lab.security_groups.len(), 1);
    assert!(lab.security_groups[0].ingress.is_empty());
    assert_eq!(lab.security_groups[0].egress.len(), 1);
    assert_eq!(lab.network_acls.len(), 1);
    assert!(lab.network_acls[0].inbound.is_empty() && lab.network_acls[0].outbound.is_empty());
}

#[test]
fn expectation_ports() {
    let text = "vpcs:\n  a:\n    cidr: 10.0.0.0/16\n    subnets: { a1: { cidr: 10.0.1.0/24 } }\n\
                \x20   instances: { w: { subnet: a1 } }\nexpect:\n\
                \x20 - { from: w, to: 10.0.1.9, protocol: icmp, port: 1, reachable: true }\n\
                \x20 - { from: w, to: w, protocol: udp, port: 70000, reachable: true }\n\
                \x20 - { from: w, to: \"2001:db8::1\", protocol: icmp, reachable: true }\n";
    assert_eq!(
        errors(text),
        [
            "u.yaml:7:52: expect[0].port: port does not apply to protocol icmp",
            "u.yaml:8:44: expect[1].port: port 70000 is out of range: expected 1-65535",
            "u.yaml:9:20: expect[2].to: `2001:db8::1` is an IPv6 address, but w has no IPv6 address to send from (set `ipv6: true` on its subnet or VPC)",
        ]
    );
}

#[test]
fn more_than_one_document_is_refused() {
    assert_eq!(
        errors("vpcs: {}\n---\nvpcs: {}\n"),
        ["u.yaml:3:1: expected one YAML document, found 2"]
    );
}

#[test]
fn duplicate_keys_are_a_syntax_error() {
    let e = errors("vpcs: {}\nvpcs: {}\n");
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("u.yaml:2:1: YAML syntax error: duplicated key"),
        "{e:?}"
    );
}

const FLOW_LAB: &str =
    "vpcs:\n  a:\n    cidr: 10.0.0.0/16\n    subnets: { a1: { cidr: 10.0.1.0/24 } }\n\
                        \x20   instances: { web1: { subnet: a1 } }\n    flow_logs:\n";

#[test]
fn flow_logs_resolve_with_defaults() {
    let text = format!(
        "{FLOW_LAB}      all: {{ resource: vpc:a, traffic: ALL }}\n\
         \x20     sub: {{ resource: subnet:a1, traffic: ACCEPT, aggregation_interval: 60 }}\n\
         \x20     web: {{ resource: eni:web1, traffic: REJECT, aggregation_interval: 5,\n\
         \x20             format: \"${{version}} ${{srcaddr}} ${{traffic-path}}\" }}\n"
    );
    let lab = load_str(&text, "u.yaml").unwrap();
    assert_eq!(lab.flow_logs.len(), 3);
    let all = &lab.flow_logs[0];
    assert_eq!(all.name, "all");
    assert_eq!(all.resource, FlowLogResource::Vpc(0));
    assert_eq!(all.traffic, TrafficFilter::All);
    assert_eq!(all.fields, FlowLogField::DEFAULT_FORMAT);
    assert_eq!(all.aggregation_interval, 600);
    assert_eq!(lab.flow_logs[1].resource, FlowLogResource::Subnet(0));
    assert_eq!(lab.flow_logs[1].aggregation_interval, 60);
    let web = &lab.flow_logs[2];
    assert_eq!(web.resource, FlowLogResource::Eni(0));
    assert_eq!(web.traffic, TrafficFilter::Reject);
    assert_eq!(
        web.fields,
        [
            FlowLogField::Version,
            FlowLogField::SrcAddr,
            FlowLogField::TrafficPath
        ]
    );
    assert_eq!(web.aggregation_interval, 5);
}

#[test]
fn flow_log_errors_name_the_valid_choices() {
    let text = format!(
        "{FLOW_LAB}      f1: {{ resource: subnet:nope, traffic: ALL }}\n\
         \x20     f2: {{ resource: eni:db9, traffic: all }}\n\
         \x20     f3: {{ resource: vpc:zz, traffic: ALL, aggregation_interval: 300 }}\n\
         \x20     f4: {{ resource: igw:a, traffic: ALL, format: \"${{version}}  ${{bogus}}\" }}\n\
         \x20     f5: {{ resource: vpc:a, traffic: ALL, format: \"${{version}} ${{bogus}}\", colour: red }}\n\
         \x20     f6: {{ traffic: ALL }}\n"
    );
    let e = errors(&text);
    let valid: Vec<&str> = FlowLogField::ALL.iter().map(|f| f.name()).collect();
    assert_eq!(
        e,
        [
            "u.yaml:7:23: vpcs.a.flow_logs.f1.resource: unknown subnet `nope`; subnets: a1".to_string(),
            "u.yaml:8:23: vpcs.a.flow_logs.f2.resource: unknown interface `db9`: expected an instance or a NAT gateway; instances and NAT gateways: web1".into(),
            "u.yaml:8:41: vpcs.a.flow_logs.f2.traffic: invalid traffic `all`: expected ALL, ACCEPT or REJECT".into(),
            "u.yaml:9:23: vpcs.a.flow_logs.f3.resource: unknown VPC `zz`; VPCs: a".into(),
            "u.yaml:9:67: vpcs.a.flow_logs.f3.aggregation_interval: invalid aggregation_interval 300: \
             expected 60 or 600 seconds (or 1-59 in a lab)".into(),
            "u.yaml:10:23: vpcs.a.flow_logs.f4.resource: invalid resource kind `igw` in `igw:a`: \
             expected vpc:NAME, subnet:NAME, eni:HOST or eni:NATGW".into(),
            "u.yaml:10:52: vpcs.a.flow_logs.f4.format: invalid format token `(empty)` in \
             `${version}  ${bogus}`: expected ${field} tokens separated by single spaces".into(),
            format!("u.yaml:11:52: vpcs.a.flow_logs.f5.format: unknown flow-log field `bogus`; fields: {}", valid.join(", ")),
            "u.yaml:11:75: vpcs.a.flow_logs.f5.colour: unknown key `colour`; allowed keys: resource, \
             traffic, format, aggregation_interval".into(),
            "u.yaml:12:7: vpcs.a.flow_logs.f6: missing required key `resource` (vpc:NAME, subnet:NAME, eni:HOST or eni:NATGW)".into(),
        ]
    );
}

#[test]
fn flow_log_names_are_lab_wide() {
    let text = format!(
        "{FLOW_LAB}      f: {{ resource: vpc:a, traffic: ALL }}\n\
         \x20 b:\n    cidr: 10.1.0.0/16\n    flow_logs: {{ f: {{ resource: vpc:a, traffic: ALL }} }}\n"
    );
    let e = errors(&text);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].contains("duplicate flow log name `f`: already declared at line 7"),
        "{e:?}"
    );
}
