//! `ferrolb config ...`: check a configuration before it is applied.

use clap::{Subcommand, ValueEnum};
use ferrolb_config::{Config, ConfigErrors};
use serde::Serialize;
use std::io::Read;
use std::process::ExitCode;

/// Configuration subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check configuration files: the YAML of the ConfigMap's `data.config`, or a whole
    /// ConfigMap manifest. Prints a summary on success; every error, with its line, otherwise.
    /// Exits 1 if any file fails.
    Check {
        /// The files to check (`-` reads stdin).
        #[arg(required = true)]
        files: Vec<String>,
        /// Output format: `text`, or `json` (one JSON object per file, one per line).
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
}

/// How `config check` prints its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per file.
    Json,
}

impl ConfigCommand {
    /// Runs the subcommand.
    pub fn run(self) -> ExitCode {
        match self {
            ConfigCommand::Check { files, output } => {
                let mut all_ok = true;
                let prefix = files.len() > 1;
                for file in &files {
                    let report = match read(file) {
                        Ok(text) => check(&text),
                        Err(e) => Report::Unreadable(format!("cannot read {file}: {e}")),
                    };
                    all_ok &= report.is_ok();
                    print!("{}", render(&report, file, prefix, output));
                }
                if all_ok {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn read(file: &str) -> std::io::Result<String> {
    if file == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        Ok(text)
    } else {
        std::fs::read_to_string(file)
    }
}

/// The outcome of checking one file.
#[derive(Debug)]
pub enum Report {
    /// The configuration is valid.
    Valid(Config),
    /// The configuration has these errors.
    Invalid(ConfigErrors),
    /// The file could not be read.
    Unreadable(String),
}

impl Report {
    /// True for a valid configuration.
    pub fn is_ok(&self) -> bool {
        matches!(self, Report::Valid(_))
    }
}

/// Checks one configuration text (config YAML alone, or a ConfigMap manifest).
pub fn check(text: &str) -> Report {
    match ferrolb_config::load(text) {
        Ok(cfg) => Report::Valid(cfg),
        Err(errors) => Report::Invalid(errors),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `ok: 1 peer, 1 pool, 5 IPv4 + 0 IPv6 addresses`.
pub fn summary(cfg: &Config) -> String {
    let (v4, v6) = cfg.address_counts();
    format!(
        "ok: {}, {}, {v4} IPv4 + {v6} IPv6 addresses",
        plural(cfg.peers.len(), "peer", "peers"),
        plural(cfg.address_pools.len(), "pool", "pools"),
    )
}

/// The JSON form of a report.
#[derive(Serialize)]
struct JsonReport<'a> {
    file: &'a str,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    peers: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pools: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ipv4_addresses: Option<u128>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ipv6_addresses: Option<u128>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<JsonError>,
}

#[derive(Serialize)]
struct JsonError {
    /// Empty for errors about the document or file itself.
    path: String,
    /// 0 when the file could not be read.
    line: usize,
    message: String,
}

/// Renders a report: text lines (prefixed with `file: ` when `prefix`), or one JSON line.
pub fn render(report: &Report, file: &str, prefix: bool, output: OutputFormat) -> String {
    match output {
        OutputFormat::Text => {
            let lead = if prefix {
                format!("{file}: ")
            } else {
                String::new()
            };
            let lines: Vec<String> = match report {
                Report::Valid(cfg) => vec![summary(cfg)],
                Report::Invalid(errors) => errors.errors().iter().map(|e| e.to_string()).collect(),
                Report::Unreadable(msg) => vec![msg.clone()],
            };
            lines.iter().map(|l| format!("{lead}{l}\n")).collect()
        }
        OutputFormat::Json => {
            let mut json = JsonReport {
                file,
                ok: report.is_ok(),
                peers: None,
                pools: None,
                ipv4_addresses: None,
                ipv6_addresses: None,
                errors: Vec::new(),
            };
            match report {
                Report::Valid(cfg) => {
                    let (v4, v6) = cfg.address_counts();
                    json.peers = Some(cfg.peers.len());
                    json.pools = Some(cfg.address_pools.len());
                    json.ipv4_addresses = Some(v4);
                    json.ipv6_addresses = Some(v6);
                }
                Report::Invalid(errors) => {
                    json.errors = errors
                        .errors()
                        .iter()
                        .map(|e| JsonError {
                            path: e.path.clone(),
                            line: e.line,
                            message: e.message(),
                        })
                        .collect();
                }
                Report::Unreadable(msg) => json.errors.push(JsonError {
                    path: String::new(),
                    line: 0,
                    message: msg.clone(),
                }),
            }
            // Serialising plain strings and numbers cannot fail.
            let mut line = serde_json::to_string(&json).unwrap_or_default();
            line.push('\n');
            line
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = include_str!("../../config/seed.yaml");
    const SEED_MANIFEST: &str = include_str!("../../config/seed-configmap.yaml");
    const BAD: &str = "\
address-pools:
- name: a
  protocol: bgp
  addresses: [203.0.113.0/28]
- name: b
  protocol: layer2
  addresses:
  - 203.0.113.9-203.0.113.4
";

    #[test]
    fn seed_summary_line() {
        let r = check(SEED);
        assert!(r.is_ok());
        assert_eq!(
            render(&r, "seed.yaml", false, OutputFormat::Text),
            "ok: 1 peer, 1 pool, 5 IPv4 + 0 IPv6 addresses\n"
        );
        assert_eq!(
            render(&check(SEED_MANIFEST), "m.yaml", true, OutputFormat::Text),
            "m.yaml: ok: 1 peer, 1 pool, 5 IPv4 + 0 IPv6 addresses\n"
        );
    }

    #[test]
    fn summary_pluralises() {
        let cfg = ferrolb_config::Config::from_yaml(
            "address-pools:\n- {name: a, protocol: bgp, addresses: [2001:db8::/126]}\n- {name: b, protocol: bgp, addresses: [203.0.113.0/31]}\n",
        )
        .unwrap();
        assert_eq!(
            summary(&cfg),
            "ok: 0 peers, 2 pools, 2 IPv4 + 4 IPv6 addresses"
        );
    }

    #[test]
    fn every_error_is_printed() {
        let r = check(BAD);
        assert!(!r.is_ok());
        assert_eq!(
            render(&r, "bad.yaml", false, OutputFormat::Text),
            "address-pools[1].protocol (line 6): protocol `layer2` is not supported: ferrolb is BGP only (use `protocol: bgp`, or keep this pool on MetalLB)\n\
             address-pools[1].addresses[0] (line 8): range start 203.0.113.9 is after end 203.0.113.4\n"
        );
    }

    #[test]
    fn json_output() {
        let ok: serde_json::Value = serde_json::from_str(&render(
            &check(SEED),
            "seed.yaml",
            false,
            OutputFormat::Json,
        ))
        .unwrap();
        assert_eq!(
            ok,
            serde_json::json!({"file": "seed.yaml", "ok": true, "peers": 1, "pools": 1,
                "ipv4_addresses": 5, "ipv6_addresses": 0})
        );
        let bad: serde_json::Value =
            serde_json::from_str(&render(&check(BAD), "bad.yaml", false, OutputFormat::Json))
                .unwrap();
        assert_eq!(bad["ok"], false);
        assert_eq!(bad["errors"][1]["path"], "address-pools[1].addresses[0]");
        assert_eq!(bad["errors"][1]["line"], 8);
        assert_eq!(
            bad["errors"][1]["message"],
            "range start 203.0.113.9 is after end 203.0.113.4"
        );
    }

    #[test]
    fn huge_ipv6_counts_are_exact_in_json() {
        let r = check("address-pools:\n- {name: a, protocol: bgp, addresses: [2001:db8::/32]}\n");
        let line = render(&r, "-", false, OutputFormat::Json);
        assert!(
            line.contains("\"ipv6_addresses\":79228162514264337593543950336"),
            "{line}"
        );
    }
}
