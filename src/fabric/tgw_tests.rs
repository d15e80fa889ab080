//! Tier 1: transit gateways in the decision function, no root: transitive routing through the
//! hub, route tables by association and propagation, blackhole and missing routes, the
//! Availability Zone rule, a missing association, and the default route table.

use super::test_support::*;
use super::*;
use crate::scenario::{load_file, load_str};

fn segments() -> Compiled {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/tgw-segments.yaml");
    Compiled::new(load_file(&file).unwrap_or_else(|e| panic!("{e}")))
}

fn ip(l: &Compiled, name: &str) -> std::net::IpAddr {
    l.lab.instances[host(l, name)].private_ip.into()
}

fn outcome(l: &Compiled, from: &str, to: &str) -> Outcome {
    let key = tcp(ip(l, from), 40000, ip(l, to), 80, SYN);
    send(l, &Conntrack::scratch(), from, key).0
}

#[test]
fn route_tables_decide_who_reaches_whom() {
    let l = segments();
    assert_eq!(outcome(&l, "a1", "b1"), Outcome::Deliver(host(&l, "b1")));
    assert_eq!(outcome(&l, "d1", "c1"), Outcome::Deliver(host(&l, "c1")));
    assert_eq!(
        outcome(&l, "d1", "a1"),
        Outcome::Drop(DropCode::TgwRtbBadStateRoute)
    );
    assert_eq!(
        outcome(&l, "d1", "b1"),
        Outcome::Drop(DropCode::TgwRtbCannotRoute)
    );
    assert_eq!(
        outcome(&l, "a2", "b1"),
        Outcome::Drop(DropCode::TgwRouteAzRestriction)
    );
}

const TWO: &str = r#"
vpcs:
  a:
    cidr: 10.0.0.0/16
    subnets: { s: { cidr: 10.0.1.0/24 } }
    route_tables: { rt: { main: true, routes: [{ destination: 10.1.0.0/16, target: tgw:t1 }] } }
    instances: { x: { subnet: s } }
  b:
    cidr: 10.1.0.0/16
    subnets: { s2: { cidr: 10.1.1.0/24 } }
    route_tables: { rt2: { main: true, routes: [{ destination: 10.0.0.0/16, target: tgw:t1 }] } }
    security_groups: { open: { ingress: [{ protocol: all, source: 10.0.0.0/8 }] } }
    instances: { y: { subnet: s2, security_groups: [open] } }
transit_gateways:
  t1:
    DEFAULT
    attachments: { at-a: { vpc: a, subnets: [s] }, at-b: { vpc: b, subnets: [s2] } }
"#;

#[test]
fn an_attachment_without_association_has_no_table_and_the_default_table_learns_all() {
    // With the default route table (the API's default): everyone reaches everyone.
    let l = Compiled::new(load_str(&TWO.replace("DEFAULT\n", ""), "t.yaml").unwrap());
    assert_eq!(outcome(&l, "x", "y"), Outcome::Deliver(host(&l, "y")));
    assert_eq!(l.lab.transit_gateways[0].route_tables[0].name, "default");
    // Without it, and no table: the attachment has nothing to be looked up in.
    let off = TWO.replace("DEFAULT", "default_route_table: false");
    let l = Compiled::new(load_str(&off, "t.yaml").unwrap());
    assert_eq!(
        outcome(&l, "x", "y"),
        Outcome::Drop(DropCode::TgwAttachMissingTgwRtbAssociation)
    );
}
