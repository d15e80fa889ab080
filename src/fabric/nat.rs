//! NAT gateway translations: source NAT of inside flows to the gateway's address, with ports
//! from 1024-65535 chosen per destination, replies translated back, and AWS's 350-second idle
//! timeout for every protocol (aws-rules.md §3.2). Sharded by destination and reserved up
//! front, like connection tracking, so the packet path neither allocates nor meets one lock.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::wire::{FlowKey, PROTO_ICMP};

/// A mapping idle this long is gone: the next packet of the flow is a new flow.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(350);

/// The source ports a NAT gateway hands out (`REMAP_EPHEMERAL_PORT`).
pub const PORTS: std::ops::RangeInclusive<u16> = 1024..=65535;

/// A flow as seen inside: which gateway, and the inside and outside ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct OutKey {
    gateway: u64,
    protocol: u8,
    inside: Ipv4Addr,
    inside_port: u16,
    remote: Ipv4Addr,
    remote_port: u16,
}

/// A flow as the outside answers it: the gateway's port and the remote end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct BackKey {
    gateway: u64,
    protocol: u8,
    port: u16,
    remote: Ipv4Addr,
    remote_port: u16,
}

#[derive(Debug, Clone, Copy)]
struct Mapping {
    inside: Ipv4Addr,
    inside_port: u16,
    port: u16,
    /// Milliseconds since the epoch of `now` when the flow was last seen.
    last_seen: u64,
}

struct Shard {
    out: HashMap<OutKey, Mapping>,
    back: HashMap<BackKey, Mapping>,
    /// Where the next port search starts, so that successive flows get successive ports.
    cursor: u16,
}

/// The translations of every NAT gateway of a lab.
pub struct NatTable {
    shards: Box<[Mutex<Shard>]>,
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
        remote: Ipv4Addr,
        remote_port: u16,
    ) -> MutexGuard<'_, Shard> {
        let mix = (gateway
            ^ u64::from(u32::from(remote))
            ^ (u64::from(remote_port) << 32)
            ^ u64::from(protocol) << 48)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let shard = &self.shards[(mix >> 40) as usize % self.shards.len()];
        // A poisoned shard only means a panic elsewhere; its maps are still consistent.
        shard.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The gateway's source port for the inside flow `key`, mapping it if it is new. None
    /// when every port toward this destination is in use (`ErrorPortAllocation`).
    pub fn outbound(&self, gateway: u64, key: &FlowKey, now: Duration) -> Option<u16> {
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
                return Some(m.port);
            }
            shard.out.remove(&out_key);
        }
        let port = free_port(&shard, &out_key, now)?;
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
            shard.out.remove(&stale);
        }
        shard.out.insert(out_key, mapping);
        shard.cursor = if port == *PORTS.end() {
            *PORTS.start()
        } else {
            port + 1
        };
        Some(port)
    }

    /// The inside address and port a reply `key` (to the gateway's address) belongs to.
    pub fn inbound(&self, gateway: u64, key: &FlowKey, now: Duration) -> Option<(Ipv4Addr, u16)> {
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
            let before = shard.out.len();
            shard.out.retain(|_, m| alive(m, now));
            shard.back.retain(|_, m| alive(m, now));
            gone += before - shard.out.len();
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
    use crate::wire::{PROTO_TCP, PROTO_UDP};

    fn key(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, protocol: u8) -> FlowKey {
        FlowKey {
            src: src.into(),
            dst: dst.into(),
            protocol,
            src_port: sport,
            dst_port: dport,
            icmp_type: if protocol == PROTO_ICMP { 8 } else { 0 },
            icmp_code: 0,
            tcp_flags: 0,
        }
    }

    const GW: u64 = 7;

    #[test]
    fn keeps_a_free_inside_port_and_translates_the_reply_back() {
        let nat = NatTable::new(4, 16);
        let t = Duration::ZERO;
        let k = key([10, 0, 2, 10], 40000, [198, 51, 100, 10], 80, PROTO_TCP);
        assert_eq!(nat.outbound(GW, &k, t), Some(40000));
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
        let pa = nat.outbound(GW, &a, t).unwrap();
        let pb = nat.outbound(GW, &b, t).unwrap();
        assert_ne!(pa, pb);
        assert!(PORTS.contains(&pb));
        let reply_b = key([198, 51, 100, 10], 53, [10, 0, 0, 5], pb, PROTO_UDP);
        assert_eq!(nat.inbound(GW, &reply_b, t), Some((b.src, 40000)));
    }

    #[test]
    fn a_low_inside_port_is_remapped_into_range() {
        let nat = NatTable::new(1, 16);
        let k = key([10, 0, 2, 10], 123, [198, 51, 100, 10], 123, PROTO_UDP);
        let port = nat.outbound(GW, &k, Duration::ZERO).unwrap();
        assert!(port >= 1024);
    }

    #[test]
    fn icmp_echo_maps_its_identifier() {
        let nat = NatTable::new(1, 16);
        let t = Duration::ZERO;
        let echo = key([10, 0, 2, 10], 7, [198, 51, 100, 10], 7, PROTO_ICMP);
        let id = nat.outbound(GW, &echo, t).unwrap();
        let mut reply = key([198, 51, 100, 10], id, [10, 0, 0, 5], id, PROTO_ICMP);
        reply.icmp_type = 0;
        assert_eq!(nat.inbound(GW, &reply, t), Some((echo.src, 7)));
    }

    #[test]
    fn a_mapping_idle_for_350_seconds_is_gone() {
        let nat = NatTable::new(1, 16);
        let k = key([10, 0, 2, 10], 40000, [198, 51, 100, 10], 80, PROTO_TCP);
        let reply = key([198, 51, 100, 10], 80, [10, 0, 0, 5], 40000, PROTO_TCP);
        nat.outbound(GW, &k, Duration::ZERO).unwrap();
        let almost = IDLE_TIMEOUT - Duration::from_millis(1);
        assert!(nat.inbound(GW, &reply, almost).is_some());
        // The reply refreshed it: idle counts from there.
        assert!(nat.inbound(GW, &reply, almost + IDLE_TIMEOUT).is_none());
        assert_eq!(nat.sweep(almost + IDLE_TIMEOUT), 1);
        assert!(nat.is_empty());
    }
}
