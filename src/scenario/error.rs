//! Scenario layer: load errors. Each names file:line:column, the key path, the bad value and
//! what was expected; a load reports all of them at once.

use std::fmt;

/// A place in the scenario file: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// One problem found in a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub file: String,
    /// 1-based; 0 when the error is about the whole file (e.g. it cannot be read).
    pub line: usize,
    /// 1-based.
    pub column: usize,
    /// The key path, e.g. `vpcs.a.subnets.a1.cidr` or `expect[2].to`; empty for syntax errors.
    pub path: String,
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        } else {
            write!(f, "{}: ", self.file)?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for LoadError {}

/// Every problem found in a scenario file, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadErrors {
    pub errors: Vec<LoadError>,
}

impl LoadErrors {
    pub fn iter(&self) -> std::slice::Iter<'_, LoadError> {
        self.errors.iter()
    }

    pub fn len(&self) -> usize {
        self.errors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
}

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadErrors {}

impl<'a> IntoIterator for &'a LoadErrors {
    type Item = &'a LoadError;
    type IntoIter = std::slice::Iter<'a, LoadError>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.iter()
    }
}

/// Collects errors while a file is decoded and resolved.
pub(super) struct Errors {
    file: String,
    list: Vec<LoadError>,
}

impl Errors {
    pub fn new(file: &str) -> Self {
        Errors {
            file: file.to_string(),
            list: Vec::new(),
        }
    }

    pub fn at(&mut self, pos: Pos, path: &str, message: impl Into<String>) {
        self.list.push(LoadError {
            file: self.file.clone(),
            line: pos.line,
            column: pos.column,
            path: path.to_string(),
            message: message.into(),
        });
    }

    /// `Ok(value)` when nothing was reported, else every error sorted by position.
    pub fn finish<T>(self, value: T) -> Result<T, LoadErrors> {
        if self.list.is_empty() {
            return Ok(value);
        }
        let mut errors = self.list;
        // Stable: errors at the same place keep the order they were found in.
        errors.sort_by_key(|e| (e.line, e.column));
        Err(LoadErrors { errors })
    }
}
