//! Tier 1: AWS's untracked flows (aws-rules.md §2.3, appendix C #9). A flow admitted by rules
//! open to all addresses both ways is not tracked, so removing its rule cuts it at once; a flow
//! admitted by a narrower rule is tracked and outlives the rule.

use std::time::Duration;

use super::*;
use crate::scenario::load_str;
use crate::wire::FlowKey;

/// `server` admits tcp/80 from SOURCE; its outbound rules are AWS's default (all to 0.0.0.0/0).
fn lab(source: &str) -> Compiled {
    let text = format!(
        r#"
name: untracked
vpcs:
  a:
    cidr: 10.0.0.0/16
    subnets: {{ s: {{ cidr: 10.0.1.0/24 }} }}
    security_groups:
      web: {{ ingress: [{{ protocol: tcp, ports: 80, source: {source} }}] }}
    instances:
      client: {{ subnet: s, private_ip: 10.0.1.10 }}
      server: {{ subnet: s, private_ip: 10.0.1.20, security_groups: [web] }}
"#
    );
    Compiled::new(load_str(&text, "u.yaml").unwrap_or_else(|e| panic!("{e}")))
}

/// The same lab after the inbound rule was removed.
fn without_rule() -> Compiled {
    let mut l = lab("0.0.0.0/0").lab;
    let web = l
        .security_groups
        .iter()
        .position(|g| g.name == "web")
        .unwrap();
    l.security_groups[web].ingress.clear();
    Compiled::new(l)
}

fn syn(flags: u8, src_port: u16) -> FlowKey {
    FlowKey {
        src: [10, 0, 1, 10].into(),
        dst: [10, 0, 1, 20].into(),
        protocol: 6,
        src_port,
        dst_port: 80,
        icmp_type: 0,
        icmp_code: 0,
        tcp_flags: flags,
    }
}

fn client_sends(l: &Compiled, flows: &Conntrack, key: FlowKey) -> (Outcome, Vec<Hop>) {
    let mut hops = Vec::new();
    let from = l.lab.instance_by_name("client").unwrap();
    let out = decide(l, flows, Duration::from_secs(1), from, &key, &mut hops);
    (out, hops)
}

fn server_replies(l: &Compiled, flows: &Conntrack, key: FlowKey) -> Outcome {
    let from = l.lab.instance_by_name("server").unwrap();
    let mut reply = key.reversed();
    reply.tcp_flags = 0x12;
    decide(l, flows, Duration::from_secs(1), from, &reply, &mut ())
}

fn server_verdict(hops: &[Hop]) -> Option<SgVerdict> {
    hops.iter().find_map(|h| match *h {
        Hop::SecurityGroup {
            direction: Direction::Inbound,
            verdict,
            ..
        } => Some(verdict),
        _ => None,
    })
}

#[test]
fn a_flow_open_to_all_both_ways_is_untracked_and_cut_when_its_rule_goes() {
    let l = lab("0.0.0.0/0");
    let flows = Conntrack::scratch();
    let (out, hops) = client_sends(&l, &flows, syn(0x02, 40000));
    assert!(matches!(out, Outcome::Deliver(_)));
    assert!(matches!(
        server_verdict(&hops),
        Some(SgVerdict::Untracked { .. })
    ));
    // The reply passes by the open outbound rule; nothing is tracked for this flow at the
    // server (the client's own interface tracks its outbound connection, as AWS does).
    assert!(matches!(
        server_replies(&l, &flows, syn(0x02, 40000)),
        Outcome::Deliver(_)
    ));
    // The inbound rule goes: the very next packet of the established flow is refused.
    let cut = without_rule();
    let (out, _) = client_sends(&cut, &flows, syn(0x10, 40000));
    assert_eq!(out, Outcome::Drop(DropCode::EniSgRulesMismatch));
}

#[test]
fn a_flow_admitted_by_a_narrower_rule_is_tracked_and_outlives_it() {
    let l = lab("10.0.1.10/32");
    let flows = Conntrack::scratch();
    let (out, hops) = client_sends(&l, &flows, syn(0x02, 40000));
    assert!(matches!(out, Outcome::Deliver(_)));
    assert!(matches!(
        server_verdict(&hops),
        Some(SgVerdict::Rule { .. })
    ));
    assert!(matches!(
        server_replies(&l, &flows, syn(0x02, 40000)),
        Outcome::Deliver(_)
    ));
    let cut = without_rule();
    let (out, hops) = client_sends(&cut, &flows, syn(0x10, 40000));
    assert!(matches!(out, Outcome::Deliver(_)));
    assert_eq!(server_verdict(&hops), Some(SgVerdict::Tracked));
    // A new connection needs the rule, which is gone.
    let (out, _) = client_sends(&cut, &flows, syn(0x02, 40001));
    assert_eq!(out, Outcome::Drop(DropCode::EniSgRulesMismatch));
}
