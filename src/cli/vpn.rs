//! `vpclab vpn config CONNECTION`: the customer side of a VPN connection of a running lab, as
//! wg-quick files (AWS's "Download configuration"), with the keys the lab uses.

use anyhow::Context as _;
use clap::Subcommand;

use super::labs::pick_lab;
use crate::daemon::state::{scenario_copy, LabState};
use crate::daemon::vpn_keys;
use crate::netns;
use crate::scenario;
use crate::vpn::config::{connection_files, tunnel_file};

#[derive(Subcommand)]
pub enum VpnVerb {
    /// Print the customer gateway's configuration of a VPN connection: both tunnels (two
    /// wg-quick files, each under a header), or with --tunnel one valid wg-quick file.
    Config {
        connection: String,
        #[arg(long)]
        lab: Option<String>,
        /// 1 (the active tunnel) or 2 (the standby).
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=2))]
        tunnel: Option<u8>,
    },
}

pub fn vpn(verb: VpnVerb) -> anyhow::Result<i32> {
    match verb {
        VpnVerb::Config {
            connection,
            lab,
            tunnel,
        } => config(&connection, lab.as_deref(), tunnel),
    }
}

fn config(connection: &str, lab: Option<&str>, tunnel: Option<u8>) -> anyhow::Result<i32> {
    // The keys are readable by root only.
    netns::require_root()?;
    let name = pick_lab(lab)?;
    let state = LabState::load(&name)?;
    let path = scenario_copy(&name);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    let mut lab = scenario::load_str(&text, &state.source).map_err(|e| anyhow::anyhow!("{e}"))?;
    vpn_keys::recorded(&mut lab)?;
    let id = lab
        .vpn_connection_by_name(connection)
        .map_err(anyhow::Error::msg)?;
    match tunnel {
        Some(n) => print!("{}", tunnel_file(&lab, id, n)),
        None => print!("{}", connection_files(&lab, id)),
    }
    Ok(0)
}
