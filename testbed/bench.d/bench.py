#!/usr/bin/env python3
"""testbed/bench: ferrolb side by side with MetalLB in the namespace lab (see --help).

For each implementation a fresh lab (testbed/lab up) is started; the scale scenario runs for every N, then, at
the churn size, churn, failover and restart run against the converged state. Every figure is the median of the
repetitions with min and max; the table, a CSV and a JSON file are written to --out."""

import argparse
import csv
import datetime
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import impls  # noqa: E402
import scenarios as sc  # noqa: E402
from labctl import Lab  # noqa: E402

# metric -> (unit, description); lower is better for every one
METRICS = {
    "time_to_all_ips_s": ("s", "start of controller+speakers -> every Service has an address"),
    "time_to_all_routes_s": ("s", "start -> router FIB holds every route with exactly the right next hops"),
    "controller_cpu_s": ("s", "controller CPU (user+system) until converged"),
    "controller_peak_rss_mb": ("MB", "controller peak RSS (VmHWM)"),
    "speaker_cpu_s_mean": ("s", "speaker CPU until converged, mean over nodes"),
    "speaker_peak_rss_mb_max": ("MB", "speaker peak RSS, max over nodes"),
    "speaker_1_peak_rss_mb": ("MB", "node-1 speaker peak RSS"),
    "speaker_2_peak_rss_mb": ("MB", "node-2 speaker peak RSS"),
    "speaker_3_peak_rss_mb": ("MB", "node-3 speaker peak RSS"),
    "updates_frr": ("msgs", "UPDATEs received by FRR (show bgp neighbors json, all node sessions)"),
    "updates_pcap": ("msgs", "UPDATEs on the wire (dumpcap + tshark), cross-check"),
    "updates_speaker_metric": ("msgs", "UPDATEs the speakers report (metallb_bgp_updates_total, "
                                       "ferrolb_bgp_updates_sent_total)"),
    "update_bytes_pcap": ("bytes", "UPDATE bytes on the wire"),
    "updates_eor_pcap": ("msgs", "of which End-of-RIB (UPDATE without routes), one per family per session"),
    "updates_data_pcap": ("msgs", "of which carry routes"),
    "updates_optimum": ("msgs", "fewest 4096-byte UPDATEs that carry the routes, summed over sessions"),
    "updates_over_optimum_max": ("msgs", "max over sessions of route-carrying UPDATEs - optimum (target <= 1)"),
    "sessions": ("count", "BGP sessions at the router"),
    "routes_per_session_max": ("count", "routes the busiest session carries"),
    "converged": ("0/1", "1 when the router converged in time (else the row's figures are lower bounds)"),
    "services_create_s": ("s", "(setup) creating the Services and endpoints through the API"),
    "churn_latency_p50_ms": ("ms", "endpoint write -> router FIB has the new next hops, p50"),
    "churn_latency_p99_ms": ("ms", "same, p99 (target <= 250 ms)"),
    "churn_latency_max_ms": ("ms", "same, max"),
    "churn_api_to_speaker_p50_ms": ("ms", "decomposed (decompose.py): API write -> the API server's first segment "
                                          "to the critical speaker's node (wire), p50"),
    "churn_api_to_speaker_p99_ms": ("ms", "same, p99"),
    "churn_speaker_to_wire_p50_ms": ("ms", "decomposed: that segment -> the speaker's UPDATE on the wire, p50"),
    "churn_speaker_to_wire_p99_ms": ("ms", "same, p99"),
    "churn_wire_to_fib_p50_ms": ("ms", "decomposed: the UPDATE -> the router kernel's FIB holds the new next "
                                       "hops (ip monitor), p50"),
    "churn_wire_to_fib_p99_ms": ("ms", "same, p99"),
    "churn_sum_p50_ms": ("ms", "decomposed: the three stages added up (write -> FIB by ip monitor), p50"),
    "churn_sum_p99_ms": ("ms", "same, p99"),
    "churn_residual_p50_ms": ("ms", "churn latency (poller) - stage sum, p50: the poller's lateness (each "
                                    "move's must lie within its poll cycle)"),
    "churn_residual_max_ms": ("ms", "same, max of the absolute value"),
    "churn_poll_gap_p50_ms": ("ms", "the poller's cycle around its observations, p50 (the total's resolution)"),
    "churn_moves": ("count", "endpoint moves written"),
    "churn_decomposed": ("count", "moves decomposed (UPDATEs, API segment and FIB change found)"),
    "churn_not_adding_up": ("count", "decomposed moves whose stages do not add up to the total (must be 0)"),
    "churn_event_to_update_count": ("count", "ferrolb_speaker_event_to_update_seconds observations during churn, "
                                             "all speakers"),
    "churn_event_to_update_mean_ms": ("ms", "their mean: watch event received in the speaker -> UPDATE written to "
                                            "the socket (the speaker's own histogram)"),
    "churn_event_to_update_p99_le_ms": ("ms", "the histogram bucket bound that holds their p99"),
    "controller_services_per_s": ("1/s", "Services the controller assigns per second (watch: first to last "
                                         "assignment)"),
    "ceiling_services_per_s": ("1/s", "a plain kube client doing the same status patches (same body shape, "
                                      "concurrency 16, same API server) as fast as it can, in the controller's "
                                      "place: the speakers and the bench's watch still run"),
    "controller_vs_ceiling": ("ratio", "controller_services_per_s / ceiling_services_per_s (target >= 0.9)"),
    "ceiling_quiet_services_per_s": ("1/s", "the same client with the speakers stopped too (their watches' "
                                            "share of the API server is gone; the bench's watch still runs)"),
    "controller_vs_quiet_ceiling": ("ratio", "controller_services_per_s / ceiling_quiet_services_per_s"),
    "failover_kill_s": ("s", "speaker SIGKILLed -> router stops using the node"),
    "failover_link_s": ("s", "node link cut -> router stops using the node (hold time %d s)" % impls.HOLD_TIME_S),
    "failover_link_bfd_s": ("s", "node link cut, BGP guarded by BFD 100 ms x 3 -> router stops using the node"),
    "restart_ready_s": ("s", "controller restarted -> ready"),
    "restart_ips_changed": ("count", "Services whose address changed across the restart (must be 0)"),
}

SCENARIOS = {
    "scale": "controller and speakers start with N Services present and no address assigned (the speakers "
             "see the addresses arrive one by one: UPDATE counts are the trickle, bounded by coalescing)",
    "packing": "speakers alone restarted with every address assigned (UPDATE counts are packing alone)",
    "peers3": "speakers restarted with three FRR sessions each (router IPv4, router IPv6, a second router "
              "IPv4 address), every session carrying the node's routes",
    "churn": "one endpoint moved between nodes at --churn-rate per second for --churn-seconds",
    "failover": "node-1 loses its speaker or its link",
    "restart": "controller restarted at the case's N",
    "ceiling": "(ferrolb) after the case, the controller stopped: testbed/benchtools' status-patch-ceiling "
               "writes every Service's status (Service i gets Service i+1's status: same body shape, a real "
               "change) with the controller's concurrency, while the speakers and the bench's watch still run "
               "as they did for the controller; then again with the speakers stopped too (the quiet ceiling). Their "
               "rates against the controller's in the case's last scale repetition",
}


class Results:
    """Every repetition's value, keyed by (implementation, scenario, N, metric)."""

    def __init__(self):
        self.values = {}
        self.errors = []
        self.notes = []
        self.loads = []
        self.builds = {}
        self.included = []
        self.included_impls = []
        self.included_errors = []

    def include(self, path):
        """Join the rows (every repetition), load samples, notes and errors of an earlier run's bench.json."""
        with open(path) as f:
            d = json.load(f)
        for r in d["rows"]:
            self.values.setdefault((r["impl"], r["scenario"], r["n"], r["metric"]), []).extend(r["values"])
            if r["impl"] not in self.included_impls:
                self.included_impls.append(r["impl"])
        self.notes += [n for n in d.get("notes", []) if n not in self.notes]
        # An implementation's error from a run whose rows for it are missing is dropped when another
        # included run has its rows (it was fixed and run again); it stays in that run's own bench.json.
        have = {r["impl"] for r in d["rows"]}
        self.included_errors += [e for e in d.get("errors", []) if e.split(":")[0] not in have]
        self.builds.update(d.get("builds", {}))
        a, ld = d.get("args", {}), [x for x in d.get("load", [])]
        loads = [x["load_start"] for x in ld] + [x["load_end"] for x in ld]
        self.included.append(
            f"{', '.join(sorted({r['impl'] for r in d['rows']}))}: run of {d.get('started', '?')} "
            f"(commit {d.get('commit', '?')}, reps {a.get('reps', '?')} (N >= {a.get('large_from', '?')}: "
            f"{a.get('reps_large', '?')}), sizes {','.join(map(str, a.get('sizes', [])))}, load average "
            + (f"{min(loads):.1f}-{max(loads):.1f}" if loads else "n/a")
            + f", wall time {d.get('wall_s', 0):.0f}s; {path})")

    def add(self, impl, scenario, n, metrics):
        for k, v in metrics.items():
            self.values.setdefault((impl, scenario, n, k), []).append(v)

    def rows(self):
        out = []
        for (impl, scenario, n, metric), vals in sorted(self.values.items(), key=lambda kv: (
                kv[0][0], kv[0][1], case_sort(kv[0][2]), kv[0][3])):
            out.append({"impl": impl, "scenario": scenario, "n": n, "metric": metric,
                        "unit": METRICS.get(metric, ("", ""))[0], "median": statistics.median(vals),
                        "min": min(vals), "max": max(vals), "reps": len(vals), "values": vals})
        return out


def case_label(n, family, wl_routes=None):
    """A row's case: "N family" (e.g. "10000 ipv6")."""
    return f"{n} {family}"


def case_sort(label):
    n, _, fam = str(label).partition(" ")
    return (int(n) if n.isdigit() else 0, fam)


def fmt(x):
    if isinstance(x, float):
        if x != x:
            return "nan"
        return f"{x:.3f}" if abs(x) < 10 else f"{x:.1f}" if abs(x) < 1000 else f"{x:.0f}"
    return str(x)


def table(results, impl_names):
    """The text table: one row per (scenario, N, metric), 'median [min-max]' per implementation, and the
    ferrolb / other ratio of medians."""
    rows = results.rows()
    by_key = {}
    for r in rows:
        by_key.setdefault((r["scenario"], r["n"], r["metric"]), {})[r["impl"]] = r
    others = [i for i in impl_names if i != "ferrolb"]
    head = ["scenario", "N", "family", "metric", "unit"] + impl_names + [f"ferrolb/{o}" for o in others]
    lines = [head]
    order = list(METRICS)
    sc_order = list(SCENARIOS)
    for key in sorted(by_key, key=lambda k: (sc_order.index(k[0]) if k[0] in sc_order else 99, case_sort(k[1]),
                                             order.index(k[2]) if k[2] in order else 99)):
        scenario, case, metric = key
        cells = by_key[key]
        n, _, fam = str(case).partition(" ")
        line = [scenario, n, fam, metric, METRICS.get(metric, ("", ""))[0]]
        for i in impl_names:
            r = cells.get(i)
            line.append("-" if r is None else f"{fmt(r['median'])} [{fmt(r['min'])}-{fmt(r['max'])}]")
        for o in others:
            a, b = cells.get("ferrolb"), cells.get(o)
            if a and b and b["median"]:
                line.append(f"{a['median'] / b['median']:.2f}")
            else:
                line.append("-")
        lines.append(line)
    widths = [max(len(line[c]) for line in lines) for c in range(len(head))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines)


CONVERGENCE = ("time_to_all_ips_s", "time_to_all_routes_s", "churn_latency_p50_ms", "churn_latency_p99_ms",
               "churn_latency_max_ms", "failover_kill_s", "failover_link_s", "restart_ready_s",
               "churn_api_to_speaker_p50_ms", "churn_api_to_speaker_p99_ms", "churn_speaker_to_wire_p50_ms",
               "churn_speaker_to_wire_p99_ms", "churn_wire_to_fib_p50_ms", "churn_wire_to_fib_p99_ms")
RESOURCES = ("controller_cpu_s", "controller_peak_rss_mb", "speaker_cpu_s_mean", "speaker_peak_rss_mb_max",
             "updates_frr", "update_bytes_pcap")


# The figures testbed/bench.d/results/README.md's table shows (bench.md); the full table is bench.txt.
SUMMARY = [
    ("scale", "time_to_all_ips_s"), ("scale", "time_to_all_routes_s"), ("scale", "controller_cpu_s"),
    ("scale", "controller_peak_rss_mb"), ("scale", "speaker_cpu_s_mean"), ("scale", "speaker_peak_rss_mb_max"),
    ("scale", "updates_frr"), ("packing", "time_to_all_routes_s"), ("packing", "updates_frr"),
    ("packing", "updates_data_pcap"), ("packing", "updates_optimum"), ("packing", "speaker_peak_rss_mb_max"),
    ("peers3", "speaker_1_peak_rss_mb"), ("peers3", "speaker_2_peak_rss_mb"), ("peers3", "speaker_3_peak_rss_mb"),
    ("churn", "churn_latency_p50_ms"), ("churn", "churn_latency_p99_ms"),
    ("churn", "churn_api_to_speaker_p50_ms"), ("churn", "churn_api_to_speaker_p99_ms"),
    ("churn", "churn_speaker_to_wire_p50_ms"), ("churn", "churn_speaker_to_wire_p99_ms"),
    ("churn", "churn_wire_to_fib_p50_ms"), ("churn", "churn_wire_to_fib_p99_ms"), ("churn", "churn_sum_p50_ms"),
    ("churn", "churn_sum_p99_ms"), ("churn", "churn_event_to_update_mean_ms"),
    ("scale", "controller_services_per_s"), ("ceiling", "ceiling_services_per_s"),
    ("ceiling", "controller_vs_ceiling"), ("ceiling", "ceiling_quiet_services_per_s"),
    ("ceiling", "controller_vs_quiet_ceiling"), ("failover", "failover_kill_s"),
    ("failover", "failover_link_s"), ("failover", "failover_link_bfd_s"), ("restart", "restart_ready_s"),
    ("restart", "restart_ips_changed"),
]


def markdown(res, impl_names):
    """The SUMMARY figures as a Markdown table: median [min-max] per implementation, ferrolb / other ratios."""
    rows = {(r["scenario"], r["n"], r["metric"]): {} for r in res.rows()}
    for r in res.rows():
        rows[(r["scenario"], r["n"], r["metric"])][r["impl"]] = r
    others = [i for i in impl_names if i != "ferrolb"]
    out = ["| scenario | N | family | figure | " + " | ".join(impl_names) + " | "
           + " | ".join(f"ferrolb / {o}" for o in others) + " |",
           "|" + "---|" * (4 + len(impl_names) + len(others))]
    for (scenario, case, metric), cells in sorted(rows.items(), key=lambda kv: (
            SUMMARY.index((kv[0][0], kv[0][2])) if (kv[0][0], kv[0][2]) in SUMMARY else 999, case_sort(kv[0][1]))):
        if (scenario, metric) not in SUMMARY:
            continue
        n, _, fam = str(case).partition(" ")
        unit = METRICS.get(metric, ("", ""))[0]
        line = [scenario, n, fam, f"{metric} ({unit})"]
        for i in impl_names:
            r = cells.get(i)
            line.append("–" if r is None else (fmt(r["median"]) if r["reps"] == 1 else
                                               f"{fmt(r['median'])} [{fmt(r['min'])}–{fmt(r['max'])}]"))
        for o in others:
            a, b = cells.get("ferrolb"), cells.get(o)
            line.append(f"{a['median'] / b['median']:.2f}" if a and b and b["median"] else "–")
        out.append("| " + " | ".join(line) + " |")
    return "\n".join(out) + "\n"


def targets(res, impl_names):
    """The issue's targets, checked against this run's ferrolb medians (and ratios)."""
    med = {(r["impl"], r["scenario"], r["n"], r["metric"]): r["median"] for r in res.rows()}
    lines = []
    for other in [i for i in impl_names if i != "ferrolb"]:
        worse = [f"{sc_} {m}@{n}" for (i, sc_, n, m), v in med.items() if i == "ferrolb"
                 and m in CONVERGENCE + RESOURCES and (other, sc_, n, m) in med and v > med[(other, sc_, n, m)]]
        if any(i == other for (i, *_rest) in med):
            lines.append(f"  ferrolb below {other} on every convergence and resource figure: "
                         + ("MET" if not worse else "MISSED (" + ", ".join(sorted(worse)) + ")"))
    for (i, sc_, n, m), v in sorted(med.items(), key=lambda kv: case_sort(kv[0][2])):
        if i != "ferrolb":
            continue
        if sc_ == "packing" and m == "updates_over_optimum_max":
            lines.append(f"  {n} packing: route-carrying UPDATEs {med[(i, sc_, n, 'updates_data_pcap')]:.0f} "
                         f"(+ {med[(i, sc_, n, 'updates_eor_pcap')]:.0f} End-of-RIB) vs optimum "
                         f"{med[(i, sc_, n, 'updates_optimum')]:.0f} over {med[(i, sc_, n, 'sessions')]:.0f} "
                         f"sessions; worst session optimum + {v:.0f} (target <= optimum + 1): "
                         + ("MET" if v <= 1 else "MISSED"))
        if m == "controller_vs_ceiling":
            quiet = med.get((i, sc_, n, "controller_vs_quiet_ceiling"))
            lines.append(f"  {n}: controller at {100 * v:.0f}% of the raw status-patch rate in its place "
                         f"(target >= 90%; {100 * quiet:.0f}% of the quiet ceiling): "
                         + ("MET" if v >= 0.9 else "MISSED"))
        if m == "churn_not_adding_up":
            lines.append(f"  {n}: churn decomposition: {med.get((i, sc_, n, 'churn_decomposed'), 0):.0f} of "
                         f"{med.get((i, sc_, n, 'churn_moves'), 0):.0f} moves decomposed, {v:.0f} not adding up "
                         "(must be 0): " + ("MET" if v == 0 else "MISSED"))
        if m == "churn_latency_p99_ms":
            lines.append(f"  {n}: churn p99 {v:.0f} ms <= 250 ms: " + ("MET" if v <= 250 else "MISSED"))
        size, _, fam = str(n).partition(" ")
        large = size.isdigit() and int(size) >= 10000
        if m == "speaker_peak_rss_mb_max" and large and sc_ in ("scale", "peers3"):
            lines.append(f"  {n} {sc_}: speaker peak RSS {v:.1f} MB <= 30 MB: " + ("MET" if v <= 30 else "MISSED")
                         + (" (stretch 25 MB: " + ("MET)" if v <= 25 else "missed)")))
        if m == "speaker_cpu_s_mean" and large and sc_ == "scale":
            lines.append(f"  {n}: speaker CPU {v:.2f} s <= 5 s: " + ("MET" if v <= 5 else "MISSED"))
            small = med.get((i, sc_, f"{int(size) // 10} {fam}", m))
            if small:
                lines.append(f"  {n}: speaker CPU {int(size)} / {int(size) // 10} = {v / small:.1f} (linear: "
                             "<= 10): " + ("MET" if v / small <= 10 else "MISSED"))
        if m == "controller_peak_rss_mb" and large and sc_ == "scale":
            lines.append(f"  {n}: controller peak RSS {v:.1f} MB <= 60 MB: " + ("MET" if v <= 60 else "MISSED"))
        if m == "churn_event_to_update_p99_le_ms" and large:
            lines.append(f"  {n}: event -> UPDATE p99 within the {v:g} ms bucket (<= 5 ms): "
                         + ("MET" if v <= 5 else "MISSED"))
        if m in ("churn_latency_p50_ms", "churn_latency_p99_ms"):
            q = m.split("_")[2]
            for other in [o for o in impl_names if o.startswith("metallb-v0.15")]:
                theirs = med.get((other, sc_, n, m))
                if not theirs:
                    continue
                stage = f"churn_speaker_to_wire_{q}_ms"
                mine_s, theirs_s = med.get((i, sc_, n, stage)), med.get((other, sc_, n, stage))
                router = med.get((i, sc_, n, f"churn_wire_to_fib_{q}_ms"))
                lines.append(f"  {n}: churn {q} {v:.1f} ms = {v / theirs:.2f} x {other}'s {theirs:.1f} ms (<= 0.9): "
                             + ("MET" if v <= 0.9 * theirs else "MISSED")
                             + (f"; the speakers' own stage {mine_s:.2f} vs {theirs_s:.2f} ms = "
                                f"{mine_s / theirs_s:.2f}" if mine_s and theirs_s else "")
                             + (f"; the router's stage (UPDATE -> FIB) {router:.1f} ms" if router else ""))
        if m == "restart_ips_changed":
            lines.append(f"  {n}: IPs changed across a controller restart {v:.0f} (must be 0): "
                         + ("MET" if v == 0 else "MISSED"))
    return ("\ntargets (medians of this run):\n" + "\n".join(lines) + "\n") if lines else ""


def cases_for(args, impl):
    """The (N, family) cases one implementation runs: IPv4 with one address per Service up to 510 Services;
    above, IPv4 with shared addresses (both implementations) and IPv6 /128s (where supported)."""
    out = []
    for n in args.sizes:
        fams = ["ipv4"] if n <= 510 else ["ipv4-shared", "ipv6"]
        for fam in fams:
            if fam not in (args.large_families if n >= args.large_from else args.families):
                continue
            if fam not in impl.families:
                continue
            if impl.name.startswith("metallb-v0.12") and n > args.metallb_max_n:
                continue
            if impl.name.startswith("metallb-") and n > args.metallb_crd_max_n:
                continue
            out.append((n, fam))
    # The scaling curve's extra points: ferrolb, IPv6 only.
    out += [(n, "ipv6") for n in args.curve_sizes if n not in args.sizes and "ipv6" in impl.families
            and impl.name == "ferrolb"]
    return sorted(out)


def run_impl(args, lab, impl, res, out_dir):
    """Every scenario for one implementation in one fresh lab."""
    impl.setup()
    cases = cases_for(args, impl)
    if not cases:
        res.errors.append(f"{impl.name}: no case to run: sizes {args.sizes} with families {args.families} "
                          "(ipv4 runs N <= 510 only; above, ipv4-shared and ipv6)")
        return
    # Churn moves one Service's endpoint and waits for its address's next hops to be that Service's nodes: only
    # a case with one address per Service (on a shared address the FIB holds the union over its Services).
    own = [c for c in cases if c[1] != "ipv4-shared"]
    # One churn case per --churn-size (the nearest own case; sizes that land on the same case run it once);
    # failover runs at the first size's case only.
    churn_cases = [min(own, key=lambda c: (abs(c[0] - size), c[1])) for size in args.churn_size] if own else []
    failover_case = churn_cases[0] if churn_cases else None
    if not churn_cases and ("churn" in args.scenarios or "failover" in args.scenarios):
        res.errors.append(f"{impl.name}: churn and failover need an ipv4 or ipv6 case (one address per Service), "
                          f"not only {sorted(set(c[1] for c in cases))}")
    # restart (and peers3) at the largest case of --sizes (not a curve-only size: the targets name 10,000), IPv6
    # when the implementation has it
    sized = [c for c in cases if c[0] in args.sizes] or cases
    restart_case = max(sized, key=lambda c: (c[0], c[1] == "ipv6"))
    for (n, fam) in cases:
        label = case_label(n, fam)
        reps = args.reps if n < args.large_from else max(1, args.reps_large)
        post = ["churn"] if "churn" in args.scenarios and (n, fam) in churn_cases else []
        post += ["failover"] if "failover" in args.scenarios and (n, fam) == failover_case else []
        post += [x for x in ("restart", "peers3") if x in args.scenarios and (n, fam) == restart_case
                 and (x != "peers3" or impl.name == "ferrolb")]
        # The ceiling (last: it rewrites every status with the implementation stopped) at every ferrolb case.
        post += ["ceiling"] if "ceiling" in args.scenarios and impl.name == "ferrolb" else []
        state = None
        for rep in range(reps):
            keep = bool(post) and rep == reps - 1
            load0 = sc.load_avg()
            print(f"bench: {impl.name} scale N={n} {fam} rep {rep + 1}/{reps} (load {load0:.1f})", file=sys.stderr)
            m, p, state = sc.scale(lab, impl, n, fam, out_dir, f"{impl.name}-scale-{n}-{fam}-{rep}", res.notes,
                                   keep=keep, packing="packing" in args.scenarios,
                                   last=(n, fam) == cases[-1] and rep == reps - 1)
            res.loads.append({"impl": impl.name, "scenario": "scale", "n": label, "rep": rep,
                              "load_start": load0, "load_end": sc.load_avg()})
            res.add(impl.name, "scale", label, m)
            if p is not None:
                res.add(impl.name, "packing", label, p)
            print(f"bench:   {json.dumps({k: round(v, 3) for k, v in m.items()})}", file=sys.stderr)
            if p is not None:
                print(f"bench:   packing {json.dumps({k: round(v, 3) for k, v in p.items()})}", file=sys.stderr)
        if post and state is None:
            res.errors.append(f"{impl.name}: {', '.join(post)} skipped: N={n} {fam} did not converge")
        elif post:
            try:
                post_scenarios(args, lab, impl, res, label, state, post, out_dir)
            finally:
                sc.teardown(lab, impl, state, delete=(n, fam) != cases[-1])


def post_scenarios(args, lab, impl, res, label, state, post, out_dir):
    """churn, failover, restart and peers3 on the converged state of one case."""
    if "churn" in post:
        for rep in range(args.reps):
            load0 = sc.load_avg()
            print(f"bench: {impl.name} churn {label} rep {rep + 1} (load {load0:.1f})", file=sys.stderr)
            trace = os.path.join(out_dir, f"{impl.name}-churn-{label.replace(' ', '-')}-{rep}")
            lat, dm, bad = sc.churn(lab, impl, state, args.churn_rate, args.churn_seconds, trace_path=trace)
            res.add(impl.name, "churn", label, {"churn_latency_p50_ms": 1000 * sc.percentile(lat, 50),
                                               "churn_latency_p99_ms": 1000 * sc.percentile(lat, 99),
                                               "churn_latency_max_ms": 1000 * max(lat), **dm})
            # The decomposition must cover (nearly) every move and add up; otherwise the run fails loudly.
            if dm["churn_not_adding_up"] or dm["churn_decomposed"] < 0.8 * dm["churn_moves"]:
                res.errors.append(f"{impl.name}: churn {label} rep {rep + 1}: decomposition: "
                                  f"{dm['churn_decomposed']} of {dm['churn_moves']} moves decomposed, "
                                  f"{dm['churn_not_adding_up']} not adding up: {bad} (traces: {trace}.pcap, "
                                  f"{trace}-fib.txt)")
            elif bad:
                res.notes.append(f"{impl.name}: churn {label} rep {rep + 1}: not decomposed: {bad}")
            if impl.event_histogram and not dm.get("churn_event_to_update_count"):
                res.errors.append(f"{impl.name}: churn {label} rep {rep + 1}: {impl.event_histogram} observed "
                                  "nothing during churn")
            res.loads.append({"impl": impl.name, "scenario": "churn", "n": label, "rep": rep,
                              "load_start": load0, "load_end": sc.load_avg()})
    if "failover" in post:
        kinds = ["kill", "link"]
        if impl.name == "ferrolb":
            why = lab.bfd_missing()
            if why:
                res.notes.append(f"failover_link_bfd_s not measured: {why}")
            else:
                kinds.append("bfd")
        else:
            res.notes.append(f"{impl.name}: failover_link_bfd_s not applicable: MetalLB's native BGP mode has no "
                             "BFD (bfd-profile needs its FRR mode)")
        for rep in range(args.reps):
            for kind in kinds:
                print(f"bench: {impl.name} failover {kind} {label} rep {rep + 1}", file=sys.stderr)
                if kind == "bfd":
                    sc.with_bfd(lab, impl, state, True)
                try:
                    dt = sc.failover(lab, impl, state, kind, timeout_s=impls.HOLD_TIME_S * 4 + 60)
                finally:
                    if kind == "bfd":
                        sc.with_bfd(lab, impl, state, False)
                res.add(impl.name, "failover", label, {f"failover_{'link_bfd' if kind == 'bfd' else kind}_s": dt})
    if "restart" in post:
        for rep in range(args.reps if int(label.split()[0]) < args.large_from else max(1, args.reps_large)):
            print(f"bench: {impl.name} restart {label} rep {rep + 1}", file=sys.stderr)
            ready, changed = sc.restart(lab, impl, state)
            res.add(impl.name, "restart", label, {"restart_ready_s": ready, "restart_ips_changed": changed})
    if "peers3" in post:
        print(f"bench: {impl.name} peers3 {label}", file=sys.stderr)
        try:
            res.add(impl.name, "peers3", label, sc.peers3(lab, impl, state))
        except Exception as e:  # report, and let the teardown run
            res.errors.append(f"{impl.name}: peers3 {label}: {e}")
    if "ceiling" in post:
        print(f"bench: {impl.name} ceiling {label}", file=sys.stderr)
        # In the controller's place: nothing else writes the Services' status, and everything that reacted to
        # the controller's writes (the speakers, the API server's fan-out to their watches and the bench's)
        # reacts to these as well, so the ratio is the controller's own cost.
        impl.stop_controller()
        rate = sc.ceiling(lab, args.ceiling_bin, state)
        impl.stop_all()
        quiet = sc.ceiling(lab, args.ceiling_bin, state)
        ctl = res.values.get((impl.name, "scale", label, "controller_services_per_s"), [])
        m = {"ceiling_services_per_s": rate, "ceiling_quiet_services_per_s": quiet}
        if ctl:
            m["controller_services_per_s"] = ctl[-1]
            m["controller_vs_ceiling"] = ctl[-1] / rate
            m["controller_vs_quiet_ceiling"] = ctl[-1] / quiet
        res.add(impl.name, "ceiling", label, m)


def wait_for_binary(path, timeout=1800):
    """FERROLB_BIN may still be building when the run starts with another implementation: wait for it."""
    deadline = time.monotonic() + timeout
    while not os.access(path, os.X_OK):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} did not appear within {timeout}s")
        time.sleep(5)


def metallb_bin(testbed, version):
    """Build (or reuse) MetalLB `version`; (bin dir, source dir) or raise with the build's error."""
    p = subprocess.run([os.path.join(testbed, "bench.d", "metallb-build"), version], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"metallb {version} did not build: {p.stderr.strip()[-3000:]}")
    bin_dir = p.stdout.strip().splitlines()[-1]
    return bin_dir, os.path.join(os.path.dirname(bin_dir), "src")


def main():
    ap = argparse.ArgumentParser(prog="testbed/bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--testbed", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true",
                    help="CI smoke run: N=100, ferrolb alone, 1 repetition, churn 3 s, no restart/peers3")
    ap.add_argument("--sizes", default="100,1000,10000", help="comma-separated N (default 100,1000,10000)")
    ap.add_argument("--families", default="ipv4,ipv4-shared,ipv6",
                    help="address families of the cases: ipv4 (N <= 510), ipv4-shared and ipv6 (N > 510)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions per figure (default 3)")
    ap.add_argument("--reps-large", type=int, default=1, help="repetitions at N >= --large-from (default 1)")
    ap.add_argument("--large-from", type=int, default=10000,
                    help="N from which --reps-large and --large-families apply")
    ap.add_argument("--large-families", default=None,
                    help="families of the cases at N >= --large-from (default: --families)")
    ap.add_argument("--impl", default="ferrolb,metallb-v0.12.1,metallb-v0.15.2,metallb-v0.16.2",
                    help="implementations (default ferrolb,metallb-v0.12.1,metallb-v0.15.2,metallb-v0.16.2); "
                         "none: only join --include runs into one table")
    ap.add_argument("--curve-sizes", default="3000,30000",
                    help="more N for the scaling curve, ferrolb ipv6 only (default 3000,30000; with --sizes' "
                         "N >= 1000, the curve is 1,000, 3,000, 10,000, 30,000: scaling.png)")
    ap.add_argument("--metallb-crd-max-n", type=int, default=10000,
                    help="largest N run with MetalLB v0.13+ (default 10000: its controller does ~20 Services/s)")
    ap.add_argument("--metallb-max-n", type=int, default=1000,
                    help="largest N run with MetalLB (default 1000: see the note it prints)")
    ap.add_argument("--scenarios", default="scale,packing,churn,failover,restart,peers3,ceiling")
    ap.add_argument("--churn-size", default="100,10000",
                    help="comma-separated N for churn, each the nearest ipv4 or ipv6 case (default 100,10000: the "
                         "row against MetalLB, and ferrolb's event -> UPDATE at 10,000); failover at the first")
    ap.add_argument("--churn-rate", type=float, default=10.0, help="endpoint moves per second (default 10)")
    ap.add_argument("--churn-seconds", type=float, default=10.0)
    ap.add_argument("--nodes", type=int, default=3, help="kwok nodes with a speaker each (default 3)")
    ap.add_argument("--lab", default="bench", help="lab name (default bench)")
    ap.add_argument("--include", action="append", default=[],
                    help="bench.json of an earlier run (same machine) whose rows join this table; repeatable")
    ap.add_argument("--out", default=None, help="output directory (default /tmp/ferrolb-bench-<UTC time>)")
    args = ap.parse_args()
    if args.quick:
        args.sizes, args.impl, args.churn_seconds, args.churn_rate = "100", "ferrolb", 3.0, 10.0
        args.churn_size = "100"
        args.reps = 1
        args.scenarios = "scale,packing,churn,failover"
        args.curve_sizes = ""
    tools = os.environ.get("FERROLB_BENCH_TOOLS", "")
    args.ceiling_bin = os.path.join(tools, "status-patch-ceiling")
    args.plot_bin = os.path.join(tools, "bench-plot")
    args.sizes = [int(x) for x in args.sizes.split(",")]
    args.churn_size = [int(x) for x in args.churn_size.split(",") if x]
    args.curve_sizes = [int(x) for x in args.curve_sizes.split(",") if x]
    args.families = args.families.split(",")
    args.large_families = args.large_families.split(",") if args.large_families else args.families
    args.scenarios = args.scenarios.split(",")
    impl_names = [] if args.impl == "none" else args.impl.split(",")
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out_dir = args.out or f"/tmp/ferrolb-bench-{stamp}"
    os.makedirs(out_dir, exist_ok=True)
    binary = os.environ.get("FERROLB_BIN")
    if "ceiling" in args.scenarios and "ferrolb" in impl_names and not os.access(args.ceiling_bin, os.X_OK):
        sys.exit(f"testbed/bench: no {args.ceiling_bin}: FERROLB_BENCH_TOOLS must name the directory of "
                 "testbed/benchtools' binaries (testbed/bench builds them), or leave ceiling out of --scenarios")
    if "ferrolb" in impl_names and not binary:
        sys.exit("testbed/bench: FERROLB_BIN must name the ferrolb binary (testbed/bench sets it)")

    res = Results()
    for path in args.include:
        res.include(path)
    lab = Lab(args.testbed, args.lab, args.nodes)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    started = time.time()
    try:
        for name in impl_names:
            impl = None
            try:
                if name == "ferrolb":
                    wait_for_binary(binary)
                    make = lambda: impls.Ferrolb(lab, out_dir, binary)  # noqa: E731
                elif name.startswith("metallb-v0.12"):
                    bin_dir, _ = metallb_bin(args.testbed, name.removeprefix("metallb-"))
                    make = lambda: impls.MetalLBLegacy(lab, out_dir, bin_dir, name.removeprefix("metallb-"))  # noqa: E731
                elif name.startswith("metallb-v"):
                    bin_dir, src = metallb_bin(args.testbed, name.removeprefix("metallb-"))
                    make = lambda: impls.MetalLBCrd(lab, out_dir, bin_dir, name.removeprefix("metallb-"), src)  # noqa: E731
                else:
                    raise RuntimeError(f"unknown implementation {name}")
                print(f"bench: {name}: lab up ({args.nodes} nodes)", file=sys.stderr)
                lab.up()
                if lab.workaround and lab.workaround not in res.notes:
                    res.notes.append(lab.workaround)
                impl = make()
                res.builds[name] = impl.build
                run_impl(args, lab, impl, res, out_dir)
                if getattr(impl, "leases_left_held", 0):
                    res.notes.append(
                        f"{name}: {impl.leases_left_held} times a SIGTERMed controller left its Lease held; the "
                        "bench deleted it so the next repetition is a cold start (else it waits for the Lease to "
                        "expire, 15 s)")
            except KeyboardInterrupt:
                raise
            except Exception as e:  # one implementation failing does not stop the others
                msg = f"{name}: {e}"
                res.errors.append(msg)
                print(f"bench: ERROR {msg}", file=sys.stderr)
                traceback.print_exc(file=open(os.path.join(out_dir, f"{name}-error.txt"), "w"))
            finally:
                if impl is not None:
                    impl.stop_all()
                lab.down()
    finally:
        lab.down()
        write_outputs(args, res, impl_names, out_dir, started)
    # ferrolb failing is a failure of the script (CI); a MetalLB version that cannot build or run is reported.
    return 1 if any(e.startswith("ferrolb:") for e in res.errors) else 0


STANDING_NOTES = [
    "families: ipv4 = one IPv4 /32 per Service; ipv4-shared = N Services on 510 IPv4 /32s "
    "(metallb.universe.tf/allow-shared-ip, distinct ports; the IPv4 pools are 203.0.113.0/24 + 198.51.100.0/24, "
    "512 addresses); ipv6 = one /128 per Service from 2001:db8:100::/112. Every Service: externalTrafficPolicy "
    "Local, endpoints on 2 of the 3 nodes, so each node announces 2/3 of the routes",
    "MetalLB v0.12.1 and v0.15.2 run no ipv6 case: their native BGP speaker cannot announce IPv6 (internal/bgp/"
    "native/messages.go encodes every prefix with IP.To4() in the IPv4 NLRI field and has no MP_REACH_NLRI); "
    "MetalLB's IPv6 in BGP mode needs its FRR mode",
    "MetalLB v0.12.1 runs N <= --metallb-max-n (1000) only. Its controller uses client-go's default client-side "
    "rate limit (QPS 5, burst 10; internal/k8s/k8s.go builds the rest.Config with BuildConfigFromFlags and sets "
    "no QPS) and makes two calls per Service (status update + IPAllocated Event): about 2.5 Services/s, so "
    "10,000 Services take more than an hour. MetalLB v0.13+ runs N <= --metallb-crd-max-n (10000: about 20 "
    "Services/s, 8 minutes at 10,000)",
]


def write_outputs(args, res, impl_names, out_dir, started):
    mach = sc.machine()
    loads = [x["load_start"] for x in res.loads] + [x["load_end"] for x in res.loads]
    names = list(dict.fromkeys(impl_names + [i for i in res.included_impls if i not in impl_names]))
    commit = subprocess.run(["git", "-C", args.testbed, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    header = (f"ferrolb bench {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}  "
              f"(testbed/bench at commit {commit})\n"
              f"machine: {mach['cores']} cores ({mach['cpu']}), {mach['memory_gb']} GB, kernel {mach['kernel']}, "
              f"{mach['frr']}\n"
              + (f"this run: {', '.join(impl_names)}; nodes: {args.nodes}  reps: {args.reps} "
                 f"(N >= {args.large_from}: {args.reps_large})  sizes: {','.join(map(str, args.sizes))}  "
                 f"load average (1 min) during runs: "
                 + (f"{min(loads):.1f}-{max(loads):.1f}" if loads else "n/a")
                 + f"  wall time: {time.time() - started:.0f}s\n" if impl_names else "")
              + "".join(f"build: {k}: {v}\n" for k, v in res.builds.items())
              + "".join(f"joined: {x}\n" for x in res.included)
              + "cells: median [min-max] over the repetitions; ratio columns: ferrolb median / other median "
              "(< 1 = ferrolb lower)\n"
              + (f"churn: {args.churn_rate:g} moves/s for {args.churn_seconds:g} s\n" if impl_names else "")
              + "scenarios:\n" + "".join(f"  {k}: {v}\n" for k, v in SCENARIOS.items()))
    text = header + "\n" + table(res, names) + "\n" + targets(res, names)
    notes = STANDING_NOTES + res.notes
    text += "\nnotes:\n" + "\n".join(f"  {e}" for e in notes) + "\n"
    with_rows = {r["impl"] for r in res.rows()}
    errors = res.errors + [e for e in dict.fromkeys(res.included_errors) if e.split(":")[0] not in with_rows]
    if errors:
        text += "\nerrors:\n" + "\n".join(f"  {e}" for e in errors) + "\n"
    with open(os.path.join(out_dir, "bench.txt"), "w") as f:
        f.write(text)
    with open(os.path.join(out_dir, "bench.md"), "w") as f:
        f.write(markdown(res, names))
    rows = res.rows()
    with open(os.path.join(out_dir, "bench.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["impl", "scenario", "case", "metric", "unit", "median", "min", "max", "reps", "values"])
        for r in rows:
            w.writerow([r["impl"], r["scenario"], r["n"], r["metric"], r["unit"], r["median"], r["min"],
                        r["max"], r["reps"], " ".join(fmt(v) for v in r["values"])])
    with open(os.path.join(out_dir, "bench.json"), "w") as f:
        json.dump({"machine": mach, "commit": commit, "started": datetime.datetime.fromtimestamp(
                   started, datetime.timezone.utc).isoformat(timespec="seconds"), "wall_s": time.time() - started, "args": {k: v for k, v in vars(args).items()},
                   "rows": rows, "builds": res.builds, "errors": res.errors, "notes": res.notes,
                   "load": res.loads, "metrics": {k: {"unit": u, "what": d} for k, (u, d) in METRICS.items()}},
                  f, indent=1)
    print(text)
    print(f"bench: table, CSV and JSON in {out_dir} (bench.txt, bench.md, bench.csv, bench.json)", file=sys.stderr)
    plot(args, rows, out_dir)


def plot(args, rows, out_dir):
    """scaling.png next to the table (testbed/benchtools' bench-plot) when a run has a scale curve: at least two
    sizes >= 1,000 of one implementation and family."""
    curves = {}
    for r in rows:
        n, _, fam = str(r["n"]).partition(" ")
        if r["scenario"] == "scale" and r["metric"] == "speaker_cpu_s_mean" and int(n) >= 1000:
            curves.setdefault((r["impl"], fam), set()).add(int(n))
    if not any(len(v) >= 2 for v in curves.values()):
        return
    if not os.access(args.plot_bin, os.X_OK):
        print(f"bench: no scaling plot: no {args.plot_bin} (FERROLB_BENCH_TOOLS)", file=sys.stderr)
        return
    out = os.path.join(out_dir, "scaling.png")
    p = subprocess.run([args.plot_bin, os.path.join(out_dir, "bench.json"), out], capture_output=True, text=True)
    if p.returncode != 0:
        print(f"bench: ERROR bench-plot: {p.stderr.strip()[-2000:]}", file=sys.stderr)
    else:
        print(f"bench: scaling plot in {out}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
