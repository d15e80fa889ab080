//! Scenario loading through the public API: a valid lab resolves with AWS's defaults, and each
//! bad input is reported at its line:column with its key path, all at once.

use std::net::Ipv4Addr;
use vpclab::scenario::{load_file, load_str, Probe, Protocol, RouteTarget, SgPeer};

const PEERING: &str = r#"description: VPC peering is not transitive.
defaults: { region: us-east-1, account: "111111111111" }
vpcs:
  a:
    cidr: 10.0.0.0/16
    subnets:
      a1: { cidr: 10.0.1.0/24 }
    route_tables:
      a-rt:
        main: true
        routes:
          - { destination: 10.1.0.0/16, target: pcx:ab }
          - { destination: 10.2.0.0/16, target: pcx:ac }
    security_groups:
      web:
        ingress:
          - { protocol: tcp, ports: 80, source: 0.0.0.0/0 }
          - { protocol: icmp, icmp_type: 8, source: sg:b-app }
    instances:
      a-web: { subnet: a1, security_groups: [web], services: [http:80, icmp] }
      a-fixed: { subnet: a1, private_ip: 10.0.1.4 }
      a-next: { subnet: a1 }
  b:
    cidr: [10.1.0.0/16, 10.5.0.0/16]
    account: "222222222222"
    subnets:
      b1: { cidr: 10.1.1.0/24, az: us-east-1b, route_table: b-rt, network_acl: b-acl }
    route_tables:
      b-rt:
        routes:
          - { destination: 10.0.0.0/16, target: pcx:ab }
          - { destination: 10.9.0.0/16, target: blackhole }
    security_groups:
      b-app:
        ingress:
          - { protocol: all, source: sg:web }
        egress: []
    network_acls:
      b-acl:
        inbound:
          - { rule: 200, protocol: all, cidr: 0.0.0.0/0, action: allow }
          - { rule: 100, protocol: tcp, ports: 22, cidr: 10.0.0.0/16, action: deny }
        outbound:
          - { rule: 100, protocol: all, cidr: 0.0.0.0/0, action: allow }
    instances:
      b-app: { subnet: b1, security_groups: [b-app], source_dest_check: false }
  c:
    cidr: 10.2.0.0/16
    region: eu-west-1
    subnets:
      c1: { cidr: 10.2.0.0/28 }
    instances:
      c-db: { subnet: c1, services: ["tcp:5432", "udp:53"], run: "sleep 1" }
peering_connections:
  ab: { requester: a, accepter: b }
  ac: { requester: a, accepter: c }
expect:
  - { from: a-web, to: b-app, protocol: icmp, reachable: true }
  - { from: b-app, to: c-db, protocol: tcp, port: 5432, reachable: false,
      reason: NO_ROUTE_TO_DESTINATION }
  - from: a-web
    to: 10.2.0.4
    protocol: http
    reachable: true
    via: [pcx:ac]
"#;

/// The error lines of a file that must not load.
fn errors(text: &str) -> Vec<String> {
    match load_str(text, "t.yaml") {
        Ok(_) => panic!("loaded, but errors were expected:\n{text}"),
        Err(e) => e.to_string().lines().map(str::to_string).collect(),
    }
}

/// Asserts that loading `text` reports exactly `expected`, in file order.
#[track_caller]
fn assert_errors(text: &str, expected: &[&str]) {
    assert_eq!(errors(text), expected, "for input:\n{text}");
}

#[test]
fn three_vpc_peering_lab_loads() {
    let lab = load_str(PEERING, "peering.yaml").expect("valid file");
    assert_eq!(lab.name, "peering");
    assert_eq!(lab.source, "peering.yaml");
    assert_eq!(lab.vpcs.len(), 3);
    let ip = |name: &str| lab.instances[lab.instance_by_name(name).unwrap()].private_ip;
    // Fixed addresses first, then the next free from .4 in file order.
    assert_eq!(ip("a-fixed"), Ipv4Addr::new(10, 0, 1, 4));
    assert_eq!(ip("a-web"), Ipv4Addr::new(10, 0, 1, 5));
    assert_eq!(ip("a-next"), Ipv4Addr::new(10, 0, 1, 6));
    assert_eq!(ip("b-app"), Ipv4Addr::new(10, 1, 1, 4));
    assert_eq!(ip("c-db"), Ipv4Addr::new(10, 2, 0, 4));

    // Main tables: declared in a, implicit in b and c.
    let main = |v: usize| &lab.route_tables[lab.vpcs[v].main_route_table];
    assert_eq!((main(0).name.as_str(), main(0).implicit), ("a-rt", false));
    assert_eq!((main(1).name.as_str(), main(1).implicit), ("b-main", true));
    assert!(main(2).main && main(2).routes.is_empty());
    let b1 = &lab.subnets[1];
    assert!(b1.explicit_route_table);
    assert_eq!(lab.route_tables[b1.route_table].name, "b-rt");
    assert!(!lab.subnets[0].explicit_route_table);
    assert_eq!(lab.subnets[2].az, "eu-west-1a");
    assert_eq!(
        lab.route_tables[b1.route_table].routes[1].target,
        RouteTarget::Blackhole
    );

    // Default SG in every VPC: all from itself in, all to anywhere out.
    for (id, vpc) in lab.vpcs.iter().enumerate() {
        let sg = &lab.security_groups[vpc.default_security_group];
        assert_eq!((sg.name.as_str(), sg.vpc), ("default", id));
        assert_eq!(
            sg.ingress[0].peer,
            SgPeer::Group(vpc.default_security_group)
        );
        assert_eq!(
            sg.egress[0].peer,
            SgPeer::Cidr("0.0.0.0/0".parse().unwrap())
        );
        let acl = &lab.network_acls[vpc.default_network_acl];
        assert_eq!(acl.name, "default");
        assert_eq!((acl.inbound[0].number, acl.inbound[0].allow), (100, true));
        assert_eq!(acl.outbound.len(), 1);
    }
    // Instances without security_groups get the VPC's default.
    let a_next = &lab.instances[lab.instance_by_name("a-next").unwrap()];
    assert_eq!(
        a_next.security_groups,
        vec![lab.vpcs[0].default_security_group]
    );
    // SG references across a same-region peering resolve both ways.
    let web = lab
        .security_groups
        .iter()
        .find(|g| g.name == "web")
        .unwrap();
    let b_app = lab
        .security_groups
        .iter()
        .position(|g| g.name == "b-app")
        .unwrap();
    assert_eq!(web.ingress[1].peer, SgPeer::Group(b_app));
    assert_eq!(web.ingress[1].icmp_type, Some(8));
    assert_eq!(web.egress.len(), 1, "no egress key: allow all");
    assert!(
        lab.security_groups[b_app].egress.is_empty(),
        "egress: [] allows nothing"
    );
    // NACL rules sorted by number; a custom NACL has only its rules.
    let acl = lab.network_acls.iter().find(|a| a.name == "b-acl").unwrap();
    assert_eq!(
        acl.inbound.iter().map(|r| r.number).collect::<Vec<_>>(),
        [100, 200]
    );
    assert_eq!(acl.inbound[0].protocol, Protocol::TCP);
    assert!(!acl.inbound[0].allow);

    assert_eq!(lab.peerings[0].name, "ab");
    assert!(lab.peerings[0].cross_account && !lab.peerings[0].cross_region);
    assert!(lab.peerings[1].cross_region && !lab.peerings[1].cross_account);

    let e = &lab.expectations;
    assert_eq!(e.len(), 3);
    assert_eq!(
        (e[0].line, e[0].probe, e[0].to),
        (58, Probe::Icmp, std::net::IpAddr::from(ip("b-app")))
    );
    assert_eq!((e[1].line, e[1].port), (59, Some(5432)));
    assert_eq!(e[1].reason.as_deref(), Some("NO_ROUTE_TO_DESTINATION"));
    assert_eq!(
        (e[2].line, e[2].probe, e[2].port),
        (61, Probe::Http, Some(80))
    );
    assert_eq!(e[2].to_text, "10.2.0.4");
    assert_eq!(e[2].via, ["pcx:ac"]);
}

#[test]
fn unknown_key_lists_allowed_keys() {
    assert_errors(
        "vpcs:\n  a:\n    cidr: 10.0.0.0/16\n    subnets:\n      a1: { cidr: 10.0.1.0/24, zone: x }\n",
        &["t.yaml:5:32: vpcs.a.subnets.a1.zone: unknown key `zone`; allowed keys: \
           cidr, az, ipv6, route_table, network_acl, map_public_ip_on_launch"],
    );
}

#[test]
fn bad_type_is_reported_at_the_value() {
    assert_errors(
        "vpcs:\n  a:\n    cidr: 10.0.0.0/16\n    subnets:\n      a1:\n        cidr: 5\n",
        &["t.yaml:6:15: vpcs.a.subnets.a1.cidr: expected an IPv4 CIDR like 10.0.1.0/24, found integer 5"],
    );
}

#[test]
fn missing_required_key_points_at_the_owner() {
    assert_errors(
        "vpcs:\n  a:\n    region: us-east-1\n",
        &["t.yaml:2:3: vpcs.a: missing required key `cidr` (an IPv4 CIDR like 10.0.0.0/16)"],
    );
}

#[test]
fn vpc_cidr_rules() {
    assert_errors(
        "vpcs:\n  a: { cidr: 10.0.0.1/16 }\n  b: { cidr: 10.0.0.0/8 }\n  c: { cidr: [10.3.0.0/16, 10.3.1.0/24] }\n  d: { cidr: 10.4.0.0/33 }\n",
        &[
            "t.yaml:2:14: vpcs.a.cidr: CIDR `10.0.0.1/16` has host bits set: expected 10.0.0.0/16",
            "t.yaml:3:14: vpcs.b.cidr: CIDR 10.0.0.0/8 is a /8: expected a prefix length from /16 to /28",
            "t.yaml:4:28: vpcs.c.cidr[1]: CIDR 10.3.1.0/24 overlaps 10.3.0.0/16, another block of vpc c",
            "t.yaml:5:14: vpcs.d.cidr: invalid CIDR `10.4.0.0/33`: expected an IPv4 CIDR like 10.0.0.0/16",
        ],
    );
}

#[test]
fn subnet_cidr_rules() {
    let text = r#"vpcs:
  a:
    cidr: 10.0.0.0/16
    subnets:
      a1: { cidr: 10.0.1.0/24 }
      a2: { cidr: 10.0.1.128/25 }
      a3: { cidr: 10.1.0.0/24 }
      a4: { cidr: 10.0.2.0/29 }
"#;
    assert_errors(
        text,
        &[
            "t.yaml:6:19: vpcs.a.subnets.a2.cidr: subnet CIDR 10.0.1.128/25 overlaps subnet a1 (10.0.1.0/24)",
            "t.yaml:7:19: vpcs.a.subnets.a3.cidr: subnet CIDR 10.1.0.0/24 is not inside vpc a's CIDRs (10.0.0.0/16)",
            "t.yaml:8:19: vpcs.a.subnets.a4.cidr: CIDR 10.0.2.0/29 is a /29: expected a prefix length from /16 to /28",
        ],
    );
}

#[test]
fn duplicate_names_across_vpcs() {
    let text = r#"vpcs:
  a:
    cidr: 10.0.0.0/16
    subnets: { s1: { cidr: 10.0.1.0/24 } }
    instances: { web: { subnet: s1 } }
  b:
    cidr: 10.1.0.0/16
    subnets: { s1: { cidr: 10.1.1.0/24 } }
    instances: { web: { subnet: s1 } }
"#;
    assert_errors(
        text,
        &[
            "t.yaml:8:16: vpcs.b.subnets.s1: duplicate subnet name `s1`: already declared at line 4 (vpcs.a.subnets.s1)",
            "t.yaml:9:18: vpcs.b.instances.web: duplicate host name `web`: already declared at line 5 (vpcs.a.instances.web)",
        ],
    );
}

#[test]
fn bad_names() {
    assert_errors(
        "name: Way_too_long_name\nvpcs:\n  Prod: { cidr: 10.0.0.0/16 }\n",
        &[
            "t.yaml:1:7: name: invalid lab name `Way_too_long_name`: expected [a-z0-9-]{1,12}",
            "t.yaml:3:3: vpcs.Prod: invalid VPC name `Prod`: expected [a-z0-9][a-z0-9-]*, at most 24 characters",
        ],
    );
}

#[test]
fn lab_name_defaults_to_the_file_stem() {
    let lab = load_str("vpcs: {}\n", "dir/my-lab.yaml").unwrap();
    assert_eq!(lab.name, "my-lab");
    let err = load_str("vpcs: {}\n", "my_lab.yaml").unwrap_err();
    assert_eq!(
        err.to_string(),
        "my_lab.yaml:1:1: name: invalid lab name `my_lab`: expected [a-z0-9-]{1,12} \
         (taken from the file name); set `name:`"
    );
}

#[test]
fn missing_references_list_valid_names() {
    let text = r#"vpcs:
  a:
    cidr: 10.0.0.0/16
    subnets:
      a1: { cidr: 10.0.1.0/24, route_table: nope, network_acl: acl9 }
    route_tables: { rt1: {} }
    instances:
      web: { subnet: a9, security_groups: [default, web] }
      db: { subnet: a1, security_groups: [web] }
"#;
    assert_errors(
        text,
        &[
            "t.yaml:5:45: vpcs.a.subnets.a1.route_table: unknown route table `nope`; route tables of vpc a: rt1, a-main",
            "t.yaml:5:64: vpcs.a.subnets.a1.network_acl: unknown network ACL `acl9`; network ACLs of vpc a: default",
            "t.yaml:8:22: vpcs.a.instances.web.subnet: unknown subnet `a9`; subnets of vpc a: a1",
            "t.yaml:8:53: vpcs.a.instances.web.security_groups[1]: unknown security group `web`; security groups of vpc a: default",
            "t.yaml:9:43: vpcs.a.instances.db.security_groups[0]: unknown security group `web`; security groups of vpc a: default",
        ],
    );
}

#[test]
fn private_ip_rules() {
    let text = r#"vpcs:
  a:
    cidr: 10.0.0.0/16
    subnets: { a1: { cidr: 10.0.1.0/24 } }
    instances:
      h1: { subnet: a1, private_ip: 10.0.2.10 }
      h2: { subnet: a1, private_ip: 10.0.1.3 }
      h3: { subnet: a1, private_ip: 10.0.1.255 }
      h4: { subnet: a1, private_ip: 10.0.1.10 }
      h5: { subnet: a1, private_ip: 10.0.1.10 }
      h6: { subnet: a1, private_ip: 10.0.1 }
"#;
    assert_errors(
        text,
        &[
            "t.yaml:6:37: vpcs.a.instances.h1.private_ip: private_ip 10.0.2.10 is not inside subnet a1 (10.0.1.0/24)",
            "t.yaml:7:37: vpcs.a.instances.h2.private_ip: private_ip 10.0.1.3 is reserved by AWS in subnet a1 \
             (10.0.1.0/24: network, router, DNS, future use and broadcast are reserved): \
             expected an address from 10.0.1.4 to 10.0.1.254",
            "t.yaml:8:37: vpcs.a.instances.h3.private_ip: private_ip 10.0.1.255 is reserved by AWS in subnet a1 \
             (10.0.1.0/24: network, router, DNS, future use and broadcast are reserved): \
             expected an address from 10.0.1.4 to 10.0.1.254",
            "t.yaml:10:37: vpcs.a.instances.h5.private_ip: private_ip 10.0.1.10 is already the address of h4",
            "t.yaml:11:37: vpcs.a.instances.h6.private_ip: invalid IPv4 address `10.0.1`: expected an address like 10.0.1.10",
        ],
    );
}

#[test]
fn full_subnet_is_insufficient_free_addresses() {
    // A /28 holds 16 - 5 = 11 instances.
    let mut text = String::from(
        "vpcs:\n  a:\n    cidr: 10.0.0.0/16\n    subnets: { a1: { cidr: 10.0.1.0/28 } }\n    instances:\n",
    );
    for i in 1..=12 {
        text.push_str(&format!("      h{i}: {{ subnet: a1 }}\n"));
    }
    assert_errors(
        &text,
        &[
            "t.yaml:17:7: vpcs.a.instances.h12: InsufficientFreeAddressesInSubnet: \
           subnet a1 (10.0.1.0/28) has no free address left for h12",
        ],
    );
    text.truncate(text.rfind("      h12").unwrap());
    let lab = load_str(&text, "t.yaml").unwrap();
    assert_eq!(lab.instances[10].private_ip, Ipv4Addr::new(10, 0, 1, 14));
}

#[test]
fn route_rules() {
    let text = r#"vpcs:
  a:
    cidr: 10.0.0.0/16
    route_tables:
      rt:
        routes:
          - { destination: 10.1.0.0/16, target: pcx:ab }
          - { destination: 10.1.0.0/16, target: blackhole }
          - { destination: 10.0.5.0/24, target: blackhole }
          - { destination: 10.9.0.0/16, target: local }
          - { destination: 0.0.0.0/0, target: igw:a }
          - { destination: 10.8.0.0/16, target: gw:x }
          - { destination: 10.7.0.0/16, target: pcx:bc }
          - { destination: 10.6.0.0/16, target: pcx:zz }
          - { destination: 10.6.0.1/16, target: blackhole }
  b: { cidr: 10.1.0.0/16 }
  c: { cidr: 10.2.0.0/16 }
peering_connections:
  ab: { requester: a, accepter: b }
  bc: { requester: b, accepter: c }
"#;
    assert_errors(
        text,
        &[
            "t.yaml:8:28: vpcs.a.route_tables.rt.routes[1].destination: duplicate destination 10.1.0.0/16 in this route table",
            "t.yaml:9:28: vpcs.a.route_tables.rt.routes[2].destination: destination 10.0.5.0/24 is inside vpc a's CIDR \
             10.0.0.0/16, which the local route covers: only NAT gateway or ENI targets may be more specific than local \
             (not supported yet)",
            "t.yaml:10:49: vpcs.a.route_tables.rt.routes[3].target: the `local` route is implicit (one per VPC CIDR) and cannot be written",
            "t.yaml:11:47: vpcs.a.route_tables.rt.routes[4].target: route target `igw:a`: vpc a has no internet gateway: set `internet_gateway: true` on it",
            "t.yaml:12:49: vpcs.a.route_tables.rt.routes[5].target: invalid route target `gw:x`: expected one of \
             blackhole, pcx:NAME, igw:NAME, eigw:NAME, nat:NAME, tgw:NAME, vgw:NAME, vpce:NAME, eni:HOST",
            "t.yaml:13:49: vpcs.a.route_tables.rt.routes[6].target: peering connection `bc` joins vpc b and vpc c, not vpc a; \
             peering connections of vpc a: ab",
            "t.yaml:14:49: vpcs.a.route_tables.rt.routes[7].target: unknown peering connection `zz`; peering connections of vpc a: ab",
            "t.yaml:15:28: vpcs.a.route_tables.rt.routes[8].destination: CIDR `10.6.0.1/16` has host bits set: expected 10.6.0.0/16",
        ],
    );
}

#[test]
fn at_most_one_main_table() {
    let text = "vpcs:\n  a:\n    cidr: 10.0.0.0/16\n    route_tables:\n      r1: { main: true }\n      r2: { main: true }\n";
    assert_errors(
        text,
        &["t.yaml:6:19: vpcs.a.route_tables.r2.main: vpc a already has a main route table `r1`: at most one per VPC"],
    );
}

#[test]
fn peering_rules() {
    let text = r#"vpcs:
  a: { cidr: 10.0.0.0/16 }
  b: { cidr: 10.0.128.0/17 }
  c: { cidr: 10.2.0.0/16 }
peering_connections:
  ab: { requester: a, accepter: b }
  cc: { requester: c, accepter: c }
  ac: { requester: a, accepter: c }
  ca: { requester: c, accepter: a }
  ax: { requester: a, accepter: x }
"#;
    assert_errors(
        text,
        &[
            "t.yaml:6:3: peering_connections.ab: CIDRs overlap: vpc a 10.0.0.0/16 and vpc b 10.0.128.0/17",
            "t.yaml:7:3: peering_connections.cc: requester and accepter are both vpc c: a peering connection joins two different VPCs",
            "t.yaml:9:3: peering_connections.ca: vpc c and vpc a are already peered by `ac`: one peering connection per pair of VPCs",
            "t.yaml:10:33: peering_connections.ax.accepter: unknown VPC `x`; VPCs: a, b, c",
        ],
    );
}

#[test]
fn sg_references_across_regions_are_refused() {
    let text = r#"vpcs:
  a:
    cidr: 10.0.0.0/16
    security_groups:
      web: { ingress: [{ protocol: tcp, ports: 443, source: sg:app }] }
  b:
    cidr: 10.1.0.0/16
    region: eu-west-1
    security_groups: { app: { egress: [{ protocol: all, destination: sg:nope }] } }
peering_connections:
  ab: { requester: a, accepter: b }
"#;
    assert_errors(
        text,
        &[
            "t.yaml:5:61: vpcs.a.security_groups.web.ingress[0].source: security group `app` is in vpc b (region eu-west-1) \
             but this group is in vpc a (region us-east-1): SG references across regions are not allowed; use the peer's CIDR",
            "t.yaml:9:70: vpcs.b.security_groups.app.egress[0].destination: unknown security group `nope`; groups of vpc b \
             and its peered VPCs: app, default, default (vpc a), web (vpc a)",
        ],
    );
}

#[test]
fn rule_values() {
    let text = r#"vpcs:
  a:
    cidr: 10.0.0.0/16
    security_groups:
      g:
        ingress:
          - { protocol: tcpp, source: 0.0.0.0/0 }
          - { protocol: icmp, ports: 80, source: 10.0.0.0/8 }
          - { protocol: tcp, ports: 90-80, source: "::/0" }
    network_acls:
      n:
        inbound:
          - { rule: 0, protocol: all, cidr: 0.0.0.0/0, action: allow }
          - { rule: 10, protocol: all, cidr: 0.0.0.0/0, action: permit }
          - { rule: 10, protocol: 6, ports: 22, cidr: 0.0.0.0/0, action: deny }
"#;
    assert_errors(
        text,
        &[
            "t.yaml:7:25: vpcs.a.security_groups.g.ingress[0].protocol: invalid protocol `tcpp`: \
             expected tcp, udp, icmp, icmpv6, all or a number 0-255",
            "t.yaml:8:38: vpcs.a.security_groups.g.ingress[1].ports: ports apply only to tcp and udp, \
             not to protocol icmp (use icmp_type/icmp_code for icmp)",
            "t.yaml:9:37: vpcs.a.security_groups.g.ingress[2].ports: invalid ports `90-80`: \
             expected a port (80), a range (1024-65535) or all",
            "t.yaml:13:21: vpcs.a.network_acls.n.inbound[0].rule: rule number 0 is out of range: expected 1-32766",
            "t.yaml:14:65: vpcs.a.network_acls.n.inbound[1].action: invalid action `permit`: expected allow or deny",
            "t.yaml:15:21: vpcs.a.network_acls.n.inbound[2].rule: duplicate rule number 10 (also used at line 14)",
        ],
    );
}

#[test]
fn documented_but_unsupported_keys() {
    let text = r#"direct_connect: { connections: {} }
vpcs:
  a:
    cidr: 10.0.0.0/16
    egress_only_internet_gateway: true
    ipv6: false
    dns: true
    subnets: { a1: { cidr: 10.0.1.0/24, ipv6: true } }
    route_tables: { rt: { main: true } }
    instances: { web: { subnet: a1, ipv6: true } }
"#;
    assert_errors(
        text,
        &[
            "t.yaml:1:1: direct_connect: `direct_connect` is not supported yet by this version of vpclab",
            "t.yaml:5:35: vpcs.a.egress_only_internet_gateway: an egress-only internet gateway carries IPv6 only: set `ipv6: true` on the VPC",
            "t.yaml:8:47: vpcs.a.subnets.a1.ipv6: subnet a1 asks for IPv6 but vpc a has no IPv6 block: set `ipv6: true` on the VPC",
            "t.yaml:10:43: vpcs.a.instances.web.ipv6: instance web asks for IPv6 but subnet a1 has no IPv6 /64: set `ipv6: true` on the subnet or its VPC",
        ],
    );
}

#[test]
fn internet_edge_rules() {
    let text = r#"internet:
  public_pool: 8.8.8.0/24
  hosts:
    ex: { ip: 8.8.4.4, dns: example.com }
    ex2: { ip: 198.51.100.10, dns: Example.com }
    ex3: { ip: 198.51.100.10, dns: "bad_name" }
vpcs:
  a:
    cidr: 10.0.0.0/16
    subnets: { a1: { cidr: 10.0.1.0/24 } }
    route_tables:
      rt:
        routes:
          - { destination: 0.0.0.0/0, target: igw:a }
          - { destination: 10.5.0.0/16, target: igw:b }
          - { destination: 10.6.0.0/16, target: nat:gb }
          - { destination: 10.7.0.0/16, target: nat:nope }
    nat_gateways:
      ga: { subnet: a1 }
    instances: { web: { subnet: a1, public_ip: true } }
  b:
    cidr: 10.1.0.0/16
    internet_gateway: true
    subnets: { b1: { cidr: 10.1.1.0/24 } }
    nat_gateways:
      gb: { subnet: a1 }
"#;
    assert_errors(
        text,
        &[
            "t.yaml:2:16: internet.public_pool: public_pool 8.8.8.0/24 must lie inside the documentation ranges 192.0.2.0/24, 198.51.100.0/24 or 203.0.113.0/24",
            "t.yaml:4:15: internet.hosts.ex.ip: internet host address 8.8.4.4 must lie inside the documentation ranges 192.0.2.0/24, 198.51.100.0/24 or 203.0.113.0/24",
            "t.yaml:5:36: internet.hosts.ex2.dns: DNS name `Example.com` is given to two hosts",
            "t.yaml:6:16: internet.hosts.ex3.ip: internet host address 198.51.100.10 is already the address of ex2",
            "t.yaml:6:36: internet.hosts.ex3.dns: invalid DNS name `bad_name`: expected a name like example.com",
            "t.yaml:14:47: vpcs.a.route_tables.rt.routes[0].target: route target `igw:a`: vpc a has no internet gateway: set `internet_gateway: true` on it",
            "t.yaml:15:49: vpcs.a.route_tables.rt.routes[1].target: route target `igw:b`: a route table can only use its own VPC's internet gateway, igw:a",
            "t.yaml:16:49: vpcs.a.route_tables.rt.routes[2].target: route target `nat:gb`: NAT gateway gb is in vpc b, not in vpc a; a route table can only use its own VPC's NAT gateways",
            "t.yaml:17:49: vpcs.a.route_tables.rt.routes[3].target: unknown NAT gateway `nat:nope`; NAT gateways of vpc a: ga",
            "t.yaml:19:7: vpcs.a.nat_gateways.ga: a public NAT gateway needs an internet gateway: set `internet_gateway: true` on vpc a",
            "t.yaml:20:48: vpcs.a.instances.web: instance web gets a public IP, but vpc a has no internet gateway: set `internet_gateway: true` on the VPC (AWS refuses a public IP without one)",
            "t.yaml:26:21: vpcs.b.nat_gateways.gb.subnet: unknown subnet `a1`; subnets of vpc b: b1",
        ],
    );
}

#[test]
fn the_public_pool_runs_out() {
    let text = r#"internet: { public_pool: 203.0.113.0/30 }
vpcs:
  a:
    cidr: 10.0.0.0/16
    internet_gateway: true
    subnets: { a1: { cidr: 10.0.1.0/24, map_public_ip_on_launch: true } }
    instances: { w1: { subnet: a1 }, w2: { subnet: a1 }, w3: { subnet: a1 }, w4: { subnet: a1, public_ip: false } }
"#;
    assert_errors(
        text,
        &["t.yaml:7:58: vpcs.a.instances.w3: AddressLimitExceeded: the public pool 203.0.113.0/30 has no address left for w3"],
    );
}

#[test]
fn expectation_rules() {
    let text = r#"vpcs:
  a:
    cidr: 10.0.0.0/16
    subnets: { a1: { cidr: 10.0.1.0/24 } }
    instances: { web: { subnet: a1 }, db: { subnet: a1 } }
expect:
  - { from: ghost, to: db, protocol: icmp, reachable: true }
  - { from: web, to: db.public, protocol: icmp, reachable: true }
  - { from: web, to: db, protocol: tcp, reachable: true }
  - { from: web, to: example.com, protocol: http, reachable: true }
  - { from: web, to: db, protocol: ssh, reachable: false }
  - { from: web, to: db, protocol: icmp }
"#;
    assert_errors(
        text,
        &[
            "t.yaml:7:13: expect[0].from: unknown host `ghost`; hosts: db, web",
            "t.yaml:8:22: expect[1].to: `db.public`: instance db has no public IP (set `public_ip: true` or the subnet's `map_public_ip_on_launch`)",
            "t.yaml:9:5: expect[2]: missing required key `port` (protocol tcp needs a port 1-65535)",
            "t.yaml:10:22: expect[3].to: `example.com`: no host of the lab has this DNS name; DNS names: (none)",
            "t.yaml:11:36: expect[4].protocol: invalid protocol `ssh`: expected icmp, tcp, udp or http",
            "t.yaml:12:5: expect[5]: missing required key `reachable` (true or false)",
        ],
    );
}

#[test]
fn three_independent_errors_are_all_reported() {
    let text = r#"vpcs:
  a:
    cidr: 10.0.0.0/16
    colour: blue
    subnets:
      a1: { cidr: 10.0.1.0/24 }
    instances:
      web: { subnet: a1, private_ip: 10.0.1.2 }
peering_connections:
  ab: { requester: a, accepter: b }
"#;
    let errs = errors(text);
    assert_eq!(errs.len(), 3, "{errs:#?}");
    assert!(errs[0].starts_with("t.yaml:4:5: vpcs.a.colour: unknown key `colour`"));
    assert!(errs[1].starts_with(
        "t.yaml:8:38: vpcs.a.instances.web.private_ip: private_ip 10.0.1.2 is reserved"
    ));
    assert_eq!(
        errs[2],
        "t.yaml:10:33: peering_connections.ab.accepter: unknown VPC `b`; VPCs: a"
    );
}

#[test]
fn yaml_syntax_error_has_a_position() {
    assert_errors(
        "vpcs:\n  a: { cidr: 10.0.0.0/16\n",
        &["t.yaml:3:1: YAML syntax error: while parsing a flow mapping, did not find expected ',' or '}'"],
    );
}

#[test]
fn unreadable_file() {
    let err = load_file(std::path::Path::new("/nonexistent/x.yaml")).unwrap_err();
    assert_eq!(err.len(), 1);
    assert!(err
        .to_string()
        .starts_with("/nonexistent/x.yaml: cannot read the scenario file:"));
}

#[test]
fn traffic_mirroring_resolves_with_defaults() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/mirror-session.yaml");
    let lab = load_file(&path).unwrap_or_else(|e| panic!("{e}"));
    let monitor = lab.instance_by_name("monitor").unwrap();
    assert_eq!(lab.mirror_targets.len(), 1);
    assert_eq!(lab.mirror_targets[0].eni, monitor);
    let f = &lab.mirror_filters[0];
    assert_eq!(
        (f.name.as_str(), f.inbound.len(), f.outbound.len()),
        ("web-only", 1, 1)
    );
    let rule = &f.inbound[0];
    assert_eq!(
        (rule.number, rule.accept, rule.protocol),
        (100, true, Protocol::TCP)
    );
    assert_eq!(
        (rule.destination_ports.first, rule.destination_ports.last),
        (80, 80)
    );
    assert_eq!(rule.source_ports, vpclab::scenario::PortRange::ALL);
    assert_eq!(rule.source_cidr.to_string(), "0.0.0.0/0");
    let s = &lab.mirror_sessions[0];
    assert_eq!(s.source, lab.instance_by_name("web1").unwrap());
    assert_eq!(
        (s.session_number, s.vni, s.packet_length),
        (1, 42, Some(128))
    );

    // Without a VNI, one is derived from the names: the same on every load, 24 bits.
    let text = r#"name: m
vpcs:
  a:
    cidr: 10.0.0.0/16
    subnets: { a1: { cidr: 10.0.1.0/24 } }
    instances: { web: { subnet: a1 }, mon: { subnet: a1 } }
traffic_mirroring:
  targets: { t: { eni: eni:mon } }
  filters: { f: {} }
  sessions:
    s1: { source: web, target: t, filter: f, session_number: 7 }
    s2: { source: eni:web, target: t, filter: f, session_number: 8 }
"#;
    let a = load_str(text, "m.yaml").unwrap_or_else(|e| panic!("{e}"));
    let b = load_str(text, "m.yaml").unwrap();
    assert_eq!(a.mirror_sessions[0].vni, b.mirror_sessions[0].vni);
    assert_ne!(a.mirror_sessions[0].vni, a.mirror_sessions[1].vni);
    assert!(a
        .mirror_sessions
        .iter()
        .all(|s| s.vni < 1 << 24 && s.packet_length.is_none()));
    assert!(a.mirror_filters[0].inbound.is_empty() && a.mirror_filters[0].outbound.is_empty());
}

#[test]
fn traffic_mirroring_errors() {
    let text = r#"vpcs:
  a:
    cidr: 10.0.0.0/16
    subnets: { a1: { cidr: 10.0.1.0/24 } }
    instances: { web: { subnet: a1 }, mon: { subnet: a1 } }
traffic_mirroring:
  targets: { t1: { eni: mon }, t2: { eni: ghost }, t3: { eni: nlb:x }, self: { eni: eni:web } }
  filters:
    f1:
      inbound:
        - { rule: 100, protocol: tcp, destination_ports: 80, action: accept }
        - { rule: 100, protocol: udp, action: accept }
        - { rule: 0, protocol: icmp, destination_ports: 1, action: drop }
      outbound:
        - { rule: 5, source_cidr: 10.0.0.1/8, action: accept, colour: red }
  sessions:
    s1: { source: eni:web, target: t9, filter: f9, session_number: 0, vni: 16777216,
          packet_length: 9000 }
    s2: { source: eni:web, target: self, filter: f1, session_number: 1 }
    s3: { source: eni:nobody, target: t1, filter: f1 }
"#;
    assert_errors(
        text,
        &[
            "t.yaml:7:43: traffic_mirroring.targets.t2.eni: unknown host `ghost`; hosts: mon, web",
            "t.yaml:7:63: traffic_mirroring.targets.t3.eni: invalid ENI `nlb:x`: expected an instance name, or eni:HOST",
            "t.yaml:12:19: traffic_mirroring.filters.f1.inbound[1].rule: duplicate inbound rule number 100 (also used at line 11)",
            "t.yaml:13:19: traffic_mirroring.filters.f1.inbound[2].rule: rule number 0 is out of range: expected a rule number 1-32766",
            "t.yaml:13:57: traffic_mirroring.filters.f1.inbound[2].destination_ports: destination_ports apply only to tcp and udp, not to protocol icmp",
            "t.yaml:13:68: traffic_mirroring.filters.f1.inbound[2].action: invalid action `drop`: expected accept or reject",
            "t.yaml:15:35: traffic_mirroring.filters.f1.outbound[0].source_cidr: CIDR `10.0.0.1/8` has host bits set: expected 10.0.0.0/8",
            "t.yaml:15:63: traffic_mirroring.filters.f1.outbound[0].colour: unknown key `colour`; allowed keys: rule, action, protocol, source_ports, destination_ports, source_cidr, destination_cidr",
            "t.yaml:17:36: traffic_mirroring.sessions.s1.target: unknown mirror target `t9`; mirror targets: self, t1, t2, t3",
            "t.yaml:17:48: traffic_mirroring.sessions.s1.filter: unknown mirror filter `f9`; mirror filters: f1",
            "t.yaml:17:68: traffic_mirroring.sessions.s1.session_number: session number 0 is out of range: expected a session number 1-32766",
            "t.yaml:17:76: traffic_mirroring.sessions.s1.vni: VNI 16777216 is out of range: expected a VXLAN network identifier 0-16777215",
            "t.yaml:18:26: traffic_mirroring.sessions.s1.packet_length: packet_length 9000 is out of range: expected a number of bytes 1-8947",
            "t.yaml:19:36: traffic_mirroring.sessions.s2.target: mirror target `self` is the ENI of web, the session's own source: an ENI cannot be source and target of one session",
            "t.yaml:20:5: traffic_mirroring.sessions.s3: missing required key `session_number` (a session number 1-32766)",
            "t.yaml:20:19: traffic_mirroring.sessions.s3.source: unknown host `nobody`; hosts: mon, web",
        ],
    );
}

#[test]
fn traffic_mirroring_limits() {
    let rules: String = (1..=11)
        .map(|n| format!("        - {{ rule: {n}, action: accept }}\n"))
        .collect();
    let text = format!(
        r#"vpcs:
  a:
    cidr: 10.0.0.0/16
    subnets: {{ a1: {{ cidr: 10.0.1.0/24 }} }}
    instances: {{ web: {{ subnet: a1 }}, mon: {{ subnet: a1 }} }}
  b:
    cidr: 10.1.0.0/16
    subnets: {{ b1: {{ cidr: 10.1.1.0/24 }} }}
    instances: {{ far: {{ subnet: b1 }} }}
traffic_mirroring:
  targets: {{ t: {{ eni: mon }}, far: {{ eni: far }} }}
  filters:
    big:
      outbound:
{rules}    ok: {{}}
  sessions:
    s1: {{ source: eni:web, target: t, filter: ok, session_number: 1 }}
    s2: {{ source: eni:web, target: t, filter: ok, session_number: 1 }}
    s3: {{ source: eni:web, target: t, filter: ok, session_number: 3 }}
    s4: {{ source: eni:web, target: t, filter: ok, session_number: 4 }}
    s5: {{ source: eni:mon, target: far, filter: ok, session_number: 1 }}
    s6: {{ source: eni:web, target: t, filter: ok, session_number: 6 }}
"#
    );
    assert_errors(
        &text,
        &[
            "t.yaml:25:11: traffic_mirroring.filters.big.outbound[10]: filter big has 11 outbound rules: AWS allows at most 10 rules per direction of a filter",
            "t.yaml:29:67: traffic_mirroring.sessions.s2.session_number: session number 1 is already used on web (line 28): session numbers are unique per source",
            "t.yaml:31:19: traffic_mirroring.sessions.s4.source: web is already the source of 3 sessions: AWS allows at most 3 per source ENI",
            "t.yaml:32:36: traffic_mirroring.sessions.s5.target: the target's ENI far is in vpc b, neither the source mon's vpc a nor a VPC peered with it in the same region",
            "t.yaml:33:19: traffic_mirroring.sessions.s6.source: web is already the source of 3 sessions: AWS allows at most 3 per source ENI",
        ],
    );
}

#[test]
fn service_and_endpoint_rules() {
    let text = r#"services:
  s3: { region: us-east-1 }
  queue: { service: sqs }
  s3-eu: { service: s3, region: eu-west-1 }
vpcs:
  a:
    cidr: 10.0.0.0/16
    route_tables:
      rt:
        routes: [{ destination: 10.9.0.0/16, target: vpce:x }]
      rt2: {}
    endpoints:
      e1: { service: s3, type: gateway, route_tables: [rt, nope, rt] }
      e2: { service: s3, type: gateway, route_tables: [rt] }
      e3: { service: queue, type: gateway }
      e4: { service: s3-eu, type: gateway }
      e5: { service: ghost, type: gateway }
      e6: { service: s3, type: interface, subnets: [x] }
      e7: { service: s3, type: tunnel }
"#;
    assert_errors(
        text,
        &[
            "t.yaml:10:54: vpcs.a.route_tables.rt.routes[0].target: route target `vpce:x`: a gateway endpoint adds its routes itself, to the tables its `route_tables:` names",
            "t.yaml:13:60: vpcs.a.endpoints.e1.route_tables[1]: unknown route table `nope`; route tables of vpc a: rt, rt2, a-main",
            "t.yaml:13:66: vpcs.a.endpoints.e1.route_tables[2]: route table `rt` is listed twice",
            "t.yaml:14:56: vpcs.a.endpoints.e2.route_tables[0]: route table `rt` already has endpoint e1 for pl:s3: one endpoint route per service and table",
            "t.yaml:15:22: vpcs.a.endpoints.e3.service: service queue (sqs) has no gateway endpoint: AWS offers them for s3 and dynamodb only",
            "t.yaml:16:22: vpcs.a.endpoints.e4.service: gateway endpoints are same-Region only: service s3-eu is in eu-west-1, vpc a in us-east-1",
            "t.yaml:17:22: vpcs.a.endpoints.e5.service: unknown service `ghost`: declare it under `services:` (e.g. `services: { ghost: { region: us-east-1 } }`); services: queue, s3, s3-eu",
            "t.yaml:18:53: vpcs.a.endpoints.e6.subnets[0]: unknown subnet `x`; subnets of vpc a: (none)",
            "t.yaml:19:32: vpcs.a.endpoints.e7.type: invalid type `tunnel`: expected gateway or interface",
        ],
    );
}

#[test]
fn interface_endpoint_rules() {
    let text = r#"services:
  sqs: {}
  far: { service: sns, region: eu-west-1 }
vpcs:
  a:
    cidr: 10.0.0.0/16
    subnets:
      s1: { cidr: 10.0.1.0/24 }
      s2: { cidr: 10.0.2.0/24 }
    route_tables: { rt: {} }
    endpoints:
      e1: { service: sqs, type: interface, subnets: [s1, s2, nope], security_groups: [ghost] }
      e2: { service: sqs, type: interface }
      e3: { service: sqs, type: interface, subnets: [s1], route_tables: [rt] }
      e4: { service: far, type: interface, subnets: [s1] }
      e5: { service: sqs, type: gateway, subnets: [s1] }
expect:
  - { from: x, to: vpce:e9, protocol: icmp, reachable: true }
"#;
    let got = errors(text);
    let expected = [
        "vpcs.a.endpoints.e1.subnets[1]: subnets `s1` and `s2` are both in us-east-1a: an interface endpoint takes one subnet per Availability Zone",
        "vpcs.a.endpoints.e1.subnets[2]: unknown subnet `nope`; subnets of vpc a: s1, s2",
        "vpcs.a.endpoints.e1.security_groups[0]: unknown security group `ghost`; security groups of vpc a: default",
        "vpcs.a.endpoints.e2: an interface endpoint needs `subnets:` (one per Availability Zone)",
        "vpcs.a.endpoints.e3: `route_tables` is for gateway endpoints: an interface endpoint is reached by its addresses",
        "vpcs.a.endpoints.e4.service: an interface endpoint reaches its Region's services: service far is in eu-west-1, vpc a in us-east-1",
        "vpcs.a.endpoints.e5.type: `subnets` is for interface endpoints: a gateway endpoint has no interface, no security group and no DNS name of its own",
        "expect[0].to: unknown endpoint `e9`; endpoints: e1, e3",
    ];
    for e in expected {
        assert!(
            got.iter().any(|g| g.ends_with(e)),
            "missing {e:?} in {got:#?}"
        );
    }
}

#[test]
fn instance_route_targets_and_forwarding() {
    let text = r#"internet: { hosts: { ex: { ip: 198.51.100.10 } } }
vpcs:
  a:
    cidr: 10.0.0.0/16
    subnets: { s: { cidr: 10.0.1.0/24 } }
    route_tables:
      rt:
        routes:
          - { destination: 10.5.0.0/16, target: eni:ghost }
          - { destination: 10.6.0.0/16, target: eni:b1 }
          - { destination: 10.7.0.0/16, target: eni:ex }
          - { destination: 10.8.0.0/16, target: eni:a1 }
    instances:
      a1: { subnet: s, forwarding: bridge }
  b:
    cidr: 10.1.0.0/16
    subnets: { s2: { cidr: 10.1.1.0/24 } }
    instances: { b1: { subnet: s2 } }
"#;
    let got = errors(text);
    let expected = [
        "vpcs.a.route_tables.rt.routes[0].target: route target `eni:ghost`: unknown instance `ghost`; instances of vpc a: a1",
        "vpcs.a.route_tables.rt.routes[1].target: route target `eni:b1`: instance b1 is in vpc b, not in vpc a",
        "vpcs.a.route_tables.rt.routes[2].target: route target `eni:ex`: ex is an internet host, not an instance of vpc a",
        "vpcs.a.instances.a1.forwarding: invalid forwarding `bridge`: expected route or masquerade",
    ];
    for e in expected {
        assert!(
            got.iter().any(|g| g.ends_with(e)),
            "missing {e:?} in {got:#?}"
        );
    }
    assert_eq!(got.len(), expected.len(), "{got:#?}");
}

const VPN_STATIC: &str = "scenarios/vpn-static.yaml";

#[test]
fn sites_and_vpn_resolve_with_tunnels_keys_and_host_ids() {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(VPN_STATIC);
    let lab = load_file(&file).expect("valid file");
    // The router is an internet host of its own, after the written ones (none here).
    assert_eq!(lab.sites.len(), 1);
    let hq = &lab.sites[0];
    assert_eq!(hq.lan_ip, Ipv4Addr::new(192, 168, 0, 1));
    assert_eq!(hq.customer_gateway.asn, Some(65000));
    let router = &lab.internet.hosts[hq.customer_gateway.router];
    assert_eq!(
        (router.name.as_str(), router.ip),
        ("hq-router", Ipv4Addr::new(198, 51, 100, 20))
    );
    assert!(lab.host_by_name("hq-router").is_some());
    // Site hosts come after every host with a fabric port.
    let pc1 = lab.site_host_id(0, 0);
    assert_eq!(pc1, lab.host_count());
    assert_eq!(lab.all_host_count(), lab.host_count() + 1);
    assert_eq!(lab.host_name(pc1), "pc1");
    assert_eq!(lab.host_ip(pc1), Ipv4Addr::new(192, 168, 1, 10));
    assert_eq!(lab.host_by_name("pc1"), None, "no fabric port");
    assert_eq!(lab.expectations[0].from, pc1);
    // The VGW, its propagation into app-rt only, and the connection's two tunnels.
    assert_eq!(lab.vpn_gateways.len(), 1);
    assert_eq!(
        lab.vpn_gateways[0].asn, 64512,
        "AWS's default Amazon side ASN"
    );
    for t in &lab.route_tables {
        let want: &[usize] = if t.name == "app-rt" { &[0] } else { &[] };
        assert_eq!(t.propagate, want, "{}", t.name);
    }
    let c = &lab.vpn_connections[0];
    assert_eq!(
        c.static_routes,
        ["192.168.0.0/16".parse::<ipnet::Ipv4Net>().unwrap()]
    );
    let [t1, t2] = &c.tunnels;
    assert_eq!((t1.number, t2.number), (1, 2));
    assert_eq!(t1.inside.to_string(), "169.254.10.0/30");
    assert_eq!(t2.inside.to_string(), "169.254.11.0/30");
    assert_eq!(t1.aws_inside(), Ipv4Addr::new(169, 254, 10, 1));
    assert_eq!(t1.customer_inside(), Ipv4Addr::new(169, 254, 10, 2));
    // From the default pool, after its first ten addresses, as Elastic IPs are.
    assert_eq!(t1.outside_ip, Ipv4Addr::new(203, 0, 113, 10));
    assert_eq!(t2.outside_ip, Ipv4Addr::new(203, 0, 113, 11));
    assert_eq!((t1.aws_port, t2.aws_port), (51820, 51821));
    assert_eq!((t1.customer_port, t2.customer_port), (51820, 51821));
    assert!(t1.metric() < t2.metric(), "tunnel 1 is the active one");
    assert_ne!(t1.aws_key, t1.customer_key);
    assert_ne!(t1.aws_key, t2.aws_key);
    assert_ne!(t1.interface, t2.interface);
    assert!(t1.interface.len() <= 15);
}

#[test]
fn vpn_addresses_follow_public_ips_and_a_second_connection_takes_the_next_ports() {
    let text = r#"vpcs:
  a:
    cidr: 10.0.0.0/16
    internet_gateway: true
    subnets: { pub: { cidr: 10.0.0.0/24, map_public_ip_on_launch: true } }
    route_tables:
      rt:
        main: true
        routes: [{ destination: 172.16.0.0/12, target: vgw:va }]
    nat_gateways: { gw: { subnet: pub } }
    instances: { web: { subnet: pub } }
  b: { cidr: 10.1.0.0/16 }
sites:
  hq:
    cidr: 192.168.0.0/16
    customer_gateway: { public_ip: 198.51.100.20 }
    hosts: { pc1: { ip: 192.168.1.10 }, pc2: { ip: 192.168.2.10, services: [http:80] } }
  br:
    cidr: 172.16.0.0/16
    customer_gateway: { public_ip: 198.51.100.21 }
    hosts: { br1: { ip: 172.16.0.10 } }
vpn_gateways: { va: { vpc: a }, vb: { vpc: b, asn: 65100 } }
vpn_connections:
  hq-a: { site: hq, gateway: vgw:va, routing: static, static_routes: [192.168.0.0/16] }
  hq-b: { site: hq, gateway: vgw:vb, routing: static, static_routes: [192.168.0.0/16] }
  br-a: { site: br, gateway: vgw:va, routing: static, static_routes: [172.16.0.0/16] }
"#;
    let lab = load_str(text, "t.yaml").unwrap_or_else(|e| panic!("{e}"));
    let table = lab.route_tables.iter().find(|t| t.name == "rt").unwrap();
    assert_eq!(table.routes[0].target, RouteTarget::VpnGateway(0));
    // web's public IP is .10 and the NAT gateway's EIP .11: the tunnels take .12 on.
    let outside: Vec<String> = lab
        .vpn_connections
        .iter()
        .flat_map(|c| c.tunnels.iter().map(|t| t.outside_ip.to_string()))
        .collect();
    assert_eq!(
        outside,
        [
            "203.0.113.12",
            "203.0.113.13",
            "203.0.113.14",
            "203.0.113.15",
            "203.0.113.16",
            "203.0.113.17"
        ]
    );
    let inside: Vec<String> = lab.vpn_connections[1]
        .tunnels
        .iter()
        .map(|t| t.inside.to_string())
        .collect();
    assert_eq!(inside, ["169.254.12.0/30", "169.254.13.0/30"]);
    // hq's second connection listens on the next two ports of its router; br starts over.
    let ports = |c: usize| {
        lab.vpn_connections[c]
            .tunnels
            .each_ref()
            .map(|t| t.customer_port)
    };
    assert_eq!(ports(1), [51822, 51823]);
    assert_eq!(ports(2), [51820, 51821]);
    // Both routers are internet hosts; the three site hosts follow them, site by site.
    assert_eq!(lab.internet.hosts.len(), 2);
    let names: Vec<&str> = (lab.host_count()..lab.all_host_count())
        .map(|id| lab.host_name(id))
        .collect();
    assert_eq!(names, ["pc1", "pc2", "br1"]);
    assert_eq!(lab.site_host(lab.host_count() + 2).map(|(s, _)| s), Some(1));
}

#[test]
fn vpn_bad_input_is_reported_all_at_once() {
    let text = r#"vpcs:
  a:
    cidr: 10.0.0.0/16
    route_tables:
      rt:
        propagate: [vgw:v2, v1, vgw:nope, vgw:v1, vgw:v1]
        routes:
          - { destination: 172.16.0.0/12, target: vgw:v2 }
  b: { cidr: 10.1.0.0/16 }
  d: { cidr: 10.3.0.0/16 }
  c: { cidr: 10.2.0.0/16 }
sites:
  hq:
    cidr: 192.168.0.0/16
    customer_gateway: { public_ip: 198.51.100.20, asn: 65000 }
    hosts:
      pc1: { ip: 192.168.1.10 }
      pc2: { ip: 192.168.0.1 }
      pc3: { ip: 10.9.0.1 }
  branch:
    cidr: 172.20.0.0/16
    customer_gateway: { public_ip: 198.51.100.21, asn: 65000 }
  overlap-site:
    cidr: 192.168.128.0/17
    customer_gateway: { public_ip: 198.51.100.22 }
  overlap-vpc:
    cidr: 10.1.0.0/24
    customer_gateway: { public_ip: 198.51.100.23 }
  noasn:
    cidr: 172.21.0.0/16
    customer_gateway: { public_ip: 203.0.113.50, behind_nat: true }
  lone:
    cidr: 172.22.0.0/16
    customer_gateway: { public_ip: 198.51.100.24 }
vpn_gateways:
  v1: { vpc: a }
  v2: { vpc: b }
  v3: { vpc: a }
  v4: { vpc: c, asn: 65000 }
  v5: { asn: 100, vpc: d }
vpn_connections:
  hq-vpn: { site: hq, gateway: vgw:v1, routing: bgp }
  branch-vpn: { site: branch, gateway: vgw:v1, routing: bgp }
  static-vpn: { site: hq, gateway: vgw:v2, routing: static }
  lone-vpn: { site: lone, gateway: vgw:v2, routing: bgp, static_routes: [172.22.0.0/16] }
  tgw-vpn: { site: lone, gateway: tgw:t1, routing: static, static_routes: [172.22.0.0/16] }
  ghost-vpn: { site: ghost, gateway: vgw:v9, routing: ospf }
  same-asn: { site: branch, gateway: vgw:v4, routing: bgp }
"#;
    assert_errors(
        text,
        &[
            "t.yaml:6:21: vpcs.a.route_tables.rt.propagate[0]: `vgw:v2`: virtual private gateway v2 is attached to vpc b, not to vpc a; a route table can only use its own VPC's VGW",
            "t.yaml:6:29: vpcs.a.route_tables.rt.propagate[1]: invalid propagation `v1`: expected vgw:NAME (routes propagate from a virtual private gateway)",
            "t.yaml:6:33: vpcs.a.route_tables.rt.propagate[2]: unknown virtual private gateway `vgw:nope`; VPN gateways of vpc a: v1",
            "t.yaml:6:51: vpcs.a.route_tables.rt.propagate[4]: duplicate propagation from vgw:v1",
            "t.yaml:8:51: vpcs.a.route_tables.rt.routes[0].target: `vgw:v2`: virtual private gateway v2 is attached to vpc b, not to vpc a; a route table can only use its own VPC's VGW",
            "t.yaml:18:18: sites.hq.hosts.pc2.ip: address 192.168.0.1 is the site router's address on its LAN (the first of 192.168.0.0/16)",
            "t.yaml:19:18: sites.hq.hosts.pc3.ip: address 10.9.0.1 is not inside the site's CIDR 192.168.0.0/16",
            "t.yaml:24:11: sites.overlap-site.cidr: site CIDR 192.168.128.0/17 overlaps site hq (192.168.0.0/16): a site's addresses must be its own (a VPN cannot join overlapping networks)",
            "t.yaml:27:11: sites.overlap-vpc.cidr: site CIDR 10.1.0.0/24 overlaps vpc b (10.1.0.0/16): a site's addresses must be its own (a VPN cannot join overlapping networks)",
            "t.yaml:31:36: sites.noasn.customer_gateway.public_ip: customer gateway address 203.0.113.50 is inside the public pool 203.0.113.0/24 (the default public pool), which the lab hands out as AWS's public IPs: pick an address outside it, like 198.51.100.20",
            "t.yaml:38:14: vpn_gateways.v3.vpc: vpc a already has virtual private gateway v1 attached: a VPC takes one VGW at a time",
            "t.yaml:40:14: vpn_gateways.v5.asn: Amazon side ASN 100 is out of range: expected a private ASN 64512-65534 or 4200000000-4294967294",
            "t.yaml:43:3: vpn_connections.branch-vpn: sites hq and branch both have ASN 65000 on vgw:v1: with BGP, VPN CloudHub needs a unique ASN per site (each would drop the other's routes as its own)",
            "t.yaml:44:53: vpn_connections.static-vpn: a static VPN connection needs `static_routes` (the site's prefixes, like [192.168.0.0/16])",
            "t.yaml:45:53: vpn_connections.lone-vpn.routing: routing bgp needs the customer gateway's BGP ASN: set sites.lone.customer_gateway.asn (65000 is AWS's default), or use routing static",
            "t.yaml:45:58: vpn_connections.lone-vpn.static_routes: static_routes apply to `routing: static` only; with bgp the site advertises its prefixes",
            "t.yaml:46:35: vpn_connections.tgw-vpn.gateway: `tgw:t1`: VPN connections to a transit gateway are not supported yet by this version of vpclab",
            "t.yaml:47:22: vpn_connections.ghost-vpn.site: unknown site `ghost`; sites: hq, branch, lone",
            "t.yaml:47:38: vpn_connections.ghost-vpn.gateway: unknown virtual private gateway `vgw:v9`; VPN gateways: v1, v2, v4",
            "t.yaml:47:55: vpn_connections.ghost-vpn.routing: invalid routing `ospf`: expected static or bgp",
            "t.yaml:48:55: vpn_connections.same-asn.routing: site branch has ASN 65000, the Amazon side ASN of vgw:v4: eBGP needs two different ASNs",
        ],
    );
}

#[test]
fn site_hosts_and_connection_details() {
    let text = r#"internet: { hosts: { hq-router: { ip: 198.51.100.9 } } }
vpcs:
  a: { cidr: 10.0.0.0/16 }
sites:
  hq:
    cidr: 192.168.0.0/16
    customer_gateway: { public_ip: 198.51.100.9, asn: 65000 }
    hosts:
      pc1: { ip: 192.168.1.10, services: [ssh] }
      pc2: { ip: 192.168.1.10 }
  a-site-with-a-long-name:
    cidr: 172.16.0.0/16
    customer_gateway: { public_ip: 198.51.100.30 }
  ok:
    cidr: 172.17.0.0/16
    customer_gateway: { public_ip: 198.51.100.31, asn: 9999999999 }
  ok2:
    cidr: 172.18.0.0/16
    customer_gateway: { public_ip: 198.51.100.32, asn: 65001 }
vpn_gateways:
  v1: { vpc: a }
vpn_connections:
  one: { site: ok2, gateway: vgw:v1, routing: static, static_routes: [172.18.0.0/16] }
  two: { site: ok2, gateway: vgw:v1, routing: static, static_routes: [172.18.0.0/16] }
  three: { site: ok2, gateway: v1, routing: static, static_routes: [172.18.0.0/16, 172.18.0.0/16] }
  four: { site: ok2, gateway: vgw:v1, routing: static, static_routes: [] }
"#;
    assert_errors(
        text,
        &[
            "t.yaml:5:3: sites.hq: site hq's router is host `hq-router`, a name already declared at line 1 (internet.hosts.hq-router)",
            "t.yaml:7:36: sites.hq.customer_gateway.public_ip: customer gateway address 198.51.100.9 is already the address of hq-router",
            "t.yaml:9:43: sites.hq.hosts.pc1.services[0]: `ssh` is not supported yet on an on-premises host by this version of vpclab",
            "t.yaml:10:18: sites.hq.hosts.pc2.ip: address 192.168.1.10 is already the address of pc1",
            "t.yaml:11:3: sites.a-site-with-a-long-name: site name `a-site-with-a-long-name` is too long: its router is host `a-site-with-a-long-name-router`, and host names have at most 24 characters (site names at most 17)",
            "t.yaml:16:56: sites.ok.customer_gateway.asn: customer gateway ASN 9999999999 is out of range: expected 1-2147483647 (64512-65534 are private)",
            "t.yaml:24:3: vpn_connections.two: site ok2 already has VPN connection one to vgw:v1: one connection per customer gateway and virtual private gateway",
            "t.yaml:25:32: vpn_connections.three.gateway: invalid gateway `v1`: expected vgw:NAME (a virtual private gateway) or tgw:NAME",
            "t.yaml:25:84: vpn_connections.three.static_routes[1]: duplicate static route 172.18.0.0/16",
            "t.yaml:26:56: vpn_connections.four.static_routes: expected at least one prefix, like [192.168.0.0/16]",
        ],
    );
}

#[test]
fn full_dual_stack_subnet_still_refuses_an_instance() {
    // Lesson 27: the /64 has room for billions, but the /28 has 11 IPv4 addresses, and IPv4
    // cannot be turned off.
    let mut text = String::from(
        "vpcs:\n  a:\n    cidr: 10.0.0.0/16\n    ipv6: true\n    subnets: { a1: { cidr: 10.0.1.0/28 } }\n    instances:\n",
    );
    for i in 1..=12 {
        text.push_str(&format!("      h{i}: {{ subnet: a1 }}\n"));
    }
    assert_errors(
        &text,
        &[
            "t.yaml:18:7: vpcs.a.instances.h12: InsufficientFreeAddressesInSubnet: \
           subnet a1 (10.0.1.0/28) has no free address left for h12",
        ],
    );
}

#[test]
fn ipv6_mistakes_are_reported_with_their_places() {
    let text = r#"internet:
  hosts:
    far: { ip: 198.51.100.10, ipv6: "2600::1" }
    ours: { ip: 198.51.100.11, ipv6: "2001:db8:0:100::9" }
vpcs:
  four:
    cidr: 10.0.0.0/16
    egress_only_internet_gateway: true
    subnets:
      s4: { cidr: 10.0.1.0/24, ipv6: true }
    instances:
      i4: { subnet: s4, ipv6: true }
  six:
    cidr: 10.1.0.0/16
    ipv6: true
    internet_gateway: true
    subnets:
      s6: { cidr: 10.1.1.0/24, route_table: rt }
      plain: { cidr: 10.1.2.0/24, ipv6: false }
    route_tables:
      rt:
        routes:
          - { destination: "::/0", target: eigw:six }
          - { destination: 0.0.0.0/0, target: nat:n6 }
          - { destination: "2001:db8:0:100::/64", target: blackhole }
    nat_gateways:
      n6: { subnet: s6 }
    instances:
      p: { subnet: plain, ipv6: true }
"#;
    assert_errors(
        text,
        &[
            "t.yaml:3:37: internet.hosts.far.ipv6: internet host address 2600::1 must lie inside the documentation range 2001:db8::/32",
            "t.yaml:4:38: internet.hosts.ours.ipv6: internet host address 2001:db8:0:100::9 is inside 2001:db8::/48, where the lab takes VPCs' IPv6 blocks from: pick an address like 2001:db8:ffff::10",
            "t.yaml:8:35: vpcs.four.egress_only_internet_gateway: an egress-only internet gateway carries IPv6 only: set `ipv6: true` on the VPC",
            "t.yaml:10:38: vpcs.four.subnets.s4.ipv6: subnet s4 asks for IPv6 but vpc four has no IPv6 block: set `ipv6: true` on the VPC",
            "t.yaml:12:31: vpcs.four.instances.i4.ipv6: instance i4 asks for IPv6 but subnet s4 has no IPv6 /64: set `ipv6: true` on the subnet or its VPC",
            "t.yaml:23:44: vpcs.six.route_tables.rt.routes[0].target: route target `eigw:six`: vpc six has no egress-only internet gateway: set `egress_only_internet_gateway: true` on it",
            "t.yaml:25:28: vpcs.six.route_tables.rt.routes[2].destination: destination 2001:db8:0:100::/64 is inside vpc six's CIDR 2001:db8:0:100::/56, which the local route covers: only NAT gateway or ENI targets may be more specific than local (not supported yet)",
            "t.yaml:29:33: vpcs.six.instances.p.ipv6: instance p asks for IPv6 but subnet plain has no IPv6 /64: set `ipv6: true` on the subnet or its VPC",
        ],
    );
    // A route of the wrong family for its target.
    let text = "vpcs:\n  a:\n    cidr: 10.0.0.0/16\n    ipv6: true\n    egress_only_internet_gateway: true\n    internet_gateway: true\n\
                \x20   subnets: { s: { cidr: 10.0.1.0/24, route_table: rt } }\n\
                \x20   route_tables:\n      rt:\n        routes:\n\
                \x20         - { destination: 0.0.0.0/0, target: eigw:a }\n\
                \x20         - { destination: \"::/0\", target: nat:n }\n\
                \x20   nat_gateways: { n: { subnet: s } }\n";
    let errs = errors(text);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(
        errs[0].contains("an egress-only internet gateway carries IPv6 only"),
        "{errs:?}"
    );
    assert!(
        errs[1].contains("a NAT gateway translates IPv4 only"),
        "{errs:?}"
    );
}

#[test]
fn transit_gateway_mistakes_are_reported_with_their_places() {
    let text = r#"vpcs:
  a:
    cidr: 10.0.0.0/16
    subnets:
      a1: { cidr: 10.0.1.0/24, az: us-east-1a }
      a2: { cidr: 10.0.2.0/24, az: us-east-1a }
    route_tables:
      rt: { main: true, routes: [{ destination: 10.9.0.0/16, target: tgw:t2 }] }
  b:
    cidr: 10.1.0.0/16
    region: eu-west-1
    subnets: { b1: { cidr: 10.1.1.0/24, az: eu-west-1a } }
  c:
    cidr: 10.2.0.0/16
    subnets: { c1: { cidr: 10.2.1.0/24 } }
    route_tables:
      rt-c: { main: true, routes: [{ destination: 10.0.0.0/16, target: tgw:t1 }] }
transit_gateways:
  t1:
    attachments:
      at-a: { vpc: a, subnets: [a1, a2] }
      at-b: { vpc: b, subnets: [b1] }
      at-a2: { vpc: a, subnets: [a1] }
    route_tables:
      one:
        associations: [at-a, ghost]
        routes:
          - { destination: 10.5.0.0/16, attachment: at-a, blackhole: true }
      two:
        associations: [at-a]
  t2:
    attachments: {}
"#;
    let errs = errors(text);
    let expected = [
        "vpc a has no attachment to transit gateway t2",
        "transit gateway t1 in us-east-1: a transit gateway attaches VPCs of its own region",
        "vpc a is attached to transit gateway t1 already (attachment at-a): one attachment per VPC",
        "vpc c has no attachment to transit gateway t1",
        "subnet a2 is in us-east-1a, as subnet a1 is: an attachment takes one subnet per Availability Zone",
        "unknown attachment `ghost` of transit gateway t1; its attachments: at-a",
        "a route names either `attachment: NAME` or `blackhole: true`",
        "attachment at-a is associated with route table one already: an attachment has one association",
    ];
    for e in expected {
        assert!(
            errs.iter().any(|x| x.contains(e)),
            "missing {e:?} in {errs:#?}"
        );
    }
    assert_eq!(errs.len(), expected.len(), "{errs:#?}");
}
