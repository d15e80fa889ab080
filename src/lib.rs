//! vpclab: AWS VPC networks out of real Linux parts. Layers point one way:
//! scenario -> model/fabric (pure) -> wire -> netns (Linux plumbing) -> daemon -> cli.

pub mod bgp;
pub mod cli;
pub mod daemon;
pub mod fabric;
pub mod flowlog;
pub mod netns;
pub mod scenario;
pub mod vpn;
pub mod wire;
