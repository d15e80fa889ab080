//! A host's network stack inside its namespace: `lo` up, a TUN `eth0` with one IPv4 address,
//! a default route via the gateway, and on a dual-stack host one IPv6 address with a default
//! route (otherwise IPv6 off); unprivileged ping allowed.

use super::errors::NetnsError;
use super::namespace::{block_on_here, run_in};
use futures::TryStreamExt;
use rtnetlink::{Handle, LinkUnspec, RouteMessageBuilder};
use std::net::{Ipv4Addr, Ipv6Addr};

/// The host's interface name, as on an EC2 instance.
pub const IFNAME: &str = "eth0";

/// Sysctls written inside the namespace before `eth0` exists. `/proc/sys/net` resolves to the
/// network namespace of the *calling thread*, so plain paths are right on a setns'd thread.
const SYSCTLS: &[(&str, &str)] = &[
    // Lets any user run `ping` (ICMP datagram sockets), as on a stock distribution.
    ("net/ipv4/ping_group_range", "0 2147483647"),
];

/// An IPv4-only host: IPv6 off, so eth0 sends no router solicitations or MLD reports.
const IPV4_ONLY: &[(&str, &str)] = &[
    ("net/ipv6/conf/all/disable_ipv6", "1"),
    ("net/ipv6/conf/default/disable_ipv6", "1"),
];

/// A dual-stack host: IPv6 on, but eth0 (created after, so it inherits `default`) gets no
/// link-local address and does no duplicate address detection: the lab hands out each address
/// once, and the VPC router answers neighbour discovery itself, as AWS's does.
const DUAL_STACK: &[(&str, &str)] = &[
    ("net/ipv6/conf/all/disable_ipv6", "0"),
    ("net/ipv6/conf/default/disable_ipv6", "0"),
    ("net/ipv6/conf/default/addr_gen_mode", "1"),
    ("net/ipv6/conf/default/accept_dad", "0"),
    ("net/ipv6/conf/default/router_solicitations", "0"),
    ("net/ipv6/conf/default/accept_ra", "0"),
];

/// The prefix length of a host's IPv6 address: a subnet's /64.
const IPV6_PREFIX: u8 = 64;

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
    ipv6: Option<Ipv6Addr>,
) -> Result<tun_rs::SyncDevice, NetnsError> {
    run_in(ns, || setup_inside(ns, addr, prefix, gateway, mtu, ipv6))?
}

/// Runs on the setns'd thread.
fn setup_inside(
    ns: &str,
    addr: Ipv4Addr,
    prefix: u8,
    gateway: Ipv4Addr,
    mtu: u16,
    ipv6: Option<Ipv6Addr>,
) -> Result<tun_rs::SyncDevice, NetnsError> {
    let family = if ipv6.is_some() {
        DUAL_STACK
    } else {
        IPV4_ONLY
    };
    for (key, value) in SYSCTLS.iter().chain(family) {
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
    block_on_here(ns, configure_links(ns, gateway, ipv6))??;
    Ok(dev)
}

/// `ip link set lo up` and `ip route add default via GATEWAY dev eth0 onlink`; on a
/// dual-stack host also `ip -6 addr add ADDR/64 dev eth0` and `ip -6 route add default dev
/// eth0` (a TUN has no neighbours: every packet goes to the fabric).
async fn configure_links(
    ns: &str,
    gateway: Ipv4Addr,
    ipv6: Option<Ipv6Addr>,
) -> Result<(), NetnsError> {
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
            .map_err(netlink(&format!("add default via {gateway} dev {IFNAME}")))?;
        if let Some(v6) = ipv6 {
            handle
                .address()
                .add(eth0, v6.into(), IPV6_PREFIX)
                .execute()
                .await
                .map_err(netlink(&format!("add {v6}/{IPV6_PREFIX} to {IFNAME}")))?;
            let route = RouteMessageBuilder::<Ipv6Addr>::new()
                .output_interface(eth0)
                .build();
            handle
                .route()
                .add(route)
                .execute()
                .await
                .map_err(netlink(&format!("add IPv6 default dev {IFNAME}")))?;
        }
        Ok(())
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
