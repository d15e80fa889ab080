//! Replacing this process with a command inside a namespace, exactly as `ip netns exec` runs
//! it (including its bind mounts of `/etc/netns/NS/*` over `/etc`).

use std::ffi::CString;
use std::io;

/// Execs `ip netns exec NS ARGV...`. Returns only on failure, with the reason.
pub fn exec_in(ns: &str, argv: &[String]) -> io::Error {
    if argv.is_empty() {
        return io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("exec in netns {ns}: no command given"),
        );
    }
    // Checked here so the caller gets the reason as an error instead of ip's exit status.
    if !super::namespace::exists(ns) {
        return io::Error::new(
            io::ErrorKind::NotFound,
            format!("exec in netns {ns}: /run/netns/{ns} does not exist"),
        );
    }
    let words = ["ip", "netns", "exec", ns]
        .into_iter()
        .chain(argv.iter().map(String::as_str));
    let args: Result<Vec<CString>, _> = words.map(CString::new).collect();
    let args = match args {
        Ok(args) => args,
        Err(e) => {
            return io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("exec in netns {ns}: an argument contains a NUL byte: {e}"),
            )
        }
    };
    match nix::unistd::execvp(&args[0], &args) {
        Ok(never) => match never {},
        Err(errno) => io::Error::new(
            io::Error::from(errno).kind(),
            format!("exec `ip netns exec {ns} {}`: {errno}", argv.join(" ")),
        ),
    }
}
