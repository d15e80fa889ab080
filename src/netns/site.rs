//! A LAN behind a router namespace, as a small office wires one: the router has a bridge
//! `br0` with the LAN's gateway address and forwards IPv4; each host is a namespace whose
//! `eth0` is one end of a veth pair, the other end a port of `br0`, with a default route via
//! the gateway. A bridge rather than a routed veth per host: hosts anywhere in the LAN's
//! CIDR share one gateway address and reach each other directly, with ARP, as on a switch.
//! Knows nothing about AWS.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd as _;

use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder};

use super::errors::NetnsError;
use super::host::{link_index, write_sysctl, IFNAME};
use super::namespace::{block_on_here, path, run_in};

/// The router's LAN bridge.
pub const BRIDGE: &str = "br0";

/// The router forwards, and takes replies on another interface than the one it sent on (a
/// standby VPN tunnel may carry them): reverse-path filtering off, also for interfaces made
/// later (`default`), such as WireGuard's.
const ROUTER_SYSCTLS: &[(&str, &str)] = &[
    ("net/ipv4/ip_forward", "1"),
    ("net/ipv4/conf/all/rp_filter", "0"),
    ("net/ipv4/conf/default/rp_filter", "0"),
];

/// A LAN host: IPv4 only, any user may ping (as a host's `eth0` in `host.rs`).
const HOST_SYSCTLS: &[(&str, &str)] = &[
    ("net/ipv6/conf/all/disable_ipv6", "1"),
    ("net/ipv6/conf/default/disable_ipv6", "1"),
    ("net/ipv4/ping_group_range", "0 2147483647"),
];

/// Makes namespace `ns` the router of LAN `lan_ip/prefix`: forwarding on, `br0` up with the
/// address. Blocking.
pub fn setup_router_lan(ns: &str, lan_ip: Ipv4Addr, prefix: u8) -> Result<(), NetnsError> {
    run_in(ns, || {
        for (key, value) in ROUTER_SYSCTLS {
            write_sysctl(ns, key, value)?;
        }
        block_on_here(ns, with_handle(ns, |h| bridge(h, ns, lan_ip, prefix)))?
    })?
}

/// Wires host namespace `host_ns` (made, empty) to the LAN of router `router_ns`: a veth pair,
/// `port` on the router (a port of `br0`), `eth0` in the host with `ip/prefix` and a default
/// route via `gateway`. Blocking.
pub fn attach_host(
    router_ns: &str,
    port: &str,
    host_ns: &str,
    ip: Ipv4Addr,
    prefix: u8,
    gateway: Ipv4Addr,
) -> Result<(), NetnsError> {
    // Before `eth0` arrives, so that `default` applies to it.
    run_in(host_ns, || {
        HOST_SYSCTLS
            .iter()
            .try_for_each(|(key, value)| write_sysctl(host_ns, key, value))
    })??;
    let target = File::open(path(host_ns)).map_err(|source| NetnsError::Enter {
        name: host_ns.to_string(),
        source,
    })?;
    run_in(router_ns, || {
        block_on_here(
            router_ns,
            with_handle(router_ns, |h| plug(h, router_ns, port, &target)),
        )?
    })??;
    run_in(host_ns, || {
        block_on_here(
            host_ns,
            with_handle(host_ns, |h| host_side(h, host_ns, ip, prefix, gateway)),
        )?
    })?
}

/// Runs `work` with a netlink handle of the calling thread's namespace.
async fn with_handle<F, Fut>(ns: &str, work: F) -> Result<(), NetnsError>
where
    F: FnOnce(Handle) -> Fut,
    Fut: std::future::Future<Output = Result<(), NetnsError>>,
{
    let (conn, handle, _) = rtnetlink::new_connection().map_err(|source| NetnsError::Runtime {
        ns: ns.to_string(),
        source,
    })?;
    let conn = tokio::spawn(conn);
    let result = work(handle).await;
    conn.abort();
    result
}

fn failed(ns: &str, op: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NetnsError {
    let (ns, op) = (ns.to_string(), op.into());
    move |source| NetnsError::Netlink { ns, op, source }
}

/// `ip link add br0 type bridge; ip addr add LAN dev br0; ip link set br0 up`.
async fn bridge(h: Handle, ns: &str, lan_ip: Ipv4Addr, prefix: u8) -> Result<(), NetnsError> {
    h.link()
        .add(LinkBridge::new(BRIDGE).up().build())
        .execute()
        .await
        .map_err(failed(ns, format!("add bridge {BRIDGE}")))?;
    let br = link_index(&h, ns, BRIDGE).await?;
    h.address()
        .add(br, IpAddr::V4(lan_ip), prefix)
        .execute()
        .await
        .map_err(failed(ns, format!("add {lan_ip}/{prefix} to {BRIDGE}")))
}

/// In the router: the veth pair, its far end moved into the host (renamed `eth0` on the
/// way, in the same message), its near end a port of `br0`.
async fn plug(h: Handle, ns: &str, port: &str, target: &File) -> Result<(), NetnsError> {
    // The far end's name in the router, for the moment before it moves.
    let far = format!("{port}h");
    // A port of the router's previous LAN (an edit rebuilds the sites) may outlive its host's
    // namespace for a moment, as the kernel tears namespaces down in the background.
    for stale in [port, far.as_str()] {
        if let Ok(old) = link_index(&h, ns, stale).await {
            let _ = h.link().del(old).execute().await;
        }
    }
    h.link()
        .add(LinkVeth::new(port, &far).build())
        .execute()
        .await
        .map_err(failed(ns, format!("add veth {port}/{far}")))?;
    let far_index = link_index(&h, ns, &far).await?;
    h.link()
        .set(
            LinkUnspec::new_with_index(far_index)
                .setns_by_fd(target.as_raw_fd())
                .name(IFNAME.to_string())
                .build(),
        )
        .execute()
        .await
        .map_err(failed(ns, format!("move {far} into the host as {IFNAME}")))?;
    let br = link_index(&h, ns, BRIDGE).await?;
    let near = link_index(&h, ns, port).await?;
    h.link()
        .set(LinkUnspec::new_with_index(near).controller(br).up().build())
        .execute()
        .await
        .map_err(failed(ns, format!("add {port} to {BRIDGE}")))
}

/// In the host: `lo` and `eth0` up, the address, the default route via the router.
async fn host_side(
    h: Handle,
    ns: &str,
    ip: Ipv4Addr,
    prefix: u8,
    gateway: Ipv4Addr,
) -> Result<(), NetnsError> {
    for name in ["lo", IFNAME] {
        let index = link_index(&h, ns, name).await?;
        h.link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(failed(ns, format!("set {name} up")))?;
    }
    let eth0 = link_index(&h, ns, IFNAME).await?;
    h.address()
        .add(eth0, IpAddr::V4(ip), prefix)
        .execute()
        .await
        .map_err(failed(ns, format!("add {ip}/{prefix} to {IFNAME}")))?;
    let route = RouteMessageBuilder::<Ipv4Addr>::new()
        .gateway(gateway)
        .output_interface(eth0)
        .build();
    h.route().add(route).execute().await.map_err(failed(
        ns,
        format!("add default via {gateway} dev {IFNAME}"),
    ))
}

/// Removes the router's LAN bridge, when the namespace and the bridge are there (the hosts'
/// veths go with their namespaces). Blocking.
pub fn remove_router_lan(ns: &str) -> Result<(), NetnsError> {
    if !super::namespace::exists(ns) {
        return Ok(());
    }
    run_in(ns, || {
        block_on_here(
            ns,
            with_handle(ns, |h| async move {
                match link_index(&h, ns, BRIDGE).await {
                    Ok(index) => h
                        .link()
                        .del(index)
                        .execute()
                        .await
                        .map_err(failed(ns, format!("delete {BRIDGE}"))),
                    Err(NetnsError::LinkMissing { .. }) => Ok(()),
                    Err(e) => Err(e),
                }
            }),
        )?
    })?
}

/// The ruleset of a router behind a NAT device: what it sends out of `eth0` leaves with
/// source ports remapped (to 40000-49999, at random), as a port-translating NAT in front of it
/// would send it; replies find their way back by the NAT's connection tracking.
fn behind_nat_ruleset(public_ip: Ipv4Addr) -> String {
    format!(
        "table ip vpclab_cgw_nat {{\n  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    oifname \"{IFNAME}\" meta l4proto udp snat to {public_ip}:40000-49999 random\n  }}\n}}\n"
    )
}

/// Puts router namespace `ns` behind a port-translating NAT on its public IP `public_ip`.
pub fn put_behind_nat(ns: &str, public_ip: Ipv4Addr) -> Result<(), NetnsError> {
    super::forwarding::apply_ruleset(ns, &behind_nat_ruleset(public_ip))
}
