//! Real packets sent from inside a source host's namespace (for `vpclab check`): each probe
//! answers yes or no within its timeout and never hangs.

use super::namespace::{path, run_in};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Smallest timeout a probe uses (a zero timeout is rejected by the socket calls).
const MIN_TIMEOUT: Duration = Duration::from_millis(10);
/// Bytes of an HTTP reply read while looking for the status line.
const MAX_STATUS_LINE: usize = 1024;

fn remaining(deadline: Instant) -> Option<Duration> {
    let left = deadline.checked_duration_since(Instant::now())?;
    (!left.is_zero()).then(|| left.max(MIN_TIMEOUT))
}

/// True iff a TCP handshake with `dst:port` completes from inside `ns` within `timeout`.
pub fn probe_tcp(ns: &str, dst: impl Into<IpAddr>, port: u16, timeout: Duration) -> bool {
    let dst: IpAddr = dst.into();
    let addr = SocketAddr::from((dst, port));
    run_in(ns, || {
        TcpStream::connect_timeout(&addr, timeout.max(MIN_TIMEOUT)).is_ok()
    })
    .unwrap_or(false)
}

/// True iff a datagram sent from inside `ns` to `dst:port` comes back with the same bytes
/// within `timeout`.
pub fn probe_udp(ns: &str, dst: impl Into<IpAddr>, port: u16, timeout: Duration) -> bool {
    let dst: IpAddr = dst.into();
    let deadline = Instant::now() + timeout;
    run_in(ns, || {
        udp_round_trip(SocketAddr::from((dst, port)), deadline)
    })
    .unwrap_or(false)
}

fn udp_round_trip(dst: SocketAddr, deadline: Instant) -> bool {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let token = format!(
        "vpclab-probe-{}-{}-{nanos}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let any: IpAddr = match dst {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let Ok(socket) = UdpSocket::bind((any, 0)) else {
        return false;
    };
    // Connected: replies from elsewhere are filtered out, and an ICMP port unreachable
    // surfaces as ECONNREFUSED instead of a silent wait.
    if socket.connect(dst).is_err() || socket.send(token.as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 512];
    while let Some(left) = remaining(deadline) {
        if socket.set_read_timeout(Some(left)).is_err() {
            return false;
        }
        match socket.recv(&mut buf) {
            Ok(n) if &buf[..n] == token.as_bytes() => return true,
            Ok(_) => continue,
            Err(_) => return false,
        }
    }
    false
}

/// True iff `GET /` to `dst:port` from inside `ns` gets a 2xx status within `timeout`.
pub fn probe_http(ns: &str, dst: impl Into<IpAddr>, port: u16, timeout: Duration) -> bool {
    let dst: IpAddr = dst.into();
    let deadline = Instant::now() + timeout;
    run_in(ns, || http_status(SocketAddr::from((dst, port)), deadline))
        .ok()
        .flatten()
        .is_some_and(|status| (200..300).contains(&status))
}

/// The status code of `GET /`, or None on any failure or timeout.
fn http_status(dst: SocketAddr, deadline: Instant) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&dst, remaining(deadline)?).ok()?;
    stream.set_write_timeout(remaining(deadline)).ok()?;
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {}\r\nUser-Agent: vpclab-check\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        match dst {
            SocketAddr::V4(a) => a.ip().to_string(),
            SocketAddr::V6(a) => format!("[{}]", a.ip()),
        }
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut head = Vec::with_capacity(128);
    let mut buf = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < MAX_STATUS_LINE {
        stream.set_read_timeout(Some(remaining(deadline)?)).ok()?;
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    parse_status(&head)
}

/// `HTTP/1.x NNN ...` -> NNN.
fn parse_status(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_ascii_whitespace();
    if !parts.next()?.starts_with("HTTP/") {
        return None;
    }
    let code = parts.next()?;
    (code.len() == 3).then_some(())?;
    code.parse().ok()
}

/// True iff one real `ping` (run with `ip netns exec NS`) gets its echo reply within
/// `timeout` (rounded up to whole seconds, at least 1, as `ping -W` counts).
pub fn probe_icmp(ns: &str, dst: impl Into<IpAddr>, timeout: Duration) -> bool {
    let dst: IpAddr = dst.into();
    if !path(ns).exists() {
        return false;
    }
    let secs = timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0);
    let secs = secs.max(1);
    let child = Command::new("ip")
        .args(["netns", "exec", ns, "ping", "-n", "-q", "-c", "1", "-W"])
        .arg(secs.to_string())
        .arg(dst.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        return false;
    };
    // ping bounds itself with -W; this is the backstop should it ever hang (e.g. on DNS).
    let deadline = Instant::now() + Duration::from_secs(secs) + Duration::from_secs(2);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_status;

    #[test]
    fn status_line_parses() {
        assert_eq!(parse_status(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(parse_status(b"HTTP/1.0 404 Not Found\r\n"), Some(404));
        assert_eq!(parse_status(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(parse_status(b"HTTP/1.1 20000 OK\r\n"), None);
        assert_eq!(parse_status(b""), None);
    }
}
