//! `testbed/bench`'s helpers, as pure functions with their binaries in `src/bin`:
//! - [`scaling_series`]: the scaling curve (CPU seconds and peak RSS of the speakers and the controller against
//!   the Service count) out of a run's `bench.json`, drawn by `bench-plot`;
//! - [`rotated_statuses`]: the status patches of `status-patch-ceiling`, which measures how fast a plain
//!   client can write the controller's status patches to the same API server.

use serde_json::Value;
use std::collections::BTreeMap;
use thiserror::Error;

/// What cannot be read or built.
#[derive(Debug, Error, PartialEq)]
pub enum BenchError {
    /// `bench.json` lacks a field, or a field has the wrong type.
    #[error("bench.json: row {row}: field {field} missing or not a {expected}")]
    Field {
        /// Index of the row in `rows`.
        row: usize,
        /// The field.
        field: &'static str,
        /// The type it should have.
        expected: &'static str,
    },
    /// `bench.json` has no `rows` array.
    #[error("bench.json: no rows array")]
    NoRows,
    /// A row's case is not "N family".
    #[error("bench.json: row {row}: case {case:?} is not \"N family\"")]
    Case {
        /// Index of the row.
        row: usize,
        /// The case as written.
        case: String,
    },
    /// No implementation and family has two sizes of at least `MIN_N` with a scale figure.
    #[error("bench.json: no scale curve (two sizes >= {MIN_N} of one implementation and family)")]
    NoCurve,
    /// A Service has no address in its status (the ceiling rewrites assigned statuses only).
    #[error("Service {service} has no address in status.loadBalancer.ingress")]
    NoAddress {
        /// namespace/name.
        service: String,
    },
}

/// The smallest Service count on the curve (the IPv4 cases below have another shape).
pub const MIN_N: u64 = 1000;

/// Which process a curve is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Process {
    /// The speakers (CPU: mean over nodes; RSS: max over nodes).
    Speaker,
    /// The controller.
    Controller,
}

/// What a curve measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Measure {
    /// CPU seconds (user + system) until converged.
    CpuSeconds,
    /// Peak RSS (VmHWM), MB.
    PeakRssMb,
}

impl Measure {
    /// The `bench.json` metric of `process`'s measure.
    pub fn metric(self, process: Process) -> &'static str {
        match (self, process) {
            (Measure::CpuSeconds, Process::Speaker) => "speaker_cpu_s_mean",
            (Measure::CpuSeconds, Process::Controller) => "controller_cpu_s",
            (Measure::PeakRssMb, Process::Speaker) => "speaker_peak_rss_mb_max",
            (Measure::PeakRssMb, Process::Controller) => "controller_peak_rss_mb",
        }
    }
}

/// One curve: an implementation's process in one family, (N, median) by growing N.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The implementation (`ferrolb`, `metallb-v0.15.2`, ...).
    pub implementation: String,
    /// The family (`ipv6`, `ipv4-shared`).
    pub family: String,
    /// Speaker or controller.
    pub process: Process,
    /// CPU or RSS.
    pub measure: Measure,
    /// (Service count, median of the repetitions).
    pub points: Vec<(u64, f64)>,
}

impl Series {
    /// The legend's text.
    pub fn label(&self) -> String {
        let p = match self.process {
            Process::Speaker => "speaker",
            Process::Controller => "controller",
        };
        format!("{} {} ({})", self.implementation, p, self.family)
    }
}

fn field<'a>(
    row: &'a Value,
    i: usize,
    name: &'static str,
    expected: &'static str,
) -> Result<&'a Value, BenchError> {
    row.get(name).ok_or(BenchError::Field {
        row: i,
        field: name,
        expected,
    })
}

/// The scale scenario's curves in a `bench.json` document: for every implementation and family with figures at
/// two or more sizes >= [`MIN_N`], one series per process and measure, sorted by implementation, family,
/// process and measure, each by growing N.
pub fn scaling_series(doc: &Value) -> Result<Vec<Series>, BenchError> {
    let rows = doc
        .get("rows")
        .and_then(Value::as_array)
        .ok_or(BenchError::NoRows)?;
    type Key = (String, String, Process, Measure);
    let mut found: BTreeMap<Key, BTreeMap<u64, f64>> = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        let text = |name| {
            field(row, i, name, "string")?
                .as_str()
                .ok_or(BenchError::Field {
                    row: i,
                    field: name,
                    expected: "string",
                })
        };
        if text("scenario")? != "scale" {
            continue;
        }
        let metric = text("metric")?;
        let case = text("n")?;
        let (n, family) = case
            .split_once(' ')
            .and_then(|(n, f)| Some((n.parse::<u64>().ok()?, f)))
            .ok_or_else(|| BenchError::Case {
                row: i,
                case: case.to_owned(),
            })?;
        for process in [Process::Speaker, Process::Controller] {
            for measure in [Measure::CpuSeconds, Measure::PeakRssMb] {
                if measure.metric(process) != metric || n < MIN_N {
                    continue;
                }
                let median =
                    field(row, i, "median", "number")?
                        .as_f64()
                        .ok_or(BenchError::Field {
                            row: i,
                            field: "median",
                            expected: "number",
                        })?;
                found
                    .entry((
                        text("impl")?.to_owned(),
                        family.to_owned(),
                        process,
                        measure,
                    ))
                    .or_default()
                    .insert(n, median);
            }
        }
    }
    let series: Vec<Series> = found
        .into_iter()
        .filter(|(_, points)| points.len() >= 2)
        .map(
            |((implementation, family, process, measure), points)| Series {
                implementation,
                family,
                process,
                measure,
                points: points.into_iter().collect(),
            },
        )
        .collect();
    if series.is_empty() {
        return Err(BenchError::NoCurve);
    }
    Ok(series)
}

/// The ceiling's patches: Service i (by name) gets the `status` of Service i+1 (the last gets the first's), so
/// every patch is a real change with the body shape the controller writes (the addresses and the conditions of
/// an assigned Service). `services` are (name, status) pairs; every status must hold an address.
pub fn rotated_statuses(
    namespace: &str,
    mut services: Vec<(String, Value)>,
) -> Result<Vec<(String, Value)>, BenchError> {
    services.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, status) in &services {
        let ingress = status
            .pointer("/loadBalancer/ingress/0/ip")
            .and_then(Value::as_str);
        if ingress.is_none() {
            return Err(BenchError::NoAddress {
                service: format!("{namespace}/{name}"),
            });
        }
    }
    let n = services.len();
    Ok((0..n)
        .map(|i| {
            (
                services[i].0.clone(),
                serde_json::json!({ "status": services[(i + 1) % n].1.clone() }),
            )
        })
        .collect())
}

/// Services per second between the first and the last completion (`None` below two completions or when they
/// share one instant): the same measure the bench takes of the controller (first to last assignment).
pub fn rate(completions_s: &[f64]) -> Option<f64> {
    let first = completions_s.iter().copied().reduce(f64::min)?;
    let last = completions_s.iter().copied().reduce(f64::max)?;
    (completions_s.len() >= 2 && last > first)
        .then(|| (completions_s.len() - 1) as f64 / (last - first))
}

/// A log axis's label: the value when its leading digit is one of `leading` (1, 3, 10, 30, ... or 1, 2, 5, ...),
/// else nothing (plotters puts a tick at every integer multiple of the decade; labelled, they overlap).
pub fn tick(v: f64, leading: &[u32]) -> String {
    if v <= 0.0 {
        return String::new();
    }
    let decade = 10f64.powf(v.log10().floor());
    let lead = (v / decade).round();
    if (v / decade - lead).abs() > 1e-6 || !leading.iter().any(|d| f64::from(*d) == lead) {
        return String::new();
    }
    if v >= 1.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}").trim_end_matches('0').to_owned()
    }
}

/// The values d × 10^k (d in `leading`) between lo and hi: the labelled ticks of a log axis.
pub fn log_keys(lo: f64, hi: f64, leading: &[u32]) -> Vec<f64> {
    let mut out = Vec::new();
    let mut decade = 10f64.powf(lo.log10().floor());
    while decade <= hi {
        for d in leading {
            let v = f64::from(*d) * decade;
            if (lo..=hi).contains(&v) {
                out.push(v);
            }
        }
        decade *= 10.0;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(implementation: &str, scenario: &str, n: &str, metric: &str, median: f64) -> Value {
        json!({"impl": implementation, "scenario": scenario, "n": n, "metric": metric, "median": median})
    }

    #[test]
    fn the_curve_takes_scale_figures_at_two_or_more_sizes_from_1000() {
        let doc = json!({"rows": [
            row("ferrolb", "scale", "100 ipv4", "speaker_cpu_s_mean", 0.03),
            row("ferrolb", "scale", "10000 ipv6", "speaker_cpu_s_mean", 29.2),
            row("ferrolb", "scale", "1000 ipv6", "speaker_cpu_s_mean", 1.0),
            row("ferrolb", "scale", "1000 ipv6", "controller_peak_rss_mb", 28.0),
            row("ferrolb", "packing", "1000 ipv6", "speaker_cpu_s_mean", 9.0),
            row("ferrolb", "scale", "1000 ipv6", "updates_frr", 493.0),
            // One size only: no curve.
            row("metallb-v0.15.2", "scale", "1000 ipv4-shared", "speaker_cpu_s_mean", 6.3),
        ]});
        let s = scaling_series(&doc).unwrap();
        assert_eq!(
            s,
            vec![Series {
                implementation: "ferrolb".into(),
                family: "ipv6".into(),
                process: Process::Speaker,
                measure: Measure::CpuSeconds,
                points: vec![(1000, 1.0), (10000, 29.2)],
            }]
        );
        assert_eq!(s[0].label(), "ferrolb speaker (ipv6)");
    }

    #[test]
    fn a_run_without_a_curve_or_with_a_bad_row_is_an_error_that_names_it() {
        let one =
            json!({"rows": [row("ferrolb", "scale", "1000 ipv6", "speaker_cpu_s_mean", 1.0)]});
        assert_eq!(scaling_series(&one), Err(BenchError::NoCurve));
        assert_eq!(scaling_series(&json!({})), Err(BenchError::NoRows));
        let bad =
            json!({"rows": [row("ferrolb", "scale", "many ipv6", "speaker_cpu_s_mean", 1.0)]});
        assert_eq!(
            scaling_series(&bad),
            Err(BenchError::Case {
                row: 0,
                case: "many ipv6".into()
            })
        );
        let no_median = json!({"rows": [{"impl": "ferrolb", "scenario": "scale", "n": "1000 ipv6",
                                         "metric": "controller_cpu_s"}]});
        assert_eq!(
            scaling_series(&no_median),
            Err(BenchError::Field {
                row: 0,
                field: "median",
                expected: "number"
            })
        );
    }

    fn status(ip: &str) -> Value {
        json!({"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}]},
               "conditions": [{"type": "ferrolb.io/AddressAssigned", "status": "True", "reason": "Assigned",
                               "message": format!("assigned {ip}")}]})
    }

    #[test]
    fn each_service_gets_the_next_ones_status_in_name_order() {
        let got = rotated_statuses(
            "bench",
            vec![
                ("s-00002".into(), status("2001:db8:100::3")),
                ("s-00000".into(), status("2001:db8:100::1")),
                ("s-00001".into(), status("2001:db8:100::2")),
            ],
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                (
                    "s-00000".into(),
                    json!({"status": status("2001:db8:100::2")})
                ),
                (
                    "s-00001".into(),
                    json!({"status": status("2001:db8:100::3")})
                ),
                (
                    "s-00002".into(),
                    json!({"status": status("2001:db8:100::1")})
                ),
            ]
        );
        assert_eq!(
            rotated_statuses(
                "bench",
                vec![("s-00000".into(), json!({"loadBalancer": {}}))]
            ),
            Err(BenchError::NoAddress {
                service: "bench/s-00000".into()
            })
        );
    }

    #[test]
    fn log_axes_are_labelled_at_the_leading_digits_asked_for() {
        assert_eq!(log_keys(0.15, 3.0, &[1, 2, 5]), vec![0.2, 0.5, 1.0, 2.0]);
        assert_eq!(
            log_keys(700.0, 40000.0, &[1, 3]),
            vec![1000.0, 3000.0, 10000.0, 30000.0]
        );
        assert_eq!(tick(3000.0, &[1, 3]), "3000");
        assert_eq!(tick(5000.0, &[1, 3]), "");
        assert_eq!(tick(0.2, &[1, 2, 5]), "0.2");
        assert_eq!(tick(0.25, &[1, 2, 5]), "");
        assert_eq!(tick(0.0, &[1]), "");
    }

    #[test]
    fn the_rate_counts_intervals_between_first_and_last_completion() {
        assert_eq!(rate(&[2.0, 1.0, 1.5]), Some(2.0));
        assert_eq!(rate(&[1.0]), None);
        assert_eq!(rate(&[1.0, 1.0]), None);
        assert_eq!(rate(&[]), None);
    }
}
