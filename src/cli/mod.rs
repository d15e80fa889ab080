//! CLI layer: clap verbs. Each verb parses its arguments and calls the layers below; no AWS
//! logic lives here.

mod check;
mod fault;
mod labs;
mod logs;
mod up;
mod vpn;

use clap::{Parser, Subcommand};

/// The scenario used when no file is given: three VPCs peered in a chain, one cross-region.
pub const DEFAULT_SCENARIO: &str = include_str!("../../scenarios/peering.yaml");
pub const DEFAULT_SCENARIO_NAME: &str = "peering.yaml (embedded)";

#[derive(Parser)]
#[command(
    name = "vpclab",
    version,
    about = "AWS VPC networks built from real Linux parts"
)]
struct Cli {
    #[command(subcommand)]
    command: Verb,
}

#[derive(Subcommand)]
enum Verb {
    /// Build a lab from a scenario file (the embedded default without one), or apply an edit.
    Up {
        file: Option<String>,
        /// Keep the daemon attached to this terminal.
        #[arg(long)]
        foreground: bool,
        #[command(flatten)]
        tuning: up::TuningArgs,
    },
    /// Remove everything a lab created, even after a crash.
    Down { lab: Option<String> },
    /// Run a command inside a host, as `ip netns exec` would.
    Exec {
        host: String,
        #[arg(long)]
        lab: Option<String>,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Prove every `expect:` line with real packets and by the model.
    Check { file: Option<String> },
    /// Show the path a packet would take, hop by hop, or where and why it stops.
    Explain {
        from: String,
        to: String,
        #[arg(long, default_value = "icmp")]
        protocol: String,
        #[arg(long)]
        port: Option<u16>,
        #[arg(long)]
        lab: Option<String>,
    },
    /// List running labs and their hosts.
    Status {
        lab: Option<String>,
        /// Also show what the NAT gateways and endpoints would have cost on AWS so far.
        #[arg(long)]
        cost: bool,
    },
    /// Read the lab's delivered VPC Flow Logs: filter them, follow them, or find port scans and
    /// top talkers.
    Logs(logs::LogsArgs),
    /// Site-to-Site VPN of a running lab: `vpn config CONNECTION [--tunnel 1|2]` prints the
    /// customer gateway's configuration (wg-quick files), as AWS's "Download configuration".
    #[command(subcommand)]
    Vpn(vpn::VpnVerb),
    /// Inject a fault into a running lab: `fault tunnel CONNECTION N down|up` takes a VPN
    /// tunnel down at both ends (the site's router fails over to the other tunnel), or back up.
    #[command(subcommand)]
    Fault(fault::FaultVerb),
    /// Parse and validate a scenario file without building anything (no root needed).
    Validate { file: String },
    /// Run the daemon of a lab (started by `up`).
    #[command(hide = true)]
    Daemon {
        #[arg(long)]
        lab: String,
        #[arg(long)]
        source: String,
        #[command(flatten)]
        tuning: up::TuningArgs,
    },
}

/// Runs the CLI; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let result = match cli.command {
        Verb::Up {
            file,
            foreground,
            tuning,
        } => up::up(file.as_deref(), foreground, &tuning),
        Verb::Down { lab } => labs::down(lab.as_deref()),
        Verb::Exec { host, lab, command } => labs::exec(&host, lab.as_deref(), &command),
        Verb::Check { file } => check::check(file.as_deref()),
        Verb::Explain {
            from,
            to,
            protocol,
            port,
            lab,
        } => labs::explain(&from, &to, &protocol, port, lab.as_deref()),
        Verb::Status { lab, cost } => labs::status(lab.as_deref(), cost),
        Verb::Logs(args) => logs::logs(args),
        Verb::Vpn(verb) => vpn::vpn(verb),
        Verb::Fault(verb) => fault::fault(verb),
        Verb::Validate { file } => up::validate(&file),
        Verb::Daemon {
            lab,
            source,
            tuning,
        } => crate::daemon::run_daemon(&lab, &source, tuning.tuning()).map(|()| 0),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vpclab: {e:#}");
            1
        }
    }
}

/// Reads a scenario file, or the embedded default; returns (text, name for messages).
fn read_scenario(file: Option<&str>) -> anyhow::Result<(String, String)> {
    match file {
        None => Ok((
            DEFAULT_SCENARIO.to_string(),
            DEFAULT_SCENARIO_NAME.to_string(),
        )),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("read scenario {path}: {e}"))?;
            Ok((text, path.to_string()))
        }
    }
}
