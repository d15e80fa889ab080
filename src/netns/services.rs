//! Built-in listeners of a host (HTTP, TCP echo, UDP echo) on real sockets bound inside its
//! namespace, served by the caller's tokio runtime.

use super::errors::NetnsError;
use super::namespace::run_in;
use crate::scenario::Service;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// Largest HTTP request head read before giving up on a client.
const MAX_HEAD: usize = 8 * 1024;
/// Time a client has to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest UDP datagram echoed (the IPv4 maximum payload).
const MAX_DATAGRAM: usize = 65_507;
/// Concurrent connections per listener; more wait in the kernel's accept queue.
const MAX_CONNECTIONS: usize = 256;
/// Pause after a failed accept (e.g. EMFILE) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// A listening socket made inside a namespace, not yet attached to a runtime.
#[derive(Debug)]
pub enum BoundService {
    /// Answers every request with `200 OK` and `hello from HOST`.
    Http {
        listener: std::net::TcpListener,
        host_name: String,
    },
    /// Echoes each connection until EOF.
    Tcp(std::net::TcpListener),
    /// Echoes each datagram to its sender.
    Udp(std::net::UdpSocket),
}

impl BoundService {
    /// The scenario service this socket serves.
    pub fn service(&self) -> Service {
        let port = self.local_addr().map(|a| a.port()).unwrap_or(0);
        match self {
            BoundService::Http { .. } => Service::Http(port),
            BoundService::Tcp(_) => Service::Tcp(port),
            BoundService::Udp(_) => Service::Udp(port),
        }
    }

    /// The address the socket is bound to (inside its namespace).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match self {
            BoundService::Http { listener, .. } | BoundService::Tcp(listener) => {
                listener.local_addr()
            }
            BoundService::Udp(socket) => socket.local_addr(),
        }
    }
}

/// Binds `0.0.0.0:PORT` inside namespace `ns` for each service (ICMP needs no socket), and
/// `[::]:PORT` too on a dual-stack host, and sets the sockets nonblocking, ready for
/// [`spawn_all`] or [`serve`].
pub fn bind_services(
    ns: &str,
    host_name: &str,
    services: &[Service],
    ipv6: bool,
) -> Result<Vec<BoundService>, NetnsError> {
    let families: &[IpAddr] = if ipv6 {
        &[
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        ]
    } else {
        &[IpAddr::V4(Ipv4Addr::UNSPECIFIED)]
    };
    run_in(ns, || {
        services
            .iter()
            .flat_map(|s| families.iter().map(move |any| (*s, *any)))
            .filter_map(|(s, any)| bind_one(ns, host_name, s, any).transpose())
            .collect()
    })?
}

fn bind_one(
    ns: &str,
    host_name: &str,
    service: Service,
    any: IpAddr,
) -> Result<Option<BoundService>, NetnsError> {
    let (kind, port) = match service {
        Service::Http(p) => ("http", p),
        Service::Tcp(p) => ("tcp", p),
        Service::Udp(p) => ("udp", p),
        // ICMP is the kernel's; sshd is a process of its own (the daemon's ssh module).
        Service::Icmp | Service::Ssh(_) => return Ok(None),
    };
    let addr = SocketAddr::from((any, port));
    let bound = match service {
        Service::Udp(_) => udp_socket(addr).and_then(|s| {
            s.set_nonblocking(true)?;
            Ok(BoundService::Udp(s))
        }),
        // SO_REUSEPORT: the host's own listeners on lo (the metadata service on port 80) share
        // the port.
        _ => super::loopback::listen_shared(addr).and_then(|l| {
            l.set_nonblocking(true)?;
            Ok(match service {
                Service::Http(_) => BoundService::Http {
                    listener: l,
                    host_name: host_name.to_string(),
                },
                _ => BoundService::Tcp(l),
            })
        }),
    };
    bound.map(Some).map_err(|source| NetnsError::Bind {
        ns: ns.to_string(),
        service: kind,
        port,
        source,
    })
}

/// A UDP socket on `addr`; an IPv6 one carries IPv6 only (IPv4 has its own).
fn udp_socket(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Serves every bound service on the current tokio runtime, one task each. Must be called
/// within a runtime. Abort the handles (or drop the runtime) to stop serving. A socket that
/// cannot be registered with the runtime (which only a broken epoll makes possible) is
/// reported on stderr and its task ends.
pub fn spawn_all(bound: Vec<BoundService>) -> Vec<JoinHandle<()>> {
    bound
        .into_iter()
        .map(|b| {
            tokio::spawn(async move {
                if let Err(e) = serve(b).await {
                    eprintln!("vpclab: {e}");
                }
            })
        })
        .collect()
}

/// Serves one bound service on the current runtime until the task is dropped. Returns only if
/// the socket cannot be handed to the runtime.
pub async fn serve(bound: BoundService) -> Result<(), NetnsError> {
    Ready::from_bound(bound)?.run().await;
    Ok(())
}

/// A service whose socket is registered with the runtime.
enum Ready {
    Http(tokio::net::TcpListener, Arc<str>),
    Tcp(tokio::net::TcpListener),
    Udp(tokio::net::UdpSocket),
}

impl Ready {
    fn from_bound(bound: BoundService) -> Result<Ready, NetnsError> {
        let addr = bound
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let err = |service| {
            let addr = addr.clone();
            move |source| NetnsError::Serve {
                service,
                addr,
                source,
            }
        };
        Ok(match bound {
            BoundService::Http {
                listener,
                host_name,
            } => Ready::Http(
                tokio::net::TcpListener::from_std(listener).map_err(err("http"))?,
                Arc::from(host_name),
            ),
            BoundService::Tcp(l) => {
                Ready::Tcp(tokio::net::TcpListener::from_std(l).map_err(err("tcp"))?)
            }
            BoundService::Udp(s) => {
                Ready::Udp(tokio::net::UdpSocket::from_std(s).map_err(err("udp"))?)
            }
        })
    }

    async fn run(self) {
        match self {
            Ready::Http(listener, host) => {
                accept_loop(listener, move |stream| http_reply(stream, host.clone())).await
            }
            Ready::Tcp(listener) => accept_loop(listener, tcp_echo).await,
            Ready::Udp(socket) => udp_echo(socket).await,
        }
    }
}

/// Accepts forever, each connection in its own task, at most [`MAX_CONNECTIONS`] at once.
pub async fn accept_loop<F, Fut>(listener: tokio::net::TcpListener, handler: F)
where
    F: Fn(tokio::net::TcpStream) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return; // the semaphore is never closed
        };
        match listener.accept().await {
            Ok((stream, _peer)) => {
                let conn = handler(stream);
                tokio::spawn(async move {
                    conn.await;
                    drop(permit);
                });
            }
            Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
        }
    }
}

/// Reads the request head (bounded in size and time) and answers 200 with a text naming the
/// host. HEAD gets the headers only. A client that sends no complete head gets nothing.
async fn http_reply(mut stream: tokio::net::TcpStream, host: Arc<str>) {
    let mut head = Vec::with_capacity(1024);
    let read = tokio::time::timeout(HEAD_TIMEOUT, async {
        let mut buf = [0u8; 1024];
        loop {
            let n = stream.read(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            head.extend_from_slice(&buf[..n]);
            if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
                return Some(());
            }
            if head.len() > MAX_HEAD {
                return None;
            }
        }
    })
    .await;
    if !matches!(read, Ok(Some(()))) {
        return;
    }
    let body = format!("hello from {host}\n");
    let mut reply = format!(
        "HTTP/1.1 200 OK\r\nServer: vpclab\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if !head.starts_with(b"HEAD ") {
        reply.push_str(&body);
    }
    // The client may be gone already; there is nobody to tell.
    let _ = stream.write_all(reply.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Echoes until the client closes its side (tokio's copy uses a bounded 8 KiB buffer).
async fn tcp_echo(mut stream: tokio::net::TcpStream) {
    let (mut rd, mut wr) = stream.split();
    if tokio::io::copy(&mut rd, &mut wr).await.is_ok() {
        let _ = wr.shutdown().await;
    }
}

/// Sends each datagram back to where it came from.
async fn udp_echo(socket: tokio::net::UdpSocket) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, peer)) => {
                // A full socket buffer or an unreachable peer loses this echo, as UDP may.
                let _ = socket.send_to(&buf[..n], peer).await;
            }
            // e.g. ECONNREFUSED from an earlier echo's ICMP error: keep serving.
            Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
}
