//! The `vpclab` binary: everything is in the library's `cli` module.

fn main() {
    // SAFETY: restoring the default SIGPIPE action before any thread starts, so that
    // `vpclab logs | head` ends quietly instead of failing on a closed pipe.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::process::exit(vpclab::cli::main());
}
