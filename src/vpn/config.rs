//! The customer side of a VPN connection as wg-quick files, as AWS's "Download
//! configuration" hands the customer gateway's: what `vpclab vpn config` prints and what
//! `vpclab up` brings up in the site's router. One file per tunnel, since wg-quick takes one
//! interface per file and names it after the file.
//!
//! Two tunnels to one VPC, one active: both interfaces carry the VPC's CIDRs (WireGuard's
//! AllowedIPs are per interface), `Table = off` keeps wg-quick from adding routes of its own
//! (the second tunnel's would clash with the first's), and each file's `PostUp` adds the
//! route to the VPC through its tunnel with the tunnel's metric: 100 for tunnel 1, 200 for
//! tunnel 2. The kernel uses the lowest metric, so tunnel 1 carries the traffic and tunnel 2
//! stands by; taking tunnel 1 down (its route goes with its interface) fails over. With BGP
//! the session sets the routes instead, and no file adds any.

use std::fmt::Write as _;

use crate::scenario::{Lab, VpnConnection, VpnConnectionId, VpnRouting, VpnTunnel};

/// Seconds between keepalives the customer end sends. The AWS end counts a tunnel dead after
/// `DEAD_AFTER_KEEPALIVES` of them go missing, as dead peer detection does (AWS's default is
/// 10 s × 3; the lab uses 2 s so that a failover shows within seconds in a class).
pub const KEEPALIVE: u16 = 2;

/// Keepalives missed before the AWS end counts a tunnel down.
pub const DEAD_AFTER_KEEPALIVES: u16 = 3;

/// The file name wg-quick needs for tunnel `t`: the interface name and `.conf`.
pub fn file_name(t: &VpnTunnel) -> String {
    format!("{}.conf", t.interface)
}

/// The prefixes the customer end accepts from, and sends into, tunnel `t` of connection `c`:
/// the VPC's CIDRs, the tunnel's inside /30 (BGP speaks over it) and, with BGP, the other
/// sites of the VGW that CloudHub reaches through it.
pub fn allowed_ips(lab: &Lab, c: &VpnConnection, t: &VpnTunnel) -> Vec<ipnet::Ipv4Net> {
    let vpc = lab.vpn_gateways[c.gateway].vpc;
    let mut out = lab.vpcs[vpc].cidrs.clone();
    out.push(t.inside);
    if c.routing == VpnRouting::Bgp {
        let hub = lab
            .vpn_connections
            .iter()
            .filter(|o| o.gateway == c.gateway && o.site != c.site && o.routing == VpnRouting::Bgp);
        out.extend(hub.map(|o| lab.sites[o.site].cidr));
    }
    out.dedup();
    out
}

/// Tunnel `number` (1 or 2) of connection `id` as one wg-quick file.
pub fn tunnel_file(lab: &Lab, id: VpnConnectionId, number: u8) -> String {
    let c = &lab.vpn_connections[id];
    let t = &c.tunnels[usize::from(number.clamp(1, 2) - 1)];
    let site = &lab.sites[c.site];
    let gateway = &lab.vpn_gateways[c.gateway];
    let vpc = &lab.vpcs[gateway.vpc];
    let cgw = &site.customer_gateway;
    let role = if t.number == 1 { "active" } else { "standby" };
    let mut f = String::new();
    let w = &mut f;
    let _ = writeln!(
        w,
        "# vpclab Site-to-Site VPN: connection {}, tunnel {} of 2 ({role})",
        c.name, t.number
    );
    let _ = writeln!(
        w,
        "# Lab {}. Virtual private gateway {} (vpc {}, Amazon side ASN {}); customer gateway:",
        lab.name, gateway.name, vpc.name, gateway.asn
    );
    let asn = cgw.asn.map(|a| format!(", ASN {a}")).unwrap_or_default();
    let _ = writeln!(
        w,
        "# the router of site {} ({}{asn}).",
        site.name, cgw.public_ip
    );
    let _ = writeln!(
        w,
        "# AWS runs IPsec; the lab runs WireGuard in its place: these keys stand for the tunnel's\n\
         # pre-shared key. Keep this file secret: it holds the customer gateway's private key.\n#"
    );
    let _ = writeln!(
        w,
        "# Outside: customer gateway {}:{} <-> virtual private gateway {}:{}",
        cgw.public_ip, t.customer_port, t.outside_ip, t.aws_port
    );
    let _ = writeln!(
        w,
        "# Inside {}: customer gateway {}, virtual private gateway {}\n#",
        t.inside,
        t.customer_inside(),
        t.aws_inside()
    );
    match c.routing {
        VpnRouting::Static => {
            let other = 3 - t.number;
            let _ = writeln!(
                w,
                "# Routing: static. Both tunnels carry the VPC's CIDRs; the route through this\n\
                 # tunnel has metric {}, through tunnel {other} metric {}: the lower one wins, so\n\
                 # tunnel 1 is active and tunnel 2 stands by until tunnel 1 goes down (its route\n\
                 # goes with its interface). Table = off: wg-quick adds no routes itself (the\n\
                 # two tunnels' would clash); PostUp adds this tunnel's.",
                t.metric(),
                c.tunnels[usize::from(other - 1)].metric()
            );
        }
        VpnRouting::Bgp => {
            let _ = writeln!(
                w,
                "# Routing: BGP. Neighbor {} (remote AS {}), local address {}{}, hold time 30 s;\n\
                 # the session (BIRD in the router, for one) sets the routes, so this file adds none.",
                t.aws_inside(),
                gateway.asn,
                t.customer_inside(),
                cgw.asn.map(|a| format!(" (local AS {a})")).unwrap_or_default()
            );
        }
    }
    let _ = writeln!(
        w,
        "#\n# Bring it up in the customer gateway (the file's name, without .conf, names the\n\
         # interface: at most 15 characters):\n\
         #   WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go wg-quick up ./{}",
        file_name(t)
    );
    let _ = writeln!(w, "\n[Interface]");
    let _ = writeln!(w, "PrivateKey = {}", t.customer_key.to_base64());
    let _ = writeln!(
        w,
        "Address = {}/{}",
        t.customer_inside(),
        t.inside.prefix_len()
    );
    let _ = writeln!(w, "ListenPort = {}", t.customer_port);
    let _ = writeln!(w, "Table = off");
    if c.routing == VpnRouting::Static {
        for cidr in &vpc.cidrs {
            let _ = writeln!(
                w,
                "PostUp = ip route replace {cidr} dev %i metric {}",
                t.metric()
            );
        }
    }
    let _ = writeln!(w, "\n[Peer]");
    let _ = writeln!(
        w,
        "# the virtual private gateway's end of tunnel {}",
        t.number
    );
    let _ = writeln!(w, "PublicKey = {}", t.aws_key.public_base64());
    let _ = writeln!(w, "Endpoint = {}:{}", t.outside_ip, t.aws_port);
    let allowed: Vec<String> = allowed_ips(lab, c, t)
        .iter()
        .map(|n| n.to_string())
        .collect();
    let _ = writeln!(w, "AllowedIPs = {}", allowed.join(", "));
    let _ = writeln!(w, "PersistentKeepalive = {KEEPALIVE}");
    f
}

/// Both tunnels of connection `id`, each under a header naming the file it belongs in (as
/// AWS's download holds both tunnels).
pub fn connection_files(lab: &Lab, id: VpnConnectionId) -> String {
    let c = &lab.vpn_connections[id];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# VPN connection {} of lab {}: two tunnels, two wg-quick files (wg-quick takes one\n\
         # interface per file). Save each part below in the file its header names, or print\n\
         # one with `vpclab vpn config {} --tunnel N`.",
        c.name, lab.name, c.name
    );
    for t in &c.tunnels {
        let _ = writeln!(
            out,
            "\n# ======== file {} of 2: {} ========",
            t.number,
            file_name(t)
        );
        out.push_str(&tunnel_file(lab, id, t.number));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAB: &str = r#"vpcs:
  a: { cidr: [10.0.0.0/16, 10.5.0.0/16] }
sites:
  hq:
    cidr: 192.168.0.0/16
    customer_gateway: { public_ip: 198.51.100.20, asn: 65000 }
  br:
    cidr: 172.16.0.0/16
    customer_gateway: { public_ip: 198.51.100.21, asn: 65001 }
vpn_gateways: { vgw1: { vpc: a } }
vpn_connections:
  hq-vpn: { site: hq, gateway: vgw:vgw1, routing: static, static_routes: [192.168.0.0/16] }
  br-vpn: { site: br, gateway: vgw:vgw1, routing: bgp }
"#;

    fn lab() -> Lab {
        crate::scenario::load_str(LAB, "t.yaml").unwrap()
    }

    /// The lines of `text` that are not comments or blank.
    fn settings(text: &str) -> Vec<&str> {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .collect()
    }

    #[test]
    fn a_static_tunnel_file_is_one_wg_quick_interface_with_its_route_metric() {
        let lab = lab();
        let [t1, t2] = &lab.vpn_connections[0].tunnels;
        let one = tunnel_file(&lab, 0, 1);
        let key = t1.customer_key.to_base64();
        let peer = t1.aws_key.public_base64();
        assert_eq!(
            settings(&one),
            [
                "[Interface]",
                &format!("PrivateKey = {key}"),
                "Address = 169.254.10.2/30",
                "ListenPort = 51820",
                "Table = off",
                "PostUp = ip route replace 10.0.0.0/16 dev %i metric 100",
                "PostUp = ip route replace 10.5.0.0/16 dev %i metric 100",
                "[Peer]",
                &format!("PublicKey = {peer}"),
                "Endpoint = 203.0.113.10:51820",
                "AllowedIPs = 10.0.0.0/16, 10.5.0.0/16, 169.254.10.0/30",
                "PersistentKeepalive = 2",
            ]
        );
        assert!(one.contains("tunnel 1 of 2 (active)"));
        let two = tunnel_file(&lab, 0, 2);
        assert!(two.contains("tunnel 2 of 2 (standby)"));
        assert!(settings(&two).contains(&"PostUp = ip route replace 10.0.0.0/16 dev %i metric 200"));
        assert!(settings(&two).contains(&"Endpoint = 203.0.113.11:51821"));
        assert!(two.contains(&format!("wg-quick up ./{}", file_name(t2))));
        // The AWS end's private key never leaves the lab.
        assert!(!one.contains(&t1.aws_key.to_base64()));
    }

    #[test]
    fn a_bgp_tunnel_adds_no_routes_and_reaches_the_other_sites_of_its_vgw() {
        let lab = lab();
        let text = tunnel_file(&lab, 1, 1);
        assert!(!text.contains("PostUp"));
        assert!(text.contains("Neighbor 169.254.12.1 (remote AS 64512)"));
        let allowed = settings(&text)
            .into_iter()
            .find(|l| l.starts_with("AllowedIPs"))
            .unwrap();
        // hq is static: CloudHub joins BGP sites only.
        assert_eq!(
            allowed,
            "AllowedIPs = 10.0.0.0/16, 10.5.0.0/16, 169.254.12.0/30"
        );
    }

    #[test]
    fn both_files_come_under_headers_naming_them() {
        let lab = lab();
        let all = connection_files(&lab, 0);
        for t in &lab.vpn_connections[0].tunnels {
            assert!(all.contains(&format!("file {} of 2: {}", t.number, file_name(t))));
        }
        assert_eq!(all.matches("[Interface]").count(), 2);
    }
}
