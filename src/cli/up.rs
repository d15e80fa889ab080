//! `vpclab up` and `vpclab validate`: load, then start the daemon or hand it the edit.

use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::labs::{print_gateways, print_hosts, print_tunnels};
use super::read_scenario;
use crate::daemon::control::{call, Reply, Request};
use crate::daemon::state::{lab_dir, log_file, scenario_copy, state_file, LabState};
use crate::daemon::Tuning;
use crate::netns;
use crate::scenario;

/// How a new lab's data plane runs (`up` hands them to the daemon it starts).
#[derive(clap::Args, Debug, Default)]
pub struct TuningArgs {
    /// Threads that carry packets (default: as many as cores, at most 2).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    packet_threads: Option<u16>,
    /// Keep polling the hosts' interfaces this many microseconds after the last packet before
    /// sleeping: lower latency (waking a sleeping thread is slow on a VM) for a core's worth
    /// of CPU while traffic flows (default: 0, off).
    #[arg(long, value_name = "MICROSECONDS")]
    busy_poll: Option<u64>,
}

impl TuningArgs {
    pub fn tuning(&self) -> Tuning {
        let default = Tuning::default();
        Tuning {
            threads: self.packet_threads.map_or(default.threads, usize::from),
            busy_poll: self
                .busy_poll
                .map_or(default.busy_poll, Duration::from_micros),
        }
    }

    /// The same options for the daemon's command line.
    fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(n) = self.packet_threads {
            args.extend(["--packet-threads".to_string(), n.to_string()]);
        }
        if let Some(us) = self.busy_poll {
            args.extend(["--busy-poll".to_string(), us.to_string()]);
        }
        args
    }

    fn given(&self) -> bool {
        self.packet_threads.is_some() || self.busy_poll.is_some()
    }
}

/// How long `up` waits for the daemon to build a lab.
const BUILD_TIMEOUT: Duration = Duration::from_secs(300);

pub fn validate(file: &str) -> anyhow::Result<i32> {
    let (text, source) = read_scenario(Some(file))?;
    match scenario::load_str(&text, &source) {
        Ok(lab) => {
            println!(
                "{source}: lab {} is valid: {} VPCs, {} subnets, {} instances, {} internet hosts, {} NAT gateways, {} peerings, {} expectations",
                lab.name,
                lab.vpcs.len(),
                lab.subnets.len(),
                lab.instances.len(),
                lab.internet.hosts.len(),
                lab.nat_gateways.len(),
                lab.peerings.len(),
                lab.expectations.len()
            );
            Ok(0)
        }
        Err(errors) => {
            eprintln!("{errors}");
            Ok(2)
        }
    }
}

pub fn up(file: Option<&str>, foreground: bool, tuning: &TuningArgs) -> anyhow::Result<i32> {
    let (text, source) = read_scenario(file)?;
    let lab = match scenario::load_str(&text, &source) {
        Ok(lab) => lab,
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("nothing was created");
            return Ok(2);
        }
    };
    netns::require_root()?;
    if state_file(&lab.name).exists() {
        let state = LabState::load(&lab.name)?;
        if !state.daemon_alive() {
            anyhow::bail!(
                "lab {} has leftovers of an earlier run whose daemon is gone; run `vpclab down {}` first",
                lab.name,
                lab.name
            );
        }
        if tuning.given() {
            eprintln!(
                "vpclab: lab {} is running: --packet-threads and --busy-poll take effect when a lab starts",
                lab.name
            );
        }
        write_copy(&lab.name, &text)?;
        return match call(&lab.name, &Request::Apply, BUILD_TIMEOUT)? {
            Reply::Applied { changes } => {
                if changes.is_empty() {
                    println!("lab {}: no change", lab.name);
                } else {
                    for change in changes {
                        println!("lab {}: {change}", lab.name);
                    }
                }
                status_table(&lab.name)?;
                Ok(0)
            }
            Reply::Error { message } => anyhow::bail!("apply to lab {}: {message}", lab.name),
            other => anyhow::bail!("unexpected reply from the daemon: {other:?}"),
        };
    }
    std::fs::create_dir_all(lab_dir(&lab.name))
        .with_context(|| format!("create {}", lab_dir(&lab.name).display()))?;
    write_copy(&lab.name, &text)?;
    if foreground {
        println!("lab {}: building {} hosts; the daemon stays in the foreground (Ctrl-C stops it; then run `vpclab down {}`)", lab.name, lab.host_count(), lab.name);
        crate::daemon::run_daemon(&lab.name, &source, tuning.tuning())?;
        return Ok(0);
    }
    start_daemon(&lab.name, &source, tuning)?;
    status_table(&lab.name)?;
    println!();
    println!("explore: vpclab exec HOST -- ping -c1 ADDRESS | vpclab explain FROM TO --protocol tcp --port 22");
    let check = file
        .map(|f| format!("vpclab check {f}"))
        .unwrap_or_else(|| "vpclab check".into());
    println!(
        "         {check} | vpclab status | vpclab down {}",
        lab.name
    );
    Ok(0)
}

fn write_copy(lab: &str, text: &str) -> anyhow::Result<()> {
    let path = scenario_copy(lab);
    std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))
}

/// Starts the daemon detached (its own session, output to daemon.log) and waits until it
/// answers, which it does only once every host exists.
fn start_daemon(lab: &str, source: &str, tuning: &TuningArgs) -> anyhow::Result<()> {
    let log = std::fs::File::create(log_file(lab))
        .with_context(|| format!("create {}", log_file(lab).display()))?;
    let exe = std::env::current_exe().context("find the vpclab executable")?;
    let mut command = Command::new(exe);
    command
        .args(["daemon", "--lab", lab, "--source", source])
        .args(tuning.to_args())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: setsid is async-signal-safe; it detaches the daemon from our terminal and session.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setsid()
                .map(|_| ())
                .map_err(std::io::Error::from)
        });
    }
    let mut child = command.spawn().context("start the daemon")?;
    let deadline = Instant::now() + BUILD_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait()? {
            let log = std::fs::read_to_string(log_file(lab)).unwrap_or_default();
            let _ = std::fs::remove_dir_all(lab_dir(lab));
            anyhow::bail!("building lab {lab} failed ({status}):\n{}", log.trim_end());
        }
        if let Ok(Reply::Status { .. }) = call(lab, &Request::Status, Duration::from_secs(5)) {
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "the daemon of lab {lab} did not come up within {BUILD_TIMEOUT:?}; see {}",
                log_file(lab).display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn status_table(lab: &str) -> anyhow::Result<()> {
    match call(lab, &Request::Status, Duration::from_secs(10))? {
        Reply::Status {
            lab,
            hosts,
            gateways,
            tunnels,
            ..
        } => {
            println!("lab {lab}: {} hosts up", hosts.len());
            print_hosts(&hosts);
            print_gateways(&gateways);
            print_tunnels(&tunnels);
            Ok(())
        }
        other => anyhow::bail!("unexpected reply from the daemon: {other:?}"),
    }
}
