//! Helpers of the root-tier tests: running the `vpclab` binary, copies of scenarios under
//! other lab names, guards that tear a lab down (or stop a process) however a test ends, and
//! the check that nothing of a lab is left.
// Each test binary uses some of these helpers, not all.
#![allow(dead_code)]

pub use std::path::{Path, PathBuf};
pub use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_vpclab");

/// Scenarios whose expectations wait for a part of the fabric not built yet: they must load,
/// but neither the model test nor `vpclab check` runs them. None today.
pub const PENDING_SCENARIOS: &[&str] = &[];

/// True for a scenario file of `PENDING_SCENARIOS`.
pub fn pending(file: &Path) -> bool {
    file.file_name()
        .is_some_and(|n| PENDING_SCENARIOS.iter().any(|p| n == *p))
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

pub fn vpclab(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run vpclab")
}

/// Runs `command` inside `host` of lab `lab`, as `vpclab exec HOST --lab LAB -- COMMAND`.
pub fn exec(lab: &str, host: &str, command: &[&str]) -> Output {
    let mut argv = vec!["exec", host, "--lab", lab, "--"];
    argv.extend_from_slice(command);
    vpclab(&argv)
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name)
}

/// Copies a scenario under another lab name (so tests can run side by side), optionally edited.
pub fn variant(file: &str, lab: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let original = std::fs::read_to_string(scenario(file)).unwrap();
    let renamed: String = original
        .lines()
        .map(|l| {
            if l.starts_with("name:") {
                format!("name: {lab}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let dir = std::env::temp_dir().join(format!("vpclab-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{lab}.yaml"));
    std::fs::write(&path, edit(renamed)).unwrap();
    path
}

/// What of a lab is on the machine: namespaces, host folders, state folder.
pub fn leftovers(lab: &str) -> Vec<String> {
    vpclab::daemon::teardown::leftovers(lab)
}

/// Tears the lab down when the test ends, however it ends.
pub struct LabGuard(pub String);

impl Drop for LabGuard {
    fn drop(&mut self) {
        let _ = vpclab(&["down", &self.0]);
    }
}

pub fn up(file: &Path, lab: &str) -> LabGuard {
    let guard = LabGuard(lab.to_string());
    let out = vpclab(&["up", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "up {}: {}",
        file.display(),
        text(&out)
    );
    guard
}

pub fn down_clean(lab: &str) {
    let out = vpclab(&["down", lab]);
    assert!(out.status.success(), "down {lab}: {}", text(&out));
    assert_eq!(leftovers(lab), Vec::<String>::new(), "lab {lab} leaked");
}

/// Stops a process this test started (by its own handle) when the test ends, however it ends.
pub struct ChildGuard(pub std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A real `tcpdump` on `host`'s eth0 that stops after `count` packets matching `filter` (or 20
/// s); give it a moment to start before sending.
pub fn capture(lab: &str, host: &str, count: &str, filter: &str) -> ChildGuard {
    let child = Command::new(BIN)
        .args([
            "exec", host, "--lab", lab, "--", "timeout", "20", "tcpdump", "-lni", "eth0",
        ])
        .args(["-c", count, filter])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start tcpdump");
    ChildGuard(child)
}

impl ChildGuard {
    /// All it writes to stdout, until it ends.
    pub fn read_stdout(&mut self) -> String {
        use std::io::Read as _;
        let mut out = String::new();
        if let Some(mut stdout) = self.0.stdout.take() {
            let _ = stdout.read_to_string(&mut out);
        }
        out
    }
}

/// The line of `component` in the cost table of `vpclab status --cost`.
pub fn cost_line<'a>(status: &'a str, component: &str) -> &'a str {
    status
        .lines()
        .skip_while(|l| !l.contains("COMPONENT"))
        .find(|l| l.split_whitespace().next() == Some(component))
        .unwrap_or_default()
}
