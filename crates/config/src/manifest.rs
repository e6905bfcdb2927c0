//! Reading either the configuration YAML alone or a whole ConfigMap manifest around it.

use crate::error::{ConfigError, ConfigErrorKind, ConfigErrors};
use crate::model::Config;
use crate::yaml::{self, Node, Value};

/// Parses `text`, which is either the YAML of `data.config` alone or a whole ConfigMap
/// manifest (`kind: ConfigMap`) whose `data.config` holds it. Line numbers in errors always
/// refer to `text`: for a manifest whose `config` is a literal block (`config: |`), they are
/// exact; for other scalar styles (folded, quoted) they are the scalar's first line plus the
/// line within the configuration.
pub fn load(text: &str) -> Result<Config, ConfigErrors> {
    let root = yaml::parse(text, 0).map_err(ConfigErrors::new)?;
    if let Some(e) = root.as_ref().and_then(other_manifest) {
        return Err(ConfigErrors::new(vec![e]));
    }
    match root.as_ref().filter(|r| is_config_map(r)) {
        Some(manifest) => {
            let (inner, offset) = config_text(manifest).map_err(|e| ConfigErrors::new(vec![e]))?;
            parse_at(&inner, offset)
        }
        None => crate::parse::config(root.as_ref()).map_err(ConfigErrors::new),
    }
}

/// Parses configuration YAML whose first line is line `offset + 1` of the file.
pub(crate) fn parse_at(text: &str, offset: usize) -> Result<Config, ConfigErrors> {
    let root = yaml::parse(text, offset).map_err(ConfigErrors::new)?;
    crate::parse::config(root.as_ref()).map_err(ConfigErrors::new)
}

fn is_config_map(root: &Node) -> bool {
    root.get("kind").is_some_and(
        |k| matches!(&k.value.value, Value::Scalar { text, .. } if text == "ConfigMap"),
    )
}

/// An error for a Kubernetes manifest of another kind (say, a Deployment given by mistake).
fn other_manifest(root: &Node) -> Option<ConfigError> {
    let kind = root.get("kind")?;
    root.get("apiVersion")?;
    match &kind.value.value {
        Value::Scalar { text, .. } if text != "ConfigMap" => Some(ConfigError::new(
            "kind",
            kind.value.line,
            ConfigErrorKind::Manifest(format!(
                "this is a {text} manifest; expected a ConfigMap whose data.config holds the configuration, or the configuration YAML alone"
            )),
        )),
        _ => None,
    }
}

/// The text of `data.config` and the line offset of its first line.
// One error, returned once per load: its size (it names a MetalLB object) does not matter.
#[allow(clippy::result_large_err)]
fn config_text(manifest: &Node) -> Result<(String, usize), ConfigError> {
    let missing = |line| {
        ConfigError::new(
            "data.config",
            line,
            ConfigErrorKind::Manifest(
                "the ConfigMap has no data.config (MetalLB's configuration key)".into(),
            ),
        )
    };
    let data = manifest.get("data").ok_or_else(|| missing(manifest.line))?;
    let config = data
        .value
        .get("config")
        .ok_or_else(|| missing(data.key_line))?;
    match &config.value.value {
        Value::Scalar { text, .. } => {
            // The scalar's line is that of its first content line (for a literal block, the
            // line after its `|`), which is line 1 of the configuration.
            Ok((text.clone(), config.value.line.saturating_sub(1)))
        }
        Value::Null => Ok((String::new(), config.key_line)),
        _ => Err(ConfigError::new(
            "data.config",
            config.key_line,
            ConfigErrorKind::Manifest(format!(
                "data.config must be a string holding the configuration YAML, found {}",
                config.value.describe()
            )),
        )),
    }
}
