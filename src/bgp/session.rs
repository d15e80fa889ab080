//! One eBGP session, without I/O: the OPEN it sends, what it does with each message it
//! receives (answer, learn, withdraw, close), the UPDATE that announces a set of prefixes, and
//! its timers as plain numbers (the caller owns the clock and the socket).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use ipnet::Ipv4Net;
use netgauze_bgp_pkt::capabilities::{
    BgpCapability, FourOctetAsCapability, MultiProtocolExtensionsCapability,
};
use netgauze_bgp_pkt::nlri::{Ipv4Unicast, Ipv4UnicastAddress};
use netgauze_bgp_pkt::notification::{BgpNotificationMessage, CeaseError};
use netgauze_bgp_pkt::open::{BgpOpenMessage, BgpOpenMessageParameter};
use netgauze_bgp_pkt::path_attribute::{
    As4PathSegment, AsPath, AsPathSegmentType, NextHop, Origin, PathAttribute, PathAttributeValue,
};
use netgauze_bgp_pkt::update::BgpUpdateMessage;
use netgauze_bgp_pkt::BgpMessage;
use netgauze_iana::address_family::AddressType;

/// The hold time the VGW offers (AWS's is 30 s); the session uses the smaller of both.
pub const HOLD_TIME: u16 = 30;

/// `AS_TRANS`: what a four-octet ASN puts in OPEN's two-octet field (RFC 6793).
const AS_TRANS: u16 = 23456;

/// A prefix as learned: the AS path and the MED it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathInfo {
    pub as_path: Vec<u32>,
    pub med: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// OPEN sent, waiting for the peer's.
    OpenSent,
    /// OPENs exchanged, waiting for the first KEEPALIVE.
    OpenConfirm,
    Established,
    Closed,
}

/// What a received message changed.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    /// Send this message to the peer.
    Send(BgpMessage),
    /// The session is up: send the advertisement now.
    Established,
    /// The learned prefixes changed.
    Learned,
    /// The session is over (the peer's NOTIFICATION, an error, a wrong peer).
    Closed(String),
}

/// One eBGP session of the VGW.
#[derive(Debug)]
pub struct Session {
    local_asn: u32,
    peer_asn: u32,
    /// The address this side is on the tunnel (the next hop it announces).
    local_address: Ipv4Addr,
    state: State,
    /// The negotiated hold time (0: no keepalives).
    hold: u16,
    learned: BTreeMap<Ipv4Net, PathInfo>,
}

impl Session {
    pub fn new(local_asn: u32, peer_asn: u32, local_address: Ipv4Addr) -> Session {
        Session {
            local_asn,
            peer_asn,
            local_address,
            state: State::OpenSent,
            hold: HOLD_TIME,
            learned: BTreeMap::new(),
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The prefixes the peer announces now, with their paths.
    pub fn learned(&self) -> &BTreeMap<Ipv4Net, PathInfo> {
        &self.learned
    }

    /// The negotiated hold time; a KEEPALIVE goes out every third of it.
    pub fn hold_time(&self) -> Duration {
        Duration::from_secs(u64::from(self.hold))
    }

    /// The OPEN this side starts with: IPv4 unicast, four-octet ASNs.
    pub fn open(&self) -> BgpMessage {
        let short = u16::try_from(self.local_asn).unwrap_or(AS_TRANS);
        let capabilities = vec![
            BgpCapability::MultiProtocolExtensions(MultiProtocolExtensionsCapability::new(
                AddressType::Ipv4Unicast,
            )),
            BgpCapability::FourOctetAs(FourOctetAsCapability::new(self.local_asn)),
        ];
        BgpMessage::Open(BgpOpenMessage::new(
            short,
            HOLD_TIME,
            // The BGP identifier: this side's address on the tunnel, unique per session.
            self.local_address,
            vec![BgpOpenMessageParameter::new_capabilities(capabilities)],
        ))
    }

    /// What `message` from the peer does.
    pub fn receive(&mut self, message: BgpMessage) -> Vec<SessionEvent> {
        match (self.state, message) {
            (_, BgpMessage::Notification(n)) => self.close(format!("the peer sent {n:?}")),
            (State::OpenSent, BgpMessage::Open(open)) => {
                if open.my_asn4() != self.peer_asn {
                    let why = format!(
                        "the peer is AS {}, but the customer gateway is AS {}",
                        open.my_asn4(),
                        self.peer_asn
                    );
                    let mut events = vec![SessionEvent::Send(cease())];
                    events.extend(self.close(why));
                    return events;
                }
                self.hold = self.hold.min(open.hold_time());
                self.state = State::OpenConfirm;
                vec![SessionEvent::Send(BgpMessage::KeepAlive)]
            }
            (State::OpenConfirm, BgpMessage::KeepAlive) => {
                self.state = State::Established;
                vec![SessionEvent::Established]
            }
            (State::Established, BgpMessage::KeepAlive) => Vec::new(),
            (State::Established, BgpMessage::Update(update)) => {
                if self.apply(&update) {
                    vec![SessionEvent::Learned]
                } else {
                    Vec::new()
                }
            }
            (State::Established, BgpMessage::RouteRefresh(_)) => vec![SessionEvent::Established],
            (state, other) => self.close(format!(
                "unexpected {:?} in state {state:?}",
                other.get_type()
            )),
        }
    }

    /// The session ends: everything it learned is withdrawn.
    pub fn close(&mut self, why: String) -> Vec<SessionEvent> {
        self.state = State::Closed;
        let had = !self.learned.is_empty();
        self.learned.clear();
        let mut events = Vec::new();
        if had {
            events.push(SessionEvent::Learned);
        }
        events.push(SessionEvent::Closed(why));
        events
    }

    /// Applies an UPDATE: withdrawals, then announcements. True when something changed.
    fn apply(&mut self, update: &BgpUpdateMessage) -> bool {
        let mut changed = false;
        for w in update.withdraw_routes() {
            changed |= self.learned.remove(&w.network().address()).is_some();
        }
        if update.nlri().is_empty() {
            return changed;
        }
        let mut info = PathInfo {
            as_path: Vec::new(),
            med: None,
        };
        for attribute in update.path_attributes() {
            match attribute.value() {
                PathAttributeValue::AsPath(AsPath::As4PathSegments(segments)) => {
                    info.as_path = segments
                        .iter()
                        .flat_map(|s| s.as_numbers().iter().copied())
                        .collect();
                }
                PathAttributeValue::AsPath(AsPath::As2PathSegments(segments)) => {
                    info.as_path = segments
                        .iter()
                        .flat_map(|s| s.as_numbers().iter().map(|&n| u32::from(n)))
                        .collect();
                }
                PathAttributeValue::MultiExitDiscriminator(m) => info.med = Some(m.metric()),
                _ => {}
            }
        }
        // eBGP loop prevention: a path through this side's own AS is not taken.
        if info.as_path.contains(&self.local_asn) {
            return changed;
        }
        for n in update.nlri() {
            let prefix = n.network().address();
            if self.learned.get(&prefix) != Some(&info) {
                self.learned.insert(prefix, info.clone());
                changed = true;
            }
        }
        changed
    }

    /// The UPDATE messages that replace what this side announced (`before`) with `now`
    /// (prefix and AS path after this side's own AS, which is prepended): one withdrawing
    /// what is gone, one per distinct path announcing the rest.
    pub fn advertise(
        &self,
        before: &BTreeMap<Ipv4Net, Vec<u32>>,
        now: &BTreeMap<Ipv4Net, Vec<u32>>,
    ) -> Vec<BgpMessage> {
        let mut out = Vec::new();
        let gone: Vec<Ipv4UnicastAddress> = before
            .keys()
            .filter(|p| !now.contains_key(p))
            .filter_map(|p| unicast(*p))
            .collect();
        if !gone.is_empty() {
            out.push(BgpMessage::Update(BgpUpdateMessage::new(
                gone,
                vec![],
                vec![],
            )));
        }
        let mut by_path: BTreeMap<&Vec<u32>, Vec<Ipv4UnicastAddress>> = BTreeMap::new();
        for (prefix, path) in now {
            if before.get(prefix) != Some(path) {
                by_path.entry(path).or_default().extend(unicast(*prefix));
            }
        }
        for (path, nlri) in by_path {
            let mut as_path = vec![self.local_asn];
            as_path.extend(path);
            let attributes = [
                PathAttributeValue::Origin(Origin::IGP),
                PathAttributeValue::AsPath(AsPath::As4PathSegments(
                    vec![As4PathSegment::new(AsPathSegmentType::AsSequence, as_path)].into(),
                )),
                PathAttributeValue::NextHop(NextHop::new(self.local_address)),
            ]
            .into_iter()
            .filter_map(|v| PathAttribute::from(false, true, false, false, v).ok())
            .collect::<Vec<_>>();
            out.push(BgpMessage::Update(BgpUpdateMessage::new(
                vec![],
                attributes,
                nlri,
            )));
        }
        out
    }
}

fn unicast(prefix: Ipv4Net) -> Option<Ipv4UnicastAddress> {
    Ipv4Unicast::from_net(prefix)
        .ok()
        .map(Ipv4UnicastAddress::new_no_path_id)
}

/// A NOTIFICATION that ends the session (Cease, connection rejected).
pub fn cease() -> BgpMessage {
    BgpMessage::Notification(BgpNotificationMessage::CeaseError(
        CeaseError::ConnectionRejected {
            value: Box::new([]),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    /// Two sessions face to face, each having sent its OPEN: every message one sends, the
    /// other receives.
    fn talk(a: &mut Session, b: &mut Session) {
        // In order, as TCP delivers.
        let mut wire: std::collections::VecDeque<(bool, BgpMessage)> =
            [(true, a.open()), (false, b.open())].into();
        while let Some((to_b, message)) = wire.pop_front() {
            let at = if to_b { &mut *b } else { &mut *a };
            for event in at.receive(message) {
                if let SessionEvent::Send(m) = event {
                    wire.push_back((!to_b, m));
                }
            }
        }
    }

    #[test]
    fn two_ends_come_up_learn_and_withdraw() {
        let mut vgw = Session::new(64512, 65000, Ipv4Addr::new(169, 254, 10, 1));
        let mut cgw = Session::new(65000, 64512, Ipv4Addr::new(169, 254, 10, 2));
        talk(&mut vgw, &mut cgw);
        assert_eq!(vgw.state(), State::Established);
        assert_eq!(cgw.state(), State::Established);
        let site: BTreeMap<Ipv4Net, Vec<u32>> = [(net("192.168.0.0/16"), vec![])].into();
        let updates = cgw.advertise(&BTreeMap::new(), &site);
        let mut events = Vec::new();
        for u in updates {
            events.extend(vgw.receive(u));
        }
        assert_eq!(events, vec![SessionEvent::Learned]);
        let learned = &vgw.learned()[&net("192.168.0.0/16")];
        assert_eq!(learned.as_path, vec![65000]);
        for u in cgw.advertise(&site, &BTreeMap::new()) {
            vgw.receive(u);
        }
        assert!(vgw.learned().is_empty());
        // A path through the VGW's own AS is refused (a loop).
        let looped: BTreeMap<Ipv4Net, Vec<u32>> = [(net("10.9.0.0/16"), vec![64512])].into();
        for u in cgw.advertise(&BTreeMap::new(), &looped) {
            vgw.receive(u);
        }
        assert!(vgw.learned().is_empty());
    }

    #[test]
    fn a_peer_with_the_wrong_asn_is_refused() {
        let mut vgw = Session::new(64512, 65000, Ipv4Addr::new(169, 254, 10, 1));
        let stranger = Session::new(65099, 64512, Ipv4Addr::new(169, 254, 10, 2));
        let events = vgw.receive(stranger.open());
        assert!(matches!(events.last(), Some(SessionEvent::Closed(_))));
        assert_eq!(vgw.state(), State::Closed);
    }
}
