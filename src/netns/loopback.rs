//! Listeners on an address of a namespace's `lo`, for a service that belongs to a host yet
//! must never cross its `eth0`: the host reaches the address through its local table. TCP
//! listeners of this layer set SO_REUSEPORT, so that one on such an address and one on
//! 0.0.0.0 with the same port can coexist (the kernel hands a connection to the exact address
//! first).

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};

use super::errors::NetnsError;
use super::host::link_index;
use super::namespace::{block_on_here, run_in};

/// Backlog of the listeners: what the kernel would cap it to anyway.
const BACKLOG: i32 = 4096;

/// Adds `addr`/32 to `lo` of namespace `ns` and listens on `addr:port` there (nonblocking,
/// ready for tokio). Blocking: from async code, call it in `spawn_blocking` or at setup.
pub fn listen_on_lo(
    ns: &str,
    addr: Ipv4Addr,
    port: u16,
) -> Result<std::net::TcpListener, NetnsError> {
    run_in(ns, || {
        // A small runtime of this thread's own: the netlink socket is created here, inside `ns`.
        block_on_here(ns, add_to(ns, "lo", addr, 32))??;
        let at = SocketAddr::from((addr, port));
        listen_shared(at)
            .and_then(|l| {
                l.set_nonblocking(true)?;
                Ok(l)
            })
            .map_err(|source| NetnsError::Listen {
                ns: ns.to_string(),
                addr: at,
                source,
            })
    })?
}

/// Adds `addr`/32 to `lo` of namespace `ns` (a host that answers on more addresses than its
/// own, like a service behind interface endpoints). Blocking.
pub fn add_lo_address(ns: &str, addr: Ipv4Addr) -> Result<(), NetnsError> {
    add_address(ns, "lo", addr, 32)
}

/// `ip address add ADDR/PREFIX dev IFNAME` inside namespace `ns`.
pub fn add_address(ns: &str, ifname: &str, addr: Ipv4Addr, prefix: u8) -> Result<(), NetnsError> {
    run_in(ns, || block_on_here(ns, add_to(ns, ifname, addr, prefix))?)?
}

async fn add_to(ns: &str, ifname: &str, addr: Ipv4Addr, prefix: u8) -> Result<(), NetnsError> {
    let (conn, handle, _) = rtnetlink::new_connection().map_err(|source| NetnsError::Runtime {
        ns: ns.to_string(),
        source,
    })?;
    let conn = tokio::spawn(conn);
    let result = async {
        let index = link_index(&handle, ns, ifname).await?;
        handle
            .address()
            .add(index, IpAddr::V4(addr), prefix)
            .execute()
            .await
            .map_err(|source| NetnsError::Netlink {
                ns: ns.to_string(),
                op: format!("add {addr}/{prefix} to {ifname}"),
                source,
            })
    }
    .await;
    conn.abort();
    result
}

/// A blocking TCP listener on `addr` in the calling thread's namespace, with SO_REUSEADDR (as
/// std sets it) and SO_REUSEPORT.
pub(super) fn listen_shared(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    // socket2 opens it close-on-exec, so `run:` commands do not inherit it.
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        // IPv6 only: the IPv4 side has a listener of its own (and the metadata service
        // shares port 80 of lo with it).
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}
