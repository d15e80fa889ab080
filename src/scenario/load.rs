//! Scenario layer: the entry points. Text in, a `Lab` or every error out; touches no OS
//! state beyond reading the file.

use std::path::Path;

use super::error::{Errors, LoadError, LoadErrors};
use super::lab::Lab;
use super::yaml::{self, Node};
use super::{decode, resolve};

/// Loads and validates a scenario file.
pub fn load_file(path: &Path) -> Result<Lab, LoadErrors> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => load_str(&text, &file),
        Err(e) => Err(LoadErrors {
            errors: vec![LoadError {
                file,
                line: 0,
                column: 0,
                path: String::new(),
                message: format!("cannot read the scenario file: {e}"),
            }],
        }),
    }
}

/// Loads and validates scenario text; `file_name` is used in messages and, when the file sets
/// no `name`, its stem is the lab name.
pub fn load_str(text: &str, file_name: &str) -> Result<Lab, LoadErrors> {
    let mut errs = Errors::new(file_name);
    let Some(doc) = yaml::parse(text, &mut errs) else {
        return errs.finish(()).and_then(|()| unreachable_syntax(file_name));
    };
    let raw = decode::scenario(&Node::root(&doc), &mut errs);
    let lab = resolve::resolve(&raw, file_name, &mut errs);
    errs.finish(lab)
}

/// `yaml::parse` reports whenever it returns nothing; this keeps that promise checked.
fn unreachable_syntax(file: &str) -> Result<Lab, LoadErrors> {
    Err(LoadErrors {
        errors: vec![LoadError {
            file: file.to_string(),
            line: 0,
            column: 0,
            path: String::new(),
            message: "internal error: the YAML parser failed without an error".into(),
        }],
    })
}
