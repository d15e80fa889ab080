//! A host's network stack inside its namespace: `lo` up, a TUN `eth0` with one IPv4 address,
//! a default route via the gateway, IPv6 off, unprivileged ping allowed.

use super::errors::NetnsError;
use super::namespace::{block_on_here, run_in};
use futures::TryStreamExt;
use rtnetlink::{Handle, LinkUnspec, RouteMessageBuilder};
use std::net::Ipv4Addr;

/// The host's interface name, as on an EC2 instance.
pub const IFNAME: &str = "eth0";

/// Sysctls written inside the namespace before `eth0` exists. `/proc/sys/net` resolves to the
/// network namespace of the *calling thread*, so plain paths are right on a setns'd thread.
const SYSCTLS: &[(&str, &str)] = &[
    // No router solicitations, MLD or DAD on eth0: the fabric is IPv4-only for now.
    ("net/ipv6/conf/all/disable_ipv6", "1"),
    ("net/ipv6/conf/default/disable_ipv6", "1"),
    // Lets any user run `ping` (ICMP datagram sockets), as on a stock distribution.
    ("net/ipv4/ping_group_range", "0 2147483647"),
];

/// Builds the host side of namespace `ns` and returns its `eth0` TUN (no packet information,
/// one queue, offloads on: every packet read or written starts with a virtio-net header,
/// `tun_rs::VIRTIO_NET_HDR_LEN` bytes, and TCP (and UDP with `UDP_SEGMENT`) may come and go
/// as GSO super-packets of up to 64 KiB with partial checksums, as between a guest and its
/// hypervisor). The fd stays bound to `ns`; wrap it on the daemon's runtime with
/// `tun_rs::AsyncDevice::new(dev)`. Blocking: from async code, call it in `spawn_blocking`.
pub fn setup_host(
    ns: &str,
    addr: Ipv4Addr,
    prefix: u8,
    gateway: Ipv4Addr,
    mtu: u16,
) -> Result<tun_rs::SyncDevice, NetnsError> {
    run_in(ns, || setup_inside(ns, addr, prefix, gateway, mtu))?
}

/// Runs on the setns'd thread.
fn setup_inside(
    ns: &str,
    addr: Ipv4Addr,
    prefix: u8,
    gateway: Ipv4Addr,
    mtu: u16,
) -> Result<tun_rs::SyncDevice, NetnsError> {
    for (key, value) in SYSCTLS {
        write_sysctl(ns, key, value)?;
    }
    let dev = tun_rs::DeviceBuilder::new()
        .name(IFNAME)
        .ipv4(addr, prefix, None)
        .mtu(mtu)
        .packet_information(false)
        // TSO/USO and checksum offload: one read and one write carry up to 64 KiB of a TCP
        // stream instead of one MTU (design.md "Speed"; crates.md §2.4).
        .offload(true)
        .multi_queue(false)
        .enable(true)
        .build_sync()
        .map_err(|source| NetnsError::Tun {
            ns: ns.to_string(),
            ifname: IFNAME.to_string(),
            addr,
            prefix,
            mtu,
            source,
        })?;
    // A small runtime of this thread's own: the netlink socket is created here, inside `ns`.
    block_on_here(ns, configure_links(ns, gateway))??;
    Ok(dev)
}

/// `ip link set lo up` and `ip route add default via GATEWAY dev eth0 onlink`.
async fn configure_links(ns: &str, gateway: Ipv4Addr) -> Result<(), NetnsError> {
    let netlink = |op: &str| {
        let (ns, op) = (ns.to_string(), op.to_string());
        move |source| NetnsError::Netlink { ns, op, source }
    };
    let (conn, handle, _) = rtnetlink::new_connection().map_err(|source| NetnsError::Runtime {
        ns: ns.to_string(),
        source,
    })?;
    let conn = tokio::spawn(conn);
    let result = async {
        let lo = link_index(&handle, ns, "lo").await?;
        handle
            .link()
            .set(LinkUnspec::new_with_index(lo).up().build())
            .execute()
            .await
            .map_err(netlink("set lo up"))?;
        let eth0 = link_index(&handle, ns, IFNAME).await?;
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gateway)
            .output_interface(eth0)
            .onlink()
            .build();
        handle
            .route()
            .add(route)
            .execute()
            .await
            .map_err(netlink(&format!("add default via {gateway} dev {IFNAME}")))
    }
    .await;
    conn.abort();
    result
}

pub(super) async fn link_index(handle: &Handle, ns: &str, ifname: &str) -> Result<u32, NetnsError> {
    let op = format!("look up link {ifname}");
    let found = handle
        .link()
        .get()
        .match_name(ifname.to_string())
        .execute()
        .try_next()
        .await
        .map_err(|source| NetnsError::Netlink {
            ns: ns.to_string(),
            op: op.clone(),
            source,
        })?;
    found
        .map(|msg| msg.header.index)
        .ok_or_else(|| NetnsError::LinkMissing {
            ns: ns.to_string(),
            op,
            ifname: ifname.to_string(),
        })
}

/// Writes one sysctl of the calling thread's namespace. A missing IPv6 tree (IPv6 disabled at
/// boot) already means what we want, so it is skipped.
pub(super) fn write_sysctl(ns: &str, key: &str, value: &str) -> Result<(), NetnsError> {
    let file = format!("/proc/sys/{key}");
    match std::fs::write(&file, value) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && key.starts_with("net/ipv6/") => {
            Ok(())
        }
        Err(source) => Err(NetnsError::Sysctl {
            ns: ns.to_string(),
            key: key.replace('/', "."),
            value: value.to_string(),
            source,
        }),
    }
}
