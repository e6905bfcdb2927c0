//! `ferrolb config ...`: check a configuration before it is applied, and convert a ConfigMap into MetalLB's
//! metallb.io objects.

mod metallb;

use clap::{Subcommand, ValueEnum};
use ferrolb_config::{Config, ConfigError, ControlPlaneVip, VipMode};
use serde::Serialize;
use std::io::Read;
use std::process::ExitCode;

/// Configuration subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check configuration files: the YAML of the ConfigMap's `data.config`, a whole ConfigMap
    /// manifest, or MetalLB's metallb.io objects (multi-document YAML; `kind: Secret` documents in
    /// it are used as the peers' `passwordSecret`s). Prints a summary on success; every error, with
    /// its line, otherwise. Exits 1 if any file fails.
    Check {
        /// The files to check (`-` reads stdin).
        #[arg(required = true)]
        files: Vec<String>,
        /// Output format: `text`, or `json` (one JSON object per file, one per line).
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
        /// What the files are: `auto` (a ConfigMap configuration or metallb.io objects, told apart by their
        /// content), or `control-plane-vip` (the file of `ferrolb control-plane-vip`).
        #[arg(long, value_enum, default_value_t = Kind::Auto)]
        kind: Kind,
    },
    /// Convert a ConfigMap configuration (its `data.config` YAML, or the whole ConfigMap) into the
    /// equivalent metallb.io objects: their YAML on stdout, what has no equivalent on stderr.
    /// Exits 1 if the input is invalid.
    Convert {
        /// The file (`-` reads stdin).
        file: String,
        /// The namespace of the objects.
        #[arg(long, default_value = "metallb-system")]
        namespace: String,
    },
}

/// What `config check` reads the files as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// A ConfigMap configuration or metallb.io objects.
    Auto,
    /// A `ferrolb control-plane-vip` file.
    ControlPlaneVip,
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
            ConfigCommand::Check {
                files,
                output,
                kind,
            } => {
                let mut all_ok = true;
                let prefix = files.len() > 1;
                for file in &files {
                    let report = match read(file) {
                        Ok(text) if kind == Kind::ControlPlaneVip => check_control_plane_vip(&text),
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
            ConfigCommand::Convert { file, namespace } => {
                let text = match read(&file) {
                    Ok(text) => text,
                    Err(e) => {
                        eprintln!("cannot read {file}: {e}");
                        return ExitCode::FAILURE;
                    }
                };
                let (stdout, stderr, ok) = convert(&text, &namespace);
                print!("{stdout}");
                eprint!("{stderr}");
                if ok {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// `config convert`: (stdout, stderr, success). An invalid input prints its errors to stderr.
pub fn convert(text: &str, namespace: &str) -> (String, String, bool) {
    match ferrolb_config::load(text) {
        Ok(config) => {
            let conversion = ferrolb_config::metallb::convert(&config, namespace);
            let report = conversion.report.iter().map(|l| format!("{l}\n")).collect();
            (conversion.yaml, report, true)
        }
        Err(errors) => (
            String::new(),
            errors.errors().iter().map(|e| format!("{e}\n")).collect(),
            false,
        ),
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
    /// A ConfigMap configuration: valid, or every error.
    ConfigMap(Result<Config, Vec<ConfigError>>),
    /// metallb.io objects.
    Metallb(metallb::Checked),
    /// A control-plane-vip file.
    ControlPlaneVip(Result<ControlPlaneVip, Vec<ConfigError>>),
    /// The file could not be read.
    Unreadable(String),
}

impl Report {
    /// True for a valid configuration.
    pub fn is_ok(&self) -> bool {
        match self {
            Report::ConfigMap(result) => result.is_ok(),
            Report::Metallb(checked) => checked.config.is_ok(),
            Report::ControlPlaneVip(result) => result.is_ok(),
            Report::Unreadable(_) => false,
        }
    }

    fn config(&self) -> Option<&Config> {
        match self {
            Report::ConfigMap(Ok(config)) => Some(config),
            Report::Metallb(checked) => checked.config.as_ref().ok(),
            _ => None,
        }
    }

    fn errors(&self) -> &[ConfigError] {
        match self {
            Report::ConfigMap(Err(errors)) | Report::ControlPlaneVip(Err(errors)) => errors,
            Report::Metallb(checked) => checked.config.as_ref().err().map_or(&[], Vec::as_slice),
            _ => &[],
        }
    }
}

/// Checks one configuration text (config YAML alone, a ConfigMap manifest, or metallb.io objects).
pub fn check(text: &str) -> Report {
    if metallb::is_metallb(text) {
        return Report::Metallb(metallb::check(text));
    }
    Report::ConfigMap(ferrolb_config::load(text).map_err(|errors| errors.into_iter().collect()))
}

/// Checks a control-plane-vip file.
pub fn check_control_plane_vip(text: &str) -> Report {
    Report::ControlPlaneVip(
        ControlPlaneVip::from_yaml(text).map_err(|errors| errors.into_iter().collect()),
    )
}

/// `ok: control-plane-vip, 1 address, 2 peers, active-backup (priority 200, MED 55)`.
pub fn control_plane_vip_summary(file: &ControlPlaneVip) -> String {
    let mode = match file.mode {
        VipMode::Ecmp => "ecmp".to_owned(),
        VipMode::ActiveBackup { priority } => format!(
            "active-backup (priority {priority}, MED {})",
            ferrolb_config::med_from_priority(priority)
        ),
    };
    format!(
        "ok: control-plane-vip, {}, {}, {mode}",
        plural(file.addresses.len(), "address", "addresses"),
        plural(file.peers.len(), "peer", "peers"),
    )
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
    /// Warnings and notes (metallb.io objects), as printed in text.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    notes: Vec<String>,
}

#[derive(Serialize)]
struct JsonError {
    /// The metallb.io object (`IPAddressPool ns/name`), if the error is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    object: Option<String>,
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
                Report::ConfigMap(Ok(cfg)) => vec![summary(cfg)],
                Report::ConfigMap(Err(errors)) | Report::ControlPlaneVip(Err(errors)) => {
                    errors.iter().map(|e| e.to_string()).collect()
                }
                Report::ControlPlaneVip(Ok(file)) => vec![control_plane_vip_summary(file)],
                Report::Metallb(checked) => metallb::render_lines(checked, summary),
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
                notes: Vec::new(),
            };
            if let Some(cfg) = report.config() {
                let (v4, v6) = cfg.address_counts();
                json.peers = Some(cfg.peers.len());
                json.pools = Some(cfg.address_pools.len());
                json.ipv4_addresses = Some(v4);
                json.ipv6_addresses = Some(v6);
            }
            json.errors = report
                .errors()
                .iter()
                .map(|e| JsonError {
                    object: e.object.as_ref().map(ToString::to_string),
                    path: e.path.clone(),
                    line: e.line,
                    message: e.message(),
                })
                .collect();
            if let Report::ControlPlaneVip(Ok(file)) = report {
                json.peers = Some(file.peers.len());
            }
            if let Report::Metallb(checked) = report {
                json.notes = metallb::render_lines(checked, summary)
                    .into_iter()
                    .filter(|l| l.starts_with("warning: ") || l.starts_with("note: "))
                    .collect();
            }
            if let Report::Unreadable(msg) = report {
                json.errors.push(JsonError {
                    object: None,
                    path: String::new(),
                    line: 0,
                    message: msg.clone(),
                });
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

    const OBJECTS: &str = "\
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: public, namespace: metallb-system}
spec:
  addresses:
  - 203.0.113.0/28
  - 203.0.113.300/32
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: r1, namespace: metallb-system}
spec:
  myASN: 64512
  peerASN: 64513
  peerAddress: 198.18.0.1
  passwordSecret: {name: r1-password, namespace: metallb-system}
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: l2, namespace: metallb-system}
";

    const SECRET: &str = "\
---
apiVersion: v1
kind: Secret
metadata: {name: r1-password, namespace: metallb-system}
type: kubernetes.io/basic-auth
stringData: {password: s3cret}
";

    const L2_WARNING: &str = "warning: L2Advertisement metallb-system/l2: ignored: ferrolb announces over BGP only \
                              (L2Advertisement is MetalLB's layer 2 mode)\n";
    const SECRET_NOTE: &str = "note: Secret r1-password is not in the input; it must exist in the configuration \
                               namespace (type kubernetes.io/basic-auth, key password)\n";

    #[test]
    fn metallb_objects_every_error_with_its_line_and_a_missing_secret_is_a_note() {
        let r = check(OBJECTS);
        assert!(!r.is_ok());
        assert_eq!(
            render(&r, "m.yaml", false, OutputFormat::Text),
            format!(
                "IPAddressPool metallb-system/public: spec.addresses[1] (line 7): invalid CIDR \"203.0.113.300/32\"\n\
                 {L2_WARNING}{SECRET_NOTE}"
            )
        );
        let valid = OBJECTS.replace("  - 203.0.113.300/32\n", "");
        let r = check(&valid);
        assert!(r.is_ok());
        assert_eq!(
            render(&r, "m.yaml", false, OutputFormat::Text),
            format!("ok: 1 peer, 1 pool, 16 IPv4 + 0 IPv6 addresses\n{L2_WARNING}{SECRET_NOTE}")
        );
    }

    #[test]
    fn metallb_secrets_in_the_input_are_used() {
        let r = check(&format!("{OBJECTS}{SECRET}"));
        // The Secret's lines are kept out of the objects without moving the errors' lines.
        assert_eq!(
            render(&r, "m.yaml", false, OutputFormat::Text),
            format!(
                "IPAddressPool metallb-system/public: spec.addresses[1] (line 7): invalid CIDR \"203.0.113.300/32\"\n\
                 {L2_WARNING}"
            )
        );
        let valid = format!("{OBJECTS}{SECRET}").replace("  - 203.0.113.300/32\n", "");
        let Report::Metallb(checked) = check(&valid) else {
            panic!("not read as metallb.io objects");
        };
        let config = checked.config.unwrap();
        assert_eq!(config.peers[0].password.as_deref(), Some("s3cret"));
        let wrong_type = valid.replace("kubernetes.io/basic-auth", "Opaque");
        let r = check(&wrong_type);
        assert!(!r.is_ok());
        assert_eq!(r.errors()[0].path, "spec.passwordSecret.name");
    }

    #[test]
    fn metallb_errors_in_json_name_the_object() {
        let bad: serde_json::Value = serde_json::from_str(&render(
            &check(OBJECTS),
            "m.yaml",
            false,
            OutputFormat::Json,
        ))
        .unwrap();
        assert_eq!(
            bad,
            serde_json::json!({"file": "m.yaml", "ok": false,
                "errors": [{"object": "IPAddressPool metallb-system/public", "path": "spec.addresses[1]",
                    "line": 7, "message": "invalid CIDR \"203.0.113.300/32\""}],
                "notes": [L2_WARNING.trim_end(), SECRET_NOTE.trim_end()]})
        );
    }

    #[test]
    fn convert_prints_the_objects_and_they_check_as_the_same_configuration() {
        let (yaml, report, ok) = convert(SEED_MANIFEST, "metallb-system");
        assert!(ok);
        assert_eq!(report, "");
        assert!(
            yaml.starts_with("apiVersion: metallb.io/v1beta2\nkind: BGPPeer\n"),
            "{yaml}"
        );
        let r = check(&yaml);
        assert_eq!(
            render(&r, "-", false, OutputFormat::Text),
            "ok: 1 peer, 1 pool, 5 IPv4 + 0 IPv6 addresses\n"
        );
        let (yaml, report, ok) = convert(BAD, "metallb-system");
        assert!(!ok);
        assert_eq!(yaml, "");
        assert_eq!(
            report,
            "address-pools[1].protocol (line 6): protocol `layer2` is not supported: ferrolb is BGP only (use `protocol: bgp`, or keep this pool on MetalLB)\n\
             address-pools[1].addresses[0] (line 8): range start 203.0.113.9 is after end 203.0.113.4\n"
        );
    }

    #[test]
    fn control_plane_vip_files_are_checked_with_their_own_kind() {
        let good = include_str!("../../manifests/control-plane-vip/config.yaml");
        let r = check_control_plane_vip(good);
        assert_eq!(
            render(&r, "cp.yaml", false, OutputFormat::Text),
            "ok: control-plane-vip, 1 address, 1 peer, active-backup (priority 100, MED 155)\n"
        );
        let bad = "addresses: [198.18.0.100]\nmode: ecmp\npriority: 5\n";
        let r = check_control_plane_vip(bad);
        assert_eq!(
            render(&r, "cp.yaml", true, OutputFormat::Text),
            "cp.yaml: line 1: missing required key `peers`\n\
             cp.yaml: health-check.url (line 1): an https URL needs `ca-file` (the API server's CA) or, explicitly, `insecure-skip-verify: true`\n\
             cp.yaml: priority (line 3): priority only applies to `mode: active-backup` (ECMP announces without MED)\n"
        );
        let json: serde_json::Value =
            serde_json::from_str(&render(&r, "cp.yaml", false, OutputFormat::Json)).unwrap();
        assert_eq!(json["ok"], false);
        assert_eq!(json["errors"][2]["path"], "priority");
        assert_eq!(json["errors"][2]["line"], 3);
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
