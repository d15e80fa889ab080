//! Named network namespaces, as `ip netns` makes them: a bind mount of a namespace file at
//! `/run/netns/NAME`. Entering one happens only on a dedicated std thread (never a tokio worker).

use super::errors::NetnsError;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where named namespaces live (shared with iproute2).
pub const RUN_DIR: &str = "/run/netns";

/// How long [`kill_all_in`] waits for killed processes to leave the namespace.
const KILL_WAIT: Duration = Duration::from_secs(2);

/// Serialises the "make /run/netns a shared mount" step inside this process, so that two
/// threads creating namespaces at once do not stack two bind mounts.
static RUN_DIR_LOCK: Mutex<()> = Mutex::new(());

/// The bind-mount file of namespace `name`.
pub fn path(name: &str) -> PathBuf {
    Path::new(RUN_DIR).join(name)
}

/// True when `/run/netns/NAME` exists.
pub fn exists(name: &str) -> bool {
    valid_name(name).is_ok() && fs::symlink_metadata(path(name)).is_ok()
}

/// Rejects names that are not one plain path component (no `/`, no `..`), so a name can never
/// point outside `/run/netns` or `/etc/netns`.
pub(crate) fn valid_name(name: &str) -> Result<(), NetnsError> {
    let reason = if name.is_empty() {
        Some("empty")
    } else if name.len() > 200 {
        Some("longer than 200 characters")
    } else if name.starts_with('.') {
        Some("starts with '.'")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        Some("only letters, digits, '-', '_' and '.' are allowed")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(NetnsError::InvalidName {
            name: name.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Creates the named namespace `name`, like `ip netns add NAME`.
/// Fails with [`NetnsError::AlreadyExists`] when `/run/netns/NAME` is already there.
pub fn create(name: &str) -> Result<(), NetnsError> {
    valid_name(name)?;
    prepare_run_dir()?;
    let file = path(name);
    let created = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(&file);
    match created {
        Ok(f) => drop(f),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(NetnsError::AlreadyExists {
                name: name.to_string(),
            })
        }
        Err(source) => {
            return Err(NetnsError::Create {
                name: name.to_string(),
                op: "create the mount point file",
                source,
            })
        }
    }
    let target = file.clone();
    let joined = std::thread::Builder::new()
        .name(format!("netns-create-{name}"))
        .spawn(move || -> Result<(), (&'static str, io::Error)> {
            // This thread exists only to own the new namespace while it is bind-mounted;
            // it ends right after, so no other work ever runs in a half-made namespace.
            unshare(CloneFlags::CLONE_NEWNET).map_err(|e| ("unshare(CLONE_NEWNET)", e.into()))?;
            // /proc/self would name the thread-group leader's namespace, not this thread's.
            mount(
                Some("/proc/thread-self/ns/net"),
                &target,
                Some("none"),
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| ("bind-mount /proc/thread-self/ns/net", e.into()))
        })
        .map(|h| h.join());
    let outcome = match joined {
        Ok(Ok(Ok(()))) => return Ok(()),
        Ok(Ok(Err((op, source)))) => NetnsError::Create {
            name: name.to_string(),
            op,
            source,
        },
        Ok(Err(_panic)) => NetnsError::ThreadPanicked {
            name: name.to_string(),
        },
        Err(source) => NetnsError::Create {
            name: name.to_string(),
            op: "spawn a thread",
            source,
        },
    };
    let _ = fs::remove_file(&file);
    Err(outcome)
}

/// Makes `/run/netns` exist and be a shared mount, as iproute2 does, so that namespace bind
/// mounts made later propagate to every mount namespace (e.g. the ones `ip netns exec` makes).
fn prepare_run_dir() -> Result<(), NetnsError> {
    let _guard = RUN_DIR_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let err = |source: io::Error| NetnsError::PrepareRunDir { source };
    fs::create_dir_all(RUN_DIR).map_err(err)?;
    let make_shared = || {
        mount(
            Some(""),
            RUN_DIR,
            Some("none"),
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    match make_shared() {
        Ok(()) => Ok(()),
        // EINVAL: /run/netns is not a mount point yet. Bind it onto itself, then retry.
        Err(nix::errno::Errno::EINVAL) => {
            mount(
                Some(RUN_DIR),
                RUN_DIR,
                Some("none"),
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(|e| err(e.into()))?;
            make_shared().map_err(|e| err(e.into()))
        }
        Err(e) => Err(err(e.into())),
    }
}

/// Deletes the named namespace, like `ip netns delete NAME`. A missing namespace is not an
/// error. The namespace itself lives on while a process or an open fd still holds it.
pub fn delete(name: &str) -> Result<(), NetnsError> {
    valid_name(name)?;
    let file = path(name);
    match umount2(&file, MntFlags::MNT_DETACH) {
        // EINVAL: not a mount point (a leftover file); ENOENT: already gone.
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => {
            return Err(NetnsError::Delete {
                name: name.to_string(),
                op: "umount2(MNT_DETACH)",
                source: e.into(),
            })
        }
    }
    match fs::remove_file(&file) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(NetnsError::Delete {
            name: name.to_string(),
            op: "unlink",
            source,
        }),
    }
}

/// Opens the namespace file, mapping ENOENT to [`NetnsError::NotFound`].
fn open(name: &str) -> Result<File, NetnsError> {
    valid_name(name)?;
    File::open(path(name)).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            NetnsError::NotFound {
                name: name.to_string(),
            }
        } else {
            NetnsError::Enter {
                name: name.to_string(),
                source,
            }
        }
    })
}

/// Runs `f` on a fresh scoped std thread that has joined namespace `name`, and returns its
/// result. Blocks the caller until `f` returns: from async code, call it in `spawn_blocking`.
/// Sockets and TUN fds made by `f` stay in `name` wherever they are used afterwards.
pub fn run_in<T: Send>(name: &str, f: impl FnOnce() -> T + Send) -> Result<T, NetnsError> {
    let ns = open(name)?;
    let joined = std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .name(format!("netns-{name}"))
            .spawn_scoped(s, move || {
                setns(&ns, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
                drop(ns);
                Ok::<T, io::Error>(f())
            });
        handle.map(|h| h.join())
    });
    match joined {
        Ok(Ok(Ok(value))) => Ok(value),
        Ok(Ok(Err(source))) | Err(source) => Err(NetnsError::Enter {
            name: name.to_string(),
            source,
        }),
        Ok(Err(_panic)) => Err(NetnsError::ThreadPanicked {
            name: name.to_string(),
        }),
    }
}

/// Device and inode of a namespace file: equal pairs mean the same namespace.
fn ns_identity(p: &Path) -> Option<(u64, u64)> {
    fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
}

/// Pids of the processes (other than this one) whose network namespace is `name`.
/// Empty when the namespace does not exist.
pub fn pids_in(name: &str) -> Vec<i32> {
    if valid_name(name).is_err() {
        return Vec::new();
    }
    let Some(target) = ns_identity(&path(name)) else {
        return Vec::new();
    };
    let me = std::process::id() as i32;
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<i32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            ns_identity(&Path::new("/proc").join(pid.to_string()).join("ns/net")) == Some(target)
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// Pids of the processes (other than this one) in each of the namespaces `names` (missing ones
/// have none), by one scan of `/proc`: a lab of a thousand hosts is one pass, not a thousand.
pub fn pids_in_each(names: &[String]) -> HashMap<&str, Vec<i32>> {
    let wanted: HashMap<(u64, u64), &str> = names
        .iter()
        .filter(|n| valid_name(n).is_ok())
        .filter_map(|n| Some((ns_identity(&path(n))?, n.as_str())))
        .collect();
    let mut found: HashMap<&str, Vec<i32>> = HashMap::new();
    if wanted.is_empty() {
        return found;
    }
    let me = std::process::id() as i32;
    let Ok(entries) = fs::read_dir("/proc") else {
        return found;
    };
    for pid in entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok()) {
        if pid == me {
            continue;
        }
        let ns = ns_identity(&Path::new("/proc").join(pid.to_string()).join("ns/net"));
        if let Some(name) = ns.and_then(|id| wanted.get(&id)) {
            found.entry(name).or_default().push(pid);
        }
    }
    for pids in found.values_mut() {
        pids.sort_unstable();
    }
    found
}

/// [`kill_all_in`] for many namespaces at once, with one scan of `/proc` per round. Returns
/// how many processes were in them at first.
pub fn kill_all_in_each(names: &[String]) -> usize {
    let deadline = Instant::now() + KILL_WAIT;
    let mut first = None;
    loop {
        let pids: Vec<i32> = pids_in_each(names).into_values().flatten().collect();
        first.get_or_insert(pids.len());
        if pids.is_empty() || Instant::now() >= deadline {
            return first.unwrap_or(0);
        }
        for pid in pids {
            // ESRCH (already gone) is the outcome we want; nothing else is actionable here.
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGKILLs every process in namespace `name` and waits (at most 2 s) until none is left.
/// Processes that are our own children still need reaping by their owner.
pub fn kill_all_in(name: &str) {
    let deadline = Instant::now() + KILL_WAIT;
    loop {
        let pids = pids_in(name);
        if pids.is_empty() || Instant::now() >= deadline {
            return;
        }
        for pid in pids {
            // ESRCH (already gone) is the outcome we want; nothing else is actionable here.
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `future` to completion on a small runtime of the calling thread's own, so that the
/// sockets it opens (netlink) are opened in the namespace this thread entered with `run_in`.
pub(super) fn block_on_here<F: std::future::Future>(
    ns: &str,
    future: F,
) -> Result<F::Output, NetnsError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| NetnsError::Runtime {
            ns: ns.to_string(),
            source,
        })?;
    Ok(rt.block_on(future))
}
