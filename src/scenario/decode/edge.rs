//! Scenario layer, decoding: the simulated internet (`internet:`).

use super::super::error::Errors;
use super::super::raw::*;
use super::super::yaml::Node;
use super::*;

pub(super) fn internet(node: &Node<'_>, errs: &mut Errors) -> InternetRaw {
    let mut raw = InternetRaw::default();
    let Some(m) = node.map(errs, &["public_pool", "hosts"]) else {
        return raw;
    };
    raw.public_pool = m.string(errs, "public_pool", CIDR);
    for (name, n) in m.get("hosts").map(|n| n.named(errs)).unwrap_or_default() {
        let Some(h) = n.map(errs, &["ip", "ipv6", "services", "dns", "run"]) else {
            continue;
        };
        raw.hosts.push(InternetHostRaw {
            ip: required_string(&h, errs, "ip", "a public IPv4 address like 198.51.100.10"),
            ipv6: h.string(errs, "ipv6", "a public IPv6 address like 2001:db8:ffff::10"),
            services: h
                .get("services")
                .and_then(|n| n.strings(errs, "a service like http:80, tcp:22, udp:53 or icmp"))
                .unwrap_or_default(),
            dns: h.string(errs, "dns", "a DNS name like example.com"),
            run: h.text(errs, "run", "a shell command").map(|r| r.value),
            name,
        });
    }
    raw
}
