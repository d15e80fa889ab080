//! Scenario layer: the YAML file format, parsing with positions, validation into a typed `Lab`.
//! Touches no OS state.

mod addresses;
mod decode;
pub mod dns;
mod error;
mod expect;
mod flowlogs;
mod internet;
pub mod ipv6;
pub mod lab;
mod load;
mod mirroring;
mod raw;
mod resolve;
mod routing;
mod security;
mod services;
mod tgw;
mod values;
mod vpn;
mod yaml;

#[cfg(test)]
mod tests;

pub use error::{LoadError, LoadErrors};
pub use lab::*;
pub use load::{load_file, load_str};
