//! The decision function: one packet, arriving from a host, in AWS's order of checks
//! (aws-rules.md §0.4): source/destination check, SG outbound of the source interface, then
//! either straight to the neighbour inside one subnet (no NACL, no route table) or NACL outbound
//! of the source subnet, route lookup and target (local, peering, internet gateway, NAT
//! gateway), NACL inbound of the destination subnet; last the SG inbound of the destination
//! interface. Packets from internet hosts enter through the internet gateway that holds their
//! destination's public IP. Gateways translate addresses on the way; the decision returns the
//! header as delivered. The data plane and `vpclab explain` both call this; `flows` holds the
//! tracked connections and NAT translations (the data plane's, or a scratch one).

use std::net::IpAddr;
use std::time::Duration;

use crate::scenario::{EndpointId, HostId, InstanceId, NatGatewayId};
use crate::wire::FlowKey;

use super::tunnels::TunnelRef;
use super::{Compiled, Conntrack, DropCode, Outcome, Trace};

mod edge;
mod forward;
mod path;
mod tgw;
mod vpn;

/// How many gateways one packet may cross before the path counts as a loop.
const MAX_GATEWAYS: u8 = 4;

/// What one decision reads besides the packet: the lab, the tracked flows and the time.
struct Ctx<'a, T> {
    lab: &'a Compiled,
    flows: &'a Conntrack,
    now: Duration,
    /// The header as it is at this point of the path (gateways rewrite it).
    key: FlowKey,
    /// Gateways crossed so far.
    gateways: u8,
    /// The last metered component crossed.
    metered: Option<Metered>,
    /// Deciding for `vpclab explain`: what the OS of a forwarding instance does (the kernel's
    /// part in the data plane) is decided here too.
    model: bool,
    /// For an ICMP error: the header it quotes (the packet it reports on).
    quoted: Option<&'a FlowKey>,
    /// A traffic mirror copy: the source's security groups do not see it (aws-rules.md §10).
    mirror_copy: bool,
    /// The VPN tunnel the packet goes into, toward a site.
    tunnel: Option<TunnelRef>,
    trace: &'a mut T,
}

/// A packet as the decision reads it: its header and, for an ICMP error, the header it quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    pub key: FlowKey,
    pub quoted: Option<FlowKey>,
}

/// Reads a packet's headers; what the fabric cannot carry is `UNSUPPORTED_PACKET`. IPv6
/// link-local and multicast packets (a kernel's router solicitations and MLD reports) stay on
/// their link: the VPC router answers neighbour discovery itself and forwards none of them.
pub fn read_packet(bytes: &[u8]) -> Result<Packet, DropCode> {
    let key = FlowKey::parse(bytes).map_err(|_| DropCode::UnsupportedPacket)?;
    if link_only(key.src) || link_only(key.dst) {
        return Err(DropCode::UnsupportedPacket);
    }
    // An ICMP error (destination unreachable, time exceeded) carries the IP header and first
    // 8 bytes of the packet it reports on, after its own 8-byte header.
    let quoted = if key.is_icmp_error() {
        // `parse` accepted the packet, so its header fits.
        let header_len = FlowKey::ip_header_len(bytes);
        bytes
            .get(header_len + 8..)
            .and_then(|q| FlowKey::parse(q).ok())
    } else {
        None
    };
    Ok(Packet { key, quoted })
}

/// An IPv6 address that never leaves its link: link-local, multicast or unspecified.
fn link_only(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(_) => false,
        IpAddr::V6(a) => a.is_multicast() || a.is_unspecified() || a.is_unicast_link_local(),
    }
}

/// Decides what happens to a packet sent by host `from` at time `now` (any fixed epoch;
/// only differences matter).
pub fn decide(
    lab: &Compiled,
    flows: &Conntrack,
    now: Duration,
    from: HostId,
    key: &FlowKey,
    trace: &mut impl Trace,
) -> Outcome {
    decide_quoting(lab, flows, now, from, key, None, trace)
}

/// As `decide`, for an ICMP error (destination unreachable, time exceeded) that quotes the
/// header `quoted`: when that header is a flow the interface tracks, the error passes its
/// security groups as related traffic (aws-rules.md §2.3). NACLs still apply.
pub fn decide_quoting(
    lab: &Compiled,
    flows: &Conntrack,
    now: Duration,
    from: HostId,
    key: &FlowKey,
    quoted: Option<&FlowKey>,
    trace: &mut impl Trace,
) -> Outcome {
    decide_packet(lab, flows, now, from, key, quoted, trace).outcome
}

/// A managed component AWS bills per byte processed (or, for gateway endpoints, shows as free).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metered {
    NatGateway(NatGatewayId),
    GatewayEndpoint(EndpointId),
    InterfaceEndpoint(EndpointId),
}

/// What `decide_packet` found: the outcome, the header as delivered, and the metered
/// component the packet crossed, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub outcome: Outcome,
    /// Gateways on the way may have translated addresses and ports; the data plane rewrites
    /// the packet to match.
    pub delivered: FlowKey,
    pub metered: Option<Metered>,
    /// The packet goes into this VPN tunnel (at its AWS end) to reach its destination.
    pub tunnel: Option<TunnelRef>,
}

/// As `decide_quoting`, with the header as delivered and what the packet crossed.
pub fn decide_packet(
    lab: &Compiled,
    flows: &Conntrack,
    now: Duration,
    from: HostId,
    key: &FlowKey,
    quoted: Option<&FlowKey>,
    trace: &mut impl Trace,
) -> Decision {
    let mode = Mode {
        model: false,
        mirror_copy: false,
    };
    run(lab, flows, now, Start::Host(from), key, quoted, mode, trace)
}

/// As `decide_packet`, for the model (`vpclab explain`, `vpclab check`'s model half): the
/// forwarding that instances' kernels do in the data plane is decided too.
pub fn decide_model(
    lab: &Compiled,
    flows: &Conntrack,
    now: Duration,
    from: HostId,
    key: &FlowKey,
    quoted: Option<&FlowKey>,
    trace: &mut impl Trace,
) -> Decision {
    let mode = Mode {
        model: true,
        mirror_copy: false,
    };
    run(lab, flows, now, Start::Host(from), key, quoted, mode, trace)
}

/// Who is asking: the data plane or the model, for a packet or a mirror copy.
#[derive(Clone, Copy)]
struct Mode {
    model: bool,
    mirror_copy: bool,
}

#[allow(clippy::too_many_arguments)]
fn run(
    lab: &Compiled,
    flows: &Conntrack,
    now: Duration,
    from: Start,
    key: &FlowKey,
    quoted: Option<&FlowKey>,
    mode: Mode,
    trace: &mut impl Trace,
) -> Decision {
    let mut cx = Ctx {
        lab,
        flows,
        now,
        key: *key,
        gateways: 0,
        metered: None,
        model: mode.model,
        quoted,
        mirror_copy: mode.mirror_copy,
        tunnel: None,
        trace,
    };
    let outcome = match from {
        Start::Host(host) => cx.from(host),
        Start::Tunnel(tunnel) => cx.out_of_tunnel(tunnel),
    };
    Decision {
        outcome,
        delivered: cx.key,
        metered: cx.metered,
        tunnel: cx.tunnel,
    }
}

/// Where a packet enters the fabric.
#[derive(Clone, Copy)]
enum Start {
    /// From a host's interface.
    Host(HostId),
    /// Out of a VPN tunnel, at its AWS end (the data plane unwrapped it).
    Tunnel(TunnelRef),
}

/// As `decide_packet`, for an inner packet that came out of VPN tunnel `tunnel`.
pub fn decide_from_tunnel(
    lab: &Compiled,
    flows: &Conntrack,
    now: Duration,
    tunnel: TunnelRef,
    key: &FlowKey,
    trace: &mut impl Trace,
) -> Decision {
    let mode = Mode {
        model: false,
        mirror_copy: false,
    };
    run(
        lab,
        flows,
        now,
        Start::Tunnel(tunnel),
        key,
        None,
        mode,
        trace,
    )
}

/// As `decide`, for a traffic mirror copy that `from`'s ENI sends to its session's target
/// (`key` is the copy's outer header): routed with the source subnet's route table and met by
/// the NACLs and the target's security groups like any packet, but not evaluated by the
/// source's security groups (aws-rules.md §10).
pub fn decide_mirror_copy(
    lab: &Compiled,
    flows: &Conntrack,
    now: Duration,
    from: InstanceId,
    key: &FlowKey,
    trace: &mut impl Trace,
) -> Outcome {
    let mode = Mode {
        model: false,
        mirror_copy: true,
    };
    run(lab, flows, now, Start::Host(from), key, None, mode, trace).outcome
}
