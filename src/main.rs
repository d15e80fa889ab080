//! The `vpclab` binary: everything is in the library's `cli` module.

fn main() {
    std::process::exit(vpclab::cli::main());
}
