//! Tier 2: every scenario in `scenarios/` through the decision function, without root.
//! Each `expect:` line must hold in the model: reachability, reason code and `via:` path.

use std::path::Path;

// For `pending` only; the root-tier helpers are unused here.
#[allow(unused_macros)]
mod common;

use vpclab::fabric::{explain, probe_key, Compiled};
use vpclab::scenario::{self, Probe};

fn scenario_files() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("scenarios/ exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_scenario_loads_and_has_expectations() {
    let files = scenario_files();
    assert!(
        files.len() >= 3,
        "expected at least 3 scenarios, found {}",
        files.len()
    );
    for file in files {
        let lab = scenario::load_file(&file).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !lab.expectations.is_empty(),
            "{} has no expect: lines",
            file.display()
        );
        assert!(
            lab.expectations.iter().any(|e| e.reachable)
                && lab.expectations.iter().any(|e| !e.reachable),
            "{}: a lesson shows both the passing case and its failing twin",
            file.display()
        );
        for e in lab.expectations.iter().filter(|e| !e.reachable) {
            assert!(
                e.reason.is_some(),
                "{}:{}: a failing case names AWS's reason (reason: CODE)",
                file.display(),
                e.line
            );
        }
    }
}

#[test]
fn every_expectation_holds_in_the_model() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for file in scenario_files().into_iter().filter(|f| !common::pending(f)) {
        let lab = scenario::load_file(&file).unwrap_or_else(|e| panic!("{e}"));
        let compiled = Compiled::new(lab.clone());
        for e in &lab.expectations {
            let src = lab
                .host_source_for(e.from, e.to)
                .expect("the loader checks the family");
            let port = e
                .port
                .unwrap_or(if e.probe == Probe::Http { 80 } else { 0 });
            let x = explain(&compiled, e.from, probe_key(src, e.to, e.probe, port));
            checked += 1;
            let name = format!("{}:{}", file.display(), e.line);
            if x.reachable() != e.reachable {
                failures.push(format!(
                    "{name}: expected reachable={}, model says\n{}",
                    e.reachable,
                    x.render(&compiled)
                ));
            }
            if let Some(reason) = &e.reason {
                let got = x.drop_code().map(|c| c.as_str());
                if got != Some(reason.as_str()) {
                    failures.push(format!(
                        "{name}: expected reason {reason}, model says {got:?}"
                    ));
                }
            }
            let path = x.components(&compiled);
            let mut rest = path.iter();
            if !e.via.iter().all(|v| rest.any(|p| p == v)) {
                failures.push(format!("{name}: via {:?} not on path {:?}", e.via, path));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 10, "only {checked} expectations checked");
}
