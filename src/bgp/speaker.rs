//! Runs the VGW's BGP sessions over real TCP: one listener per tunnel on the AWS inside
//! address (inside the gateway's namespace), one session per connection accepted from the
//! customer's inside address, KEEPALIVEs every third of the hold time, the hold timer, and the
//! announcements the RIB asks for. What a session learns goes to the daemon, which recompiles
//! the lab's routes; the daemon answers with what each session should announce.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use ipnet::Ipv4Net;
use netgauze_bgp_pkt::codec::BgpCodec;
use netgauze_bgp_pkt::BgpMessage;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_util::codec::Framed;

use super::rib::Advertised;
use super::session::{PathInfo, Session, SessionEvent, State};
use crate::fabric::tunnels::TunnelRef;

/// The BGP port.
pub const PORT: u16 = 179;

/// What a session tells the daemon.
#[derive(Debug, Clone)]
pub struct Report {
    pub tunnel: TunnelRef,
    /// `Established`, `OpenSent`, ... or `Idle` between connections.
    pub state: String,
    pub learned: BTreeMap<Ipv4Net, PathInfo>,
}

/// One tunnel's BGP end: who it is and who it expects.
#[derive(Debug, Clone, Copy)]
pub struct Peering {
    pub tunnel: TunnelRef,
    pub local_asn: u32,
    pub peer_asn: u32,
    pub local: Ipv4Addr,
    pub peer: Ipv4Addr,
}

/// Serves `peering` for as long as the task lives: accepts the customer's connections on
/// `listener` one at a time and runs a session on each.
pub async fn serve(
    listener: TcpListener,
    peering: Peering,
    reports: mpsc::Sender<Report>,
    mut advertised: watch::Receiver<Advertised>,
) {
    loop {
        let Ok((stream, from)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        if from.ip() != std::net::IpAddr::V4(peering.peer) {
            continue;
        }
        run(stream, peering, &reports, &mut advertised).await;
        let idle = Report {
            tunnel: peering.tunnel,
            state: "Idle".into(),
            learned: BTreeMap::new(),
        };
        let _ = reports.send(idle).await;
    }
}

/// One session, until it closes.
async fn run(
    stream: TcpStream,
    p: Peering,
    reports: &mpsc::Sender<Report>,
    advertised: &mut watch::Receiver<Advertised>,
) {
    let _ = stream.set_nodelay(true);
    let mut framed = Framed::new(stream, BgpCodec::new(true));
    let mut session = Session::new(p.local_asn, p.peer_asn, p.local);
    if framed.send(session.open()).await.is_err() {
        return;
    }
    let report = |s: &Session| Report {
        tunnel: p.tunnel,
        state: format!("{:?}", s.state()),
        learned: s.learned().clone(),
    };
    let _ = reports.send(report(&session)).await;
    let mut sent: Advertised = BTreeMap::new();
    let mut last_heard = tokio::time::Instant::now();
    let mut last_sent = tokio::time::Instant::now();
    let mut keepalive = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            message = framed.next() => {
                let Some(Ok((message, _))) = message else { return };
                last_heard = tokio::time::Instant::now();
                for event in session.receive(message) {
                    match event {
                        SessionEvent::Send(m) => {
                            if framed.send(m).await.is_err() {
                                return;
                            }
                        }
                        SessionEvent::Established => {
                            let now = advertised.borrow_and_update().clone();
                            if announce(&mut framed, &session, &BTreeMap::new(), &now).await.is_err() {
                                return;
                            }
                            sent = now;
                            let _ = reports.send(report(&session)).await;
                        }
                        SessionEvent::Learned => {
                            let _ = reports.send(report(&session)).await;
                        }
                        SessionEvent::Closed(_) => {
                            let _ = reports.send(report(&session)).await;
                            return;
                        }
                    }
                }
            }
            changed = advertised.changed() => {
                if changed.is_err() {
                    return;
                }
                let now = advertised.borrow_and_update().clone();
                if session.state() == State::Established {
                    if announce(&mut framed, &session, &sent, &now).await.is_err() {
                        return;
                    }
                    sent = now;
                }
            }
            _ = keepalive.tick() => {
                let hold = session.hold_time();
                if hold.is_zero() || session.state() != State::Established && session.state() != State::OpenConfirm {
                    continue;
                }
                if last_heard.elapsed() > hold {
                    let _ = framed.send(super::session::cease()).await;
                    let _ = session.close("hold timer expired".into());
                    let _ = reports.send(report(&session)).await;
                    return;
                }
                // A KEEPALIVE every third of the hold time, at the 1 s tick's grain.
                let every = (hold / 3).max(Duration::from_secs(1));
                if last_sent.elapsed() >= every {
                    if framed.send(BgpMessage::KeepAlive).await.is_err() {
                        return;
                    }
                    last_sent = tokio::time::Instant::now();
                }
            }
        }
    }
}

async fn announce(
    framed: &mut Framed<TcpStream, BgpCodec>,
    session: &Session,
    before: &Advertised,
    now: &Advertised,
) -> Result<(), ()> {
    for update in session.advertise(before, now) {
        framed.send(update).await.map_err(|_| ())?;
    }
    Ok(())
}

/// A listener on `addr:179`, for `serve`.
pub fn address(local: Ipv4Addr) -> SocketAddr {
    SocketAddr::from((local, PORT))
}
