//! Scenario layer: what each VPN tunnel is given. Inside addresses: tunnel n of the lab (from
//! 0) gets 169.254.(10+n).0/30, skipping 169.254.169.0/24, so AWS's end is always
//! 169.254.X.1 and the customer's 169.254.X.2 as in AWS's sample configurations, and every
//! tunnel's /30 is unique in the lab (AWS asks it per VGW; one router may hold tunnels to
//! several VGWs). None of them is one AWS reserves (169.254.0.0/30 to 169.254.5.0/30,
//! 169.254.169.252/30). Outside addresses: the next free ones of the public pool, after the
//! instances' and NAT gateways' (as a new Elastic IP would be). Ports: AWS answers on 51820
//! (tunnel 1) and 51821 (tunnel 2); the customer listens on the same two for its first
//! connection, 51822/51823 for its second, and so on. Keys: random, made at load; the daemon
//! keeps the first ones it saw for the lab's life (`daemon/vpn_keys.rs`).

use std::collections::HashSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::super::internet::Pool;
use super::super::lab::*;

/// WireGuard's well-known port: AWS's end of tunnel 1.
pub const FIRST_PORT: u16 = 51820;

/// Third octets the inside /30s take, in order: 10 to 255 without 169 (the metadata and DNS
/// addresses' /24, and AWS's reserved 169.254.169.252/30).
fn inside_octets() -> impl Iterator<Item = u8> {
    (10..=255u8).filter(|&o| o != 169)
}

/// Hands out everything tunnels need, in the order connections are declared.
pub(super) struct Allocator {
    inside: Box<dyn Iterator<Item = u8>>,
    pool: Pool,
    used: HashSet<Ipv4Addr>,
}

/// What ran out.
pub(super) enum Exhausted {
    Inside,
    Outside,
}

impl Allocator {
    pub fn new(lab: &Lab) -> Allocator {
        let mut used: HashSet<Ipv4Addr> = lab.internet.hosts.iter().map(|h| h.ip).collect();
        used.extend(
            lab.instances
                .iter()
                .filter_map(|i| i.public_ip.map(|p| p.addr)),
        );
        used.extend(lab.nat_gateways.iter().map(|g| g.public_ip));
        Allocator {
            inside: Box::new(inside_octets()),
            pool: Pool::new(lab.internet.public_pool),
            used,
        }
    }

    /// The two tunnels of connection `name` of lab `lab`, whose site already has `earlier`
    /// connections.
    pub fn tunnels(
        &mut self,
        lab: &str,
        name: &str,
        earlier: usize,
    ) -> Result<[VpnTunnel; 2], Exhausted> {
        let one = self.tunnel(lab, name, earlier, 1)?;
        let two = self.tunnel(lab, name, earlier, 2)?;
        Ok([one, two])
    }

    fn tunnel(
        &mut self,
        lab: &str,
        name: &str,
        earlier: usize,
        number: u8,
    ) -> Result<VpnTunnel, Exhausted> {
        let octet = self.inside.next().ok_or(Exhausted::Inside)?;
        let inside = Ipv4Net::new_assert(Ipv4Addr::new(169, 254, octet, 0), 30);
        let outside_ip = loop {
            let ip = self.pool.take().ok_or(Exhausted::Outside)?;
            if self.used.insert(ip) {
                break ip;
            }
        };
        let offset = u16::from(number - 1);
        // Ports of a site's router stay below 65535 for any lab AWS's limits allow.
        let customer_port = FIRST_PORT.saturating_add(2 * earlier as u16 + offset);
        Ok(VpnTunnel {
            number,
            inside,
            outside_ip,
            aws_port: FIRST_PORT + offset,
            customer_port,
            aws_key: WgSecret::generate(),
            customer_key: WgSecret::generate(),
            interface: interface_name(lab, name, number),
        })
    }
}

/// `wgXXXXXXXX-N`: 8 hex digits of a hash of the lab and connection names, and the tunnel's
/// number. Interface names have at most 15 characters, and wireguard-go's control sockets
/// (`/var/run/wireguard/NAME.sock`) are shared by every namespace of the machine, so the name
/// must tell labs apart, not only connections.
pub fn interface_name(lab: &str, connection: &str, number: u8) -> String {
    // FNV-1a, 32 bits: stable across Rust versions, unlike the std hasher.
    let mut hash: u32 = 0x811c_9dc5;
    for byte in lab.bytes().chain([0u8]).chain(connection.bytes()) {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    format!("wg{hash:08x}-{number}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_octets_avoid_aws_reserved_and_metadata() {
        let octets: Vec<u8> = inside_octets().collect();
        assert_eq!(octets.first(), Some(&10));
        assert!(!octets.contains(&169));
        assert!(octets.iter().all(|&o| o > 5));
        assert_eq!(octets.len(), 245);
    }

    #[test]
    fn interface_names_fit_and_differ() {
        let a = interface_name("vpn-static", "hq-vpn", 1);
        assert!(a.len() <= 15, "{a}");
        assert!(a.starts_with("wg") && a.ends_with("-1"));
        assert_ne!(a, interface_name("vpn-static", "hq-vpn", 2));
        assert_ne!(a, interface_name("other", "hq-vpn", 1));
        assert_eq!(a, interface_name("vpn-static", "hq-vpn", 1));
    }
}
