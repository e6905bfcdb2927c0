//! `testbed/bench --quick` in the namespace lab, so the benchmark cannot rot: N = 100 IPv4 Services, ferrolb
//! alone (this test's build of the binary), one repetition of scale, packing, churn and failover. Checks that
//! the run converged and wrote a complete table (every figure of every scenario, no error), that the churn
//! decomposition covers the moves and adds up, and that the speaker's event-to-UPDATE histogram is exported.
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
    ("churn", "churn_api_to_speaker_p50_ms"),
    ("churn", "churn_api_to_speaker_p99_ms"),
    ("churn", "churn_speaker_to_wire_p50_ms"),
    ("churn", "churn_speaker_to_wire_p99_ms"),
    ("churn", "churn_wire_to_fib_p50_ms"),
    ("churn", "churn_wire_to_fib_p99_ms"),
    ("churn", "churn_sum_p50_ms"),
    ("churn", "churn_residual_max_ms"),
    ("churn", "churn_moves"),
    ("churn", "churn_decomposed"),
    ("churn", "churn_not_adding_up"),
    ("churn", "churn_event_to_update_count"),
    ("churn", "churn_event_to_update_mean_ms"),
    ("scale", "controller_services_per_s"),
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
    // Churn decomposed (testbed/bench.d/decompose.py): nearly every move split into API write -> event at the
    // speaker -> UPDATE on the wire -> router FIB, and every decomposed move's stages add up to the churn
    // latency the poller measured (the bench checks each move; here its count of failures is 0). The speaker's
    // event -> UPDATE histogram saw the churn.
    let churn = |m: &str| got[&("churn".to_owned(), m.to_owned())];
    assert!(churn("churn_moves") >= 25.0, "{table}");
    assert!(
        churn("churn_decomposed") >= 0.8 * churn("churn_moves"),
        "{table}"
    );
    assert_eq!(churn("churn_not_adding_up"), 0.0, "{table}");
    assert!(churn("churn_event_to_update_count") >= 1.0, "{table}");
    let stages = churn("churn_api_to_speaker_p50_ms")
        + churn("churn_speaker_to_wire_p50_ms")
        + churn("churn_wire_to_fib_p50_ms");
    assert!(
        stages > 0.0 && churn("churn_sum_p50_ms") > 0.0,
        "stages p50 {stages} ms, sum p50 {} ms:\n{table}",
        churn("churn_sum_p50_ms")
    );
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
