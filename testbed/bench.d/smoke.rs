//! `testbed/bench --quick` in the namespace lab, so the benchmark cannot rot: N = 100 IPv4 Services, ferrolb
//! alone (this test's build of the binary), one repetition of scale, packing, churn and failover. Checks that
//! the run converged and wrote a complete table (every figure of every scenario, no error).
//! Needs root, FRR, tshark and the control plane (`testbed/lab deps`); fails loudly without them.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// (scenario, metric) pairs the quick run must report for the case "100 ipv4".
const REQUIRED: &[(&str, &str)] = &[
    ("scale", "converged"),
    ("scale", "time_to_all_ips_s"),
    ("scale", "time_to_all_routes_s"),
    ("scale", "controller_cpu_s"),
    ("scale", "controller_peak_rss_mb"),
    ("scale", "speaker_cpu_s_mean"),
    ("scale", "speaker_peak_rss_mb_max"),
    ("scale", "updates_frr"),
    ("scale", "updates_pcap"),
    ("scale", "update_bytes_pcap"),
    ("packing", "time_to_all_routes_s"),
    ("packing", "updates_frr"),
    ("packing", "updates_data_pcap"),
    ("packing", "updates_eor_pcap"),
    ("packing", "updates_optimum"),
    ("packing", "updates_over_optimum_max"),
    ("packing", "sessions"),
    ("churn", "churn_latency_p50_ms"),
    ("churn", "churn_latency_p99_ms"),
    ("failover", "failover_kill_s"),
    ("failover", "failover_link_s"),
];

#[test]
fn bench_quick_writes_a_complete_converged_table() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::temp_dir().join(format!("ferrolb-bench-quick-{}", std::process::id()));
    let lab = format!("bq{}", std::process::id() % 100_000);
    let status = Command::new(root.join("testbed/bench"))
        .args(["--quick", "--lab", &lab, "--out"])
        .arg(&out)
        .env("FERROLB_BIN", env!("CARGO_BIN_EXE_ferrolb"))
        .status()
        .expect("testbed/bench did not start");
    let json = std::fs::read_to_string(out.join("bench.json"));
    let table = std::fs::read_to_string(out.join("bench.txt")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&out);
    assert!(
        status.success(),
        "testbed/bench --quick failed ({status}):\n{table}"
    );
    let doc: Value =
        serde_json::from_str(&json.expect("bench.json written")).expect("bench.json is JSON");

    assert_eq!(
        doc["errors"],
        Value::Array(vec![]),
        "errors in the run:\n{table}"
    );
    let mut got: BTreeMap<(String, String), f64> = BTreeMap::new();
    for row in doc["rows"].as_array().expect("rows") {
        assert_eq!(row["impl"], "ferrolb", "only ferrolb runs in --quick");
        assert_eq!(row["n"], "100 ipv4");
        assert_eq!(row["reps"], 1);
        let key = (
            row["scenario"].as_str().unwrap().to_owned(),
            row["metric"].as_str().unwrap().to_owned(),
        );
        got.insert(key, row["median"].as_f64().expect("numeric median"));
    }
    for (scenario, metric) in REQUIRED {
        let v = got
            .get(&((*scenario).to_owned(), (*metric).to_owned()))
            .unwrap_or_else(|| panic!("no {scenario} {metric} in the table:\n{table}"));
        assert!(v.is_finite() && *v >= 0.0, "{scenario} {metric} = {v}");
    }
    assert_eq!(got[&("scale".into(), "converged".into())], 1.0, "{table}");
    // One session per node, each carrying routes; the table's text has the header and the target lines.
    assert_eq!(got[&("packing".into(), "sessions".into())], 3.0, "{table}");
    assert!(
        got[&("scale".into(), "updates_frr".into())] >= 3.0,
        "{table}"
    );
    assert!(
        table.contains("build: ferrolb: debug build")
            && table.contains("targets (medians of this run):"),
        "{table}"
    );
}
