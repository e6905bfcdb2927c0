//! Reading one YAML mapping as one config object: known keys only, typed values, and every
//! error with its path and line.

use crate::duration::parse_duration;
use crate::error::{ConfigError, ConfigErrorKind};
use crate::yaml::{Entry, Node, Value};
use std::net::IpAddr;
use std::time::Duration;

/// The keys one kind of object accepts.
pub(crate) struct Schema {
    /// Keys we read.
    pub known: &'static [&'static str],
    /// Keys we know of but do not support yet, with the reason shown to the user.
    pub not_supported: &'static [(&'static str, &'static str)],
}

/// Appends `.key` to a path (or starts one).
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Appends `[i]` to a path.
pub(crate) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// One mapping being read as an object.
pub(crate) struct Object<'n> {
    /// The object's path.
    pub path: String,
    /// The object's line.
    pub line: usize,
    entries: &'n [Entry],
}

/// An empty document: read as an empty top-level mapping.
static EMPTY_DOCUMENT: Node = Node {
    line: 1,
    value: Value::Null,
};

impl<'n> Object<'n> {
    /// [`Object::read`] for a document's top level (`root` is None for an empty document).
    pub fn read_document(
        root: Option<&'n Node>,
        schema: &Schema,
        errs: &mut Vec<ConfigError>,
    ) -> Option<Object<'n>> {
        Object::read(root.unwrap_or(&EMPTY_DOCUMENT), String::new(), schema, errs)
    }

    /// Checks that `node` is a mapping (null counts as an empty one) whose keys all belong to
    /// `schema`. Unknown and unsupported keys are reported; the object is still returned so
    /// that its other fields are checked too. None when `node` is not a mapping.
    pub fn read(
        node: &'n Node,
        path: String,
        schema: &Schema,
        errs: &mut Vec<ConfigError>,
    ) -> Option<Object<'n>> {
        let entries: &[Entry] = match &node.value {
            Value::Map(entries) => entries,
            Value::Null => &[],
            _ => {
                errs.push(ConfigError::new(
                    path,
                    node.line,
                    ConfigErrorKind::WrongType {
                        expected: "a mapping",
                        found: node.describe(),
                    },
                ));
                return None;
            }
        };
        for e in entries {
            if schema.known.contains(&e.key.as_str()) {
                continue;
            }
            let kind = match schema.not_supported.iter().find(|(k, _)| *k == e.key) {
                Some((_, reason)) => ConfigErrorKind::NotSupported {
                    key: e.key.clone(),
                    reason: (*reason).to_string(),
                },
                None => ConfigErrorKind::UnknownKey {
                    key: e.key.clone(),
                    expected: schema.known.join(", "),
                },
            };
            errs.push(ConfigError::new(join(&path, &e.key), e.key_line, kind));
        }
        Some(Object {
            path,
            line: node.line,
            entries,
        })
    }

    /// The entry for `key`, unless absent or null.
    pub fn entry(&self, key: &str) -> Option<&'n Entry> {
        self.entries
            .iter()
            .find(|e| e.key == key && !matches!(e.value.value, Value::Null))
    }

    /// The path of `key` in this object.
    pub fn path_of(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The line of `key`'s value when it is a scalar (where a wrong value is), else the line
    /// of `key`; the object's line when `key` is absent.
    pub fn line_of(&self, key: &str) -> usize {
        self.entries
            .iter()
            .find(|e| e.key == key)
            .map_or(self.line, value_line)
    }

    /// An error at `key`.
    pub fn error(&self, key: &str, kind: ConfigErrorKind) -> ConfigError {
        ConfigError::new(self.path_of(key), self.line_of(key), kind)
    }

    /// Reports a missing required key (at the object's line).
    pub fn missing(&self, key: &'static str, errs: &mut Vec<ConfigError>) {
        errs.push(ConfigError::new(
            self.path.clone(),
            self.line,
            ConfigErrorKind::Missing(key),
        ));
    }

    /// Reads `key` with `convert`; None when absent, null or invalid (the error is pushed).
    pub fn get<T>(
        &self,
        key: &str,
        errs: &mut Vec<ConfigError>,
        convert: impl FnOnce(&'n Node) -> Result<T, ConfigErrorKind>,
    ) -> Option<T> {
        let entry = self.entry(key)?;
        match convert(&entry.value) {
            Ok(v) => Some(v),
            Err(kind) => {
                errs.push(ConfigError::new(self.path_of(key), value_line(entry), kind));
                None
            }
        }
    }

    /// Reads a required `key`; reports it missing when absent.
    pub fn required<T>(
        &self,
        key: &'static str,
        errs: &mut Vec<ConfigError>,
        convert: impl FnOnce(&'n Node) -> Result<T, ConfigErrorKind>,
    ) -> Option<T> {
        if self.entry(key).is_none() {
            self.missing(key, errs);
            return None;
        }
        self.get(key, errs, convert)
    }

    /// The items of a sequence at `key` (empty when absent or null).
    pub fn seq(&self, key: &str, errs: &mut Vec<ConfigError>) -> &'n [Node] {
        self.get(key, errs, |n| match &n.value {
            Value::Seq(items) => Ok(items.as_slice()),
            _ => Err(wrong("a sequence", n)),
        })
        .unwrap_or(&[])
    }
}

/// Where an entry's value is: its own line for a scalar, the key's line otherwise.
fn value_line(entry: &Entry) -> usize {
    match entry.value.value {
        Value::Scalar { .. } => entry.value.line,
        _ => entry.key_line,
    }
}

fn wrong(expected: &'static str, node: &Node) -> ConfigErrorKind {
    ConfigErrorKind::WrongType {
        expected,
        found: node.describe(),
    }
}

/// Any scalar, as text (YAML `12` and `"12"` both give `12`, as MetalLB's Go YAML does for
/// string fields).
pub(crate) fn string(node: &Node) -> Result<String, ConfigErrorKind> {
    match &node.value {
        Value::Scalar { text, .. } => Ok(text.clone()),
        _ => Err(wrong("a string", node)),
    }
}

/// An unquoted decimal integer no larger than `max`.
pub(crate) fn integer(node: &Node, max: u64, range: &'static str) -> Result<u64, ConfigErrorKind> {
    match &node.value {
        Value::Scalar {
            text, plain: true, ..
        } if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => text
            .parse::<u64>()
            .ok()
            .filter(|v| *v <= max)
            .ok_or_else(|| ConfigErrorKind::OutOfRange {
                value: text.clone(),
                range,
            }),
        Value::Scalar {
            text, plain: true, ..
        } if text.starts_with('-')
            && text.len() > 1
            && text.bytes().skip(1).all(|b| b.is_ascii_digit()) =>
        {
            Err(ConfigErrorKind::OutOfRange {
                value: text.clone(),
                range,
            })
        }
        _ => Err(wrong("an integer", node)),
    }
}

/// A 32-bit unsigned integer.
pub(crate) fn u32_value(node: &Node) -> Result<u32, ConfigErrorKind> {
    integer(node, u64::from(u32::MAX), "0 to 4294967295").map(|v| v as u32)
}

/// A 16-bit unsigned integer.
pub(crate) fn u16_value(node: &Node) -> Result<u16, ConfigErrorKind> {
    integer(node, u64::from(u16::MAX), "0 to 65535").map(|v| v as u16)
}

/// An unquoted boolean (YAML 1.2 `true`/`false`, and the YAML 1.1 words MetalLB's parser
/// also takes: `yes`, `no`, `on`, `off`).
pub(crate) fn bool_value(node: &Node) -> Result<bool, ConfigErrorKind> {
    if let Value::Scalar {
        text, plain: true, ..
    } = &node.value
    {
        match text.as_str() {
            "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => {
                return Ok(true);
            }
            "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => {
                return Ok(false);
            }
            _ => {}
        }
    }
    Err(wrong("true or false", node))
}

/// An IPv4 or IPv6 address.
pub(crate) fn ip_value(node: &Node) -> Result<IpAddr, ConfigErrorKind> {
    let text = string(node)?;
    text.trim()
        .parse()
        .map_err(|_| ConfigErrorKind::BadIp(text))
}

/// A Go-style duration; returns it with the text as written.
pub(crate) fn duration_value(node: &Node) -> Result<(Duration, String), ConfigErrorKind> {
    let text = string(node)?;
    Ok((parse_duration(&text)?, text))
}
