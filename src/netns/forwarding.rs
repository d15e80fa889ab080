//! An instance whose OS forwards (a NAT instance, an appliance): IPv4 forwarding on, ICMP
//! redirects and reverse-path filtering off (a forwarded packet leaves by the `eth0` it came
//! in on, which is normal behind a VPC router), and for a NAT instance nftables masquerade,
//! as one would set it up on EC2.

use std::io::Write as _;
use std::process::{Command, Stdio};

use super::errors::NetnsError;
use super::host::{write_sysctl, IFNAME};
use super::namespace::run_in;

const SYSCTLS: &[(&str, &str)] = &[
    ("net/ipv4/ip_forward", "1"),
    ("net/ipv4/conf/all/send_redirects", "0"),
    ("net/ipv4/conf/eth0/send_redirects", "0"),
    ("net/ipv4/conf/all/rp_filter", "0"),
    ("net/ipv4/conf/eth0/rp_filter", "0"),
];

/// The nftables ruleset of a NAT instance: every packet it forwards leaves from its own
/// address (ports remapped where they clash).
fn masquerade_ruleset() -> String {
    format!(
        "table ip vpclab_nat {{\n  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    oifname \"{IFNAME}\" masquerade\n  }}\n}}\n"
    )
}

/// Turns namespace `ns` into a forwarder, masquerading when `masquerade`. Blocking.
pub fn enable_forwarding(ns: &str, masquerade: bool) -> Result<(), NetnsError> {
    run_in(ns, || {
        SYSCTLS
            .iter()
            .try_for_each(|(key, value)| write_sysctl(ns, key, value))
    })??;
    if !masquerade {
        return Ok(());
    }
    apply_ruleset(ns, &masquerade_ruleset())
}

/// Loads nftables `ruleset` in namespace `ns` (`nft -f -`). Blocking.
pub fn apply_ruleset(ns: &str, ruleset: &str) -> Result<(), NetnsError> {
    let failed = |detail: String| NetnsError::Forwarding {
        ns: ns.to_string(),
        detail,
    };
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("run nft (is nftables installed?): {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(ruleset.as_bytes())
            .map_err(|e| failed(format!("write the ruleset to nft: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| failed(format!("wait for nft: {e}")))?;
    if !out.status.success() {
        return Err(failed(format!(
            "nft refused the ruleset: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}
