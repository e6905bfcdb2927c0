//! A YAML document as a tree whose every node knows its line, built from a marked event parser
//! (serde_yaml gives no positions for values, and every error must say where it is).

use crate::error::{ConfigError, ConfigErrorKind};
use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use std::collections::HashMap;

/// Deeper nesting than this is rejected (no configuration needs it; it bounds recursion).
const MAX_DEPTH: usize = 64;
/// More nodes than this (say, through aliases of aliases) is rejected.
const MAX_NODES: usize = 1_000_000;

/// A YAML node and the line it starts on.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// 1-based line, already shifted by the caller's offset.
    pub line: usize,
    /// The content.
    pub value: Value,
}

/// The content of a node.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    /// `~`, `null` or nothing.
    Null,
    /// Any other scalar; `plain` is false when it was quoted or a block scalar.
    Scalar {
        /// The scalar's text.
        text: String,
        /// Unquoted (so `true`, `12` are typed by YAML's core schema).
        plain: bool,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order, string keys only.
    Map(Vec<Entry>),
}

/// One `key: value` of a mapping.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// The key.
    pub key: String,
    /// The key's line.
    pub key_line: usize,
    /// The value.
    pub value: Node,
}

impl Node {
    /// A short description for "expected X, found Y" messages.
    pub fn describe(&self) -> String {
        match &self.value {
            Value::Null => "null".into(),
            Value::Scalar { text, .. } => format!("{text:?}"),
            Value::Seq(_) => "a sequence".into(),
            Value::Map(_) => "a mapping".into(),
        }
    }

    /// The value at `key` when this is a mapping.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|e| e.key == key),
            _ => None,
        }
    }
}

/// Parses `text` into at most one document (None for an empty stream). Lines are shifted by
/// `line_offset`. Syntax errors and duplicate keys are returned as errors.
pub(crate) fn parse(text: &str, line_offset: usize) -> Result<Option<Node>, Vec<ConfigError>> {
    let mut docs = parse_all(text, line_offset)?.into_iter();
    let first = docs.next();
    match docs.next() {
        Some(second) => Err(vec![ConfigError::new(
            "",
            second.line,
            ConfigErrorKind::MultipleDocuments,
        )]),
        None => Ok(first),
    }
}

/// Parses every document of `text` (separated by `---`), in order, each with its lines in the
/// whole text (shifted by `line_offset`). An empty document gives a null node.
pub(crate) fn parse_all(text: &str, line_offset: usize) -> Result<Vec<Node>, Vec<ConfigError>> {
    let mut events = Vec::new();
    for item in Parser::new_from_str(text) {
        match item {
            Ok(ev) => events.push(ev),
            Err(e) => {
                return Err(vec![ConfigError::new(
                    "",
                    e.marker().line() + line_offset,
                    ConfigErrorKind::Syntax(e.info().to_string()),
                )]);
            }
        }
    }
    let mut builder = Builder {
        events,
        pos: 0,
        offset: line_offset,
        anchors: HashMap::new(),
        nodes: 0,
        errors: Vec::new(),
    };
    let mut docs = Vec::new();
    while let Some((ev, span)) = builder.next() {
        match ev {
            Event::DocumentStart(_) => {
                // Anchors do not carry from one document to the next.
                builder.anchors.clear();
                docs.push(builder.node(0)?);
            }
            Event::StreamStart | Event::DocumentEnd | Event::StreamEnd | Event::Nothing => {}
            _ => {
                return Err(vec![builder.syntax(span, "unexpected event")]);
            }
        }
    }
    if builder.errors.is_empty() {
        Ok(docs)
    } else {
        Err(builder.errors)
    }
}

struct Builder<'a> {
    events: Vec<(Event<'a>, Span)>,
    pos: usize,
    offset: usize,
    anchors: HashMap<usize, Node>,
    nodes: usize,
    errors: Vec<ConfigError>,
}

fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

impl<'a> Builder<'a> {
    fn next(&mut self) -> Option<(Event<'a>, Span)> {
        let ev = self.events.get(self.pos).cloned();
        self.pos += 1;
        ev
    }

    fn line(&self, span: Span) -> usize {
        span.start.line() + self.offset
    }

    fn syntax(&self, span: Span, what: &str) -> ConfigError {
        ConfigError::new(
            "",
            self.line(span),
            ConfigErrorKind::Syntax(what.to_string()),
        )
    }

    fn remember(&mut self, anchor: usize, node: &Node) {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
    }

    fn node(&mut self, depth: usize) -> Result<Node, Vec<ConfigError>> {
        let Some((ev, span)) = self.next() else {
            return Err(vec![ConfigError::new(
                "",
                self.offset + 1,
                ConfigErrorKind::Syntax("unexpected end of document".into()),
            )]);
        };
        if depth > MAX_DEPTH {
            return Err(vec![self.syntax(span, "nested too deeply")]);
        }
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(vec![self.syntax(span, "too many nodes (alias expansion?)")]);
        }
        let line = self.line(span);
        match ev {
            Event::Scalar(text, style, anchor, _tag) => {
                let plain = style == ScalarStyle::Plain;
                let value = if plain && is_null(&text) {
                    Value::Null
                } else {
                    Value::Scalar {
                        text: text.into_owned(),
                        plain,
                    }
                };
                let node = Node { line, value };
                self.remember(anchor, &node);
                Ok(node)
            }
            Event::Alias(anchor) => match self.anchors.get(&anchor) {
                Some(node) => {
                    let mut node = node.clone();
                    node.line = line;
                    self.nodes += count(&node);
                    if self.nodes > MAX_NODES {
                        return Err(vec![self.syntax(span, "too many nodes (alias expansion?)")]);
                    }
                    Ok(node)
                }
                None => Err(vec![self.syntax(span, "alias to an unknown anchor")]),
            },
            Event::SequenceStart(anchor, _tag) => {
                let mut items = Vec::new();
                loop {
                    if matches!(self.events.get(self.pos), Some((Event::SequenceEnd, _))) {
                        self.pos += 1;
                        break;
                    }
                    items.push(self.node(depth + 1)?);
                }
                let node = Node {
                    line,
                    value: Value::Seq(items),
                };
                self.remember(anchor, &node);
                Ok(node)
            }
            Event::MappingStart(anchor, _tag) => {
                let mut entries: Vec<Entry> = Vec::new();
                let mut seen: HashMap<String, usize> = HashMap::new();
                loop {
                    if matches!(self.events.get(self.pos), Some((Event::MappingEnd, _))) {
                        self.pos += 1;
                        break;
                    }
                    let key = self.node(depth + 1)?;
                    let value = self.node(depth + 1)?;
                    let key_text = match key.value {
                        Value::Scalar { text, .. } => text,
                        _ => {
                            self.errors.push(ConfigError::new(
                                "",
                                key.line,
                                ConfigErrorKind::NonStringKey,
                            ));
                            continue;
                        }
                    };
                    if let Some(&first_line) = seen.get(&key_text) {
                        self.errors.push(ConfigError::new(
                            "",
                            key.line,
                            ConfigErrorKind::DuplicateKey {
                                key: key_text,
                                first_line,
                            },
                        ));
                        continue;
                    }
                    seen.insert(key_text.clone(), key.line);
                    entries.push(Entry {
                        key: key_text,
                        key_line: key.line,
                        value,
                    });
                }
                let node = Node {
                    line,
                    value: Value::Map(entries),
                };
                self.remember(anchor, &node);
                Ok(node)
            }
            _ => Err(vec![self.syntax(span, "unexpected event")]),
        }
    }
}

fn count(node: &Node) -> usize {
    1 + match &node.value {
        Value::Seq(items) => items.iter().map(count).sum(),
        Value::Map(entries) => entries.iter().map(|e| 1 + count(&e.value)).sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_recorded() {
        let doc = parse("a: 1\nb:\n- x\n- y: |\n    lit\n", 0)
            .unwrap()
            .unwrap();
        let Value::Map(entries) = &doc.value else {
            panic!("not a map")
        };
        assert_eq!(entries[0].key_line, 1);
        assert_eq!(entries[1].key_line, 2);
        let Value::Seq(items) = &entries[1].value.value else {
            panic!("not a seq")
        };
        assert_eq!(items[0].line, 3);
        assert_eq!(items[1].line, 4);
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let errs = parse("a: 1\nb: 2\na: 3\n", 10).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].line, 13);
        assert_eq!(
            errs[0].kind,
            ConfigErrorKind::DuplicateKey {
                key: "a".into(),
                first_line: 11
            }
        );
    }

    #[test]
    fn syntax_error_has_a_line() {
        let errs = parse("a: 1\nb: [\n", 0).unwrap_err();
        assert!(matches!(errs[0].kind, ConfigErrorKind::Syntax(_)));
        assert!(errs[0].line >= 2);
    }

    #[test]
    fn two_documents_are_rejected() {
        let errs = parse("a: 1\n---\nb: 2\n", 0).unwrap_err();
        assert_eq!(errs[0].kind, ConfigErrorKind::MultipleDocuments);
    }

    #[test]
    fn every_document_is_returned_with_its_lines() {
        let docs = parse_all("a: 1\n---\nb: 2\n---\n---\nc:\n  d: 3\n", 0).unwrap();
        assert_eq!(docs.len(), 4);
        assert_eq!(docs[0].get("a").unwrap().key_line, 1);
        assert_eq!(docs[1].get("b").unwrap().key_line, 3);
        assert!(matches!(docs[2].value, Value::Null));
        assert_eq!(docs[3].get("c").unwrap().key_line, 6);
        assert!(parse_all("", 0).unwrap().is_empty());
    }

    #[test]
    fn empty_is_none_and_aliases_expand() {
        assert!(parse("", 0).unwrap().is_none());
        assert!(parse("# only a comment\n", 0).unwrap().is_none());
        let doc = parse("a: &x [1, 2]\nb: *x\n", 0).unwrap().unwrap();
        let b = doc.get("b").unwrap();
        assert!(matches!(&b.value.value, Value::Seq(items) if items.len() == 2));
    }

    #[test]
    fn deep_nesting_is_rejected_not_a_crash() {
        let text = "[".repeat(200) + &"]".repeat(200);
        assert!(parse(&text, 0).is_err());
    }
}
