//! Scenario layer: a typed reader over saphyr's marked YAML tree. Every read records type
//! errors and unknown keys with their position and key path, then carries on with what is left.

use saphyr::{LoadableYamlNode, MarkedYamlOwned, ScalarOwned, YamlDataOwned};

use super::error::{Errors, Pos};

/// A value with the place it was written.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct At<T> {
    pub value: T,
    pub pos: Pos,
    pub path: String,
}

/// Parses `text` into its single YAML document; a syntax error stops here.
pub(super) fn parse(text: &str, errs: &mut Errors) -> Option<MarkedYamlOwned> {
    match MarkedYamlOwned::load_from_str(text) {
        Ok(mut docs) => {
            if docs.len() > 1 {
                let second = Node::root(&docs[1]);
                errs.at(
                    second.pos(),
                    "",
                    format!("expected one YAML document, found {}", docs.len()),
                );
                return None;
            }
            Some(docs.pop().unwrap_or_else(|| {
                MarkedYamlOwned::from_bare_yaml(saphyr::Yaml::Value(saphyr::Scalar::Null))
            }))
        }
        Err(e) => {
            let m = e.marker();
            errs.at(
                Pos {
                    line: m.line(),
                    column: m.col() + 1,
                },
                "",
                format!("YAML syntax error: {}", e.info()),
            );
            None
        }
    }
}

/// A node of the tree with its key path.
#[derive(Clone)]
pub(super) struct Node<'a> {
    y: &'a MarkedYamlOwned,
    pub path: String,
    /// Where the key that introduced this value is written, if any.
    key_pos: Option<Pos>,
}

impl<'a> Node<'a> {
    pub fn root(y: &'a MarkedYamlOwned) -> Self {
        Node {
            y,
            path: String::new(),
            key_pos: None,
        }
    }

    /// Where the value starts.
    pub fn pos(&self) -> Pos {
        let m = self.y.span.start;
        Pos {
            line: m.line(),
            column: m.col() + 1,
        }
    }

    /// Where the thing is named: its key when it has one, else its value.
    pub fn anchor(&self) -> Pos {
        self.key_pos.unwrap_or_else(|| self.pos())
    }

    fn data(&self) -> &'a YamlDataOwned<MarkedYamlOwned> {
        match &self.y.data {
            // Tags carry no meaning in a scenario; read what they wrap.
            YamlDataOwned::Tagged(_, inner) => &inner.data,
            d => d,
        }
    }

    fn is_null(&self) -> bool {
        matches!(
            self.data(),
            YamlDataOwned::Value(ScalarOwned::Null) | YamlDataOwned::BadValue
        )
    }

    /// Null, false, or an empty list or mapping: "not used".
    pub fn is_empty(&self) -> bool {
        match self.data() {
            YamlDataOwned::Value(ScalarOwned::Null) | YamlDataOwned::BadValue => true,
            YamlDataOwned::Value(ScalarOwned::Boolean(b)) => !b,
            YamlDataOwned::Sequence(s) => s.is_empty(),
            YamlDataOwned::Mapping(m) => m.is_empty(),
            _ => false,
        }
    }

    /// How the value reads in a message: `integer 5`, `a list`, ...
    pub fn describe(&self) -> String {
        match self.data() {
            YamlDataOwned::Value(ScalarOwned::Null) | YamlDataOwned::BadValue => "nothing".into(),
            YamlDataOwned::Value(ScalarOwned::Boolean(b)) => format!("boolean {b}"),
            YamlDataOwned::Value(ScalarOwned::Integer(i)) => format!("integer {i}"),
            YamlDataOwned::Value(ScalarOwned::FloatingPoint(f)) => format!("number {f}"),
            YamlDataOwned::Value(ScalarOwned::String(s)) => format!("string {s:?}"),
            YamlDataOwned::Representation(s, _, _) => format!("{s:?}"),
            YamlDataOwned::Sequence(_) => "a list".into(),
            YamlDataOwned::Mapping(_) => "a mapping".into(),
            YamlDataOwned::Tagged(..) | YamlDataOwned::Alias(_) => "a tagged value".into(),
        }
    }

    fn type_error(&self, errs: &mut Errors, expected: &str) {
        errs.at(
            self.pos(),
            &self.path,
            format!("expected {expected}, found {}", self.describe()),
        );
    }

    pub fn at<T>(&self, value: T) -> At<T> {
        At {
            value,
            pos: self.pos(),
            path: self.path.clone(),
        }
    }

    /// The scalar as text (`5` reads as "5"); None for lists and mappings.
    fn scalar_text(&self) -> Option<String> {
        match self.data() {
            YamlDataOwned::Value(ScalarOwned::String(s)) => Some(s.clone()),
            YamlDataOwned::Value(ScalarOwned::Integer(i)) => Some(i.to_string()),
            YamlDataOwned::Value(ScalarOwned::FloatingPoint(f)) => Some(f.to_string()),
            YamlDataOwned::Value(ScalarOwned::Boolean(b)) => Some(b.to_string()),
            YamlDataOwned::Representation(s, _, _) => Some(s.clone()),
            _ => None,
        }
    }

    /// A mapping whose keys must be among `allowed`; null reads as an empty mapping.
    pub fn map(&self, errs: &mut Errors, allowed: &[&str]) -> Option<Map<'a>> {
        let entries = self.entries(errs, "a mapping")?;
        let mut kept = Vec::with_capacity(entries.len());
        for (key, node) in entries {
            if allowed.contains(&key.value.as_str()) {
                kept.push((key.value, node));
            } else {
                errs.at(
                    key.pos,
                    &key.path,
                    format!(
                        "unknown key `{}`; allowed keys: {}",
                        key.value,
                        allowed.join(", ")
                    ),
                );
            }
        }
        Some(Map {
            node: self.clone(),
            entries: kept,
        })
    }

    /// The entries of a mapping of named things, in file order; null reads as none.
    pub fn named(&self, errs: &mut Errors) -> Vec<(At<String>, Node<'a>)> {
        self.entries(errs, "a mapping of names to definitions")
            .unwrap_or_default()
    }

    fn entries(&self, errs: &mut Errors, expected: &str) -> Option<Vec<(At<String>, Node<'a>)>> {
        if self.is_null() {
            return Some(Vec::new());
        }
        let YamlDataOwned::Mapping(m) = self.data() else {
            self.type_error(errs, expected);
            return None;
        };
        let mut out = Vec::with_capacity(m.len());
        for (k, v) in m.iter() {
            let key_node = Node {
                y: k,
                path: self.path.clone(),
                key_pos: None,
            };
            let Some(key) = key_node.scalar_text() else {
                key_node.type_error(errs, "a plain key");
                continue;
            };
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            let key_pos = key_node.pos();
            out.push((
                At {
                    value: key,
                    pos: key_pos,
                    path: path.clone(),
                },
                Node {
                    y: v,
                    path,
                    key_pos: Some(key_pos),
                },
            ));
        }
        Some(out)
    }

    /// The items of a list, with paths `path[i]`; null reads as an empty list.
    pub fn seq(&self, errs: &mut Errors) -> Vec<Node<'a>> {
        if self.is_null() {
            return Vec::new();
        }
        let YamlDataOwned::Sequence(s) = self.data() else {
            self.type_error(errs, "a list");
            return Vec::new();
        };
        s.iter()
            .enumerate()
            .map(|(i, y)| Node {
                y,
                path: format!("{}[{i}]", self.path),
                key_pos: None,
            })
            .collect()
    }

    /// A string; `expected` says what it should look like.
    pub fn string(&self, errs: &mut Errors, expected: &str) -> Option<At<String>> {
        match self.data() {
            YamlDataOwned::Value(ScalarOwned::String(s)) => Some(self.at(s.clone())),
            _ => {
                self.type_error(errs, expected);
                None
            }
        }
    }

    /// Any scalar read as text (ports `80`, accounts `111111111111`, free text).
    pub fn text(&self, errs: &mut Errors, expected: &str) -> Option<At<String>> {
        match self.scalar_text() {
            Some(s) => Some(self.at(s)),
            None => {
                self.type_error(errs, expected);
                None
            }
        }
    }

    pub fn boolean(&self, errs: &mut Errors) -> Option<At<bool>> {
        match self.data() {
            YamlDataOwned::Value(ScalarOwned::Boolean(b)) => Some(self.at(*b)),
            _ => {
                self.type_error(errs, "true or false");
                None
            }
        }
    }

    pub fn integer(&self, errs: &mut Errors, expected: &str) -> Option<At<i64>> {
        match self.data() {
            YamlDataOwned::Value(ScalarOwned::Integer(i)) => Some(self.at(*i)),
            _ => {
                self.type_error(errs, expected);
                None
            }
        }
    }

    /// A list of strings; a single string reads as a list of one. None on a bad type.
    pub fn strings(&self, errs: &mut Errors, expected: &str) -> Option<Vec<At<String>>> {
        match self.data() {
            YamlDataOwned::Value(ScalarOwned::String(s)) => Some(vec![self.at(s.clone())]),
            YamlDataOwned::Sequence(_) => Some(
                self.seq(errs)
                    .iter()
                    .filter_map(|n| n.string(errs, expected))
                    .collect(),
            ),
            _ if self.is_null() => Some(Vec::new()),
            _ => {
                self.type_error(errs, &format!("{expected}, or a list of them"));
                None
            }
        }
    }
}

/// A mapping whose keys were checked against the allowed ones.
pub(super) struct Map<'a> {
    node: Node<'a>,
    entries: Vec<(String, Node<'a>)>,
}

impl<'a> Map<'a> {
    pub fn get(&self, key: &str) -> Option<&Node<'a>> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, n)| n)
    }

    pub fn anchor(&self) -> Pos {
        self.node.anchor()
    }

    /// The value of a key that must be there; its absence is reported.
    pub fn required(&self, errs: &mut Errors, key: &str, expected: &str) -> Option<&Node<'a>> {
        let found = self.get(key);
        if found.is_none() {
            errs.at(
                self.anchor(),
                &self.node.path,
                format!("missing required key `{key}` ({expected})"),
            );
        }
        found
    }

    /// Reports a documented key this version cannot build yet, when it is used.
    pub fn unsupported(&self, errs: &mut Errors, key: &str) {
        if let Some(n) = self.get(key) {
            if !n.is_empty() {
                errs.at(
                    n.anchor(),
                    &n.path,
                    format!("`{key}` is not supported yet by this version of vpclab"),
                );
            }
        }
    }

    pub fn string(&self, errs: &mut Errors, key: &str, expected: &str) -> Option<At<String>> {
        self.get(key).and_then(|n| n.string(errs, expected))
    }

    pub fn text(&self, errs: &mut Errors, key: &str, expected: &str) -> Option<At<String>> {
        self.get(key).and_then(|n| n.text(errs, expected))
    }

    pub fn boolean(&self, errs: &mut Errors, key: &str) -> Option<At<bool>> {
        self.get(key).and_then(|n| n.boolean(errs))
    }

    pub fn integer(&self, errs: &mut Errors, key: &str, expected: &str) -> Option<At<i64>> {
        self.get(key).and_then(|n| n.integer(errs, expected))
    }
}
