//! The instance metadata service (IMDS) at 169.254.169.254:80, one per instance: an HTTP
//! listener bound inside the instance's namespace on an address of its `lo`, so that its
//! requests never reach the fabric (no SG, NACL, flow log or mirror session sees them, as in
//! AWS: aws-rules.md §2.1, §6.6). Each answer is read from the lab as it is now, so an edit
//! applied by `up` shows at once. IMDSv2 is optional, as AWS's default: `PUT
//! /latest/api/token` issues a session token, a GET without a token is served (IMDSv1), a GET
//! with an unknown or expired token gets 401. The documents themselves are `documents`.

mod documents;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Read as _;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

use super::dataplane::Runtime;
use crate::netns::services::accept_loop;
use crate::scenario::{InstanceId, Lab};
use documents::document;

/// Where every instance finds its metadata.
pub const ADDRESS: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
pub const PORT: u16 = 80;

/// Largest request head read before giving up on a client.
const MAX_HEAD: usize = 8 * 1024;
/// Time a client has to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// A token lives 1 second to 6 hours (AWS's bounds).
const MAX_TOKEN_TTL: u64 = 21_600;
/// Live tokens kept per instance; past this the oldest go first.
const MAX_TOKENS: usize = 1024;
const TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";
const TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";

/// Serves the metadata of instance `name` on `listener` (bound by `netns::listen_on_lo`) until
/// the task is aborted. Must be called within the daemon's runtime.
pub fn spawn(
    listener: std::net::TcpListener,
    name: String,
    shared: Arc<ArcSwap<Runtime>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("vpclab: metadata service of {name}: {e}");
                return;
            }
        };
        let service = Arc::new(Service {
            name,
            shared,
            tokens: Mutex::new(Tokens::default()),
        });
        accept_loop(listener, move |stream| serve(stream, service.clone())).await;
    })
}

/// What every connection of one instance's listener shares.
struct Service {
    name: String,
    shared: Arc<ArcSwap<Runtime>>,
    tokens: Mutex<Tokens>,
}

/// Reads one request head (bounded in size and time), answers it and closes.
async fn serve(mut stream: tokio::net::TcpStream, service: Arc<Service>) {
    let mut head = Vec::with_capacity(1024);
    let read = tokio::time::timeout(HEAD_TIMEOUT, async {
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
            let n = stream.read(&mut buf).await.ok()?;
            if n == 0 || head.len() + n > MAX_HEAD {
                return None;
            }
            head.extend_from_slice(&buf[..n]);
        }
        Some(())
    })
    .await;
    if !matches!(read, Ok(Some(()))) {
        return;
    }
    let response = match Request::parse(&head) {
        None => Response::error(400),
        Some(request) => {
            let runtime = service.shared.load();
            let lab = &runtime.compiled.lab;
            let instance = lab.instance_by_name(&service.name);
            // A poisoned lock only means a panic elsewhere; the tokens are still consistent.
            let mut tokens = service.tokens.lock().unwrap_or_else(|e| e.into_inner());
            handle(
                lab,
                instance,
                &request,
                &mut tokens,
                Instant::now(),
                random_token,
            )
        }
    };
    // The client may be gone already; there is nobody to tell.
    let _ = stream.write_all(response.to_http().as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// An HTTP request, as far as the metadata service cares.
#[derive(Debug, PartialEq)]
struct Request<'a> {
    method: &'a str,
    path: &'a str,
    token: Option<&'a str>,
    token_ttl: Option<&'a str>,
    forwarded: bool,
}

impl<'a> Request<'a> {
    /// The request line and the headers that matter; None if it is not HTTP/1.x.
    fn parse(head: &'a [u8]) -> Option<Request<'a>> {
        let text = std::str::from_utf8(head).ok()?;
        let mut lines = text.lines().map(|l| l.trim_end_matches('\r'));
        let mut parts = lines.next()?.split(' ');
        let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
        if !version.starts_with("HTTP/1.") || parts.next().is_some() {
            return None;
        }
        let path = target.split(['?', '#']).next().unwrap_or(target);
        let mut request = Request {
            method,
            path,
            token: None,
            token_ttl: None,
            forwarded: false,
        };
        for line in lines.take_while(|l| !l.is_empty()) {
            let (name, value) = line.split_once(':')?;
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                TOKEN_HEADER => request.token = Some(value),
                TTL_HEADER => request.token_ttl = Some(value),
                "x-forwarded-for" => request.forwarded = true,
                _ => {}
            }
        }
        Some(request)
    }
}

#[derive(Debug, PartialEq)]
struct Response {
    status: u16,
    body: String,
    /// Sent back with a token: its lifetime in seconds.
    token_ttl: Option<u64>,
    /// HEAD: the headers only.
    head_only: bool,
}

impl Response {
    fn ok(body: String) -> Response {
        Response {
            status: 200,
            body,
            token_ttl: None,
            head_only: false,
        }
    }

    /// An error with AWS's small HTML page.
    fn error(status: u16) -> Response {
        let title = format!("{status} - {}", reason(status));
        Response {
            status,
            body: format!(
                "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Transitional//EN\"\n\t\"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd\">\n<html xmlns=\"http://www.w3.org/1999/xhtml\" xml:lang=\"en\" lang=\"en\">\n <head>\n  <title>{title}</title>\n </head>\n <body>\n  <h1>{title}</h1>\n </body>\n</html>\n"
            ),
            token_ttl: None,
            head_only: false,
        }
    }

    fn to_http(&self) -> String {
        let kind = if self.status == 200 {
            "text/plain"
        } else {
            "text/html"
        };
        let mut text = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nServer: EC2ws\r\nConnection: close\r\n",
            self.status,
            reason(self.status),
            self.body.len()
        );
        if let Some(ttl) = self.token_ttl {
            let _ = write!(text, "X-Aws-Ec2-Metadata-Token-Ttl-Seconds: {ttl}\r\n");
        }
        text.push_str("\r\n");
        if !self.head_only {
            text.push_str(&self.body);
        }
        text
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Internal Server Error",
    }
}

/// The session tokens of one instance, each with its expiry.
#[derive(Default)]
struct Tokens(HashMap<String, Instant>);

impl Tokens {
    fn issue(&mut self, token: String, ttl: Duration, now: Instant) {
        self.0.retain(|_, expiry| *expiry > now);
        while self.0.len() >= MAX_TOKENS {
            let Some(oldest) = self
                .0
                .iter()
                .min_by_key(|(_, e)| **e)
                .map(|(t, _)| t.clone())
            else {
                break;
            };
            self.0.remove(&oldest);
        }
        self.0.insert(token, now + ttl);
    }

    fn valid(&self, token: &str, now: Instant) -> bool {
        self.0.get(token).is_some_and(|expiry| *expiry > now)
    }
}

/// 24 random bytes, in hex. None if the kernel's random source cannot be read.
fn random_token() -> Option<String> {
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .ok()?;
    Some(bytes.iter().fold(String::with_capacity(48), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    }))
}

/// The answer to `request` from `instance` (None: it left the lab): a token for `PUT
/// /latest/api/token`, metadata for GET and HEAD, 401 for a GET with a token that is not live.
fn handle(
    lab: &Lab,
    instance: Option<InstanceId>,
    request: &Request<'_>,
    tokens: &mut Tokens,
    now: Instant,
    fresh_token: impl FnOnce() -> Option<String>,
) -> Response {
    let Some(instance) = instance else {
        return Response::error(404);
    };
    match request.method {
        "PUT" if request.path == "/latest/api/token" => {
            if request.forwarded {
                // AWS refuses tokens to requests that went through a proxy.
                return Response::error(403);
            }
            let ttl = request.token_ttl.and_then(|t| t.parse::<u64>().ok());
            let Some(ttl) = ttl.filter(|t| (1..=MAX_TOKEN_TTL).contains(t)) else {
                return Response::error(400);
            };
            let Some(token) = fresh_token() else {
                return Response::error(500);
            };
            tokens.issue(token.clone(), Duration::from_secs(ttl), now);
            Response {
                token_ttl: Some(ttl),
                ..Response::ok(token)
            }
        }
        "GET" | "HEAD" => {
            if request.token.is_some_and(|t| !tokens.valid(t, now)) {
                return Response::error(401);
            }
            let mut response = match document(lab, instance, request.path) {
                Some(body) => Response::ok(body),
                None => Response::error(404),
            };
            response.head_only = request.method == "HEAD";
            response
        }
        _ => Response::error(405),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::load_str;

    fn lab() -> Lab {
        let text = "name: meta\nvpcs:\n  a:\n    cidr: 10.0.0.0/16\n    subnets: { s: { cidr: 10.0.0.0/24 } }\n    instances: { web1: { subnet: s, private_ip: 10.0.0.10 } }\n";
        load_str(text, "meta.yaml").unwrap_or_else(|e| panic!("{e}"))
    }

    fn request<'a>(method: &'a str, path: &'a str) -> Request<'a> {
        Request {
            method,
            path,
            token: None,
            token_ttl: None,
            forwarded: false,
        }
    }

    #[test]
    fn imdsv2_tokens_are_optional_but_checked_when_given() {
        let lab = lab();
        let web1 = lab.instance_by_name("web1");
        let mut tokens = Tokens::default();
        let now = Instant::now();
        let fresh = || Some("t0k3n".to_string());
        let path = "/latest/meta-data/local-ipv4";

        let put = Request {
            token_ttl: Some("21600"),
            ..request("PUT", "/latest/api/token")
        };
        let issued = handle(&lab, web1, &put, &mut tokens, now, fresh);
        assert_eq!((issued.status, issued.body.as_str()), (200, "t0k3n"));
        assert!(issued
            .to_http()
            .contains("X-Aws-Ec2-Metadata-Token-Ttl-Seconds: 21600\r\n"));

        let v1 = handle(&lab, web1, &request("GET", path), &mut tokens, now, fresh);
        assert_eq!((v1.status, v1.body.as_str()), (200, "10.0.0.10"));
        let v2 = Request {
            token: Some("t0k3n"),
            ..request("GET", path)
        };
        assert_eq!(handle(&lab, web1, &v2, &mut tokens, now, fresh).status, 200);
        let later = now + Duration::from_secs(21_601);
        assert_eq!(
            handle(&lab, web1, &v2, &mut tokens, later, fresh).status,
            401
        );
        let wrong = Request {
            token: Some("nope"),
            ..request("GET", path)
        };
        let denied = handle(&lab, web1, &wrong, &mut tokens, now, fresh);
        assert_eq!(denied.status, 401);
        assert!(denied
            .to_http()
            .starts_with("HTTP/1.1 401 Unauthorized\r\n"));

        // A TTL is required and bounded; a proxied PUT is refused; other methods are not allowed.
        for ttl in [None, Some("0"), Some("21601"), Some("x")] {
            let put = Request {
                token_ttl: ttl,
                ..request("PUT", "/latest/api/token")
            };
            assert_eq!(
                handle(&lab, web1, &put, &mut tokens, now, fresh).status,
                400
            );
        }
        let proxied = Request {
            forwarded: true,
            ..put
        };
        assert_eq!(
            handle(&lab, web1, &proxied, &mut tokens, now, fresh).status,
            403
        );
        let post = request("POST", path);
        assert_eq!(
            handle(&lab, web1, &post, &mut tokens, now, fresh).status,
            405
        );
        let head = handle(&lab, web1, &request("HEAD", path), &mut tokens, now, fresh);
        assert!(head.to_http().ends_with("Connection: close\r\n\r\n"));
        let gone = handle(&lab, None, &request("GET", path), &mut tokens, now, fresh);
        assert_eq!(gone.status, 404);
    }

    #[test]
    fn tokens_are_bounded() {
        let mut tokens = Tokens::default();
        let now = Instant::now();
        for n in 0..MAX_TOKENS + 10 {
            let at = now + Duration::from_millis(n as u64);
            tokens.issue(n.to_string(), Duration::from_secs(60), at);
        }
        assert_eq!(tokens.0.len(), MAX_TOKENS);
        assert!(!tokens.valid("0", now) && tokens.valid(&(MAX_TOKENS + 9).to_string(), now));
        assert_eq!(random_token().map(|t| t.len()), Some(48));
    }

    #[test]
    fn parses_what_curl_sends() {
        let head = b"PUT /latest/api/token?x=1 HTTP/1.1\r\nHost: 169.254.169.254\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\nX-aws-ec2-metadata-token-ttl-seconds: 60\r\n\r\n";
        let parsed = Request::parse(head).unwrap();
        assert_eq!(
            parsed,
            Request {
                token_ttl: Some("60"),
                ..request("PUT", "/latest/api/token")
            }
        );
        let head = b"GET /latest/meta-data/ HTTP/1.0\nx-aws-ec2-metadata-token:  abc \n\n";
        assert_eq!(Request::parse(head).unwrap().token, Some("abc"));
        assert_eq!(Request::parse(b"GET /\r\n\r\n"), None);
        assert_eq!(Request::parse(b"\xff\xfe\r\n\r\n"), None);
        assert_eq!(Request::parse(b"GET / HTTP/1.1\r\nbroken\r\n\r\n"), None);
    }
}
