//! Tier-3 tests of the Linux plumbing (`vpclab::netns`) on real namespaces, TUNs and sockets.
//! They need root; as another user each test prints "skipped: needs root" and passes.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vpclab::netns::{self, NetnsError};
use vpclab::scenario::Service;

const TIMEOUT: Duration = Duration::from_secs(2);
const A_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const B_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 20);
const GATEWAY: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

fn is_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        true
    } else {
        println!("skipped: needs root");
        false
    }
}

fn prefix() -> String {
    format!("vlt-{}-", std::process::id())
}

/// Unique namespace names; everything they name is removed on drop, pass or fail.
struct Names(Vec<String>);

impl Names {
    fn new(count: usize) -> Names {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        Names(
            (0..count)
                .map(|_| format!("{}{}", prefix(), NEXT.fetch_add(1, Ordering::Relaxed)))
                .collect(),
        )
    }
}

impl Drop for Names {
    fn drop(&mut self) {
        for ns in &self.0 {
            netns::kill_all_in(ns);
            let _ = netns::delete(ns);
            let _ = netns::remove_host_files(ns);
        }
    }
}

/// Entries of /run/netns and /etc/netns left behind for any of `names` (all of which start
/// with this process's test prefix).
fn leftovers(names: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for dir in ["/run/netns", "/etc/netns"] {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with(&prefix()) && names.contains(&name) {
                    found.push(format!("{dir}/{name}"));
                }
            }
        }
    }
    found
}

/// Drops the guard, then checks that it removed everything it names.
fn assert_clean(names: Names) {
    let list = names.0.clone();
    drop(names);
    assert_eq!(leftovers(&list), Vec::<String>::new());
}

#[test]
fn create_exists_delete_and_clash() {
    if !is_root() {
        return;
    }
    let names = Names::new(1);
    let ns = &names.0[0];
    assert!(!netns::exists(ns));
    netns::create(ns).expect("create");
    assert!(netns::exists(ns));
    assert!(matches!(
        netns::create(ns),
        Err(NetnsError::AlreadyExists { ref name }) if name == ns
    ));
    // A fresh namespace has only a (down) loopback, and it is not the host's namespace.
    let links = netns::run_in(ns, || std::fs::read_to_string("/proc/thread-self/net/dev"))
        .expect("run_in")
        .expect("read /proc/thread-self/net/dev");
    let ifaces: Vec<&str> = links
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(ifaces, vec!["lo"]);
    assert!(matches!(
        netns::create("../etc"),
        Err(NetnsError::InvalidName { .. })
    ));
    netns::delete(ns).expect("delete");
    assert!(!netns::exists(ns));
    netns::delete(ns).expect("delete is idempotent");
    assert!(matches!(
        netns::run_in(ns, || ()),
        Err(NetnsError::NotFound { .. })
    ));
    assert_clean(names);
}

/// Copies every packet from one TUN to the other: a wire with no rules.
fn wire(
    rt: &tokio::runtime::Runtime,
    a: tun_rs::SyncDevice,
    b: tun_rs::SyncDevice,
) -> Vec<tokio::task::JoinHandle<()>> {
    let _enter = rt.enter();
    let a = Arc::new(tun_rs::AsyncDevice::new(a).expect("async a"));
    let b = Arc::new(tun_rs::AsyncDevice::new(b).expect("async b"));
    let copy = |from: Arc<tun_rs::AsyncDevice>, to: Arc<tun_rs::AsyncDevice>| async move {
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = from.recv(&mut buf).await {
            let _ = to.send(&buf[..n]).await;
        }
    };
    vec![rt.spawn(copy(a.clone(), b.clone())), rt.spawn(copy(b, a))]
}

#[test]
fn two_hosts_on_a_wire_answer_real_probes() {
    if !is_root() {
        return;
    }
    let names = Names::new(2);
    let (a, b) = (&names.0[0], &names.0[1]);
    netns::create(a).expect("create a");
    netns::create(b).expect("create b");
    let host_range = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").unwrap();
    let dev_a = netns::setup_host(a, A_IP, 24, GATEWAY, 1500, None).expect("setup a");
    let dev_b = netns::setup_host(b, B_IP, 24, GATEWAY, 1500, None).expect("setup b");

    // What the namespace looks like from iproute2's side.
    let ip = |ns: &str, args: &[&str]| {
        let out = Command::new("ip")
            .args(["netns", "exec", ns, "ip"])
            .args(args)
            .output()
            .expect("run ip");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let addr = ip(a, &["-4", "addr", "show", "dev", "eth0"]);
    assert!(addr.contains("inet 192.0.2.10/24"), "{addr}");
    assert!(addr.contains("mtu 1500"), "{addr}");
    assert!(addr.contains("UP"), "{addr}");
    let lo = ip(a, &["link", "show", "dev", "lo"]);
    assert!(lo.contains("UP"), "{lo}");
    let routes = ip(a, &["route", "show", "default"]);
    assert!(
        routes.contains("default via 192.0.2.1 dev eth0"),
        "{routes}"
    );
    let v6 = ip(a, &["-6", "addr"]);
    assert_eq!(v6.trim(), "", "IPv6 should be off");
    let sysctl = |ns: &str, key: &str| {
        netns::run_in(ns, || std::fs::read_to_string(format!("/proc/sys/{key}")))
            .expect("run_in")
            .expect("read sysctl")
    };
    assert_eq!(sysctl(a, "net/ipv6/conf/all/disable_ipv6").trim(), "1");
    assert_eq!(sysctl(a, "net/ipv6/conf/eth0/disable_ipv6").trim(), "1");
    assert_eq!(
        sysctl(a, "net/ipv4/ping_group_range")
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["0", "2147483647"]
    );
    // The machine's own namespace is untouched.
    let after = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").unwrap();
    assert_eq!(after, host_range);

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut tasks = wire(&rt, dev_a, dev_b);
    let services = [
        Service::Http(80),
        Service::Tcp(7),
        Service::Udp(7),
        Service::Icmp,
    ];
    let bound = netns::bind_services(b, "db1", &services, false).expect("bind services");
    assert_eq!(bound.len(), 3, "ICMP needs no socket");
    tasks.extend({
        let _enter = rt.enter();
        netns::spawn_all(bound)
    });

    let t0 = Instant::now();
    assert!(netns::probe_icmp(a, B_IP, TIMEOUT), "ping a -> b");
    println!("probe_icmp a->b ok in {:?}", t0.elapsed());
    let out = Command::new("ip")
        .args([
            "netns", "exec", a, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "2",
        ])
        .arg(B_IP.to_string())
        .output()
        .expect("ping");
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{}", text.lines().last().unwrap_or_default());
    assert!(out.status.success(), "{text}");

    assert!(netns::probe_tcp(a, B_IP, 7, TIMEOUT), "tcp 7");
    assert!(netns::probe_udp(a, B_IP, 7, TIMEOUT), "udp 7");
    assert!(netns::probe_http(a, B_IP, 80, TIMEOUT), "http 80");
    // Closed ports: the kernel answers RST / ICMP port unreachable, so these fail fast.
    let t0 = Instant::now();
    assert!(!netns::probe_tcp(a, B_IP, 81, TIMEOUT), "tcp 81 closed");
    assert!(!netns::probe_udp(a, B_IP, 9, TIMEOUT), "udp 9 closed");
    assert!(!netns::probe_http(a, B_IP, 82, TIMEOUT), "http 82 closed");
    println!("three closed-port probes took {:?}", t0.elapsed());
    // An HTTP probe at a non-HTTP (echo) port must not count as success.
    assert!(!netns::probe_http(a, B_IP, 7, TIMEOUT), "echo is not http");
    // Nobody at this address: bounded by the timeout.
    let t0 = Instant::now();
    assert!(!netns::probe_tcp(
        a,
        Ipv4Addr::new(192, 0, 2, 99),
        80,
        Duration::from_millis(300)
    ));
    assert!(!netns::probe_icmp(
        a,
        Ipv4Addr::new(192, 0, 2, 99),
        Duration::from_secs(1)
    ));
    let silent = t0.elapsed();
    println!("probes to a silent address took {silent:?}");
    assert!(silent < Duration::from_secs(4), "{silent:?}");

    // The real HTTP reply, byte for byte, through the kernel of both hosts.
    let reply = netns::run_in(a, || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect_timeout(&(B_IP, 80).into(), TIMEOUT).ok()?;
        s.set_read_timeout(Some(TIMEOUT)).ok()?;
        s.write_all(b"GET / HTTP/1.1\r\nHost: db1\r\n\r\n").ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        Some(text)
    })
    .expect("run_in")
    .expect("http reply");
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(reply.contains("Content-Type: text/plain\r\n"), "{reply}");
    assert!(reply.contains("Content-Length: 15\r\n"), "{reply}");
    assert!(reply.contains("Connection: close\r\n"), "{reply}");
    assert!(reply.ends_with("\r\n\r\nhello from db1\n"), "{reply}");

    // A large TCP echo goes through whole (more than one buffer, several segments).
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let echoed = netns::run_in(a, || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect_timeout(&(B_IP, 7).into(), TIMEOUT).ok()?;
        s.set_read_timeout(Some(TIMEOUT)).ok()?;
        let mut w = s.try_clone().ok()?;
        let data = big.clone();
        let writer = std::thread::spawn(move || {
            let _ = w.write_all(&data);
            let _ = w.shutdown(std::net::Shutdown::Write);
        });
        let mut back = Vec::new();
        s.read_to_end(&mut back).ok()?;
        writer.join().ok()?;
        Some(back)
    })
    .expect("run_in")
    .expect("echo");
    assert_eq!(echoed.len(), big.len());
    assert!(echoed == big);

    for t in &tasks {
        t.abort();
    }
    drop(rt);
    assert_clean(names);
}

#[test]
fn host_files_resolve_names_inside_the_namespace() {
    if !is_root() {
        return;
    }
    let names = Names::new(1);
    let ns = &names.0[0];
    netns::create(ns).expect("create");
    let hosts = vec![("web1".to_string(), A_IP), ("db1".to_string(), B_IP)];
    netns::write_host_files(ns, &hosts, Some(Ipv4Addr::new(192, 0, 2, 2)), None).expect("write");
    let getent = |name: &str| {
        let out = Command::new("ip")
            .args(["netns", "exec", ns, "getent", "hosts", name])
            .output()
            .expect("getent");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let db1 = getent("db1");
    println!("getent hosts db1 -> {}", db1.trim());
    assert!(db1.starts_with("192.0.2.20"), "{db1}");
    assert!(getent("localhost").starts_with("127.0.0.1"));
    let resolv = Command::new("ip")
        .args(["netns", "exec", ns, "cat", "/etc/resolv.conf"])
        .output()
        .expect("cat");
    let resolv = String::from_utf8_lossy(&resolv.stdout).into_owned();
    assert!(resolv.contains("nameserver 192.0.2.2\n"), "{resolv}");

    // Rewriting without a nameserver leaves none (the machine's resolver does not leak in).
    netns::write_host_files(ns, &hosts, None, None).expect("rewrite");
    let resolv = std::fs::read_to_string(format!("/etc/netns/{ns}/resolv.conf")).unwrap();
    assert!(!resolv.contains("nameserver"), "{resolv}");

    netns::remove_host_files(ns).expect("remove");
    assert!(!std::path::Path::new(&format!("/etc/netns/{ns}")).exists());
    netns::remove_host_files(ns).expect("remove is idempotent");
    assert_clean(names);
}

#[test]
fn pids_in_sees_a_process_and_kill_all_in_removes_it() {
    if !is_root() {
        return;
    }
    let names = Names::new(2);
    let (ns, other) = (&names.0[0], &names.0[1]);
    netns::create(ns).expect("create");
    netns::create(other).expect("create other");
    assert_eq!(netns::pids_in(ns), Vec::<i32>::new());
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "sleep", "30"])
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn sleep");
    let pid = child.id() as i32;
    let deadline = Instant::now() + Duration::from_secs(2);
    while !netns::pids_in(ns).contains(&pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(netns::pids_in(ns), vec![pid]);
    assert_eq!(
        netns::pids_in(other),
        Vec::<i32>::new(),
        "other namespace is empty"
    );
    let t0 = Instant::now();
    netns::kill_all_in(ns);
    println!("kill_all_in took {:?}", t0.elapsed());
    assert_eq!(netns::pids_in(ns), Vec::<i32>::new());
    let status = child.wait().expect("reap sleep");
    assert!(!status.success(), "sleep was killed: {status}");
    assert_clean(names);
}
