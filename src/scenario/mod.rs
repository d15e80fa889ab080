//! Scenario layer: the YAML file format, parsing with positions, validation into a typed `Lab`.
//! Touches no OS state.

pub mod lab;

pub use lab::*;
