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
    "time_to_all_routes_s": ("s", "start -> router FIB holds every /32 with exactly the right next hops"),
    "controller_cpu_s": ("s", "controller CPU (user+system) until converged"),
    "controller_peak_rss_mb": ("MB", "controller peak RSS (VmHWM)"),
    "speaker_cpu_s_mean": ("s", "speaker CPU until converged, mean over nodes"),
    "speaker_peak_rss_mb_max": ("MB", "speaker peak RSS, max over nodes"),
    "updates_frr": ("msgs", "UPDATEs received by FRR (show bgp neighbors json, all node sessions)"),
    "updates_pcap": ("msgs", "UPDATEs on the wire (dumpcap + tshark), cross-check"),
    "updates_speaker_metric": ("msgs", "UPDATEs the speakers report (metallb_bgp_updates_total)"),
    "update_bytes_pcap": ("bytes", "UPDATE bytes on the wire"),
    "updates_optimum": ("msgs", "fewest UPDATEs that can carry the table (810 /32s each), no End-of-RIB"),
    "updates_over_optimum": ("msgs", "updates_frr - optimum (target <= 1 per session: the End-of-RIB)"),
    "converged": ("0/1", "1 when the router converged within 120 s + 0.1 s per Service (else lower bounds)"),
    "services_create_s": ("s", "(setup) creating the Services and endpoints through the API"),
    "churn_latency_p50_ms": ("ms", "endpoint write -> router FIB has the new next hops, p50"),
    "churn_latency_p99_ms": ("ms", "same, p99 (target <= 250 ms)"),
    "churn_latency_max_ms": ("ms", "same, max"),
    "failover_kill_s": ("s", "speaker SIGKILLed -> router stops using the node"),
    "failover_link_s": ("s", "node link cut -> router stops using the node (hold time %d s)" % impls.HOLD_TIME_S),
    "restart_ready_s": ("s", "controller restarted -> ready"),
    "restart_ips_changed": ("count", "Services whose address changed across the restart (must be 0)"),
}


def percentile(values, p):
    v = sorted(values)
    if not v:
        return float("nan")
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


class Results:
    """Every repetition's value, keyed by (implementation, scenario, N, metric)."""

    def __init__(self):
        self.values = {}
        self.errors = []
        self.notes = []
        self.loads = []

    def add(self, impl, scenario, n, metrics):
        for k, v in metrics.items():
            self.values.setdefault((impl, scenario, n, k), []).append(v)

    def rows(self):
        out = []
        for (impl, scenario, n, metric), vals in sorted(self.values.items()):
            out.append({"impl": impl, "scenario": scenario, "n": n, "metric": metric,
                        "unit": METRICS.get(metric, ("", ""))[0], "median": statistics.median(vals),
                        "min": min(vals), "max": max(vals), "reps": len(vals), "values": vals})
        return out


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
    head = ["scenario", "N", "metric", "unit"] + impl_names + [f"ferrolb/{o}" for o in others]
    lines = [head]
    order = list(METRICS)
    for key in sorted(by_key, key=lambda k: (k[0] != "scale", k[0], k[1], order.index(k[2])
                                             if k[2] in order else 99)):
        scenario, n, metric = key
        cells = by_key[key]
        line = [scenario, str(n), metric, METRICS.get(metric, ("", ""))[0]]
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
               "churn_latency_max_ms", "failover_kill_s", "failover_link_s", "restart_ready_s")
RESOURCES = ("controller_cpu_s", "controller_peak_rss_mb", "speaker_cpu_s_mean", "speaker_peak_rss_mb_max",
             "updates_frr", "update_bytes_pcap")


def targets(res, impl_names, sessions):
    """The issue's targets, checked against this run's ferrolb medians (and ratios)."""
    med = {(r["impl"], r["scenario"], r["n"], r["metric"]): r["median"] for r in res.rows()}
    lines = []
    for other in [i for i in impl_names if i != "ferrolb"]:
        worse = [f"{m}@{n}" for (i, sc_, n, m), v in med.items() if i == "ferrolb" and m in CONVERGENCE + RESOURCES
                 and (other, sc_, n, m) in med and v > med[(other, sc_, n, m)]]
        have = any(i == other for (i, *_rest) in med)
        if have:
            lines.append(f"  ferrolb below {other} on every convergence and resource figure: "
                         + ("MET" if not worse else "MISSED (" + ", ".join(sorted(worse)) + ")"))
    for (i, sc_, n, m), v in sorted(med.items()):
        if i != "ferrolb":
            continue
        if m == "updates_over_optimum":
            lines.append(f"  N={n}: UPDATEs {med[(i, sc_, n, 'updates_frr')]:.0f} vs optimum "
                         f"{med[(i, sc_, n, 'updates_optimum')]:.0f} + 1 End-of-RIB per session ({sessions}): "
                         + ("MET" if v <= sessions else "MISSED"))
        if m == "churn_latency_p99_ms":
            lines.append(f"  N={n}: churn p99 {v:.0f} ms <= 250 ms: " + ("MET" if v <= 250 else "MISSED"))
        if m == "speaker_peak_rss_mb_max" and n >= 10000:
            lines.append(f"  N={n}: speaker peak RSS {v:.1f} MB <= 30 MB: " + ("MET" if v <= 30 else "MISSED"))
    return ("\ntargets (medians of this run):\n" + "\n".join(lines) + "\n") if lines else ""


def run_impl(args, lab, impl, res, out_dir):
    """Every scenario for one implementation in one fresh lab."""
    impl.setup()
    churn_n = min(args.sizes, key=lambda n: abs(n - args.churn_size))
    for n in args.sizes:
        reps = args.reps if n < args.large_from else max(1, args.reps_large)
        for rep in range(reps):
            keep = n == churn_n and rep == reps - 1 and args.post
            load0 = sc.load_avg()
            print(f"bench: {impl.name} scale N={n} rep {rep + 1}/{reps} (load {load0:.1f})", file=sys.stderr)
            m, state = sc.scale(lab, impl, n, out_dir, f"{impl.name}-scale-{n}-{rep}", res.notes, keep=keep)
            res.loads.append({"impl": impl.name, "scenario": "scale", "n": n, "rep": rep,
                              "load_start": load0, "load_end": sc.load_avg()})
            res.add(impl.name, "scale", n, m)
            print(f"bench:   {json.dumps({k: round(v, 3) for k, v in m.items()})}", file=sys.stderr)
        if n == churn_n and args.post and state is None:
            res.errors.append(f"{impl.name}: churn, failover and restart skipped: N={n} did not converge")
        elif n == churn_n and args.post:
            try:
                post_scenarios(args, lab, impl, res, n, state)
            finally:
                sc.teardown(lab, impl, state)


def post_scenarios(args, lab, impl, res, n, state):
    """churn, failover and restart on the converged state of size n."""
    if "churn" in args.scenarios:
        for rep in range(args.reps):
            load0 = sc.load_avg()
            print(f"bench: {impl.name} churn N={n} rep {rep + 1} (load {load0:.1f})", file=sys.stderr)
            lat = sc.churn(lab, impl, state, args.churn_rate, args.churn_seconds)
            res.add(impl.name, "churn", n, {"churn_latency_p50_ms": 1000 * percentile(lat, 50),
                                           "churn_latency_p99_ms": 1000 * percentile(lat, 99),
                                           "churn_latency_max_ms": 1000 * max(lat)})
            res.loads.append({"impl": impl.name, "scenario": "churn", "n": n, "rep": rep,
                              "load_start": load0, "load_end": sc.load_avg()})
    if "failover" in args.scenarios:
        for rep in range(args.reps):
            for kind in ("kill", "link"):
                print(f"bench: {impl.name} failover {kind} N={n} rep {rep + 1}", file=sys.stderr)
                dt = sc.failover(lab, impl, state, kind, timeout_s=impls.HOLD_TIME_S * 4 + 60)
                res.add(impl.name, "failover", n, {f"failover_{kind}_s": dt})
    if "restart" in args.scenarios:
        for rep in range(args.reps):
            print(f"bench: {impl.name} restart N={n} rep {rep + 1}", file=sys.stderr)
            ready, changed = sc.restart(lab, impl, state)
            res.add(impl.name, "restart", n, {"restart_ready_s": ready, "restart_ips_changed": changed})


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
                    help="CI: N=100, ferrolb alone, 3 repetitions, all scenarios kept short")
    ap.add_argument("--sizes", default="100,1000,10000", help="comma-separated N (default 100,1000,10000)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions per figure (default 3)")
    ap.add_argument("--reps-large", type=int, default=1, help="repetitions at N >= --large-from (default 1)")
    ap.add_argument("--large-from", type=int, default=10000, help="N from which --reps-large applies")
    ap.add_argument("--impl", default="ferrolb,metallb-v0.12.1,metallb-v0.16.2",
                    help="implementations (default ferrolb,metallb-v0.12.1,metallb-v0.16.2)")
    ap.add_argument("--scenarios", default="scale,churn,failover,restart")
    ap.add_argument("--churn-size", type=int, default=1000, help="N for churn/failover/restart (nearest size)")
    ap.add_argument("--churn-rate", type=float, default=10.0, help="endpoint moves per second (default 10)")
    ap.add_argument("--churn-seconds", type=float, default=10.0)
    ap.add_argument("--nodes", type=int, default=3, help="kwok nodes with a speaker each (default 3)")
    ap.add_argument("--lab", default="bench", help="lab name (default bench)")
    ap.add_argument("--out", default=None, help="output directory (default /tmp/ferrolb-bench-<UTC time>)")
    args = ap.parse_args()
    if args.quick:
        args.sizes, args.impl, args.churn_seconds, args.churn_rate = "100", "ferrolb", 5.0, 10.0
        args.reps = min(args.reps, 3)
    args.sizes = [int(x) for x in args.sizes.split(",")]
    args.scenarios = args.scenarios.split(",")
    args.post = any(s in args.scenarios for s in ("churn", "failover", "restart"))
    impl_names = args.impl.split(",")
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out_dir = args.out or f"/tmp/ferrolb-bench-{stamp}"
    os.makedirs(out_dir, exist_ok=True)
    binary = os.environ.get("FERROLB_BIN")
    if "ferrolb" in impl_names and not binary:
        sys.exit("testbed/bench: FERROLB_BIN must name the ferrolb binary (testbed/bench sets it)")

    res = Results()
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
                run_impl(args, lab, impl, res, out_dir)
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


def write_outputs(args, res, impl_names, out_dir, started):
    mach = sc.machine()
    loads = [x["load_start"] for x in res.loads] + [x["load_end"] for x in res.loads]
    header = (f"ferrolb bench {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}  "
              f"machine: {mach['cores']} cores ({mach['cpu']}), {mach['memory_gb']} GB, kernel {mach['kernel']}, "
              f"{mach['frr']}\n"
              f"nodes: {args.nodes}  reps: {args.reps}  sizes: {','.join(map(str, args.sizes))}  "
              f"load average (1 min) during runs: "
              + (f"{min(loads):.1f}-{max(loads):.1f}" if loads else "n/a")
              + f"  wall time: {time.time() - started:.0f}s\n"
              f"cells: median [min-max] over the repetitions; ratio columns: ferrolb median / other median "
              f"(< 1 = ferrolb lower)\n")
    text = header + "\n" + table(res, impl_names) + "\n" + targets(res, impl_names, args.nodes)
    if res.notes:
        text += "\nnotes:\n" + "\n".join(f"  {e}" for e in res.notes) + "\n"
    if res.errors:
        text += "\nerrors:\n" + "\n".join(f"  {e}" for e in res.errors) + "\n"
    with open(os.path.join(out_dir, "bench.txt"), "w") as f:
        f.write(text)
    rows = res.rows()
    with open(os.path.join(out_dir, "bench.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["impl", "scenario", "n", "metric", "unit", "median", "min", "max", "reps", "values"])
        for r in rows:
            w.writerow([r["impl"], r["scenario"], r["n"], r["metric"], r["unit"], r["median"], r["min"],
                        r["max"], r["reps"], " ".join(fmt(v) for v in r["values"])])
    with open(os.path.join(out_dir, "bench.json"), "w") as f:
        json.dump({"machine": mach, "args": {k: v for k, v in vars(args).items()}, "rows": rows,
                   "errors": res.errors, "notes": res.notes, "load": res.loads,
                   "metrics": {k: {"unit": u, "what": d} for k, (u, d) in METRICS.items()}}, f, indent=1)
    print(text)
    print(f"bench: table, CSV and JSON in {out_dir} (bench.txt, bench.csv, bench.json)", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
