//! The per-packet path allocates nothing once warm: reading a packet and its virtio-net
//! header, deciding it (with and without the flow logs' trace), and rewriting it for the
//! gateways it crosses (the internet gateway's 1:1 NAT, a NAT gateway, peering, plain
//! routing), for packets of new and of tracked flows both ways; and a VPN tunnel's AWS end
//! (WireGuard data wrapped and unwrapped, decided into and out of the VPC) and IPv6 through
//! an egress-only internet gateway. A counting global allocator
//! watches this test's own thread only, so the harness's threads do not count. A separate
//! test binary, because the allocator is global.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use etherparse::PacketBuilder;
use vpclab::daemon::flowlogs::FlowTrace;
use vpclab::fabric::{decide_packet, read_packet, Compiled, Conntrack, Outcome};
use vpclab::scenario::{load_str, HostId};
use vpclab::wire::{rewrite_with, FlowKey, L4Checksum, VnetHdr, VNET_HDR_LEN};

struct Counting;

thread_local! {
    static WATCHING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn note() {
    // `try_with`: the allocator may run while this thread's locals are being torn down.
    let _ = WATCHING.try_with(|w| {
        if w.get() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

// SAFETY: every call is passed on unchanged to the system allocator; counting touches only
// const-initialised thread locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller's contract is System's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations `f` makes on this thread.
fn allocations(f: impl FnOnce()) -> usize {
    ALLOCATIONS.with(|n| n.set(0));
    WATCHING.with(|w| w.set(true));
    f();
    WATCHING.with(|w| w.set(false));
    ALLOCATIONS.with(|n| n.get())
}

const LAB: &str = r#"
name: noalloc
internet:
  public_pool: 203.0.113.0/24
  hosts:
    example: { ip: 198.51.100.10 }
vpcs:
  a:
    cidr: 10.0.0.0/16
    internet_gateway: true
    subnets:
      public:  { cidr: 10.0.0.0/24, route_table: public-rt, map_public_ip_on_launch: true }
      private: { cidr: 10.0.1.0/24, route_table: private-rt }
    route_tables:
      public-rt:
        routes: [{ destination: 0.0.0.0/0, target: igw:a }, { destination: 10.1.0.0/16, target: pcx:ab }]
      private-rt:
        routes: [{ destination: 0.0.0.0/0, target: nat:a-nat }]
    nat_gateways:
      a-nat: { subnet: public }
    security_groups:
      open:
        ingress: [{ protocol: all, source: 0.0.0.0/0 }]
    instances:
      web1: { subnet: public, security_groups: [open] }
      app1: { subnet: private, security_groups: [open] }
  b:
    cidr: 10.1.0.0/16
    subnets:
      b-sub: { cidr: 10.1.1.0/24 }
    route_tables:
      b-rt:
        main: true
        routes: [{ destination: 10.0.0.0/16, target: pcx:ab }]
    security_groups:
      open:
        ingress: [{ protocol: all, source: 0.0.0.0/0 }]
    instances:
      peer1: { subnet: b-sub, security_groups: [open] }
peering_connections:
  ab: { requester: a, accepter: b }
"#;

/// What a packet is.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Syn,
    Ack,
    Udp,
}

/// A packet of kind `kind` from `src`:`sport` to `dst`:`dport`: a SYN, or a segment of 1400
/// bytes, or a datagram of 64.
fn packet(
    kind: Kind,
    src: impl Into<IpAddr>,
    sport: u16,
    dst: impl Into<IpAddr>,
    dport: u16,
) -> Vec<u8> {
    let v4 = |a: IpAddr| match a {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(_) => panic!("these packets are IPv4"),
    };
    let mut out = Vec::new();
    let ip = PacketBuilder::ipv4(v4(src.into()), v4(dst.into()), 64);
    if kind == Kind::Syn {
        ip.tcp(sport, dport, 1, 65535)
            .syn()
            .write(&mut out, &[])
            .unwrap();
    } else if kind == Kind::Ack {
        ip.tcp(sport, dport, 1, 65535)
            .ack(1)
            .write(&mut out, &[7; 1400])
            .unwrap();
    } else {
        ip.udp(sport, dport).write(&mut out, &[7; 64]).unwrap();
    }
    out
}

/// `packet` behind a virtio-net header as a TUN with offloads gives it: a TCP segment with
/// data as a GSO super-packet of 1000-byte segments with a partial checksum, others plain.
fn framed(packet: Vec<u8>) -> Vec<u8> {
    let mut out = vec![0u8; VNET_HDR_LEN];
    if packet[9] == 6 && packet.len() > 40 {
        let head: &mut [u8; VNET_HDR_LEN] = (&mut out[..]).try_into().unwrap();
        VnetHdr {
            flags: 1,
            gso_type: 1,
            hdr_len: 40,
            gso_size: 1000,
            csum_start: 20,
            csum_offset: 16,
        }
        .write(head);
    }
    out.extend(packet);
    out
}

struct Fixture {
    lab: Compiled,
    flows: Conntrack,
    /// (sender, header + packet) for each packet of the run, of flows already open.
    packets: Vec<(HostId, Vec<u8>)>,
    /// The first packet out of each flow.
    openers: Vec<(HostId, Vec<u8>)>,
}

fn host(lab: &Compiled, name: &str) -> HostId {
    (0..lab.lab.host_count())
        .find(|&id| lab.lab.host(id).name() == name)
        .unwrap_or_else(|| panic!("no host {name}"))
}

fn address(lab: &Compiled, id: HostId) -> Ipv4Addr {
    match lab.lab.host(id) {
        vpclab::scenario::HostRef::Instance(_, i) => i.private_ip,
        vpclab::scenario::HostRef::Internet(_, h) => h.ip,
    }
}

/// The packets of a run: for each pair and each of `flows` source ports, a TCP and a UDP
/// packet out and, once the way out is known (translations included), the reply.
fn fixture(flows: u16) -> Fixture {
    let lab = Compiled::new(load_str(LAB, "noalloc.yaml").unwrap_or_else(|e| panic!("{e}")));
    let conntrack = Conntrack::for_dataplane();
    let names = [
        ("web1", "example"),
        ("app1", "example"),
        ("web1", "app1"),
        ("web1", "peer1"),
    ];
    let (mut packets, mut openers) = (Vec::new(), Vec::new());
    for (from, to) in names {
        let (a, b) = (host(&lab, from), host(&lab, to));
        for port in 0..flows {
            for (first, then) in [(Kind::Syn, Kind::Ack), (Kind::Udp, Kind::Udp)] {
                let (src, dst) = (address(&lab, a), address(&lab, b));
                let open = packet(first, src, 40000 + port, dst, 80);
                let key = FlowKey::parse(&open).unwrap();
                let d = decide_packet(&lab, &conntrack, Duration::ZERO, a, &key, None, &mut ());
                assert_eq!(d.outcome, Outcome::Deliver(b), "{from} -> {to}");
                openers.push((a, framed(open)));
                let back = d.delivered.reversed();
                let out = packet(then, src, 40000 + port, dst, 80);
                let reply = packet(then, back.src, back.src_port, back.dst, back.dst_port);
                packets.push((a, framed(out)));
                packets.push((b, framed(reply)));
            }
        }
    }
    Fixture {
        lab,
        flows: conntrack,
        packets,
        openers,
    }
}

/// What the packet loop does with one read: returns the bytes delivered, so nothing is
/// optimised away.
fn carry(f: &Fixture, now: Duration, from: HostId, read: &[u8], scratch: &mut [u8]) -> usize {
    let buf = &mut scratch[..read.len()];
    buf.copy_from_slice(read);
    let (head, packet) = buf.split_at_mut(VNET_HDR_LEN);
    let vnet = VnetHdr::parse(head).unwrap();
    let input = read_packet(packet).unwrap();
    let bytes = vnet.wire_bytes(packet);
    let mut trace = FlowTrace::default();
    let d = decide_packet(&f.lab, &f.flows, now, from, &input.key, None, &mut trace);
    let Outcome::Deliver(_) = d.outcome else {
        panic!("dropped: {:?}", d.outcome);
    };
    if d.delivered != input.key {
        let l4 = vnet.l4_checksum(packet, input.key.protocol);
        rewrite_with(
            packet,
            &input.key,
            &d.delivered,
            l4.unwrap_or(L4Checksum::Complete),
        );
    }
    bytes + usize::from(packet[19])
}

#[test]
fn the_per_packet_path_allocates_nothing_once_warm() {
    let f = fixture(200);
    let mut scratch = vec![0u8; 65536];
    let mut total = 0;
    // Warm-up: the first packets of each flow track it and take NAT gateway ports.
    for (from, p) in &f.packets {
        total += carry(&f, Duration::from_secs(1), *from, p, &mut scratch);
    }
    let n = allocations(|| {
        for round in 0..20 {
            let now = Duration::from_secs(2 + round);
            for (from, p) in &f.packets {
                total += carry(&f, now, *from, p, &mut scratch);
            }
        }
    });
    assert!(total > 0);
    assert_eq!(n, 0, "allocations for {} packets", 20 * f.packets.len());
}

#[test]
fn new_flows_allocate_nothing_either() {
    // Tables are reserved up front: tracking a new flow (and a NAT gateway mapping) takes
    // room that is already there. A fresh table, and the first packet of each flow.
    let mut f = fixture(300);
    f.flows = Conntrack::for_dataplane();
    let mut scratch = vec![0u8; 65536];
    let mut total = 0;
    let n = allocations(|| {
        for (from, p) in &f.openers {
            total += carry(&f, Duration::from_secs(1), *from, p, &mut scratch);
        }
    });
    assert!(total > 0);
    assert_eq!(n, 0, "allocations for {} packets", f.openers.len());
}

const VPN_LAB: &str = r#"
name: noalloc-vpn
internet:
  hosts:
    example: { ip: 198.51.100.10, ipv6: "2001:db8:ffff::10" }
vpcs:
  a:
    cidr: 10.0.0.0/16
    ipv6: true
    egress_only_internet_gateway: true
    subnets:
      app: { cidr: 10.0.1.0/24, route_table: app-rt }
    route_tables:
      app-rt:
        propagate: [vgw:vgw1]
        routes: [{ destination: "::/0", target: eigw:a }]
    security_groups:
      open:
        ingress: [{ protocol: all, source: 0.0.0.0/0 }, { protocol: all, source: "::/0" }]
    instances:
      app1: { subnet: app, private_ip: 10.0.1.10, security_groups: [open] }
sites:
  hq:
    cidr: 192.168.0.0/16
    customer_gateway: { public_ip: 198.51.100.20, asn: 65000 }
    hosts: { pc1: { ip: 192.168.1.10 } }
vpn_gateways:
  vgw1: { vpc: a }
vpn_connections:
  hq-vpn: { site: hq, gateway: vgw:vgw1, routing: static, static_routes: [192.168.0.0/16] }
"#;

/// An IPv6 TCP segment from `src` to `dst`.
fn packet6(src: &str, sport: u16, dst: &str, dport: u16) -> Vec<u8> {
    let addr = |s: &str| s.parse::<std::net::Ipv6Addr>().unwrap().octets();
    let mut out = Vec::new();
    PacketBuilder::ipv6(addr(src), addr(dst), 64)
        .tcp(sport, dport, 1, 65535)
        .ack(1)
        .write(&mut out, &[7; 100])
        .unwrap();
    out
}

#[test]
fn vpn_tunnels_and_ipv6_allocate_nothing_once_warm() {
    use vpclab::fabric::decide_from_tunnel;
    use vpclab::fabric::tunnels::TunnelRef;
    use vpclab::vpn::{KeyPair, Tunnel, Wrapped};

    let lab = Compiled::new(load_str(VPN_LAB, "noalloc-vpn.yaml").unwrap());
    let flows = Conntrack::for_dataplane();
    let app1 = host(&lab, "app1");
    let tunnel = TunnelRef {
        connection: 0,
        index: 0,
    };
    // Both ends of one tunnel, shaken hands.
    let (aws_keys, site_keys) = (KeyPair::generate(), KeyPair::generate());
    let net = |s: &str| s.parse().unwrap();
    let mut aws = Tunnel::new(
        &aws_keys,
        site_keys.public,
        1,
        None,
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
    let mut back = vec![0u8; 2048];
    let request = packet(Kind::Udp, [192, 168, 1, 10], 5000, [10, 0, 1, 10], 53);
    let Ok(Wrapped::ToPeer(init)) = site.wrap(&request, &mut out) else {
        panic!("no handshake")
    };
    let init = init.to_vec();
    let Ok(Wrapped::ToPeer(response)) = aws.unwrap(None, &init, &mut out) else {
        panic!("no response")
    };
    // The site takes the response and sends what it queued (and a keepalive) to AWS.
    let mut input = response.to_vec();
    while let Ok(Wrapped::ToPeer(d)) = site.unwrap(None, &input, &mut out) {
        let d = d.to_vec();
        let _ = aws.unwrap(None, &d, &mut back);
        input.clear();
    }
    let reply = packet(Kind::Udp, [10, 0, 1, 10], 53, [192, 168, 1, 10], 5000);
    let out6 = packet6("2001:db8:0:100::a", 40000, "2001:db8:ffff::10", 443);
    let reply6 = packet6("2001:db8:ffff::10", 443, "2001:db8:0:100::a", 40000);
    let example = host(&lab, "example");
    // One round before counting: tracked flows and sessions exist.
    let round = |aws: &mut Tunnel, site: &mut Tunnel, out: &mut [u8], back: &mut [u8]| {
        let now = Duration::from_secs(1);
        // In: the site wraps, the AWS end unwraps, the fabric decides it into the VPC.
        let Ok(Wrapped::ToPeer(datagram)) = site.wrap(&request, out) else {
            panic!("not wrapped")
        };
        let len = datagram.len();
        let Ok(Wrapped::Inner(inner)) = aws.unwrap(None, &out[..len], back) else {
            panic!("not unwrapped")
        };
        let key = read_packet(inner).unwrap().key;
        let d = decide_from_tunnel(&lab, &flows, now, tunnel, &key, &mut ());
        assert_eq!(d.outcome, Outcome::Deliver(app1));
        // Out: the reply is routed to the VGW and wrapped for the site.
        let key = read_packet(&reply).unwrap().key;
        let d = decide_packet(&lab, &flows, now, app1, &key, None, &mut ());
        assert_eq!(d.tunnel, Some(tunnel));
        assert!(matches!(aws.wrap(&reply, out), Ok(Wrapped::ToPeer(_))));
        // IPv6 out through the egress-only gateway, and its reply in.
        let key = read_packet(&out6).unwrap().key;
        let d = decide_packet(&lab, &flows, now, app1, &key, None, &mut ());
        assert_eq!(d.outcome, Outcome::Deliver(example));
        let key = read_packet(&reply6).unwrap().key;
        let d = decide_packet(&lab, &flows, now, example, &key, None, &mut ());
        assert_eq!(d.outcome, Outcome::Deliver(app1));
    };
    round(&mut aws, &mut site, &mut out, &mut back);
    let n = allocations(|| {
        for _ in 0..1000 {
            round(&mut aws, &mut site, &mut out, &mut back);
        }
    });
    assert_eq!(n, 0, "allocations over 1000 rounds of VPN and IPv6 packets");
}
