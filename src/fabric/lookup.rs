//! Lookup structures of the compiled lab, for the per-packet path: longest-prefix match in one
//! route table, and maps keyed by an IP address with a hash a few times cheaper than SipHash
//! (the addresses are the lab's own, not an adversary's). IPv4 and IPv6 are kept apart, as
//! AWS keeps them (a `0.0.0.0/0` route never matches IPv6). Pure data; no I/O.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

use ipnet::IpNet;

/// Tables with at most this many distinct IPv4 prefixes are scanned; longer ones are looked up
/// by prefix length (a scan of up to 16 mask-and-compare pairs is faster than hashing).
const SCAN_LIMIT: usize = 16;

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<AddrHasher>>;

/// Longest-prefix match over one route table's destinations.
#[derive(Debug, Clone)]
pub struct PrefixIndex {
    /// Per IPv4 destination, in the table's order (longest prefix first, ties in table order):
    /// network and mask as host-order words, and the destination's position in the table.
    v4: Vec<(u32, u32, usize)>,
    /// For long tables: per IPv4 prefix length present, longest first, its mask and the first
    /// destination of that length holding each network.
    v4_by_length: Vec<(u32, FastMap<u32, usize>)>,
    /// Per IPv6 destination, in the table's order (tables hold few of them: scanned).
    v6: Vec<(u128, u128, usize)>,
}

impl PrefixIndex {
    /// An index of `destinations`, which must be sorted longest prefix first; `find` returns
    /// the position of the first one that contains an address, as a scan in order would.
    pub fn new(destinations: impl IntoIterator<Item = IpNet>) -> PrefixIndex {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for (i, d) in destinations.into_iter().enumerate() {
            match d {
                IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.netmask()), i)),
                IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.netmask()), i)),
            }
        }
        debug_assert!(v4.windows(2).all(|w| w[0].1 >= w[1].1));
        let mut v4_by_length: Vec<(u32, FastMap<u32, usize>)> = Vec::new();
        if v4.len() > SCAN_LIMIT {
            for &(network, mask, i) in &v4 {
                if v4_by_length.last().is_none_or(|(m, _)| *m != mask) {
                    v4_by_length.push((mask, FastMap::default()));
                }
                if let Some((_, map)) = v4_by_length.last_mut() {
                    // The first of equal destinations wins, as in a scan.
                    map.entry(network).or_insert(i);
                }
            }
        }
        PrefixIndex {
            v4,
            v4_by_length,
            v6,
        }
    }

    /// The position of the longest destination that contains `addr`.
    #[inline]
    pub fn find(&self, addr: IpAddr) -> Option<usize> {
        match addr {
            IpAddr::V4(a) => {
                let addr = u32::from(a);
                if self.v4_by_length.is_empty() {
                    return self
                        .v4
                        .iter()
                        .find(|&&(network, mask, _)| addr & mask == network)
                        .map(|&(_, _, i)| i);
                }
                self.v4_by_length
                    .iter()
                    .find_map(|(mask, map)| map.get(&(addr & mask)).copied())
            }
            IpAddr::V6(a) => {
                let addr = u128::from(a);
                self.v6
                    .iter()
                    .find(|&&(network, mask, _)| addr & mask == network)
                    .map(|&(_, _, i)| i)
            }
        }
    }
}

/// A map from IP addresses.
#[derive(Debug, Clone)]
pub struct AddrMap<V> {
    v4: FastMap<u32, V>,
    v6: FastMap<u128, V>,
}

impl<V> Default for AddrMap<V> {
    fn default() -> Self {
        AddrMap {
            v4: FastMap::default(),
            v6: FastMap::default(),
        }
    }
}

impl<V> AddrMap<V> {
    #[inline]
    pub fn insert(&mut self, addr: impl Into<IpAddr>, value: V) -> Option<V> {
        match addr.into() {
            IpAddr::V4(a) => self.v4.insert(u32::from(a), value),
            IpAddr::V6(a) => self.v6.insert(u128::from(a), value),
        }
    }

    /// IPv4 inline on the per-packet path; IPv6 out of line, so that the common case stays
    /// small enough to inline.
    #[inline(always)]
    pub fn get(&self, addr: impl Into<IpAddr>) -> Option<&V> {
        match addr.into() {
            IpAddr::V4(a) => self.v4.get(&u32::from(a)),
            IpAddr::V6(a) => self.get_v6(a),
        }
    }

    #[inline(never)]
    fn get_v6(&self, a: std::net::Ipv6Addr) -> Option<&V> {
        self.v6.get(&u128::from(a))
    }
}

impl<A: Into<IpAddr>, V> FromIterator<(A, V)> for AddrMap<V> {
    fn from_iter<I: IntoIterator<Item = (A, V)>>(iter: I) -> Self {
        let mut map = AddrMap::default();
        for (a, v) in iter {
            map.insert(a, v);
        }
        map
    }
}

/// True when `net` holds `addr`, one family never holding the other's addresses: a mask
/// compare on the address as stored (the loader keeps CIDRs canonical), cheaper than
/// `IpNet::contains`, which works out the network and broadcast addresses on each call.
#[inline]
pub fn net_contains(net: &IpNet, addr: IpAddr) -> bool {
    match (net, addr) {
        (IpNet::V4(n), IpAddr::V4(a)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(n.prefix_len()))
                .unwrap_or(0);
            (u32::from(a) ^ u32::from(n.addr())) & mask == 0
        }
        (IpNet::V6(n), IpAddr::V6(a)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(n.prefix_len()))
                .unwrap_or(0);
            (u128::from(a) ^ u128::from(n.addr())) & mask == 0
        }
        _ => false,
    }
}

/// One folded multiply of a 32-bit key (or of a 128-bit key folded to 64 bits): every bit of
/// the address reaches both the low bits (the bucket) and the high bits (hashbrown's tag).
#[derive(Default, Clone, Copy)]
pub struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        let p = u128::from(self.0 ^ 0x243f_6a88_85a3_08d3) * 0x1319_8a2e_0370_7344_u128;
        (p as u64) ^ ((p >> 64) as u64)
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u32 and u128 keys reach this hasher; this keeps it correct for any other.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = self.0.rotate_left(32) ^ u64::from(n);
    }

    fn write_u128(&mut self, n: u128) {
        // The interface identifier and the /64 differ between the lab's addresses; a
        // multiply before the fold keeps the high half from cancelling the low one.
        let high = ((n >> 64) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = self.0.rotate_left(32) ^ high ^ (n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipnet::Ipv4Net;
    use std::net::Ipv4Addr;

    /// The scan every index must agree with.
    fn scan(nets: &[IpNet], addr: IpAddr) -> Option<usize> {
        nets.iter().position(|n| n.contains(&addr))
    }

    #[test]
    fn short_and_long_tables_find_what_a_scan_finds() {
        for count in [0usize, 3, 16, 17, 200] {
            let mut nets: Vec<IpNet> = (0..count)
                .map(|i| {
                    let len = [8u8, 16, 24, 32, 0][i % 5];
                    let addr =
                        Ipv4Addr::from(0x0a00_0000 | ((i as u32 * 0x0101_0301) & 0x00ff_ffff));
                    IpNet::V4(Ipv4Net::new(addr, len).unwrap().trunc())
                })
                .collect();
            // IPv6 destinations mixed in: they never match an IPv4 address.
            nets.push("::/0".parse().unwrap());
            nets.push("2001:db8:0:100::/56".parse().unwrap());
            // Duplicates: the first one must win.
            nets.extend(nets.clone().into_iter().take(3));
            nets.sort_by_key(|n| std::cmp::Reverse(n.prefix_len()));
            let index = PrefixIndex::new(nets.iter().copied());
            for probe in 0..5000u32 {
                let addr = Ipv4Addr::from(0x0a00_0000 | (probe.wrapping_mul(0x9e37_79b1) >> 8));
                let addr = IpAddr::V4(addr);
                assert_eq!(
                    index.find(addr),
                    scan(&nets, addr),
                    "{count} routes, {addr}"
                );
            }
            for outside in ["192.0.2.1", "2001:db8:0:101::a", "2001:db8:ffff::10"] {
                let outside: IpAddr = outside.parse().unwrap();
                assert_eq!(index.find(outside), scan(&nets, outside), "{outside}");
            }
        }
    }

    #[test]
    fn net_contains_agrees_with_ipnet() {
        let nets: Vec<IpNet> = [
            "0.0.0.0/0",
            "10.0.0.0/8",
            "10.0.1.0/24",
            "10.0.1.10/32",
            "::/0",
            "2001:db8:0:100::/56",
            "2001:db8::1/128",
        ]
        .iter()
        .map(|n| n.parse().unwrap())
        .collect();
        let addrs: Vec<IpAddr> = [
            "10.0.1.10",
            "10.0.2.1",
            "192.0.2.1",
            "2001:db8:0:101::a",
            "2001:db8::1",
            "::1",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        for n in &nets {
            for a in &addrs {
                assert_eq!(net_contains(n, *a), n.contains(a), "{n} {a}");
            }
        }
    }

    #[test]
    fn addr_map_finds_what_it_holds() {
        let map: AddrMap<usize> = (0..1000u32)
            .map(|i| (Ipv4Addr::from(0x0a00_0000 + i), i as usize))
            .collect();
        assert_eq!(map.get(Ipv4Addr::new(10, 0, 1, 0)), Some(&256));
        assert_eq!(map.get(Ipv4Addr::new(10, 0, 200, 0)), None);
        let mut map = map;
        let v6: std::net::Ipv6Addr = "2001:db8:0:100::a".parse().unwrap();
        map.insert(v6, 7);
        assert_eq!(map.get(v6), Some(&7));
        assert_eq!(map.get(Ipv4Addr::new(0, 0, 0, 10)), None);
    }
}
