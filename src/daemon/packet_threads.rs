//! The packet threads: a few OS threads that wait on one epoll set of host interfaces and
//! carry what they read through the fabric (`dataplane::PacketLoop`). They are not tokio
//! tasks, so that a packet costs its read and its write and nothing more: no task wakeup, no
//! reactor shared with the control plane. Any free thread takes any interface with packets
//! (one-shot, so that one thread reads an interface at a time): the two directions of a flow
//! are carried at once, which a fixed share of the interfaces per thread did not do (on the
//! bench lab, TCP 6.7-7.7 Gb/s with fixed shares, 8.7-9.1 shared; VPN 0.48-0.59, 0.57-0.74).
//! A thread may also keep polling for a while after its last packet (busy polling, off by
//! default): on a virtual machine, waking a thread that slept costs more than everything else
//! a packet does. Measured here with a bare TUN-to-TUN copy loop, ping every 5 ms: +115 µs per
//! round trip over a veth pair when the loop sleeps, +15 µs when it polls.

use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use arc_swap::ArcSwap;
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use tun_rs::SyncDevice;

use super::dataplane::{PacketLoop, Shared};

/// How the data plane runs, chosen when the lab starts (`vpclab up --packet-threads
/// --busy-poll`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuning {
    /// Packet threads; each host's interface is read by one of them at a time.
    pub threads: usize,
    /// How long a thread keeps polling after its last packet before it sleeps; zero: never.
    pub busy_poll: Duration,
}

impl Default for Tuning {
    /// As many threads as cores, up to 2 (the machines this runs on have 2), no busy polling.
    fn default() -> Tuning {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Tuning {
            threads: cores.clamp(1, 2),
            busy_poll: Duration::ZERO,
        }
    }
}

/// Packets read from one interface before a thread turns to the next ready one, so that a
/// busy host does not starve the others.
const BUDGET: usize = 64;

/// Ready interfaces one thread takes per wait: few, so that the others get the rest.
const EVENTS: usize = 4;

/// The packet threads (they run for the daemon's life) and the interfaces they read.
pub struct PacketThreads {
    inner: Arc<Inner>,
}

struct Inner {
    /// The interfaces with packets, for whichever thread is free. Each is watched one-shot:
    /// the thread that is told of it reads it alone, then watches it again, so that one
    /// host's packets keep their order while two hosts' are carried at once.
    epoll: Epoll,
    /// Per host slot: its interface while attached, for the threads to read from.
    ports: ArcSwap<Vec<Option<Arc<SyncDevice>>>>,
}

/// A host's interface, read by a packet thread until this is dropped.
pub struct Attached {
    inner: Arc<Inner>,
    slot: usize,
    device: Arc<SyncDevice>,
}

impl PacketThreads {
    /// Starts `tuning.threads` packet threads that carry packets with `shared`.
    pub fn start(shared: &Shared, tuning: Tuning) -> anyhow::Result<PacketThreads> {
        let threads = tuning.threads.max(1);
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
            .context("create the packet threads' epoll set")?;
        let inner = Arc::new(Inner {
            epoll,
            ports: ArcSwap::from_pointee(Vec::new()),
        });
        for index in 0..threads {
            let (inner, shared) = (inner.clone(), shared.clone());
            let busy_poll = tuning.busy_poll;
            std::thread::Builder::new()
                .name(format!("vpclab-packets-{index}"))
                .spawn(move || run(index, &inner, PacketLoop::new(index, shared), busy_poll))
                .context("start a packet thread")?;
        }
        Ok(PacketThreads { inner })
    }

    /// Has a packet thread read `device`, the interface of the host in `slot`, from now on.
    pub fn attach(&self, slot: usize, device: Arc<SyncDevice>) -> anyhow::Result<Attached> {
        self.inner.ports.rcu(|ports| {
            let mut ports = Vec::clone(ports);
            if ports.len() <= slot {
                ports.resize(slot + 1, None);
            }
            ports[slot] = Some(device.clone());
            ports
        });
        let attached = Attached {
            inner: self.inner.clone(),
            slot,
            device,
        };
        self.inner
            .epoll
            .add(attached.device.as_fd(), watch(slot))
            .context("watch a host's interface")?;
        Ok(attached)
    }
}

/// What a thread waits for on the interface of `slot`: a packet to read, told once.
fn watch(slot: usize) -> EpollEvent {
    EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLONESHOT, slot as u64)
}

impl Drop for Attached {
    fn drop(&mut self) {
        // Unwatched first, so that no thread is told of it again; a thread that was told
        // already still holds the interface through the ports it loaded.
        let _ = self.inner.epoll.delete(self.device.as_fd());
        let slot = self.slot;
        self.inner.ports.rcu(|ports| {
            let mut ports = Vec::clone(ports);
            if let Some(port) = ports.get_mut(slot) {
                *port = None;
            }
            ports
        });
    }
}

/// Packet thread `index`: waits for interfaces with packets and carries them, for the
/// daemon's life. With `busy_poll`, it keeps asking without waiting for that long after its
/// last packet.
fn run(index: usize, inner: &Inner, mut packets: PacketLoop, busy_poll: Duration) {
    let epoll = &inner.epoll;
    let mut events = [EpollEvent::empty(); EVENTS];
    let mut last_packet: Option<Instant> = None;
    loop {
        let polling = last_packet.is_some_and(|at| at.elapsed() < busy_poll);
        let timeout = if polling {
            EpollTimeout::ZERO
        } else {
            EpollTimeout::NONE
        };
        let ready = match epoll.wait(&mut events, timeout) {
            Ok(ready) => ready,
            Err(Errno::EINTR) => continue,
            Err(e) => {
                eprintln!("vpclab: packet thread {index} stopped: {e}");
                return;
            }
        };
        if ready == 0 {
            continue;
        }
        let ports = inner.ports.load();
        let mut carried = 0;
        for event in &events[..ready] {
            let slot = event.data() as usize;
            if let Some(Some(device)) = ports.get(slot) {
                carried += packets.drain(slot, device, BUDGET);
                // Watched again (it may have packets left: then at once). Fails only when the
                // host was detached meanwhile.
                let _ = epoll.modify(device.as_fd(), &mut watch(slot));
            }
        }
        if carried > 0 && !busy_poll.is_zero() {
            last_packet = Some(Instant::now());
        }
    }
}
