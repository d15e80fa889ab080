//! `vpclab fault`: inject a fault into a running lab through its daemon, which owns both the
//! fabric and the processes the fault touches.

use std::time::Duration;

use clap::{Subcommand, ValueEnum};

use super::labs::pick_lab;
use crate::daemon::control::{call, Reply, Request};
use crate::daemon::fault::Fault;

#[derive(Subcommand)]
pub enum FaultVerb {
    /// Take tunnel N (1 or 2) of a VPN connection down at both ends (the AWS end ignores it,
    /// the site's router loses its interface and fails over to the other tunnel), or bring it
    /// back up.
    Tunnel {
        connection: String,
        /// 1 or 2.
        number: u8,
        state: State,
        #[arg(long)]
        lab: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum State {
    Down,
    Up,
}

/// wg-quick and wireguard-go take a moment; the daemon waits for them.
const TIMEOUT: Duration = Duration::from_secs(30);

pub fn fault(verb: FaultVerb) -> anyhow::Result<i32> {
    let (lab, fault) = match verb {
        FaultVerb::Tunnel {
            connection,
            number,
            state,
            lab,
        } => (
            lab,
            Fault::Tunnel {
                connection,
                number,
                up: matches!(state, State::Up),
            },
        ),
    };
    let lab = pick_lab(lab.as_deref())?;
    match call(&lab, &Request::Fault { fault }, TIMEOUT)? {
        Reply::Faulted { message } => {
            println!("lab {lab}: {message}");
            Ok(0)
        }
        Reply::Error { message } => anyhow::bail!("{message}"),
        other => anyhow::bail!("unexpected reply from the daemon: {other:?}"),
    }
}
