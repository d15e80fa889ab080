//! NAT gateway translations: source NAT of inside flows to the gateway's address, with ports
//! from 1024-65535 chosen per destination, replies translated back, and AWS's 350-second idle
//! timeout for every protocol (aws-rules.md §3.2). Sharded by destination and reserved up
//! front, like connection tracking, so the packet path neither allocates nor meets one lock.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::wire::{FlowKey, PROTO_ICMP, PROTO_TCP};

/// The SYN bit of the TCP flags: only a SYN opens a TCP mapping.
const TCP_SYN: u8 = 0x02;

/// A mapping idle this long is gone: the next packet of the flow is a new flow.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(350);

/// The source ports a NAT gateway hands out (`REMAP_EPHEMERAL_PORT`).
pub const PORTS: std::ops::RangeInclusive<u16> = 1024..=65535;

/// AWS's limit: simultaneous connections per unique destination (address, port, protocol)
/// and address of the gateway (aws-rules.md §3.2).
pub const CONNECTIONS_PER_DESTINATION: u32 = 55_000;

/// What the gateway does with an inside packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outbound {
    /// Translated to this source port (a new mapping, or a live one).
    Mapped(u16),
    /// A TCP segment that opens nothing (no SYN) and has no live mapping: the connection
    /// was idle past the timeout, and the gateway answers it with a RST.
    Expired,
    /// No port left toward this destination (`ErrorPortAllocation`).
    Exhausted,
}

impl Outbound {
    /// The port, when the packet was translated.
    pub fn port(self) -> Option<u16> {
        match self {
            Outbound::Mapped(port) => Some(port),
            _ => None,
        }
    }
}

/// One destination as the connection limit counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct DestKey {
    gateway: u64,
    protocol: u8,
    remote: IpAddr,
    remote_port: u16,
}

impl DestKey {
    fn of(out: &OutKey) -> DestKey {
        DestKey {
            gateway: out.gateway,
            protocol: out.protocol,
            remote: out.remote,
            remote_port: out.remote_port,
        }
    }
}

/// A flow as seen inside: which gateway, and the inside and outside ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct OutKey {
    gateway: u64,
    protocol: u8,
    inside: IpAddr,
    inside_port: u16,
    remote: IpAddr,
    remote_port: u16,
}

/// A flow as the outside answers it: the gateway's port and the remote end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct BackKey {
    gateway: u64,
    protocol: u8,
    port: u16,
    remote: IpAddr,
    remote_port: u16,
}

#[derive(Debug, Clone, Copy)]
struct Mapping {
    inside: IpAddr,
    inside_port: u16,
    port: u16,
    /// Milliseconds since the epoch of `now` when the flow was last seen.
    last_seen: u64,
}

struct Shard {
    out: HashMap<OutKey, Mapping>,
    back: HashMap<BackKey, Mapping>,
    /// Mappings (live or not yet forgotten) per destination, for the connection limit.
    dests: HashMap<DestKey, u32>,
    /// Where the next port search starts, so that successive flows get successive ports.
    cursor: u16,
}

/// The translations of every NAT gateway of a lab.
pub struct NatTable {
    shards: Box<[Mutex<Shard>]>,
}

/// Some bits of an address for picking a shard.
fn addr_bits(addr: IpAddr) -> u64 {
    match addr {
        IpAddr::V4(a) => u64::from(u32::from(a)),
        IpAddr::V6(a) => {
            let a = u128::from(a);
            (a >> 64) as u64 ^ a as u64
        }
    }
}

/// The ports of a flow for translation: ICMP echo uses its identifier inside and no port
/// outside (the remote end answers whatever identifier it is sent).
fn ports(key: &FlowKey) -> (u16, u16) {
    if key.protocol == PROTO_ICMP {
        (key.src_port, 0)
    } else {
        (key.src_port, key.dst_port)
    }
}

fn millis(now: Duration) -> u64 {
    now.as_millis() as u64
}

fn alive(m: &Mapping, now: u64) -> bool {
    now.saturating_sub(m.last_seen) < IDLE_TIMEOUT.as_millis() as u64
}

impl NatTable {
    /// `shards` shards of `per_shard` flows each, reserved now.
    pub fn new(shards: usize, per_shard: usize) -> NatTable {
        let shards = (0..shards.max(1))
            .map(|_| {
                // Twice the limit, as in connection tracking: rehashing stays in place.
                Mutex::new(Shard {
                    out: HashMap::with_capacity(per_shard.max(1) * 2),
                    back: HashMap::with_capacity(per_shard.max(1) * 2),
                    dests: HashMap::with_capacity(per_shard.max(1)),
                    cursor: *PORTS.start(),
                })
            })
            .collect();
        NatTable { shards }
    }

    /// The shard of a destination: both directions of a flow name it, so they meet there.
    fn lock(
        &self,
        gateway: u64,
        protocol: u8,
        remote: IpAddr,
        remote_port: u16,
    ) -> MutexGuard<'_, Shard> {
        let mix = (gateway
            ^ addr_bits(remote)
            ^ (u64::from(remote_port) << 32)
            ^ u64::from(protocol) << 48)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let shard = &self.shards[(mix >> 40) as usize % self.shards.len()];
        // A poisoned shard only means a panic elsewhere; its maps are still consistent.
        shard.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The gateway's source port for the inside flow `key`, mapping it if it is new and may
    /// open a mapping (anything but a TCP segment without SYN).
    pub fn outbound(&self, gateway: u64, key: &FlowKey, now: Duration) -> Outbound {
        let now = millis(now);
        let (inside_port, remote_port) = ports(key);
        let out_key = OutKey {
            gateway,
            protocol: key.protocol,
            inside: key.src,
            inside_port,
            remote: key.dst,
            remote_port,
        };
        let mut shard = self.lock(gateway, key.protocol, key.dst, remote_port);
        if let Some(m) = shard.out.get(&out_key).copied() {
            if alive(&m, now) {
                touch(&mut shard, &out_key, &back_key(&out_key, m.port), now);
                return Outbound::Mapped(m.port);
            }
            forget(&mut shard, &out_key);
        }
        if key.protocol == PROTO_TCP && key.tcp_flags & TCP_SYN == 0 {
            return Outbound::Expired;
        }
        let dest = DestKey::of(&out_key);
        if shard.dests.get(&dest).copied().unwrap_or(0) >= CONNECTIONS_PER_DESTINATION {
            purge(&mut shard, now);
            if shard.dests.get(&dest).copied().unwrap_or(0) >= CONNECTIONS_PER_DESTINATION {
                return Outbound::Exhausted;
            }
        }
        let Some(port) = free_port(&shard, &out_key, now) else {
            return Outbound::Exhausted;
        };
        let mapping = Mapping {
            inside: key.src,
            inside_port,
            port,
            last_seen: now,
        };
        // A stale mapping on this port belongs to a finished flow: forget both its halves.
        if let Some(old) = shard.back.insert(back_key(&out_key, port), mapping) {
            let stale = OutKey {
                inside: old.inside,
                inside_port: old.inside_port,
                ..out_key
            };
            if shard.out.remove(&stale).is_some() {
                uncount(&mut shard.dests, &dest);
            }
        }
        shard.out.insert(out_key, mapping);
        *shard.dests.entry(dest).or_insert(0) += 1;
        shard.cursor = if port == *PORTS.end() {
            *PORTS.start()
        } else {
            port + 1
        };
        Outbound::Mapped(port)
    }

    /// The inside address and port a reply `key` (to the gateway's address) belongs to.
    pub fn inbound(&self, gateway: u64, key: &FlowKey, now: Duration) -> Option<(IpAddr, u16)> {
        let now = millis(now);
        let remote_port = if key.protocol == PROTO_ICMP {
            0
        } else {
            key.src_port
        };
        let back = BackKey {
            gateway,
            protocol: key.protocol,
            port: key.dst_port,
            remote: key.src,
            remote_port,
        };
        let mut shard = self.lock(gateway, key.protocol, key.src, remote_port);
        let m = shard.back.get(&back).copied().filter(|m| alive(m, now))?;
        let out_key = OutKey {
            gateway,
            protocol: key.protocol,
            inside: m.inside,
            inside_port: m.inside_port,
            remote: key.src,
            remote_port,
        };
        touch(&mut shard, &out_key, &back, now);
        Some((m.inside, m.inside_port))
    }

    /// Forgets idle mappings; returns how many flows went.
    pub fn sweep(&self, now: Duration) -> usize {
        let now = millis(now);
        let mut gone = 0;
        for shard in self.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            gone += purge(&mut shard, now);
        }
        gone
    }

    /// Live and idle-but-unswept flows.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).out.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Forgets every idle mapping of a shard; returns how many flows went.
fn purge(shard: &mut Shard, now: u64) -> usize {
    let Shard {
        out, back, dests, ..
    } = shard;
    let before = out.len();
    out.retain(|k, m| {
        let keep = alive(m, now);
        if !keep {
            uncount(dests, &DestKey::of(k));
        }
        keep
    });
    back.retain(|_, m| alive(m, now));
    before - out.len()
}

/// Forgets the inside half of a flow (its outside half is overwritten or swept later).
fn forget(shard: &mut Shard, out: &OutKey) {
    if shard.out.remove(out).is_some() {
        uncount(&mut shard.dests, &DestKey::of(out));
    }
}

fn uncount(dests: &mut HashMap<DestKey, u32>, dest: &DestKey) {
    if let Some(n) = dests.get_mut(dest) {
        *n -= 1;
        if *n == 0 {
            dests.remove(dest);
        }
    }
}

/// Marks both halves of a flow seen now.
fn touch(shard: &mut Shard, out: &OutKey, back: &BackKey, now: u64) {
    if let Some(m) = shard.out.get_mut(out) {
        m.last_seen = now;
    }
    if let Some(m) = shard.back.get_mut(back) {
        m.last_seen = now;
    }
}

fn back_key(out: &OutKey, port: u16) -> BackKey {
    BackKey {
        gateway: out.gateway,
        protocol: out.protocol,
        port,
        remote: out.remote,
        remote_port: out.remote_port,
    }
}

/// A port toward this destination that no live flow uses: the inside port itself when it is
/// in range and free (as many NATs keep it), else the next free one from the cursor.
fn free_port(shard: &Shard, out: &OutKey, now: u64) -> Option<u16> {
    let free = |port: u16| {
        shard
            .back
            .get(&back_key(out, port))
            .is_none_or(|m| !alive(m, now))
    };
    if PORTS.contains(&out.inside_port) && free(out.inside_port) {
        return Some(out.inside_port);
    }
    let span = u32::from(*PORTS.end() - *PORTS.start()) + 1;
    (0..span)
        .map(|i| {
            let offset = (u32::from(shard.cursor - *PORTS.start()) + i) % span;
            *PORTS.start() + offset as u16
        })
        .find(|p| free(*p))
}

impl std::fmt::Debug for NatTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatTable")
            .field("shards", &self.shards.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::PROTO_UDP;

    fn key(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, protocol: u8) -> FlowKey {
        FlowKey {
            src: src.into(),
            dst: dst.into(),
            protocol,
            src_port: sport,
            dst_port: dport,
            icmp_type: if protocol == PROTO_ICMP { 8 } else { 0 },
            icmp_code: 0,
            // A SYN: what opens a TCP mapping.
            tcp_flags: if protocol == PROTO_TCP { TCP_SYN } else { 0 },
        }
    }

    const GW: u64 = 7;

    #[test]
    fn keeps_a_free_inside_port_and_translates_the_reply_back() {
        let nat = NatTable::new(4, 16);
        let t = Duration::ZERO;
        let k = key([10, 0, 2, 10], 40000, [198, 51, 100, 10], 80, PROTO_TCP);
        assert_eq!(nat.outbound(GW, &k, t), Outbound::Mapped(40000));
        // The reply comes from the remote end to the gateway's address and port.
        let reply = key([198, 51, 100, 10], 80, [10, 0, 0, 5], 40000, PROTO_TCP);
        assert_eq!(nat.inbound(GW, &reply, t), Some((k.src, 40000)));
        // Unsolicited: another remote port, or another gateway, maps to nothing.
        let other = key([198, 51, 100, 10], 81, [10, 0, 0, 5], 40000, PROTO_TCP);
        assert_eq!(nat.inbound(GW, &other, t), None);
        assert_eq!(nat.inbound(GW + 1, &reply, t), None);
    }

    #[test]
    fn two_inside_hosts_with_one_port_get_two_gateway_ports() {
        let nat = NatTable::new(1, 16);
        let t = Duration::ZERO;
        let a = key([10, 0, 2, 10], 40000, [198, 51, 100, 10], 53, PROTO_UDP);
        let b = key([10, 0, 2, 11], 40000, [198, 51, 100, 10], 53, PROTO_UDP);
        let pa = nat.outbound(GW, &a, t).port().unwrap();
        let pb = nat.outbound(GW, &b, t).port().unwrap();
        assert_ne!(pa, pb);
        assert!(PORTS.contains(&pb));
        let reply_b = key([198, 51, 100, 10], 53, [10, 0, 0, 5], pb, PROTO_UDP);
        assert_eq!(nat.inbound(GW, &reply_b, t), Some((b.src, 40000)));
    }

    #[test]
    fn a_low_inside_port_is_remapped_into_range() {
        let nat = NatTable::new(1, 16);
        let k = key([10, 0, 2, 10], 123, [198, 51, 100, 10], 123, PROTO_UDP);
        let port = nat.outbound(GW, &k, Duration::ZERO).port().unwrap();
        assert!(port >= 1024);
    }

    #[test]
    fn icmp_echo_maps_its_identifier() {
        let nat = NatTable::new(1, 16);
        let t = Duration::ZERO;
        let echo = key([10, 0, 2, 10], 7, [198, 51, 100, 10], 7, PROTO_ICMP);
        let id = nat.outbound(GW, &echo, t).port().unwrap();
        let mut reply = key([198, 51, 100, 10], id, [10, 0, 0, 5], id, PROTO_ICMP);
        reply.icmp_type = 0;
        assert_eq!(nat.inbound(GW, &reply, t), Some((echo.src, 7)));
    }

    #[test]
    fn a_mapping_idle_for_350_seconds_is_gone() {
        let nat = NatTable::new(1, 16);
        let k = key([10, 0, 2, 10], 40000, [198, 51, 100, 10], 80, PROTO_TCP);
        let reply = key([198, 51, 100, 10], 80, [10, 0, 0, 5], 40000, PROTO_TCP);
        nat.outbound(GW, &k, Duration::ZERO).port().unwrap();
        let almost = IDLE_TIMEOUT - Duration::from_millis(1);
        assert!(nat.inbound(GW, &reply, almost).is_some());
        // The reply refreshed it: idle counts from there.
        assert!(nat.inbound(GW, &reply, almost + IDLE_TIMEOUT).is_none());
        assert_eq!(nat.sweep(almost + IDLE_TIMEOUT), 1);
        assert!(nat.is_empty());
    }

    #[test]
    fn a_tcp_segment_of_a_connection_idle_past_350_seconds_is_answered_with_a_reset() {
        let nat = NatTable::new(1, 16);
        let syn = key([10, 0, 2, 10], 40000, [198, 51, 100, 10], 80, PROTO_TCP);
        let ack = FlowKey {
            tcp_flags: 0x10,
            ..syn
        };
        assert_eq!(
            nat.outbound(GW, &syn, Duration::ZERO),
            Outbound::Mapped(40000)
        );
        assert_eq!(
            nat.outbound(GW, &ack, Duration::from_secs(349)),
            Outbound::Mapped(40000)
        );
        let late = Duration::from_secs(349) + IDLE_TIMEOUT;
        assert_eq!(nat.outbound(GW, &ack, late), Outbound::Expired);
        // A new SYN opens a new mapping.
        assert_eq!(nat.outbound(GW, &syn, late), Outbound::Mapped(40000));
    }

    #[test]
    fn one_destination_takes_55000_connections_and_no_more() {
        let nat = NatTable::new(1, 60_000);
        let t = Duration::ZERO;
        for i in 0..CONNECTIONS_PER_DESTINATION {
            let inside = std::net::Ipv4Addr::from(0x0a00_0000 + i);
            let k = key(inside.octets(), 40000, [198, 51, 100, 10], 443, PROTO_TCP);
            assert!(nat.outbound(GW, &k, t).port().is_some(), "connection {i}");
        }
        let one_more = key([10, 200, 0, 1], 40000, [198, 51, 100, 10], 443, PROTO_TCP);
        assert_eq!(nat.outbound(GW, &one_more, t), Outbound::Exhausted);
        // Another destination port is another destination.
        let other = key([10, 200, 0, 1], 40000, [198, 51, 100, 10], 80, PROTO_TCP);
        assert!(nat.outbound(GW, &other, t).port().is_some());
        // Idle mappings free their places.
        assert_eq!(
            nat.outbound(GW, &one_more, IDLE_TIMEOUT),
            Outbound::Mapped(40000)
        );
    }
}
