//! What serves a simulated AWS service: moto's server (an S3-, DynamoDB-, SQS-compatible
//! implementation from PyPI) when the machine has it, else the built-in HTTP answer, so that a
//! lab still comes up, and says which it chose.

use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::scenario::Service;

/// The port every service answers on (HTTP; the lab has no TLS).
pub const SERVICE_PORT: u16 = 80;

/// How long `up` waits for a service's server to listen.
pub const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(45);

/// The Python that can run `moto.server`, looked up once per daemon.
fn moto_python() -> Option<&'static str> {
    static FOUND: OnceLock<Option<String>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            let ok = Command::new("python3")
                .args(["-c", "import moto.server"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            ok.then(|| "python3".to_string())
        })
        .as_deref()
}

/// The built-in services and the `run:` command of a service host.
pub fn server() -> (Vec<Service>, Option<String>) {
    match moto_python() {
        Some(python) => (
            Vec::new(),
            Some(format!(
                "exec {python} -m moto.server -H 0.0.0.0 -p {SERVICE_PORT}"
            )),
        ),
        None => (vec![Service::Http(SERVICE_PORT)], None),
    }
}
