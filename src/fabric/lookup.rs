//! Lookup structures of the compiled lab, for the per-packet path: longest-prefix match in one
//! route table, and maps keyed by an IPv4 address with a hash a few times cheaper than SipHash
//! (the addresses are the lab's own, not an adversary's). Pure data; no I/O.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// Tables with at most this many distinct prefixes are scanned; longer ones are looked up by
/// prefix length (a scan of up to 16 mask-and-compare pairs is faster than hashing).
const SCAN_LIMIT: usize = 16;

/// Longest-prefix match over one route table's destinations.
#[derive(Debug, Clone)]
pub struct PrefixIndex {
    /// Per destination, in the table's order (longest prefix first, ties in table order):
    /// network and mask, as host-order words.
    pairs: Vec<(u32, u32)>,
    /// For long tables: per prefix length present, longest first, its mask and the first
    /// destination of that length holding each network.
    by_length: Vec<(u32, AddrMap<usize>)>,
}

impl PrefixIndex {
    /// An index of `destinations`, which must be sorted longest prefix first; `find` returns
    /// the position of the first one that contains an address, as a scan in order would.
    pub fn new(destinations: impl IntoIterator<Item = Ipv4Net>) -> PrefixIndex {
        let pairs: Vec<(u32, u32)> = destinations
            .into_iter()
            .map(|d| (u32::from(d.network()), u32::from(d.netmask())))
            .collect();
        debug_assert!(pairs.windows(2).all(|w| w[0].1 >= w[1].1));
        let mut by_length: Vec<(u32, AddrMap<usize>)> = Vec::new();
        if pairs.len() > SCAN_LIMIT {
            for (i, &(network, mask)) in pairs.iter().enumerate() {
                if by_length.last().is_none_or(|(m, _)| *m != mask) {
                    by_length.push((mask, AddrMap::default()));
                }
                if let Some((_, map)) = by_length.last_mut() {
                    // The first of equal destinations wins, as in a scan.
                    map.0.entry(network).or_insert(i);
                }
            }
        }
        PrefixIndex { pairs, by_length }
    }

    /// The position of the longest destination that contains `addr`.
    pub fn find(&self, addr: Ipv4Addr) -> Option<usize> {
        let addr = u32::from(addr);
        if self.by_length.is_empty() {
            return self
                .pairs
                .iter()
                .position(|&(network, mask)| addr & mask == network);
        }
        self.by_length
            .iter()
            .find_map(|(mask, map)| map.0.get(&(addr & mask)).copied())
    }
}

/// A map from IPv4 addresses.
#[derive(Debug, Clone)]
pub struct AddrMap<V>(HashMap<u32, V, BuildHasherDefault<AddrHasher>>);

impl<V> Default for AddrMap<V> {
    fn default() -> Self {
        AddrMap(HashMap::default())
    }
}

impl<V> AddrMap<V> {
    pub fn insert(&mut self, addr: Ipv4Addr, value: V) -> Option<V> {
        self.0.insert(u32::from(addr), value)
    }

    pub fn get(&self, addr: Ipv4Addr) -> Option<&V> {
        self.0.get(&u32::from(addr))
    }
}

impl<V> FromIterator<(Ipv4Addr, V)> for AddrMap<V> {
    fn from_iter<I: IntoIterator<Item = (Ipv4Addr, V)>>(iter: I) -> Self {
        AddrMap(iter.into_iter().map(|(a, v)| (u32::from(a), v)).collect())
    }
}

/// One folded multiply of a 32-bit key: every bit of the address reaches both the low bits
/// (the bucket) and the high bits (hashbrown's tag).
#[derive(Default, Clone, Copy)]
pub struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        let p = u128::from(self.0 ^ 0x243f_6a88_85a3_08d3) * 0x1319_8a2e_0370_7344_u128;
        (p as u64) ^ ((p >> 64) as u64)
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u32 keys reach this hasher; this keeps it correct for any other.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = self.0.rotate_left(32) ^ u64::from(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scan every index must agree with.
    fn scan(nets: &[Ipv4Net], addr: Ipv4Addr) -> Option<usize> {
        nets.iter().position(|n| n.contains(&addr))
    }

    #[test]
    fn short_and_long_tables_find_what_a_scan_finds() {
        for count in [0usize, 3, 16, 17, 200] {
            let mut nets: Vec<Ipv4Net> = (0..count)
                .map(|i| {
                    let len = [8u8, 16, 24, 32, 0][i % 5];
                    let addr =
                        Ipv4Addr::from(0x0a00_0000 | ((i as u32 * 0x0101_0301) & 0x00ff_ffff));
                    Ipv4Net::new(addr, len).unwrap().trunc()
                })
                .collect();
            // Duplicates: the first one must win.
            nets.extend(nets.clone().into_iter().take(3));
            nets.sort_by_key(|n| std::cmp::Reverse(n.prefix_len()));
            let index = PrefixIndex::new(nets.iter().copied());
            for probe in 0..5000u32 {
                let addr = Ipv4Addr::from(0x0a00_0000 | (probe.wrapping_mul(0x9e37_79b1) >> 8));
                assert_eq!(
                    index.find(addr),
                    scan(&nets, addr),
                    "{count} routes, {addr}"
                );
            }
            let outside = Ipv4Addr::new(192, 0, 2, 1);
            assert_eq!(index.find(outside), scan(&nets, outside));
        }
    }

    #[test]
    fn addr_map_finds_what_it_holds() {
        let map: AddrMap<usize> = (0..1000u32)
            .map(|i| (Ipv4Addr::from(0x0a00_0000 + i), i as usize))
            .collect();
        assert_eq!(map.get(Ipv4Addr::new(10, 0, 1, 0)), Some(&256));
        assert_eq!(map.get(Ipv4Addr::new(10, 0, 200, 0)), None);
    }
}
