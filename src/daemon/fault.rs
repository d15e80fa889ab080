//! Daemon layer: `vpclab fault`, faults injected into a running lab. A VPN tunnel taken down
//! fails at both ends, as a broken path between the customer gateway and AWS does: the AWS
//! end (in the fabric) ignores the tunnel and the fabric counts it down at once, and the
//! customer side's interface goes from the site's router, so that the router's standby route
//! through the other tunnel takes over. Bringing it up reverses both.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::dataplane::Runtime;
use super::sites::wireguard_dir;
use crate::fabric::tunnels::TunnelRef;
use crate::netns::wireguard;
use crate::scenario::Lab;
use crate::vpn::config::file_name;

/// How long taking a customer side down waits for its wireguard-go to exit.
const WIREGUARD_EXIT_WAIT: Duration = Duration::from_secs(2);

/// A fault to inject, as the CLI asks for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Tunnel `number` (1 or 2) of VPN connection `connection`, down or back up.
    Tunnel {
        connection: String,
        number: u8,
        up: bool,
    },
}

/// Injects `fault` into the lab version `runtime` carries; returns what was done, in words.
/// Blocking (wg-quick); called within the daemon's runtime.
pub fn inject(lab: &Lab, runtime: &Runtime, fault: &Fault) -> anyhow::Result<String> {
    match fault {
        Fault::Tunnel {
            connection,
            number,
            up,
        } => {
            let t = tunnel_ref(lab, connection, *number)?;
            tokio::task::block_in_place(|| set_tunnel(lab, runtime, t, *up))
        }
    }
}

/// Tunnel `number` of connection `name`, or an error naming the valid choices.
fn tunnel_ref(lab: &Lab, name: &str, number: u8) -> anyhow::Result<TunnelRef> {
    let connection = lab
        .vpn_connection_by_name(name)
        .map_err(anyhow::Error::msg)?;
    if !(1..=2).contains(&number) {
        anyhow::bail!("VPN connection {name} has tunnels 1 and 2, not {number}");
    }
    Ok(TunnelRef {
        connection,
        index: usize::from(number - 1),
    })
}

fn set_tunnel(lab: &Lab, runtime: &Runtime, t: TunnelRef, up: bool) -> anyhow::Result<String> {
    let c = &lab.vpn_connections[t.connection];
    let tunnel = &c.tunnels[t.index];
    let site = &lab.sites[c.site];
    let router_name = &lab.internet.hosts[site.customer_gateway.router].name;
    let router = lab.netns_name(router_name);
    let file = wireguard_dir(&lab.name).join(file_name(tunnel));
    let vpn = runtime
        .vpn
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("lab {} runs no VPN tunnels", lab.name))?;
    let what = format!("tunnel {} of VPN connection {}", t.number(), c.name);
    let ends = format!(
        "AWS end {}:{}, customer side {} in {router_name}",
        tunnel.outside_ip, tunnel.aws_port, tunnel.interface
    );
    if up {
        // The AWS end first: the customer side's first handshake must not be ignored (its
        // retry would come only 5 s later).
        vpn.set_faulted(t, false);
        if !wireguard::has_interface(&router, &tunnel.interface) {
            wireguard::quick_up(&router, &file)?;
        }
        // The fabric counts it up again once the customer side is heard (its handshake).
        return Ok(format!("{what} is up again at both ends ({ends})"));
    }
    vpn.set_faulted(t, true);
    // Down now, not at the timer's next tick: no more packets are sent into it.
    runtime.compiled.tunnels.set(t, false);
    wireguard::quick_down(&router, &file)?;
    wait_gone(&wireguard::socket(&tunnel.interface));
    let other = TunnelRef {
        index: 1 - t.index,
        ..t
    };
    let then = if runtime.compiled.tunnels.is_up(other) {
        format!("traffic goes through tunnel {}", other.number())
    } else {
        format!(
            "tunnel {} is down too: the connection carries nothing",
            other.number()
        )
    };
    Ok(format!("{what} is down at both ends ({ends}); {then}"))
}

/// Waits (a little) until wireguard-go, ending, has removed its control socket.
fn wait_gone(socket: &Path) {
    let deadline = Instant::now() + WIREGUARD_EXIT_WAIT;
    while socket.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab() -> Lab {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/vpn-static.yaml");
        crate::scenario::load_file(&path).unwrap()
    }

    #[test]
    fn a_tunnel_is_named_by_connection_and_number_and_errors_name_the_choices() {
        let lab = lab();
        let t = tunnel_ref(&lab, "hq-vpn", 2).unwrap();
        assert_eq!((t.connection, t.number()), (0, 2));
        let e = tunnel_ref(&lab, "nope", 1).unwrap_err().to_string();
        assert!(e.contains("no VPN connection nope"), "{e}");
        assert!(e.contains("its VPN connections: hq-vpn"), "{e}");
        let e = tunnel_ref(&lab, "hq-vpn", 3).unwrap_err().to_string();
        assert_eq!(e, "VPN connection hq-vpn has tunnels 1 and 2, not 3");
    }

    #[test]
    fn a_fault_travels_as_one_json_line() {
        let f = Fault::Tunnel {
            connection: "hq-vpn".into(),
            number: 1,
            up: false,
        };
        let text = serde_json::to_string(&f).unwrap();
        assert_eq!(
            text,
            r#"{"kind":"tunnel","connection":"hq-vpn","number":1,"up":false}"#
        );
        assert_eq!(serde_json::from_str::<Fault>(&text).unwrap(), f);
    }
}
