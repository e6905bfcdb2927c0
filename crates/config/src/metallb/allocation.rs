//! `IPAddressPool.spec.serviceAllocation`'s keys, and the `ferrolb.io/exclusive-namespaces`
//! annotation that stands for the ConfigMap's `service-allocation.exclusive`.

use crate::error::ConfigError;
use crate::fields::{Schema, join};
use crate::yaml::{Entry, Node, Value};

/// Keys of an `IPAddressPool`'s `serviceAllocation`.
pub(crate) const ALLOCATION: Schema = Schema {
    known: &[
        "priority",
        "namespaces",
        "namespaceSelectors",
        "serviceSelectors",
    ],
    not_supported: &[],
};

/// Puts the [`super::EXCLUSIVE_NAMESPACES`] annotation's value into a renamed pool spec, as
/// `service-allocation.exclusive` (creating `service-allocation` when absent).
pub(super) fn add_exclusive(pool: &mut Node, exclusive: bool, line: usize) {
    let Value::Map(entries) = &mut pool.value else {
        return;
    };
    let at = match entries.iter().position(|e| e.key == "service-allocation") {
        Some(at) => at,
        None => {
            entries.push(Entry {
                key: "service-allocation".into(),
                key_line: line,
                value: Node {
                    line,
                    value: Value::Map(Vec::new()),
                },
            });
            entries.len() - 1
        }
    };
    if let Some(Entry {
        value: Node {
            value: Value::Map(inner),
            ..
        },
        ..
    }) = entries.get_mut(at)
    {
        // A plain scalar, as YAML's `true`/`false` (the annotation's text was checked already).
        inner.push(Entry {
            key: "exclusive".into(),
            key_line: line,
            value: Node {
                line,
                value: Value::Scalar {
                    text: exclusive.to_string(),
                    plain: true,
                },
            },
        });
    }
}

/// Errors about the synthetic `exclusive` entry point at the annotation it came from.
pub(super) fn point_at_annotation(errs: &mut [ConfigError]) {
    for e in errs {
        if e.path == "spec.service-allocation.exclusive" {
            e.path = join("metadata.annotations", super::EXCLUSIVE_NAMESPACES);
        }
    }
}
