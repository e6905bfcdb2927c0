//! Reading MetalLB objects from YAML files and API JSON: the envelope (`apiVersion`, `kind`,
//! `metadata`), keeping the spec as a tree with lines for the translation.

use super::{AS_PATH_PREPEND, EXCLUSIVE_NAMESPACES, Kind, Object, ObjectId};
use crate::AsPathPrepend;
use crate::error::{ConfigError, ConfigErrorKind, ConfigErrors};
use crate::fields::{Schema, index, join, string};
use crate::yaml::{self, Node, Value};
use std::collections::BTreeMap;

/// The keys of an object's top level (`status` is read and ignored).
const ENVELOPE: Schema = Schema {
    known: &["apiVersion", "kind", "metadata", "spec", "status"],
    not_supported: &[],
};

/// The keys of a `kind: List`.
const LIST: Schema = Schema {
    known: &["apiVersion", "kind", "metadata", "items"],
    not_supported: &[],
};

/// The versions of `kind` ferrolb reads, in words.
fn expected_versions(kind: Kind) -> &'static str {
    match kind {
        Kind::BgpPeer => "metallb.io/v1beta2 or metallb.io/v1beta1",
        _ => "metallb.io/v1beta1",
    }
}

/// Reads every document of a file.
pub(super) fn documents(text: &str) -> Result<Vec<Object>, ConfigErrors> {
    let docs = yaml::parse_all(text, 0).map_err(ConfigErrors::new)?;
    let mut errs = Vec::new();
    let mut out = Vec::new();
    for doc in &docs {
        if matches!(doc.value, Value::Null) {
            continue;
        }
        document(doc, &mut out, &mut errs);
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(ConfigErrors::new(errs))
    }
}

/// Reads one object from the API server's JSON; every line is 0.
pub(super) fn json(text: &str) -> Result<Object, ConfigErrors> {
    let zero = |mut errs: Vec<ConfigError>| {
        for e in &mut errs {
            e.line = 0;
        }
        ConfigErrors::new(errs)
    };
    let mut docs = yaml::parse_all(text, 0).map_err(zero)?;
    let mut root = match (docs.pop(), docs.is_empty()) {
        (Some(root), true) => root,
        (None, _) => Node {
            line: 0,
            value: Value::Null,
        },
        (Some(root), false) => {
            return Err(zero(vec![ConfigError::new(
                "",
                root.line,
                ConfigErrorKind::MultipleDocuments,
            )]));
        }
    };
    zero_lines(&mut root);
    let mut errs = Vec::new();
    match object(&root, &mut errs) {
        Some(obj) if errs.is_empty() => Ok(obj),
        _ => Err(zero(errs)),
    }
}

fn zero_lines(node: &mut Node) {
    node.line = 0;
    match &mut node.value {
        Value::Seq(items) => items.iter_mut().for_each(zero_lines),
        Value::Map(entries) => {
            for e in entries {
                e.key_line = 0;
                zero_lines(&mut e.value);
            }
        }
        _ => {}
    }
}

/// One document: an object or a `List` of objects.
fn document(doc: &Node, out: &mut Vec<Object>, errs: &mut Vec<ConfigError>) {
    let is_list = doc
        .get("kind")
        .is_some_and(|k| matches!(&k.value.value, Value::Scalar { text, .. } if text == "List"));
    if !is_list {
        out.extend(object(doc, errs));
        return;
    }
    let Some(list) = crate::fields::Object::read(doc, String::new(), &LIST, errs) else {
        return;
    };
    for (i, item) in list.seq("items", errs).iter().enumerate() {
        let before = errs.len();
        let obj = object(item, errs);
        // Errors before the object is known are located in the list.
        for e in errs.iter_mut().skip(before).filter(|e| e.object.is_none()) {
            e.path = join(&index("items", i), &e.path)
                .trim_end_matches('.')
                .to_string();
        }
        out.extend(obj);
    }
}

/// One object. None (with errors) when its envelope is wrong.
fn object(node: &Node, errs: &mut Vec<ConfigError>) -> Option<Object> {
    let before = errs.len();
    let env = crate::fields::Object::read(node, String::new(), &ENVELOPE, errs)?;
    let kind = env.required("kind", errs, |n| {
        let text = string(n)?;
        Kind::from_name(&text).ok_or(ConfigErrorKind::UnknownKind(text))
    });
    let api_version = env.required("apiVersion", errs, string);
    let mut kind_and_version = None;
    if let (Some(kind), Some(version)) = (kind, api_version) {
        let ok = version == "metallb.io/v1beta1"
            || (kind == Kind::BgpPeer && version == "metallb.io/v1beta2");
        if ok {
            kind_and_version = Some((kind, version));
        } else {
            errs.push(env.error(
                "apiVersion",
                ConfigErrorKind::UnknownApiVersion {
                    api_version: version,
                    kind: kind.name(),
                    expected: expected_versions(kind),
                },
            ));
        }
    }
    let metadata = env.entry("metadata").map(|e| &e.value);
    let name = match metadata.and_then(|m| m.get("name")) {
        Some(e) => match string(&e.value) {
            Ok(n) if !n.is_empty() => Some(n),
            Ok(_) => {
                errs.push(ConfigError::new(
                    "metadata.name",
                    e.value.line,
                    ConfigErrorKind::Missing("name"),
                ));
                None
            }
            Err(kind) => {
                errs.push(ConfigError::new("metadata.name", e.value.line, kind));
                None
            }
        },
        None => {
            let (path, line) = match metadata {
                Some(m) => ("metadata", m.line),
                None => ("", env.line),
            };
            errs.push(ConfigError::new(
                path,
                line,
                ConfigErrorKind::Missing("name"),
            ));
            None
        }
    };
    let namespace = match metadata.and_then(|m| m.get("namespace")) {
        Some(e) if !matches!(e.value.value, Value::Null) => match string(&e.value) {
            Ok(ns) => ns,
            Err(kind) => {
                errs.push(ConfigError::new("metadata.namespace", e.value.line, kind));
                String::new()
            }
        },
        _ => String::new(),
    };
    let labels = metadata
        .and_then(|m| m.get("labels"))
        .map(|e| labels(&e.value, errs))
        .unwrap_or_default();
    // RFC 3339 in UTC, so it sorts as text; absent in files.
    let created = metadata
        .and_then(|m| m.get("creationTimestamp"))
        .and_then(|e| string(&e.value).ok())
        .unwrap_or_default();
    let annotations = metadata.and_then(|m| m.get("annotations"));
    let exclusive_namespaces = annotations.and_then(|e| exclusive_annotation(&e.value, errs));
    let as_path_prepend = annotations
        .filter(|_| matches!(kind, Some(Kind::BgpAdvertisement)))
        .and_then(|e| prepend_annotation(&e.value, errs));
    let (Some((kind, api_version)), Some(name)) = (kind_and_version, name) else {
        return None;
    };
    let id = ObjectId {
        kind,
        namespace,
        name,
    };
    for e in errs.iter_mut().skip(before) {
        e.object = Some(Box::new(id.clone()));
    }
    let spec = env.entry("spec").map_or(
        Node {
            line: env.line,
            value: Value::Null,
        },
        |e| e.value.clone(),
    );
    Some(Object {
        id,
        labels,
        spec,
        line: env.line,
        created,
        api_version,
        exclusive_namespaces,
        as_path_prepend,
    })
}

/// The [`AS_PATH_PREPEND`] annotation of a `BGPAdvertisement`: `ASN:COUNT` or absent.
fn prepend_annotation(annotations: &Node, errs: &mut Vec<ConfigError>) -> Option<AsPathPrepend> {
    let entry = annotations.get(AS_PATH_PREPEND)?;
    let parsed = string(&entry.value)
        .and_then(|text| text.parse::<AsPathPrepend>().map_err(ConfigErrorKind::from));
    match parsed {
        Ok(p) => Some(p),
        Err(kind) => {
            errs.push(ConfigError::new(
                join("metadata.annotations", AS_PATH_PREPEND),
                entry.value.line,
                kind,
            ));
            None
        }
    }
}

/// The [`EXCLUSIVE_NAMESPACES`] annotation: `"true"`, `"false"` or absent.
fn exclusive_annotation(annotations: &Node, errs: &mut Vec<ConfigError>) -> Option<bool> {
    let entry = annotations.get(EXCLUSIVE_NAMESPACES)?;
    match string(&entry.value).as_deref() {
        Ok("true") => Some(true),
        Ok("false") => Some(false),
        other => {
            let value = match other {
                Ok(v) => v.to_string(),
                Err(_) => entry.value.describe(),
            };
            errs.push(ConfigError::new(
                join("metadata.annotations", EXCLUSIVE_NAMESPACES),
                entry.value.line,
                ConfigErrorKind::BadAnnotation {
                    annotation: EXCLUSIVE_NAMESPACES,
                    value,
                },
            ));
            None
        }
    }
}

fn labels(node: &Node, errs: &mut Vec<ConfigError>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    match &node.value {
        Value::Null => {}
        Value::Map(entries) => {
            for e in entries {
                match string(&e.value) {
                    Ok(v) => {
                        out.insert(e.key.clone(), v);
                    }
                    Err(_) if matches!(e.value.value, Value::Null) => {
                        out.insert(e.key.clone(), String::new());
                    }
                    Err(kind) => errs.push(ConfigError::new(
                        join("metadata.labels", &e.key),
                        e.value.line,
                        kind,
                    )),
                }
            }
        }
        _ => errs.push(ConfigError::new(
            "metadata.labels",
            node.line,
            ConfigErrorKind::WrongType {
                expected: "a mapping of label to value",
                found: node.describe(),
            },
        )),
    }
    out
}
