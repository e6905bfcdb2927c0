//! `ferrolb config check` on MetalLB's metallb.io objects (multi-document YAML), and
//! `ferrolb config convert`.

use crate::config_source::metallb::secret_data;
use ferrolb_config::ConfigError;
use ferrolb_config::metallb::{self, SecretData, Secrets, Warning};
use k8s_openapi::api::core::v1::Secret;

/// The password given to a Secret that is not in the input, so the peers that use it are still checked.
const PLACEHOLDER_PASSWORD: &str = "placeholder";

/// Whether `text` holds metallb.io objects (a document with `apiVersion: metallb.io/...`).
pub fn is_metallb(text: &str) -> bool {
    text.lines().any(|line| {
        let line = line.trim_start_matches([' ', '-']);
        line.strip_prefix("apiVersion:")
            .map(|v| v.trim().trim_matches(['"', '\'']))
            .is_some_and(|v| v.starts_with("metallb.io/"))
    })
}

/// What checking metallb.io objects found.
#[derive(Debug)]
pub struct Checked {
    /// The configuration, or every error.
    pub config: Result<ferrolb_config::Config, Vec<ConfigError>>,
    /// Warnings that do not invalidate it.
    pub warnings: Vec<Warning>,
    /// Notes: the Secrets that must exist in the cluster.
    pub notes: Vec<String>,
}

/// Checks multi-document YAML of metallb.io objects. `kind: Secret` documents are used as the peers'
/// `passwordSecret`s; a Secret that is not in the input is a note (it lives in the cluster), not an error.
pub fn check(text: &str) -> Checked {
    let (rest, secrets, mut secret_errors) = split_secrets(text);
    let objects = match metallb::parse_documents(&rest) {
        Ok(objects) => objects,
        Err(errors) => {
            secret_errors.extend(errors);
            return Checked {
                config: Err(secret_errors),
                warnings: Vec::new(),
                notes: Vec::new(),
            };
        }
    };
    let mut with_placeholders = secrets.clone();
    let mut notes = Vec::new();
    for name in metallb::translate(&objects, &secrets).secrets_used {
        if !secrets.contains_key(&name) {
            notes.push(format!(
                "note: Secret {name} is not in the input; it must exist in the configuration namespace \
                 (type kubernetes.io/basic-auth, key password)"
            ));
            with_placeholders.insert(
                name,
                SecretData {
                    secret_type: "kubernetes.io/basic-auth".into(),
                    password: Some(PLACEHOLDER_PASSWORD.into()),
                },
            );
        }
    }
    let translation = metallb::translate(&objects, &with_placeholders);
    let config = match translation.config {
        Ok(config) if secret_errors.is_empty() => Ok(config),
        Ok(_) => Err(secret_errors),
        Err(errors) => Err(secret_errors.into_iter().chain(errors).collect()),
    };
    Checked {
        config,
        warnings: translation.warnings,
        notes,
    }
}

/// The text without its `kind: Secret` documents (blanked, so lines stay where they were), the Secrets they
/// hold, and the errors of those that cannot be read.
fn split_secrets(text: &str) -> (String, Secrets, Vec<ConfigError>) {
    let mut rest = String::with_capacity(text.len());
    let mut secrets = Secrets::new();
    let mut errors = Vec::new();
    let mut doc: Vec<&str> = Vec::new();
    let mut first_line = 1;
    let mut flush = |doc: &mut Vec<&str>, first_line: usize, rest: &mut String| {
        let is_secret = doc.iter().any(|l| {
            l.strip_prefix("kind:")
                .is_some_and(|k| k.trim().trim_matches(['"', '\'']) == "Secret")
        });
        if !is_secret {
            for l in doc.iter() {
                rest.push_str(l);
                rest.push('\n');
            }
        } else {
            match serde_yaml::from_str::<Secret>(&doc.join("\n")) {
                Ok(secret) => {
                    let mut data = secret_data(&secret);
                    if let Some(password) =
                        secret.string_data.as_ref().and_then(|d| d.get("password"))
                    {
                        data.password = Some(password.as_str().into());
                    }
                    secrets.insert(secret.metadata.name.clone().unwrap_or_default(), data);
                }
                Err(err) => errors.push(ConfigError::new(
                    "",
                    first_line,
                    ferrolb_config::ConfigErrorKind::Syntax(format!(
                        "cannot read the Secret: {err}"
                    )),
                )),
            }
            rest.push_str(&"\n".repeat(doc.len()));
        }
        doc.clear();
    };
    for (i, line) in text.lines().enumerate() {
        if line.starts_with("---") {
            flush(&mut doc, first_line, &mut rest);
            rest.push_str(line);
            rest.push('\n');
            first_line = i + 2;
        } else {
            doc.push(line);
        }
    }
    flush(&mut doc, first_line, &mut rest);
    (rest, secrets, errors)
}

/// The lines `config check` prints for metallb.io objects.
pub fn render_lines(
    checked: &Checked,
    summary: impl Fn(&ferrolb_config::Config) -> String,
) -> Vec<String> {
    let mut lines: Vec<String> = match &checked.config {
        Ok(config) => vec![summary(config)],
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    };
    lines.extend(
        checked
            .warnings
            .iter()
            .map(|w| format!("warning: {}: {}", w.object, w.message)),
    );
    lines.extend(checked.notes.iter().cloned());
    lines
}
