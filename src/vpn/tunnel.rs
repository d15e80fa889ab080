//! One tunnel's AWS end: a WireGuard session (boringtun `Tunn`) that wraps inner IPv4 packets
//! into UDP payloads for the customer gateway and unwraps what the customer gateway sends.
//! Sans I/O: the fabric hands it bytes and a caller-owned buffer, and sends what comes back.

use std::net::{IpAddr, Ipv4Addr};

use boringtun::noise::{errors::WireGuardError, Tunn, TunnResult};
use boringtun::x25519::{PublicKey, StaticSecret};

/// A WireGuard key pair (Curve25519).
pub struct KeyPair {
    pub secret: StaticSecret,
    pub public: PublicKey,
}

impl KeyPair {
    pub fn generate() -> KeyPair {
        let secret = StaticSecret::random_from_rng(rand_core::OsRng);
        let public = PublicKey::from(&secret);
        KeyPair { secret, public }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    #[error("wireguard: {0:?}")]
    WireGuard(WireGuardError),
    #[error("inner packet from {0}, outside the addresses this tunnel carries")]
    NotAllowed(Ipv4Addr),
}

/// What a call produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Wrapped<'a> {
    /// Send these bytes to the peer (data, a handshake message, a keepalive, a cookie).
    ToPeer(&'a [u8]),
    /// An inner IPv4 packet the peer sent, to be decided by the fabric.
    Inner(&'a [u8]),
    /// Nothing to do.
    Nothing,
}

/// The AWS end of one tunnel.
pub struct Tunnel {
    tunn: Tunn,
    /// Which inner sources the peer may send from (the site's networks): WireGuard's
    /// allowed-IPs check.
    allowed: Vec<ipnet::Ipv4Net>,
}

/// Every WireGuard message is at most this much larger than what it carries.
pub const OVERHEAD: usize = 32;

/// The smallest output buffer a call needs: a handshake initiation is 148 bytes.
pub const MIN_BUFFER: usize = 148;

impl Tunnel {
    /// A tunnel from `own` to the peer `peer`, with a persistent keepalive and an index that
    /// tells this tunnel's session apart on a shared socket.
    pub fn new(
        own: &KeyPair,
        peer: PublicKey,
        index: u32,
        keepalive: Option<u16>,
        allowed: Vec<ipnet::Ipv4Net>,
    ) -> Tunnel {
        let tunn = Tunn::new(own.secret.clone(), peer, None, keepalive, index, None);
        Tunnel { tunn, allowed }
    }

    /// Wraps inner packet `packet` for the peer (or starts a handshake and queues it).
    pub fn wrap<'a>(
        &mut self,
        packet: &[u8],
        out: &'a mut [u8],
    ) -> Result<Wrapped<'a>, TunnelError> {
        match self.tunn.encapsulate(packet, out) {
            TunnResult::WriteToNetwork(d) => Ok(Wrapped::ToPeer(d)),
            TunnResult::Err(e) => Err(TunnelError::WireGuard(e)),
            _ => Ok(Wrapped::Nothing),
        }
    }

    /// Unwraps a datagram from the peer at `from`. Call again with an empty `datagram` while
    /// it returns `ToPeer`, to flush packets queued during a handshake.
    pub fn unwrap<'a>(
        &mut self,
        from: Option<Ipv4Addr>,
        datagram: &[u8],
        out: &'a mut [u8],
    ) -> Result<Wrapped<'a>, TunnelError> {
        match self.tunn.decapsulate(from.map(IpAddr::V4), datagram, out) {
            TunnResult::WriteToNetwork(d) => Ok(Wrapped::ToPeer(d)),
            TunnResult::WriteToTunnelV4(d, src) => {
                if self.allowed.iter().any(|n| n.contains(&src)) {
                    Ok(Wrapped::Inner(d))
                } else {
                    Err(TunnelError::NotAllowed(src))
                }
            }
            TunnResult::Err(e) => Err(TunnelError::WireGuard(e)),
            _ => Ok(Wrapped::Nothing),
        }
    }

    /// Timers (handshake retries, keepalives, rekeying); call every 250 ms.
    pub fn tick<'a>(&mut self, out: &'a mut [u8]) -> Result<Wrapped<'a>, TunnelError> {
        match self.tunn.update_timers(out) {
            TunnResult::WriteToNetwork(d) => Ok(Wrapped::ToPeer(d)),
            TunnResult::Err(e) => Err(TunnelError::WireGuard(e)),
            _ => Ok(Wrapped::Nothing),
        }
    }

    /// Time since the last completed handshake: None while the tunnel has never come up.
    pub fn since_handshake(&self) -> Option<std::time::Duration> {
        self.tunn.time_since_last_handshake()
    }

    /// What `vpclab status` shows of the session.
    pub fn stats(&self) -> TunnelStats {
        let (since_handshake, wrapped, unwrapped, _loss, _rtt) = self.tunn.stats();
        TunnelStats {
            since_handshake,
            wrapped_bytes: wrapped as u64,
            unwrapped_bytes: unwrapped as u64,
        }
    }
}

/// A session's counters, as boringtun keeps them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TunnelStats {
    /// Since the last completed handshake; None while there never was one.
    pub since_handshake: Option<std::time::Duration>,
    /// Inner bytes sent to the peer (handshakes and keepalives not counted).
    pub wrapped_bytes: u64,
    /// Inner bytes received from the peer (handshakes and keepalives not counted).
    pub unwrapped_bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn ping(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ipv4(src, dst, 64)
            .icmpv4_echo_request(1, 1)
            .write(&mut out, b"through the tunnel")
            .unwrap();
        out
    }

    fn net(text: &str) -> ipnet::Ipv4Net {
        text.parse().unwrap()
    }

    /// Carries what one end sends to the other until both are quiet; returns the inner
    /// packets each end delivered.
    fn exchange(aws: &mut Tunnel, site: &mut Tunnel, first: Vec<u8>) -> Vec<Vec<u8>> {
        let mut delivered = Vec::new();
        // (to_aws, bytes)
        let mut wire: Vec<(bool, Vec<u8>)> = vec![(false, first)];
        let mut out = vec![0u8; 2048];
        while let Some((to_aws, bytes)) = wire.pop() {
            let at = if to_aws { &mut *aws } else { &mut *site };
            let mut input = bytes;
            loop {
                match at.unwrap(None, &input, &mut out).unwrap() {
                    Wrapped::ToPeer(d) => wire.push((!to_aws, d.to_vec())),
                    Wrapped::Inner(d) => delivered.push(d.to_vec()),
                    Wrapped::Nothing => break,
                }
                if input.is_empty() {
                    continue;
                }
                input = Vec::new();
            }
        }
        delivered
    }

    #[test]
    fn a_handshake_then_data_both_ways_with_the_allowed_ips_check() {
        let (aws_keys, site_keys) = (KeyPair::generate(), KeyPair::generate());
        let mut aws = Tunnel::new(
            &aws_keys,
            site_keys.public,
            1,
            Some(10),
            vec![net("192.168.0.0/16")],
        );
        let mut site = Tunnel::new(
            &site_keys,
            aws_keys.public,
            2,
            None,
            vec![net("10.0.0.0/16")],
        );
        let mut out = vec![0u8; 2048];
        // The site sends first: its packet waits behind the handshake initiation.
        let request = ping([192, 168, 1, 10], [10, 0, 1, 10]);
        let Wrapped::ToPeer(init) = site.wrap(&request, &mut out).unwrap() else {
            panic!("no handshake initiation")
        };
        assert_eq!(init.len(), MIN_BUFFER);
        let init = init.to_vec();
        // AWS answers with a response; the site then flushes its queued packet to AWS.
        let Wrapped::ToPeer(response) = aws.unwrap(None, &init, &mut out).unwrap() else {
            panic!("no handshake response")
        };
        let response = response.to_vec();
        let mut delivered = exchange(&mut aws, &mut site, response);
        assert_eq!(
            delivered.pop().as_ref(),
            Some(&request),
            "AWS got the site's packet"
        );
        assert!(aws.since_handshake().is_some());
        // AWS answers, encrypted: 32 bytes of overhead.
        let reply = ping([10, 0, 1, 10], [192, 168, 1, 10]);
        let Wrapped::ToPeer(wrapped) = aws.wrap(&reply, &mut out).unwrap() else {
            panic!("no data")
        };
        assert_eq!(wrapped.len(), reply.len() + OVERHEAD);
        let wrapped = wrapped.to_vec();
        let Wrapped::Inner(inner) = site.unwrap(None, &wrapped, &mut out).unwrap() else {
            panic!("not delivered")
        };
        assert_eq!(inner, &reply[..]);
        // Each end counts the inner bytes it wrapped and unwrapped, not the handshake.
        let (a, b) = (aws.stats(), site.stats());
        assert_eq!(a.wrapped_bytes, reply.len() as u64);
        assert_eq!(b.unwrapped_bytes, reply.len() as u64);
        assert_eq!(a.unwrapped_bytes, request.len() as u64);
        assert!(a.since_handshake.is_some());
        // A packet from outside the site's networks is refused by the AWS end.
        let spoofed = ping([172, 16, 0, 1], [10, 0, 1, 10]);
        let Wrapped::ToPeer(w) = site.wrap(&spoofed, &mut out).unwrap() else {
            panic!("no data")
        };
        let w = w.to_vec();
        assert!(matches!(
            aws.unwrap(None, &w, &mut out),
            Err(TunnelError::NotAllowed(_))
        ));
    }
}
