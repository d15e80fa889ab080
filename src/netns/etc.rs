//! Per-namespace `/etc` files (`/etc/netns/NS/{hosts,resolv.conf}`), which `ip netns exec`
//! bind-mounts over `/etc/*` for every command it runs in the namespace.

use super::errors::NetnsError;
use super::namespace::valid_name;
use std::fmt::Write as _;
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// Where iproute2 looks for per-namespace `/etc` files.
pub const ETC_DIR: &str = "/etc/netns";

/// The files this module writes, and therefore the only ones it removes.
const FILES: [&str; 2] = ["hosts", "resolv.conf"];

/// `/etc/netns/NS`.
pub fn dir(ns: &str) -> PathBuf {
    Path::new(ETC_DIR).join(ns)
}

/// Writes `/etc/netns/NS/hosts` (localhost, then one `IP NAME` line per entry; callers list
/// every host of the lab, the host itself included) and `/etc/netns/NS/resolv.conf` (the
/// nameserver and the search domain, if any). Each file is replaced atomically, so a command
/// starting meanwhile sees the old or the new file, never half.
pub fn write_host_files(
    ns: &str,
    hosts: &[(String, Ipv4Addr)],
    nameserver: Option<Ipv4Addr>,
    search: Option<&str>,
) -> Result<(), NetnsError> {
    write_host_files_text(ns, &hosts_text(hosts), nameserver, search)
}

/// As [`write_host_files`], with the hosts file's text made once by [`hosts_text`]: a lab of
/// n hosts writes n files of n lines each, and formatting them once per file would be O(n²).
/// A file that already holds exactly this text is left alone.
pub fn write_host_files_text(
    ns: &str,
    hosts_text: &str,
    nameserver: Option<Ipv4Addr>,
    search: Option<&str>,
) -> Result<(), NetnsError> {
    valid_name(ns)?;
    let dir = dir(ns);
    std::fs::create_dir_all(&dir).map_err(|source| NetnsError::HostFile {
        ns: ns.to_string(),
        op: "create",
        path: dir.clone(),
        source,
    })?;
    write_atomic(ns, &dir.join("hosts"), hosts_text)?;
    let resolv = resolv_text(nameserver, search);
    write_atomic(ns, &dir.join("resolv.conf"), &resolv)
}

/// The text of the hosts file: localhost, then one `IP NAME` line per entry.
pub fn hosts_text(hosts: &[(String, Ipv4Addr)]) -> String {
    let mut text = String::from("# written by vpclab\n127.0.0.1\tlocalhost\n");
    for (name, ip) in hosts {
        let _ = writeln!(text, "{ip}\t{name}");
    }
    text
}

/// The text of resolv.conf. Without a nameserver the file still exists, so the machine's own
/// resolver configuration never leaks into the lab.
fn resolv_text(nameserver: Option<Ipv4Addr>, search: Option<&str>) -> String {
    let mut text = String::from("# written by vpclab\n");
    if let Some(ns) = nameserver {
        let _ = writeln!(text, "nameserver {ns}");
    }
    if let Some(domain) = search {
        let _ = writeln!(text, "search {domain}");
    }
    text.push_str("options timeout:1 attempts:2\n");
    text
}

fn write_atomic(ns: &str, path: &Path, text: &str) -> Result<(), NetnsError> {
    if std::fs::read(path).is_ok_and(|old| old == text.as_bytes()) {
        return Ok(());
    }
    let tmp = path.with_extension("vpclab-tmp");
    let err = |op, path: &Path| {
        let (ns, path) = (ns.to_string(), path.to_path_buf());
        move |source| NetnsError::HostFile {
            ns,
            op,
            path,
            source,
        }
    };
    std::fs::write(&tmp, text).map_err(err("write", &tmp))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err("rename into", path)(e)
    })
}

/// Removes the files [`write_host_files`] writes, then the directory if it is left empty.
/// Missing files are fine.
pub fn remove_host_files(ns: &str) -> Result<(), NetnsError> {
    valid_name(ns)?;
    let dir = dir(ns);
    for name in FILES {
        let file = dir.join(name);
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(NetnsError::HostFile {
                    ns: ns.to_string(),
                    op: "remove",
                    path: file,
                    source,
                })
            }
        }
    }
    match std::fs::remove_dir(&dir) {
        Ok(()) => Ok(()),
        // NotFound: already gone. DirectoryNotEmpty: someone else's files; not ours to remove.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::DirectoryNotEmpty
            ) =>
        {
            Ok(())
        }
        Err(source) => Err(NetnsError::HostFile {
            ns: ns.to_string(),
            op: "remove",
            path: dir,
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lists_localhost_and_entries() {
        let hosts = vec![
            ("web1".to_string(), Ipv4Addr::new(192, 0, 2, 10)),
            ("db1".to_string(), Ipv4Addr::new(192, 0, 2, 20)),
        ];
        let text = hosts_text(&hosts);
        assert!(text.contains("127.0.0.1\tlocalhost\n"));
        assert!(text.contains("192.0.2.10\tweb1\n"));
        assert!(text.contains("192.0.2.20\tdb1\n"));
    }

    #[test]
    fn resolv_has_nameserver_only_when_given() {
        let text = resolv_text(Some(Ipv4Addr::new(10, 0, 0, 2)), Some("ec2.internal"));
        assert!(
            text.contains("nameserver 10.0.0.2\nsearch ec2.internal\n"),
            "{text}"
        );
        assert!(!resolv_text(None, None).contains("nameserver"));
        assert!(!resolv_text(None, None).contains("search"));
    }
}
