//! The customer side's dynamic routing: a BIRD 2 configuration for a site's router with one
//! eBGP session per tunnel of each of its BGP connections (over the tunnels' inside addresses,
//! as AWS's sample configuration sets them up), announcing the site's network and installing
//! what the VGW announces into the router's kernel table. Tunnel 1's session wins a tie (its
//! neighbour address is the lower), as the VGW prefers tunnel 1.

use std::fmt::Write as _;
use std::path::Path;

use crate::scenario::{Lab, SiteId, VpnRouting};

/// BGP hold time the site asks for (the VGW accepts the smaller of its 30 s and this): a
/// session over a dead tunnel ends within it, and the other tunnel's routes take over.
pub const HOLD_TIME: u16 = 9;

/// True when site `site` has a BGP connection (and so runs BIRD).
pub fn runs_bgp(lab: &Lab, site: SiteId) -> bool {
    lab.vpn_connections
        .iter()
        .any(|c| c.site == site && c.routing == VpnRouting::Bgp)
}

/// The BIRD configuration of site `site`'s router, logging to `log`.
pub fn config(lab: &Lab, site: SiteId, log: &Path) -> String {
    let s = &lab.sites[site];
    let asn = s.customer_gateway.asn.unwrap_or(65000);
    let mut w = String::new();
    let _ = writeln!(
        w,
        "# BIRD 2 configuration of site {}'s router, written by vpclab.",
        s.name
    );
    let _ = writeln!(w, "router id {};", s.customer_gateway.public_ip);
    let _ = writeln!(w, "log \"{}\" all;", log.display());
    let _ = writeln!(w, "protocol device {{ scan time 5; }}");
    let _ = writeln!(w, "# The site's own network, to announce.");
    let _ = writeln!(w, "protocol direct {{ ipv4; interface \"br0\"; }}");
    let _ = writeln!(
        w,
        "# What the VGW announces goes into the kernel, via the tunnel."
    );
    let _ = writeln!(
        w,
        "protocol kernel {{ ipv4 {{ import none; export where source = RTS_BGP; }}; }}"
    );
    for c in lab.vpn_connections.iter() {
        if c.site != site || c.routing != VpnRouting::Bgp {
            continue;
        }
        let vgw = &lab.vpn_gateways[c.gateway];
        for t in &c.tunnels {
            let _ = writeln!(w, "# Tunnel {} of VPN connection {}.", t.number, c.name);
            let _ = writeln!(w, "protocol bgp {} {{", protocol_name(&c.name, t.number));
            let _ = writeln!(w, "  local {} as {asn};", t.customer_inside());
            let _ = writeln!(w, "  neighbor {} as {};", t.aws_inside(), vgw.asn);
            let _ = writeln!(w, "  hold time {HOLD_TIME};");
            let _ = writeln!(w, "  keepalive time {};", HOLD_TIME / 3);
            let _ = writeln!(w, "  connect retry time 2;");
            let _ = writeln!(w, "  error wait time 1, 5;");
            let _ = writeln!(
                w,
                "  ipv4 {{ import all; export where source = RTS_DEVICE; next hop self; }};"
            );
            let _ = writeln!(w, "}}");
        }
    }
    w
}

/// A BIRD protocol name for tunnel `number` of connection `connection` (letters, digits, _).
pub fn protocol_name(connection: &str, number: u8) -> String {
    let clean: String = connection
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("{clean}_t{number}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::load_str;

    #[test]
    fn one_session_per_tunnel_over_the_inside_addresses() {
        let text = "vpcs: { a: { cidr: 10.0.0.0/16, subnets: { s: { cidr: 10.0.1.0/24 } } } }\n\
            sites:\n  hq:\n    cidr: 192.168.0.0/16\n    customer_gateway: { public_ip: 198.51.100.20, asn: 65010 }\n\
            vpn_gateways: { vgw1: { vpc: a } }\n\
            vpn_connections: { hq-vpn: { site: hq, gateway: vgw:vgw1, routing: bgp } }\n";
        let lab = load_str(text, "b.yaml").unwrap();
        assert!(runs_bgp(&lab, 0));
        let conf = config(&lab, 0, Path::new("/tmp/x.log"));
        assert!(conf.contains("router id 198.51.100.20;"), "{conf}");
        assert!(conf.contains("protocol bgp hq_vpn_t1 {"), "{conf}");
        let t = &lab.vpn_connections[0].tunnels[0];
        assert!(conf.contains(&format!("local {} as 65010;", t.customer_inside())));
        assert!(conf.contains(&format!("neighbor {} as 64512;", t.aws_inside())));
        assert_eq!(conf.matches("protocol bgp").count(), 2);
    }
}
