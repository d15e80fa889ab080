//! Connection tracking of security groups: which flows each interface has admitted, so that
//! their replies pass whatever the rules say (aws-rules.md §2.3). Sharded so that packet loops
//! on different threads rarely meet on one lock; capacity is reserved up front so that the data
//! plane does not allocate per packet. Time is passed in as `now` (no clock here).
//!
//! Every flow is tracked. AWS leaves some TCP/UDP flows untracked (admitted by a rule open to
//! 0.0.0.0/0 while the opposite direction is open to everything); their replies are then
//! admitted by those open rules instead of by state, so the verdicts agree. The difference shows
//! only when such a rule is removed: AWS cuts an untracked flow at once, we keep it until idle.
//!
//! TCP flows end as Linux conntrack ends them: after a RST, or once both ends have sent a FIN,
//! the flow lives only `timeout::TCP_CLOSED` more idle seconds, and a new SYN on it starts over
//! (it meets the rules again, from whichever side it comes).
//!
//! NACLs are stateless and never consult this table.
//!
//! IPv4 and IPv6 flows live in two maps of each shard: the IPv4 key stays 20 bytes (a slot of
//! 36), and IPv6 flows, fewer in the lab's traffic, get a map of their own with full addresses.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;
use std::time::Duration;

use super::nat::NatTable;

use super::proto::{
    ICMP as PROTO_ICMP, ICMPV6 as PROTO_ICMPV6, TCP as PROTO_TCP, UDP as PROTO_UDP,
};
use crate::wire::FlowKey;

/// Idle timeouts in seconds (aws-rules.md §2.3 and Appendix A).
pub mod timeout {
    /// TCP once the other end has answered (established): 5 days.
    pub const TCP_ESTABLISHED: u64 = 432_000;
    /// TCP that has seen no answer yet. AWS documents no value; this is Linux's
    /// `nf_conntrack_tcp_timeout_syn_sent`, so that unanswered SYNs do not fill the table.
    pub const TCP_UNANSWERED: u64 = 120;
    /// TCP after a RST, or after a FIN from each end. AWS documents no value; this is Linux's
    /// `nf_conntrack_tcp_timeout_close` (10 s): long enough for the last ACK and a retransmitted
    /// FIN or RST (an RTO or two) to pass as part of the flow, short enough that a closed
    /// connection stops admitting the other side. Linux's TIME_WAIT (120 s) would keep that
    /// door open for two minutes, and a new SYN resets a closed flow anyway (see `refresh`).
    pub const TCP_CLOSED: u64 = 10;
    /// UDP that has seen traffic both ways ("stream").
    pub const UDP_STREAM: u64 = 180;
    /// UDP seen one way only.
    pub const UDP: u64 = 30;
    pub const ICMP: u64 = 30;
    /// Other IP protocols, tracked by addresses and protocol number.
    pub const OTHER: u64 = 600;
}

/// Which interface keeps the state: its VPC (a tag stable across recompiles, as instance ids
/// are not) and its private address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EniTag {
    pub vpc: u64,
    pub addr: Ipv4Addr,
}

/// A flow with its two ends in a canonical order, so both directions find one entry.
/// Only 4-byte fields (the VPC tag split in two), so that a table slot (key and entry) takes
/// 36 bytes, not 48: the table is reserved whole up front and its size is cache and TLB misses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TrackKey {
    vpc: [u32; 2],
    eni: u32,
    a: u32,
    b: u32,
    a_port: u16,
    b_port: u16,
    protocol: u8,
}

// What the comment above promises.
const _: () = assert!(std::mem::size_of::<(TrackKey, Entry)>() == 36);

impl TrackKey {
    /// A 64-bit hash of the flow: two folded multiplies over its two words (foldhash's
    /// scheme), several times cheaper than hashing the fields one by one. The interface is
    /// left out on purpose: both ends of a flow (the sender's egress, the receiver's ingress)
    /// then land in one shard and next to each other in its table, so that the second lookup
    /// of a decision finds its cache line and page already loaded. The key's addresses are
    /// the lab's own, not an adversary's.
    #[inline]
    fn hash64(&self) -> u64 {
        fn folded(x: u64, y: u64) -> u64 {
            let p = u128::from(x) * u128::from(y);
            (p as u64) ^ ((p >> 64) as u64)
        }
        let w1 = u64::from(self.a) << 32 | u64::from(self.b);
        let w2 =
            u64::from(self.a_port) << 24 | u64::from(self.b_port) << 8 | u64::from(self.protocol);
        let h = folded(w1 ^ 0x243f_6a88_85a3_08d3, w2 ^ 0x1319_8a2e_0370_7344);
        folded(h, 0xa409_3822_299f_31d0)
    }
}

impl std::hash::Hash for TrackKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash64());
    }
}

/// An IPv6 flow, as `TrackKey` with full addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TrackKey6 {
    vpc: [u32; 2],
    eni: u32,
    a: u128,
    b: u128,
    a_port: u16,
    b_port: u16,
    protocol: u8,
}

impl TrackKey6 {
    /// As `TrackKey::hash64`, with each address folded to 64 bits by a multiply first.
    #[inline]
    fn hash64(&self) -> u64 {
        fn folded(x: u64, y: u64) -> u64 {
            let p = u128::from(x) * u128::from(y);
            (p as u64) ^ ((p >> 64) as u64)
        }
        let fold = |a: u128| folded((a >> 64) as u64 ^ 0x4528_21e6_38d0_1377, a as u64);
        let w1 = fold(self.a) ^ fold(self.b).rotate_left(32);
        let w2 =
            u64::from(self.a_port) << 24 | u64::from(self.b_port) << 8 | u64::from(self.protocol);
        let h = folded(w1 ^ 0x243f_6a88_85a3_08d3, w2 ^ 0x1319_8a2e_0370_7344);
        folded(h, 0xa409_3822_299f_31d0)
    }
}

impl std::hash::Hash for TrackKey6 {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash64());
    }
}

/// A flow of either family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AnyKey {
    V4(TrackKey),
    V6(TrackKey6),
}

impl AnyKey {
    #[inline]
    fn hash64(&self) -> u64 {
        match self {
            AnyKey::V4(k) => k.hash64(),
            AnyKey::V6(k) => k.hash64(),
        }
    }

    fn protocol(&self) -> u8 {
        match self {
            AnyKey::V4(k) => k.protocol,
            AnyKey::V6(k) => k.protocol,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Seconds since the caller's epoch (saturating: 136 years fit).
    last_seen: u32,
    /// The first packet went from `a` to `b`.
    from_a: bool,
    /// A packet went the other way since.
    answered: bool,
    /// TCP only: which ends have sent a FIN, and whether a RST was seen (`END_*` bits).
    ended: u8,
}

/// TCP header flags the table reads (RFC 9293 §3.1).
const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;
const TCP_ACK: u8 = 0x10;

/// `Entry::ended` bits.
const END_FIN_FROM_A: u8 = 1;
const END_FIN_FROM_B: u8 = 2;
const END_RST: u8 = 4;

impl Entry {
    fn new(now: u64, forward: bool) -> Entry {
        Entry {
            last_seen: stamp(now),
            from_a: forward,
            answered: false,
            ended: 0,
        }
    }

    /// Notes a packet's FIN or RST; `forward` is true for a packet from `a` to `b`.
    fn note_tcp_flags(&mut self, flags: u8, forward: bool) {
        if flags & TCP_RST != 0 {
            self.ended |= END_RST;
        }
        if flags & TCP_FIN != 0 {
            self.ended |= if forward {
                END_FIN_FROM_A
            } else {
                END_FIN_FROM_B
            };
        }
    }

    /// A RST was seen, or a FIN from each end.
    fn closed(&self) -> bool {
        let both_fins = END_FIN_FROM_A | END_FIN_FROM_B;
        self.ended & END_RST != 0 || self.ended & both_fins == both_fins
    }

    fn timeout(&self, protocol: u8) -> u64 {
        match (protocol, self.answered) {
            (PROTO_TCP, _) if self.closed() => timeout::TCP_CLOSED,
            (PROTO_TCP, true) => timeout::TCP_ESTABLISHED,
            (PROTO_TCP, false) => timeout::TCP_UNANSWERED,
            (PROTO_UDP, true) => timeout::UDP_STREAM,
            (PROTO_UDP, false) => timeout::UDP,
            (PROTO_ICMP | PROTO_ICMPV6, _) => timeout::ICMP,
            _ => timeout::OTHER,
        }
    }

    fn expired(&self, protocol: u8, now: u64) -> bool {
        now.saturating_sub(u64::from(self.last_seen)) > self.timeout(protocol)
    }
}

/// `now` as stored in an entry.
fn stamp(now: u64) -> u32 {
    u32::try_from(now).unwrap_or(u32::MAX)
}

/// Hands the map the hash `TrackKey::hash64` made.
#[derive(Default, Clone, Copy)]
struct FlowHasher(u64);

impl std::hash::Hasher for FlowHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `TrackKey`'s own `Hash` feeds this hasher, with one `write_u64`.
        for b in bytes {
            self.0 =
                (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type FlowMap<K> = HashMap<K, Entry, std::hash::BuildHasherDefault<FlowHasher>>;

struct Shard {
    map: FlowMap<TrackKey>,
    map6: FlowMap<TrackKey6>,
    /// When this shard was last purged of idle entries because it was full.
    purged_at: u64,
}

impl Shard {
    fn new(per_shard: usize) -> Shard {
        // Twice the limit: with deletions, hashbrown rehashes in place (no allocation) as
        // long as the table is at most half full.
        Shard {
            map: FlowMap::with_capacity_and_hasher(per_shard * 2, Default::default()),
            map6: FlowMap::with_capacity_and_hasher(ipv6_limit(per_shard) * 2, Default::default()),
            purged_at: 0,
        }
    }

    #[inline]
    fn get(&self, k: &AnyKey) -> Option<&Entry> {
        match k {
            AnyKey::V4(k) => self.map.get(k),
            AnyKey::V6(k) => self.map6.get(k),
        }
    }

    #[inline(always)]
    fn get_mut(&mut self, k: &AnyKey) -> Option<&mut Entry> {
        match k {
            AnyKey::V4(k) => self.map.get_mut(k),
            AnyKey::V6(k) => self.get_mut6(k),
        }
    }

    /// Out of line: IPv6 is the rarer case, and keeping it apart lets the IPv4 lookup inline.
    #[inline(never)]
    fn get_mut6(&mut self, k: &TrackKey6) -> Option<&mut Entry> {
        self.map6.get_mut(k)
    }

    fn remove(&mut self, k: &AnyKey) {
        match k {
            AnyKey::V4(k) => self.map.remove(k),
            AnyKey::V6(k) => self.map6.remove(k),
        };
    }

    fn insert(&mut self, k: AnyKey, entry: Entry) {
        match k {
            AnyKey::V4(k) => self.map.insert(k, entry),
            AnyKey::V6(k) => self.map6.insert(k, entry),
        };
    }

    /// True when the map `k` goes to holds its limit and not `k`.
    fn full_for(&self, k: &AnyKey, per_shard: usize) -> bool {
        match k {
            AnyKey::V4(k) => self.map.len() >= per_shard && !self.map.contains_key(k),
            AnyKey::V6(k) => self.map6.len() >= ipv6_limit(per_shard) && !self.map6.contains_key(k),
        }
    }

    fn forget_idle(&mut self, now: u64) {
        self.map.retain(|k, e| !e.expired(k.protocol, now));
        self.map6.retain(|k, e| !e.expired(k.protocol, now));
    }

    fn len(&self) -> usize {
        self.map.len() + self.map6.len()
    }
}

/// IPv6 flows a shard keeps: a quarter of the IPv4 limit.
fn ipv6_limit(per_shard: usize) -> usize {
    (per_shard / 4).max(1)
}

/// The tracked flows of every interface of a lab.
pub struct Conntrack {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
    /// The NAT gateways' translations: state of the same data plane, kept and swept alike.
    nat: NatTable,
}

/// The canonical form of a flow between addresses `s` and `d` (of one family) and whether the
/// packet goes from `a` to `b`.
#[inline]
fn canonical<A: Ord + Copy>(key: &FlowKey, s: A, d: A) -> (A, u16, A, u16, bool) {
    if key.is_icmp() {
        // Echo: the requester is `a` (the identifier is the same both ways); a reply goes from
        // b to a. Other ICMP is tracked by addresses, lower first.
        return match (key.is_echo(), key.is_echo_request()) {
            (true, true) => (s, key.src_port, d, key.dst_port, true),
            (true, false) => (d, key.dst_port, s, key.src_port, false),
            _ if s <= d => (s, 0, d, 0, true),
            _ => (d, 0, s, 0, false),
        };
    }
    if (s, key.src_port) <= (d, key.dst_port) {
        (s, key.src_port, d, key.dst_port, true)
    } else {
        (d, key.dst_port, s, key.src_port, false)
    }
}

#[inline]
fn track_key(eni: EniTag, key: &FlowKey) -> (AnyKey, bool) {
    let vpc = [(eni.vpc >> 32) as u32, eni.vpc as u32];
    let eni_addr = u32::from(eni.addr);
    match (key.src, key.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let (a, a_port, b, b_port, forward) = canonical(key, u32::from(s), u32::from(d));
            let k = TrackKey {
                vpc,
                eni: eni_addr,
                a,
                b,
                a_port,
                b_port,
                protocol: key.protocol,
            };
            (AnyKey::V4(k), forward)
        }
        _ => track_key6(vpc, eni_addr, key),
    }
}

/// `track_key`'s IPv6 case, out of line so that the IPv4 one stays small.
#[inline(never)]
fn track_key6(vpc: [u32; 2], eni: u32, key: &FlowKey) -> (AnyKey, bool) {
    let (a, a_port, b, b_port, forward) = canonical(key, wide(key.src), wide(key.dst));
    let k = TrackKey6 {
        vpc,
        eni,
        a,
        b,
        a_port,
        b_port,
        protocol: key.protocol,
    };
    (AnyKey::V6(k), forward)
}

/// An address as 128 bits (IPv4 mapped, for a packet that mixes families, which no host
/// sends but a key must still hold).
fn wide(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(a.to_ipv6_mapped()),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn secs(now: Duration) -> u64 {
    now.as_secs()
}

impl Conntrack {
    /// A table of `shards` shards of `per_shard` entries each, all reserved now.
    pub fn new(shards: usize, per_shard: usize) -> Conntrack {
        let shards = shards.max(1);
        Conntrack {
            shards: (0..shards)
                .map(|_| Mutex::new(Shard::new(per_shard.max(1))))
                .collect(),
            per_shard: per_shard.max(1),
            nat: NatTable::new(shards, per_shard),
        }
    }

    /// The NAT gateways' translations.
    pub fn nat(&self) -> &NatTable {
        &self.nat
    }

    /// The data plane's table: 32 shards of 2048 flows (65,536 in all).
    pub fn for_dataplane() -> Conntrack {
        Conntrack::new(32, 2048)
    }

    /// A scratch table for one explanation.
    pub fn scratch() -> Conntrack {
        Conntrack::new(1, 16)
    }

    #[inline]
    fn shard(&self, k: &AnyKey) -> &Mutex<Shard> {
        // Bits 20..52 of the hash: the map's buckets use the low bits and its tags the top 7.
        let mix = (k.hash64() >> 20) as u32;
        // mix × shards / 2³²: an index below `shards` without a division.
        let index = (u64::from(mix) * self.shards.len() as u64) >> 32;
        &self.shards[index as usize]
    }

    #[inline]
    fn lock(&self, k: &AnyKey) -> std::sync::MutexGuard<'_, Shard> {
        // A panic while holding a shard leaves plain data behind; keep using it.
        self.shard(k).lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True when `key` belongs to a live flow tracked by `eni`; refreshes it, and notes a TCP
    /// FIN or RST. A SYN (without ACK) on a closed TCP flow opens a new connection, which is
    /// not a reply: the old entry is dropped and the rules decide, as Linux treats a SYN in
    /// its CLOSE or TIME_WAIT state.
    pub fn refresh(&self, eni: EniTag, key: &FlowKey, now: Duration) -> bool {
        let now = secs(now);
        let (k, forward) = track_key(eni, key);
        let mut shard = self.lock(&k);
        let protocol = k.protocol();
        let Some(entry) = shard.get_mut(&k) else {
            return false;
        };
        let new_syn = protocol == PROTO_TCP && key.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN;
        if entry.expired(protocol, now) || (new_syn && entry.closed()) {
            shard.remove(&k);
            return false;
        }
        entry.last_seen = stamp(now);
        if forward != entry.from_a {
            entry.answered = true;
        }
        if protocol == PROTO_TCP {
            entry.note_tcp_flags(key.tcp_flags, forward);
        }
        true
    }

    /// True when `quoted` (the header an ICMP error quotes) is a live flow tracked by `eni`.
    /// Does not refresh it: an error says nothing about the flow being alive.
    pub fn is_tracked(&self, eni: EniTag, quoted: &FlowKey, now: Duration) -> bool {
        let (k, _) = track_key(eni, quoted);
        let shard = self.lock(&k);
        shard
            .get(&k)
            .is_some_and(|e| !e.expired(k.protocol(), secs(now)))
    }

    /// Starts tracking `key` at `eni`. Returns false when the shard is full of live flows (the
    /// packet still passes; its replies will need a rule, as when AWS's allowance runs out).
    pub fn track(&self, eni: EniTag, key: &FlowKey, now: Duration) -> bool {
        let now = secs(now);
        let (k, forward) = track_key(eni, key);
        let mut shard = self.lock(&k);
        if shard.full_for(&k, self.per_shard) {
            if shard.purged_at == now {
                return false;
            }
            shard.purged_at = now;
            shard.forget_idle(now);
            if shard.full_for(&k, self.per_shard) {
                return false;
            }
        }
        let mut entry = Entry::new(now, forward);
        if k.protocol() == PROTO_TCP {
            entry.note_tcp_flags(key.tcp_flags, forward);
        }
        shard.insert(k, entry);
        true
    }

    /// Forgets every idle flow; returns how many remain. The daemon calls it periodically.
    pub fn sweep(&self, now: Duration) -> usize {
        let now = secs(now);
        let mut live = 0;
        for shard in self.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            shard.forget_idle(now);
            live += shard.len();
        }
        live
    }

    /// How many flows are tracked (expired ones not yet swept included).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for Conntrack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conntrack")
            .field("shards", &self.shards.len())
            .field("per_shard", &self.per_shard)
            .field("flows", &self.len())
            .finish()
    }
}
