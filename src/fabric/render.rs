//! Words for a decision: each hop of a leg rendered for a learner (the route, rule or state
//! that decided it), and the `kind:name` components a `via:` expectation names.

use std::fmt::Write as _;

use crate::scenario::{PortRange, Protocol, SgPeer};
use crate::wire::FlowKey;

use super::{AclRuleRef, Compiled, Direction, EniOwner, Hop, Outcome, RouteRef, SgVerdict};

use super::Leg;

pub(super) fn render_leg(out: &mut String, lab: &Compiled, title: &str, leg: &Leg) {
    let k = &leg.key;
    let what = match k.protocol {
        1 => format!("icmp type {}", k.icmp_type),
        58 => format!("icmpv6 type {}", k.icmp_type),
        6 => format!("tcp {}:{} -> {}:{}", k.src, k.src_port, k.dst, k.dst_port),
        17 => format!("udp {}:{} -> {}:{}", k.src, k.src_port, k.dst, k.dst_port),
        p => format!("protocol {p}"),
    };
    let _ = writeln!(out, "{title}: {} -> {} ({what})", k.src, k.dst);
    // The header as it is at each hop: gateways translate it on the way.
    let mut at = *k;
    for (n, hop) in leg.hops.iter().enumerate() {
        let _ = writeln!(out, "  {:>2}. {}", n + 1, describe(lab, &at, hop));
        translate(&mut at, hop);
    }
    for m in &leg.mirrored {
        let session = &lab.lab.mirror_sessions[m.session];
        let target = &lab.lab.mirror_targets[session.target];
        let _ = writeln!(
            out,
            "      mirrored: session {} (number {}, VNI {}) copies it as it {} eni:{} to eni:{} (VXLAN, UDP 4789)",
            session.name,
            session.session_number,
            session.vni,
            if m.direction == Direction::Outbound { "leaves" } else { "reaches" },
            lab.lab.instances[m.eni].name,
            lab.lab.instances[target.eni].name
        );
    }
    match leg.outcome {
        Outcome::Deliver(h) => {
            let _ = writeln!(out, "  => delivered to {}", lab.lab.host_name(h));
        }
        Outcome::Drop(code) => {
            let _ = writeln!(out, "  => dropped: {code} ({})", code.meaning());
        }
    }
}

/// What a gateway hop did to the header.
fn translate(key: &mut FlowKey, hop: &Hop) {
    match *hop {
        Hop::InternetGateway { direction, to, .. } => match direction {
            Direction::Outbound => key.src = to,
            Direction::Inbound => key.dst = to,
        },
        Hop::Forwarded { from, to, .. } => {
            // The translation reverses what it rewrote: a source on the way out (the new
            // source is the instance), a destination on the way back.
            if key.src == from.0 && key.src_port == from.1 {
                (key.src, key.src_port) = to;
            } else if key.dst == from.0 && key.dst_port == from.1 {
                (key.dst, key.dst_port) = to;
            }
        }
        Hop::NatGateway { direction, to, .. } => {
            match direction {
                Direction::Outbound => (key.src, key.src_port) = to,
                Direction::Inbound => (key.dst, key.dst_port) = to,
            }
            if key.is_icmp() {
                (key.src_port, key.dst_port) = (to.1, to.1);
            }
        }
        _ => {}
    }
}

fn describe(lab: &Compiled, key: &FlowKey, hop: &Hop) -> String {
    let l = &lab.lab;
    match *hop {
        Hop::SourceEni(i) => {
            let e = lab.eni(i);
            format!(
                "{} {} in subnet {} ({}), vpc {}",
                e.component,
                e.ip,
                l.subnets[e.subnet].name,
                l.subnets[e.subnet].cidr,
                l.vpcs[e.vpc].name
            )
        }
        Hop::SameSubnet(s) => format!(
            "same subnet {}: delivered directly (no route table, no NACL)",
            l.subnets[s].name
        ),
        Hop::LeaveSubnet(s) => {
            format!("leaves subnet {} through the VPC router", l.subnets[s].name)
        }
        Hop::Route { table, route } => {
            let t = &l.route_tables[table];
            let how = if l
                .subnets
                .iter()
                .any(|s| s.route_table == table && s.explicit_route_table)
            {
                ""
            } else {
                " (main)"
            };
            let (dest, target) = match route {
                RouteRef::Propagated { connection, index } => {
                    let c = &l.vpn_connections[connection];
                    let prefix = lab.propagated_prefix(connection, index);
                    let how = match c.routing {
                        crate::scenario::VpnRouting::Static => "static",
                        crate::scenario::VpnRouting::Bgp => "learned by BGP",
                    };
                    (
                        format!(
                            "{} ({how}, propagated from vpn connection {})",
                            prefix.map(|p| p.to_string()).unwrap_or_default(),
                            c.name
                        ),
                        format!("vgw:{}", l.vpn_gateways[c.gateway].name),
                    )
                }
                RouteRef::Local(i) => {
                    let block = l.vpcs[t.vpc].local_blocks().nth(i);
                    (
                        block.map(|b| b.to_string()).unwrap_or_default(),
                        "local".to_string(),
                    )
                }
                RouteRef::Declared(i) => {
                    let r = &t.routes[i];
                    let target = match r.target {
                        crate::scenario::RouteTarget::Blackhole => "blackhole".to_string(),
                        crate::scenario::RouteTarget::Peering(p) => {
                            format!("pcx:{}", l.peerings[p].name)
                        }
                        crate::scenario::RouteTarget::TransitGateway(g) => {
                            format!("tgw:{}", l.transit_gateways[g].name)
                        }
                        crate::scenario::RouteTarget::InternetGateway => {
                            format!("igw:{}", l.vpcs[t.vpc].name)
                        }
                        crate::scenario::RouteTarget::EgressOnlyInternetGateway => {
                            format!("eigw:{}", l.vpcs[t.vpc].name)
                        }
                        crate::scenario::RouteTarget::NatGateway(g) => {
                            format!("nat:{}", l.nat_gateways[g].name)
                        }
                        crate::scenario::RouteTarget::GatewayEndpoint(e) => {
                            format!("vpce:{}", l.endpoints[e].name)
                        }
                        crate::scenario::RouteTarget::Instance(i) => {
                            format!("eni:{}", l.instances[i].name)
                        }
                        // VPN: wired by the lead.
                        crate::scenario::RouteTarget::VpnGateway(g) => {
                            format!("vgw:{}", l.vpn_gateways[g].name)
                        }
                    };
                    let destination = match r.prefix_list {
                        Some(s) => format!("pl:{} ({})", l.services[s].name, r.destination),
                        None => r.destination.to_string(),
                    };
                    (destination, target)
                }
            };
            format!(
                "route table {}{how}: route {dest} -> {target} (longest prefix match)",
                t.name
            )
        }
        Hop::Peering { peering, into } => {
            let p = &l.peerings[peering];
            let mut extra = Vec::new();
            if p.cross_region {
                extra.push("inter-region");
            }
            if p.cross_account {
                extra.push("cross-account");
            }
            let extra = if extra.is_empty() {
                String::new()
            } else {
                format!(" ({})", extra.join(", "))
            };
            format!(
                "peering connection pcx:{}{extra} into vpc {}",
                p.name, l.vpcs[into].name
            )
        }
        Hop::SecurityGroup {
            eni,
            direction,
            verdict,
        } => {
            let packet = packet_words(key, direction);
            let interface = lab.eni(eni);
            let eni = &interface.component;
            let dir = direction.as_str();
            match verdict {
                SgVerdict::Rule { group, rule } | SgVerdict::Untracked { group, rule } => {
                    let sg = &l.security_groups[group];
                    let r = match direction {
                        Direction::Inbound => &sg.ingress[rule],
                        Direction::Outbound => &sg.egress[rule],
                    };
                    let peer = match r.peer {
                        SgPeer::Cidr(net) => net.to_string(),
                        SgPeer::Group(g) => format!("sg:{}", l.security_groups[g].name),
                    };
                    let side = match direction {
                        Direction::Inbound => "from",
                        Direction::Outbound => "to",
                    };
                    let untracked = if matches!(verdict, SgVerdict::Untracked { .. }) {
                        " (untracked: rules open to all addresses admit it both ways)"
                    } else {
                        ""
                    };
                    format!(
                        "security group sg:{} {dir} ({eni}): rule {} ({} {side} {peer}) allows {packet}{untracked}",
                        sg.name,
                        rule + 1,
                        rule_words(r.protocol, r.ports, r.icmp_type, r.icmp_code),
                    )
                }
                SgVerdict::Tracked => format!(
                    "security groups of {eni} {dir}: {packet} belongs to a tracked connection (stateful: passes whatever the rules)"
                ),
                SgVerdict::Related => format!(
                    "security groups of {eni} {dir}: {packet} is an ICMP error about a tracked connection (passes as related)"
                ),
                SgVerdict::NoRule => {
                    let groups: Vec<String> = interface
                        .security_groups
                        .iter()
                        .map(|g| format!("sg:{}", l.security_groups[*g].name))
                        .collect();
                    format!(
                        "no rule of {} allows {dir} {packet} ({eni}; security groups allow only)",
                        groups.join(", ")
                    )
                }
            }
        }
        Hop::NetworkAcl {
            acl,
            subnet,
            direction,
            rule,
            allow,
        } => {
            let a = &l.network_acls[acl];
            let word = if allow { "allow" } else { "deny" };
            let packet = packet_words(key, direction);
            let (number, what) = match rule {
                AclRuleRef::Numbered(i) => {
                    let r = match direction {
                        Direction::Inbound => &a.inbound[i],
                        Direction::Outbound => &a.outbound[i],
                    };
                    let side = match direction {
                        Direction::Inbound => "from",
                        Direction::Outbound => "to",
                    };
                    (
                        r.number.to_string(),
                        format!(
                            "{} {side} {}",
                            rule_words(r.protocol, r.ports, r.icmp_type, r.icmp_code),
                            r.cidr
                        ),
                    )
                }
                AclRuleRef::Default => (
                    "*".to_string(),
                    format!(
                        "no numbered rule matches; rule {}",
                        AclRuleRef::DEFAULT_NUMBER
                    ),
                ),
            };
            format!(
                "network acl {} (subnet {}) {}: rule {number} {word} ({what}) for {packet}",
                a.name,
                l.subnets[subnet].name,
                direction.as_str(),
            )
        }
        Hop::EnterSubnet(s) => format!(
            "enters subnet {} ({})",
            l.subnets[s].name, l.subnets[s].cidr
        ),
        Hop::DestinationEni(i) => {
            let e = lab.eni(i);
            match e.owner {
                EniOwner::Instance(_) => format!("{} {}", e.component, e.ip),
                EniOwner::Endpoint(id) => {
                    let service = &l.services[l.endpoints[id].service];
                    format!(
                        "interface endpoint {} {} (subnet {}): on to service {} ({})",
                        e.component,
                        e.ip,
                        l.subnets[e.subnet].name,
                        service.name,
                        service.dns_name()
                    )
                }
            }
        }
        Hop::FromInternet(n) => {
            let h = &l.internet.hosts[n];
            match l.services.iter().find(|s| s.host == n) {
                Some(s) => format!(
                    "service {} answers ({}, host {})",
                    s.name,
                    s.dns_name(),
                    h.ip
                ),
                None => format!("internet host {} {}", h.name, h.ip),
            }
        }
        Hop::ToInternet(n) => {
            let h = &l.internet.hosts[n];
            format!("across the internet to host {} {}", h.name, h.ip)
        }
        Hop::InternetGateway {
            vpc,
            direction,
            from,
            to,
        } => {
            let name = &l.vpcs[vpc].name;
            match direction {
                _ if from == to => format!(
                    "internet gateway igw:{name}: IPv6 {} {from}, untranslated (IPv6 addresses are global)",
                    if direction == Direction::Outbound { "from" } else { "to" }
                ),
                Direction::Outbound => format!(
                    "internet gateway igw:{name}: source {from} -> public {to} (1:1 NAT; the instance never sees its public IP)"
                ),
                Direction::Inbound => format!(
                    "internet gateway igw:{name}: destination public {from} -> private {to} (1:1 NAT)"
                ),
            }
        }
        Hop::VpnGateway {
            gateway,
            connection,
            tunnel,
            direction,
        } => {
            let (g, c) = (&l.vpn_gateways[gateway], &l.vpn_connections[connection]);
            let t = &c.tunnels[tunnel];
            let site = &l.sites[c.site];
            let (way, other) = match direction {
                Direction::Outbound => ("into", "to"),
                Direction::Inbound => ("out of", "from"),
            };
            format!(
                "virtual private gateway vgw:{} {way} tunnel {} of vpn connection {} (WireGuard between {} and {} {other} site {})",
                g.name, t.number, c.name, t.outside_ip, site.customer_gateway.public_ip, site.name
            )
        }
        Hop::TransitGateway {
            tgw,
            from,
            table,
            route,
        } => {
            let g = &l.transit_gateways[tgw];
            let a = &g.attachments[from];
            let Some(table) = table else {
                return format!(
                    "transit gateway tgw:{}: in by attachment {} (vpc {}), associated with no route table",
                    g.name, a.name, l.vpcs[a.vpc].name
                );
            };
            let t = &g.route_tables[table];
            let matched = match route {
                None => "no route matches".to_string(),
                Some(super::compiled::TgwRouteRef::Static(i)) => {
                    let r = &t.routes[i];
                    match r.attachment {
                        Some(to) => format!(
                            "static route {} -> {}",
                            r.destination, g.attachments[to].name
                        ),
                        None => format!("static route {} -> blackhole", r.destination),
                    }
                }
                Some(super::compiled::TgwRouteRef::Propagated(to)) => {
                    let to = &g.attachments[to];
                    format!(
                        "route to vpc {} propagated by attachment {}",
                        l.vpcs[to.vpc].name, to.name
                    )
                }
            };
            format!(
                "transit gateway tgw:{}: in by attachment {} (vpc {}), route table {}: {matched} (longest prefix match)",
                g.name,
                a.name,
                l.vpcs[a.vpc].name,
                t.name
            )
        }
        Hop::FromSite(h) => format!(
            "on-premises host {} {}, by its site's router",
            l.host_name(h),
            l.host_ip(h)
        ),
        Hop::ToSite(h) => format!(
            "the site's router hands it to {} {}",
            l.host_name(h),
            l.host_ip(h)
        ),
        Hop::EgressOnlyInternetGateway { vpc, direction } => {
            let name = &l.vpcs[vpc].name;
            match direction {
                Direction::Outbound => format!(
                    "egress-only internet gateway eigw:{name}: IPv6 out, untranslated; the flow is remembered so its replies may come back"
                ),
                Direction::Inbound => format!(
                    "egress-only internet gateway eigw:{name}: the reply of a flow opened from inside"
                ),
            }
        }
        Hop::Forwarded { eni, from, to } => {
            let name = &l.instances[eni].name;
            if from == to {
                format!("instance {name} forwards it (its OS routes it on; source/destination check is off)")
            } else {
                format!(
                    "instance {name} forwards it, its OS translating {}:{} -> {}:{} (masquerade)",
                    from.0, from.1, to.0, to.1
                )
            }
        }
        Hop::GatewayEndpoint {
            endpoint,
            direction,
        } => {
            let e = &l.endpoints[endpoint];
            let service = &l.services[e.service];
            match direction {
                Direction::Outbound => format!(
                    "gateway endpoint vpce:{} to {} ({}): no security group, no translation, no charge",
                    e.name,
                    service.name,
                    service.dns_name()
                ),
                Direction::Inbound => format!(
                    "gateway endpoint vpce:{}: the reply of {} back into vpc {}",
                    e.name, service.name, l.vpcs[e.vpc].name
                ),
            }
        }
        Hop::NatGateway {
            gateway,
            direction,
            from,
            to,
        } => {
            let g = &l.nat_gateways[gateway];
            match direction {
                Direction::Outbound => format!(
                    "NAT gateway nat:{} (subnet {}): source {}:{} -> {}:{} (its Elastic IP {} outside)",
                    g.name, l.subnets[g.subnet].name, from.0, from.1, to.0, to.1, g.public_ip
                ),
                Direction::Inbound => format!(
                    "NAT gateway nat:{}: reply to a translated flow, destination {}:{} -> {}:{}",
                    g.name, from.0, from.1, to.0, to.1
                ),
            }
        }
    }
}

pub(super) fn component(lab: &Compiled, hop: &Hop) -> Option<String> {
    let l = &lab.lab;
    match *hop {
        Hop::SourceEni(i) | Hop::DestinationEni(i) => Some(lab.eni(i).component.clone()),
        Hop::Route { table, .. } => Some(format!("rtb:{}", l.route_tables[table].name)),
        Hop::Peering { peering, .. } => Some(format!("pcx:{}", l.peerings[peering].name)),
        Hop::EnterSubnet(s) | Hop::LeaveSubnet(s) | Hop::SameSubnet(s) => {
            Some(format!("subnet:{}", l.subnets[s].name))
        }
        Hop::SecurityGroup {
            verdict: SgVerdict::Rule { group, .. } | SgVerdict::Untracked { group, .. },
            ..
        } => Some(format!("sg:{}", l.security_groups[group].name)),
        Hop::SecurityGroup { .. } => None,
        Hop::NetworkAcl { acl, .. } => Some(format!("acl:{}", l.network_acls[acl].name)),
        Hop::FromInternet(n) | Hop::ToInternet(n) => {
            Some(format!("host:{}", l.internet.hosts[n].name))
        }
        Hop::InternetGateway { vpc, .. } => Some(format!("igw:{}", l.vpcs[vpc].name)),
        Hop::EgressOnlyInternetGateway { vpc, .. } => Some(format!("eigw:{}", l.vpcs[vpc].name)),
        Hop::VpnGateway { gateway, .. } => Some(format!("vgw:{}", l.vpn_gateways[gateway].name)),
        Hop::FromSite(h) | Hop::ToSite(h) => Some(format!("host:{}", l.host_name(h))),
        Hop::TransitGateway { tgw, .. } => Some(format!("tgw:{}", l.transit_gateways[tgw].name)),
        Hop::NatGateway { gateway, .. } => Some(format!("nat:{}", l.nat_gateways[gateway].name)),
        Hop::GatewayEndpoint { endpoint, .. } => {
            Some(format!("vpce:{}", l.endpoints[endpoint].name))
        }
        Hop::Forwarded { .. } => None,
    }
}

/// `tcp/22 from 10.0.1.10` (inbound) or `udp/53 to 10.0.0.2` (outbound).
fn packet_words(k: &FlowKey, direction: Direction) -> String {
    let what = match k.protocol {
        1 => format!("icmp type {} code {}", k.icmp_type, k.icmp_code),
        58 => format!("icmpv6 type {} code {}", k.icmp_type, k.icmp_code),
        6 => format!("tcp/{}", k.dst_port),
        17 => format!("udp/{}", k.dst_port),
        p => format!("protocol {p}"),
    };
    match direction {
        Direction::Inbound => format!("{what} from {}", k.src),
        Direction::Outbound => format!("{what} to {}", k.dst),
    }
}

/// `tcp 80`, `udp 1024-65535`, `icmp type 8`, `all`.
fn rule_words(
    protocol: Protocol,
    ports: PortRange,
    icmp_type: Option<u8>,
    icmp_code: Option<u8>,
) -> String {
    let mut s = match protocol {
        Protocol::All => "all".to_string(),
        Protocol::Number(1) => "icmp".to_string(),
        Protocol::Number(6) => "tcp".to_string(),
        Protocol::Number(17) => "udp".to_string(),
        Protocol::Number(58) => "icmpv6".to_string(),
        Protocol::Number(n) => format!("protocol {n}"),
    };
    if ports != PortRange::ALL {
        if ports.first == ports.last {
            let _ = write!(s, " {}", ports.first);
        } else {
            let _ = write!(s, " {}-{}", ports.first, ports.last);
        }
    } else if matches!(protocol, Protocol::Number(6 | 17)) {
        s.push_str(" all ports");
    }
    if let Some(t) = icmp_type {
        let _ = write!(s, " type {t}");
    }
    if let Some(c) = icmp_code {
        let _ = write!(s, " code {c}");
    }
    s
}
