//! ferrolb's alerts and dashboard, without a lab:
//!
//! 1. `promtool check rules` accepts the PrometheusRule's rules (manifests/components/prometheus-rules), and
//!    `promtool test rules` passes its unit tests (tests.yaml), in which every alert fires on some input and
//!    its exact list of firing alerts leaves the other series quiet;
//! 2. every `ferrolb_*` metric the rules and the Grafana dashboard (manifests/grafana) query is in the README's
//!    metrics reference; the other metrics are kube-state-metrics' named in [`KUBE_STATE_METRICS`];
//! 3. the dashboard is valid JSON whose every query is valid PromQL (`promtool check rules` on them as
//!    recording rules), and it shows sessions, prefixes, UPDATE rates, pool usage, config staleness and the
//!    event → UPDATE latency.
//!
//! Needs Debian's `prometheus` package for `promtool` (`testbed/lab deps`); fails loudly without it.
//! `cargo test --test alerts`.

use ferrolb_testbed::serde_json::{self, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

mod readme_metrics;

/// The kube-state-metrics series the Service alerts join with (its names since v2.6).
const KUBE_STATE_METRICS: &[&str] = &[
    "kube_service_spec_type",
    "kube_service_status_load_balancer_ingress",
    "kube_endpoint_address",
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rules_dir() -> PathBuf {
    repo().join("manifests/components/prometheus-rules")
}

/// A fresh scratch directory for this test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferrolb-alerts-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs promtool; panics with its output when it fails or is missing.
fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("promtool: {e} (install Debian's prometheus: testbed/lab deps)")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {}:\n{text}", args.join(" "));
    text
}

fn yaml_file(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The PrometheusRule object.
fn prometheus_rule() -> Value {
    yaml_file(&rules_dir().join("prometheusrule.yaml"))
}

/// Names of the metrics a PromQL expression selects: identifiers followed by `{`, `[`, `)`, an operator or
/// the end, that are not functions (followed by `(`), aggregations, keywords or label names (inside `{}` / `by ()`).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    let mut depth_braces = 0usize;
    let mut in_grouping = false;
    while let Some(c) = rest.chars().next() {
        if c == '"' {
            let end = rest[1..].find('"').map_or(rest.len(), |i| i + 2);
            rest = &rest[end..];
            continue;
        }
        if c.is_ascii_digit() {
            // A number or a duration (`0.9`, `5m`, `1h30m`).
            let end = rest
                .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '.'))
                .unwrap_or(rest.len());
            rest = &rest[end..];
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let end = rest
                .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_' || ch == ':'))
                .unwrap_or(rest.len());
            let word = &rest[..end];
            let after = rest[end..].trim_start();
            let keyword = matches!(
                word,
                "by" | "without"
                    | "on"
                    | "ignoring"
                    | "and"
                    | "or"
                    | "unless"
                    | "group_left"
                    | "group_right"
                    | "bool"
                    | "offset"
            );
            // Aggregations may put `by (...)` between their name and their `(`.
            let aggregation = matches!(
                word,
                "sum"
                    | "min"
                    | "max"
                    | "avg"
                    | "count"
                    | "group"
                    | "stddev"
                    | "stdvar"
                    | "topk"
                    | "bottomk"
                    | "quantile"
                    | "count_values"
            );
            if keyword && after.starts_with('(') {
                in_grouping = true;
            } else if !keyword
                && !aggregation
                && depth_braces == 0
                && !in_grouping
                && !after.starts_with('(')
            {
                names.insert(word.to_owned());
            }
            rest = &rest[end..];
            continue;
        }
        match c {
            '{' => depth_braces += 1,
            '}' => depth_braces = depth_braces.saturating_sub(1),
            ')' => in_grouping = false,
            _ => {}
        }
        rest = &rest[c.len_utf8()..];
    }
    names
}

/// Fails with the metrics in `exprs` that neither the README documents nor [`KUBE_STATE_METRICS`] names.
fn assert_known_metrics(what: &str, exprs: &[String]) -> BTreeSet<String> {
    let documented = readme_metrics::documented_metrics(&repo());
    let mut used = BTreeSet::new();
    for expr in exprs {
        for name in metric_names(expr) {
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|b| documented.contains(*b)))
                .unwrap_or(&name)
                .to_owned();
            assert!(
                documented.contains(&base) || KUBE_STATE_METRICS.contains(&base.as_str()),
                "{what} queries {name} (in `{expr}`), which README.md's metrics reference does not list"
            );
            used.insert(base);
        }
    }
    used
}

#[test]
fn metric_names_are_found_in_promql() {
    let names = metric_names(
        r#"max by (pool, family) (a_total{x="b c"}) / max by (pool) (b) > 0.9 and on (service) label_join(sum by (namespace) (c{ready="true"}) > 0, "service", "/", "ns")"#,
    );
    assert_eq!(
        names,
        ["a_total", "b", "c"]
            .map(String::from)
            .into_iter()
            .collect()
    );
    let names = metric_names("histogram_quantile(0.99, sum by (le) (rate(d_bucket[5m])))");
    assert_eq!(names, ["d_bucket".to_owned()].into_iter().collect());
}

#[test]
fn alert_rules_pass_promtool_and_their_unit_tests() {
    let rule = prometheus_rule();
    assert_eq!(rule["kind"], "PrometheusRule");
    let dir = scratch("rules");
    std::fs::write(
        dir.join("rules.yaml"),
        serde_yaml::to_string(&rule["spec"]).unwrap(),
    )
    .unwrap();
    std::fs::copy(rules_dir().join("tests.yaml"), dir.join("tests.yaml")).unwrap();
    let check = promtool(&[
        "check",
        "rules",
        &dir.join("rules.yaml").display().to_string(),
    ]);
    println!("{check}");
    let test = promtool(&[
        "test",
        "rules",
        &dir.join("tests.yaml").display().to_string(),
    ]);
    println!("{test}");

    // Every alert has a test in which it fires (and the exact list there keeps the other series quiet), and
    // the issue's six conditions each have an alert.
    let alerts: BTreeSet<String> = rule["spec"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .map(|r| r["alert"].as_str().expect("alert rules only").to_owned())
        .collect();
    let tests = yaml_file(&rules_dir().join("tests.yaml"));
    let fired: BTreeSet<String> = tests["tests"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["alert_rule_test"].as_array().unwrap())
        .filter(|a| a["exp_alerts"].as_array().is_some_and(|e| !e.is_empty()))
        .map(|a| a["alertname"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        fired, alerts,
        "alerts without a firing unit test, or tests of no alert"
    );
    for wanted in [
        "FerrolbBGPSessionDown",
        "FerrolbConfigStale",
        "FerrolbPoolAlmostFull",
        "FerrolbPoolExhausted",
        "FerrolbServiceWithoutAddress",
        "FerrolbServiceNotAnnounced",
        "FerrolbBFDDown",
    ] {
        assert!(alerts.contains(wanted), "no alert {wanted}");
    }
    let exprs: Vec<String> = rule["spec"]["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["expr"].as_str().unwrap().to_owned())
        .collect();
    let used = assert_known_metrics("prometheusrule.yaml", &exprs);
    println!("{} alerts, metrics used: {used:?}", alerts.len());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dashboard_is_valid_and_queries_documented_metrics() {
    let path = repo().join("manifests/grafana/ferrolb-dashboard.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is valid JSON");
    assert_eq!(dashboard["uid"], "ferrolb");
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().expect("every panel has targets"))
        .map(|t| {
            t["expr"]
                .as_str()
                .expect("every target has an expr")
                .to_owned()
        })
        .collect();
    // Each query is valid PromQL: promtool checks them as recording rules.
    let rules: Vec<Value> = exprs
        .iter()
        .enumerate()
        .map(|(i, e)| serde_json::json!({"record": format!("dashboard:query_{i}"), "expr": e}))
        .collect();
    let dir = scratch("dashboard");
    let file = dir.join("queries.yaml");
    std::fs::write(
        &file,
        serde_yaml::to_string(
            &serde_json::json!({"groups": [{"name": "dashboard", "rules": rules}]}),
        )
        .unwrap(),
    )
    .unwrap();
    promtool(&["check", "rules", &file.display().to_string()]);
    let used = assert_known_metrics("the dashboard", &exprs);
    for wanted in [
        "ferrolb_bgp_session_up",
        "ferrolb_bgp_prefixes_advertised",
        "ferrolb_bgp_updates_sent_total",
        "ferrolb_allocator_addresses_in_use_total",
        "ferrolb_k8s_client_config_stale_bool",
        "ferrolb_speaker_event_to_update_seconds",
    ] {
        assert!(
            used.contains(wanted),
            "the dashboard does not show {wanted}"
        );
    }
    println!("dashboard: {} queries, metrics {used:?}", exprs.len());
    let _ = std::fs::remove_dir_all(&dir);
}
