//! Daemon layer: the lab's OpenSSH. Hosts with the `ssh` service run a real sshd; every host
//! gets a client config, so that `ssh NAME` and `ssh -J bastion NAME` work as root from
//! `vpclab exec HOST --`. The lab's files live in `/run/vpclab/LAB/ssh/` and go with it at
//! `down`: one host key for the whole lab, one client key authorized on every host, a
//! known_hosts that vouches for the host key under every name and address of every ssh host,
//! and each sshd's pid file and log.

use std::fmt::Write as _;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context as _;

use super::state::{lab_dir, LabState};
use crate::netns;
use crate::scenario::{HostId, HostRef, Lab, Service};

/// The host key every sshd of the lab presents.
const HOST_KEY: &str = "ssh_host_ed25519_key";
/// The client key that every sshd of the lab admits for root.
const CLIENT_KEY: &str = "id_ed25519";

/// `/run/vpclab/LAB/ssh`.
pub fn ssh_dir(lab: &str) -> PathBuf {
    lab_dir(lab).join("ssh")
}

/// The ports host `id` runs sshd on; empty when it runs none.
fn ssh_ports(lab: &Lab, id: HostId) -> Vec<u16> {
    let mut ports: Vec<u16> = lab
        .host(id)
        .services()
        .iter()
        .filter_map(|s| match s {
            Service::Ssh(port) => Some(*port),
            _ => None,
        })
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

fn uses_ssh(lab: &Lab) -> bool {
    (0..lab.host_count()).any(|id| !ssh_ports(lab, id).is_empty())
}

/// Writes the lab's ssh files (making its two keys if missing) and every host's client config,
/// then starts sshd in each host of `started` that runs the `ssh` service. Call it after the
/// hosts' `/etc/netns` files are written: sshd and its login sessions see the files that exist
/// when it starts. A lab without ssh gets nothing (and loses client configs of an earlier edit).
pub async fn set_up(
    state: &mut LabState,
    lab: &Lab,
    started: impl IntoIterator<Item = HostId>,
) -> anyhow::Result<()> {
    if !uses_ssh(lab) {
        for id in 0..lab.host_count() {
            netns::ssh::remove_client_config(&lab.netns_name(lab.host(id).name()))?;
        }
        return Ok(());
    }
    let dir = ssh_dir(&lab.name);
    write_lab_files(lab, &dir)?;
    for id in 0..lab.host_count() {
        let ns = lab.netns_name(lab.host(id).name());
        if !state.etc_dirs.contains(&ns) {
            state.etc_dirs.push(ns.clone());
            state.save()?;
        }
        netns::ssh::write_client_config(&ns, &client_config_text(lab, id, &dir))
            .with_context(|| format!("write the ssh client config of {ns}"))?;
    }
    let config = dir.join("sshd_config");
    for id in started {
        let ports = ssh_ports(lab, id);
        if ports.is_empty() {
            continue;
        }
        let host = lab.host(id);
        let name = host.name();
        let ns = lab.netns_name(name);
        let sshd = netns::ssh::Sshd {
            ns: &ns,
            config: &config,
            listen: host.ip(),
            ports: &ports,
            pid_file: &dir.join(format!("{name}.pid")),
            log: &dir.join(format!("{name}.log")),
        };
        netns::ssh::start_sshd(&sshd)
            .await
            .with_context(|| format!("start the ssh service of host {name}"))?;
    }
    Ok(())
}

/// Keys (kept across edits), sshd_config, authorized_keys and known_hosts.
fn write_lab_files(lab: &Lab, dir: &Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("create {}", dir.display()))?;
    let host_key = keygen(
        &dir.join(HOST_KEY),
        &format!("vpclab {} host key", lab.name),
    )?;
    let client_key = keygen(&dir.join(CLIENT_KEY), &format!("root@vpclab-{}", lab.name))?;
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))
    };
    write("authorized_keys", &client_key)?;
    write("known_hosts", &known_hosts_text(lab, &host_key))?;
    write("sshd_config", &sshd_config_text(dir))
}

/// Makes an ed25519 key pair at `path` unless it is there; returns the public key line.
fn keygen(path: &Path, comment: &str) -> anyhow::Result<String> {
    let public = path.with_extension("pub");
    if !(path.exists() && public.exists()) {
        let _ = std::fs::remove_file(path);
        let _ = std::fs::remove_file(&public);
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
            .arg(path)
            .stdin(Stdio::null())
            .output()
            .context("run ssh-keygen (install openssh-client: scripts/setup.sh)")?;
        if !out.status.success() {
            anyhow::bail!(
                "ssh-keygen -t ed25519 -f {} failed ({}): {}",
                path.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
    std::fs::read_to_string(&public).with_context(|| format!("read {}", public.display()))
}

/// One sshd_config for every sshd of the lab; each gets its address, ports and pid file on its
/// command line.
fn sshd_config_text(dir: &Path) -> String {
    let dir = dir.display();
    format!(
        "# Written by vpclab: the sshd of every host of this lab that runs the `ssh` service, each\n\
         # started as `sshd -D -e -f THIS -o ListenAddress=IP -o PidFile={dir}/HOST.pid -p PORT`.\n\
         HostKey {dir}/{HOST_KEY}\n\
         AuthorizedKeysFile {dir}/authorized_keys\n\
         PermitRootLogin prohibit-password\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         UsePAM no\n\
         # ssh -J (ProxyJump) asks the jump host to open the onward TCP connection.\n\
         AllowTcpForwarding yes\n\
         X11Forwarding no\n\
         PrintMotd no\n\
         PrintLastLog no\n\
         UseDNS no\n\
         AddressFamily inet\n\
         Subsystem sftp internal-sftp\n"
    )
}

/// Every name and address of every ssh host (`[ADDR]:PORT` for ports other than 22), with the
/// lab's host key.
fn known_hosts_text(lab: &Lab, host_key: &str) -> String {
    // `ssh-ed25519 BASE64 comment`: known_hosts wants the first two fields.
    let key: Vec<&str> = host_key.split_whitespace().take(2).collect();
    let key = key.join(" ");
    let mut text = String::from(
        "# Written by vpclab: the lab's host key, under every name of every ssh host.\n",
    );
    for id in 0..lab.host_count() {
        let ports = ssh_ports(lab, id);
        if ports.is_empty() {
            continue;
        }
        let host = lab.host(id);
        let mut names = vec![host.name().to_string(), host.ip().to_string()];
        if let HostRef::Instance(_, i) = host {
            if let Some(public) = i.public_ip {
                names.push(format!("{}.public", i.name));
                names.push(public.addr.to_string());
            }
        }
        let patterns: Vec<String> = ports
            .iter()
            .flat_map(|&port| {
                names.iter().map(move |n| match port {
                    22 => n.clone(),
                    _ => format!("[{n}]:{port}"),
                })
            })
            .collect();
        let _ = writeln!(text, "{} {key}", patterns.join(","));
    }
    text
}

/// The client config of host `viewer`: each ssh host by name, at the address it has as seen
/// from `viewer`, then the lab's key and known_hosts for every connection.
fn client_config_text(lab: &Lab, viewer: HostId, dir: &Path) -> String {
    let viewer_vpc = match lab.host(viewer) {
        HostRef::Instance(_, i) => Some(i.vpc),
        HostRef::Internet(..) => None,
    };
    let mut text = format!(
        "# Written by vpclab for host {} of lab {}: `ssh NAME` reaches each host that runs the\n\
         # ssh service, as root with the lab's key; `ssh -J JUMP NAME` goes through JUMP.\n\
         # From outside its VPC an instance is named by its public IP, as AWS's public DNS\n\
         # names resolve; NAME.public is always the public IP.\n",
        lab.host(viewer).name(),
        lab.name
    );
    for id in 0..lab.host_count() {
        let ports = ssh_ports(lab, id);
        let Some(&first) = ports.first() else {
            continue;
        };
        let port = match ports.contains(&22) {
            true => String::new(),
            false => format!("    Port {first}\n"),
        };
        let host = lab.host(id);
        let (address, public) = match host {
            HostRef::Instance(_, i) => {
                let public = i.public_ip.map(|p| p.addr);
                match public {
                    Some(p) if viewer_vpc != Some(i.vpc) => (p, public),
                    _ => (i.private_ip, public),
                }
            }
            HostRef::Internet(_, h) => (h.ip, None),
        };
        let _ = write!(text, "Host {}\n    HostName {address}\n{port}", host.name());
        if let Some(public) = public {
            let _ = write!(
                text,
                "Host {}.public\n    HostName {public}\n{port}",
                host.name()
            );
        }
    }
    let dir = dir.display();
    let _ = write!(
        text,
        "Host *\n    User root\n    IdentityFile {dir}/{CLIENT_KEY}\n    IdentitiesOnly yes\n    \
         GlobalKnownHostsFile {dir}/known_hosts\n    UserKnownHostsFile /dev/null\n    \
         StrictHostKeyChecking yes\n    ConnectTimeout 5\n"
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAB: &str = r#"
name: b
internet:
  hosts:
    admin: { ip: 198.51.100.20 }
vpcs:
  a:
    cidr: 10.0.0.0/16
    internet_gateway: true
    subnets:
      pub: { cidr: 10.0.0.0/24, route_table: rt }
      priv: { cidr: 10.0.1.0/24 }
    route_tables:
      rt: { routes: [{ destination: 0.0.0.0/0, target: igw:a }] }
    instances:
      bastion: { subnet: pub, private_ip: 10.0.0.10, public_ip: true, services: [ssh] }
      app1: { subnet: priv, private_ip: 10.0.1.10, services: [ssh, "ssh:2222", http:80] }
      db1: { subnet: priv, private_ip: 10.0.1.20, services: ["ssh:2200"] }
      plain: { subnet: priv, private_ip: 10.0.1.30 }
"#;

    fn lab() -> Lab {
        crate::scenario::load_str(LAB, "b.yaml").expect("the test lab loads")
    }

    fn id(lab: &Lab, name: &str) -> HostId {
        lab.host_by_name(name).expect("the host exists")
    }

    #[test]
    fn ports_are_the_ssh_services_only() {
        let lab = lab();
        assert_eq!(ssh_ports(&lab, id(&lab, "app1")), vec![22, 2222]);
        assert_eq!(ssh_ports(&lab, id(&lab, "plain")), Vec::<u16>::new());
        assert!(uses_ssh(&lab));
    }

    #[test]
    fn known_hosts_names_every_address_and_port() {
        let lab = lab();
        let public = lab.instances[0]
            .public_ip
            .expect("bastion has a public IP")
            .addr;
        let text = known_hosts_text(&lab, "ssh-ed25519 AAAAKEY vpclab b host key\n");
        assert!(
            text.contains(&format!(
                "bastion,10.0.0.10,bastion.public,{public} ssh-ed25519 AAAAKEY\n"
            )),
            "{text}"
        );
        assert!(
            text.contains("app1,10.0.1.10,[app1]:2222,[10.0.1.10]:2222 ssh-ed25519 AAAAKEY\n"),
            "{text}"
        );
        assert!(text.contains("[db1]:2200,[10.0.1.20]:2200 ssh"), "{text}");
        assert!(!text.contains("plain"), "{text}");
    }

    #[test]
    fn the_internet_names_an_instance_by_its_public_ip_and_the_vpc_by_its_private_ip() {
        let lab = lab();
        let public = lab.instances[0]
            .public_ip
            .expect("bastion has a public IP")
            .addr;
        let dir = Path::new("/run/vpclab/b/ssh");
        let outside = client_config_text(&lab, id(&lab, "admin"), dir);
        assert!(
            outside.contains(&format!("Host bastion\n    HostName {public}\n")),
            "{outside}"
        );
        assert!(
            outside.contains("Host app1\n    HostName 10.0.1.10\nHost"),
            "{outside}"
        );
        assert!(
            outside.contains("Host db1\n    HostName 10.0.1.20\n    Port 2200\n"),
            "{outside}"
        );
        assert!(
            outside.contains("IdentityFile /run/vpclab/b/ssh/id_ed25519\n"),
            "{outside}"
        );
        assert!(outside.contains("StrictHostKeyChecking yes\n"), "{outside}");
        let inside = client_config_text(&lab, id(&lab, "app1"), dir);
        assert!(
            inside.contains("Host bastion\n    HostName 10.0.0.10\n"),
            "{inside}"
        );
        assert!(
            inside.contains(&format!("Host bastion.public\n    HostName {public}\n")),
            "{inside}"
        );
    }

    #[test]
    fn sshd_admits_keys_only_and_forwards_for_proxyjump() {
        let text = sshd_config_text(Path::new("/run/vpclab/b/ssh"));
        for line in [
            "HostKey /run/vpclab/b/ssh/ssh_host_ed25519_key\n",
            "AuthorizedKeysFile /run/vpclab/b/ssh/authorized_keys\n",
            "PasswordAuthentication no\n",
            "PermitRootLogin prohibit-password\n",
            "UsePAM no\n",
            "AllowTcpForwarding yes\n",
        ] {
            assert!(text.contains(line), "{line}: {text}");
        }
    }
}
