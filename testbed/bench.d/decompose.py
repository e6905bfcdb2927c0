"""Churn decomposed: where the time of one endpoint move goes, from the API write to the router's FIB.

Every timestamp is wall-clock time of this machine (CLOCK_REALTIME), taken by four independent observers:

  write   the bench, just before it sends the EndpointSlice (or Endpoints) PATCH;
  event   dumpcap on the router's node LAN: the first segment with data the API server (router namespace,
          port 6443) sends to the critical speaker's node after the write, i.e. the watch event leaving for
          the speaker. Seen from outside the process, so it works for every implementation alike (the
          connection is TLS: the segment is the first after the write, not a decoded event);
  update  the same capture: the first UPDATE from the critical speaker that carries the change (the new node
          announcing the address, the old node withdrawing it; the later of the two is the critical speaker);
  fib     `ip -ts monitor route` in the router namespace (real-time priority, so that it reads at once): the
          kernel's notification that the route holds exactly the new next-hop set.

The stages are write -> event (API server and watch), event -> update (the speaker: decode, decide, encode,
write), update -> fib (FRR: receive, best path, zebra, kernel). They add up to fib - write. The churn's own
total is measured apart (the poller, time.monotonic, reading the FIB every few ms); the difference, total -
(fib - write), must lie between -1 ms and the poller's cycle around the observation (+ 1 ms): that is the check
that the decomposition adds up."""

import datetime
import os
import re
import signal
import subprocess

from labctl import Capture, canon

# The capture filter: BGP from the speakers, and the API server's segments to the nodes.
BPF = "tcp dst port 179 or tcp src port 6443"
# A stage may come out this much below zero (the observers' clock readings, rounded to microseconds, and the
# kernel's timestamp of a frame against the bench's reading before its write).
SLACK_S = 0.001
STAGES = ("api_to_speaker", "speaker_to_wire", "wire_to_fib")


class Trace:
    """Captures of one churn run: the router LAN (dumpcap) and the router FIB's changes (ip monitor)."""

    def __init__(self, lab, path):
        self.lab = lab
        self.cap = Capture(lab, f"{path}.pcap", bpf=BPF)
        self.fib_path = f"{path}-fib.txt"
        self.fib_out = open(self.fib_path, "w")
        # `ip` stamps a notification when it reads it: on a loaded machine a normal process reads late (seen:
        # 14 ms, the poller then saw the change first), so the monitor runs with a real-time priority (it sleeps
        # in recv nearly all the time).
        self.mon = subprocess.Popen(["chrt", "-f", "50", "ip", "-n", lab.router_ns, "-ts", "monitor", "route"],
                                    stdout=self.fib_out, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self):
        """Stop both (our pids); return (updates, api, fib): see `updates_of`, `api_frames_of`, `parse_fib`."""
        if self.mon.poll() is None:
            os.kill(self.mon.pid, signal.SIGTERM)
            self.mon.wait(timeout=15)
        self.fib_out.close()
        self.cap.halt()
        with open(self.fib_path) as f:
            fib = parse_fib(f.read())
        updates = updates_of(self.cap.fields("bgp.type == 2", [
            "frame.time_epoch", "ip.src", "ipv6.src", "bgp.nlri_prefix", "bgp.mp_reach_nlri_ipv6_prefix",
            "bgp.withdrawn_prefix", "bgp.mp_unreach_nlri_ipv6_prefix"]))
        api = api_frames_of(self.cap.fields("tcp.srcport == 6443 && tcp.len > 0",
                                            ["frame.time_epoch", "ip.dst", "ipv6.dst"]))
        return updates, api, fib


def _split(field):
    return [canon(x) for x in field.split(",") if x]


def updates_of(rows):
    """{node address: [(time, announced addresses, withdrawn addresses)]} from tshark rows (in capture order)."""
    out = {}
    for r in rows:
        if len(r) < 7:
            continue
        src = canon(r[1] or r[2])
        out.setdefault(src, []).append((float(r[0]), set(_split(r[3]) + _split(r[4])),
                                        set(_split(r[5]) + _split(r[6]))))
    return out


def api_frames_of(rows):
    """{node address: [time]}: the API server's data segments to each node."""
    out = {}
    for r in rows:
        if len(r) < 3 or not (r[1] or r[2]):
            continue
        out.setdefault(canon(r[1] or r[2]), []).append(float(r[0]))
    return out


_HEAD = re.compile(r"^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)\] (Deleted )?(\S+)(.*)$")
_VIA = re.compile(r"\bvia (?:inet6 )?([0-9a-fA-F:.]+)")


def parse_fib(text):
    """`ip -ts monitor route` output -> [(time, address, frozenset(gateways) or None when deleted)] for the
    routes with `proto bgp` (a multipath route's next hops are on the following tab-indented lines). The
    timestamp is local time, as `ip` prints it."""
    recs, cur = [], None
    for line in text.splitlines():
        m = _HEAD.match(line)
        if m:
            if cur:
                recs.append(cur)
            t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f").timestamp()
            rest = m.group(4)
            if "proto bgp" not in rest:
                cur = None
                continue
            dst = m.group(3).split("/")[0]
            try:
                dst = canon(dst)
            except ValueError:
                cur = None
                continue
            cur = [t, dst, set(_VIA.findall(rest)), bool(m.group(2))]
        elif cur and line.startswith("\t"):
            cur[2].update(_VIA.findall(line))
    if cur:
        recs.append(cur)
    return [(t, dst, None if deleted else frozenset(canon(g) for g in gws)) for t, dst, gws, deleted in recs]


def first_after(times, t0, pred=lambda x: True):
    """The first item of the time-ordered list `times` ((time, ...) tuples or bare times) at or after t0 that
    satisfies pred."""
    for x in times:
        t = x[0] if isinstance(x, tuple) else x
        if t >= t0 and pred(x):
            return x
    return None


def merged(table, addrs):
    """The time-ordered union of `table`'s lists (of (time, ...) tuples or bare times) for one node's addresses."""
    return sorted((x for a in addrs for x in table.get(a, [])), key=lambda x: x[0] if isinstance(x, tuple) else x)


def decompose(moves, updates, api, fib):
    """Per move, the stages (seconds) or why it could not be decomposed.

    `moves`: dicts with vip, want (frozenset of node addresses), new and old (node addresses in the vip's
    family), optionally new_addrs and old_addrs (every address of each node, where its UPDATEs and API segments
    are looked up), t_write (wall clock), latency (the poller's total, seconds, or None when it timed out) and
    gap (the poller's cycle around its observation). Returns (steps, failures): steps are dicts with the three STAGES, sum, total and residual
    (total - sum); failures are (vip, reason) pairs."""
    steps, failures = [], []
    for mv in moves:
        vip, t0 = mv["vip"], mv["t_write"]
        if mv["latency"] is None:
            failures.append((vip, "the router FIB did not reach the new next hops in time"))
            continue
        new_addrs, old_addrs = mv.get("new_addrs", (mv["new"],)), mv.get("old_addrs", (mv["old"],))
        up_new = first_after(merged(updates, new_addrs), t0, lambda u: vip in u[1])
        up_old = first_after(merged(updates, old_addrs), t0, lambda u: vip in u[2])
        if up_new is None or up_old is None:
            failures.append((vip, f"no UPDATE {'announcing' if up_new is None else 'withdrawing'} it from "
                                  f"{mv['new'] if up_new is None else mv['old']} after the write"))
            continue
        (crit, crit_addrs), u = (((mv["new"], new_addrs), up_new[0]) if up_new[0] >= up_old[0]
                                 else ((mv["old"], old_addrs), up_old[0]))
        e = first_after(merged(api, crit_addrs), t0)
        if e is None or e > u:
            failures.append((vip, f"no segment from the API server to {crit} between the write and its UPDATE"))
            continue
        f = first_after(fib, t0, lambda r: r[1] == vip and r[2] == mv["want"])
        if f is None:
            failures.append((vip, "ip monitor saw no FIB change to the new next hops"))
            continue
        st = {"api_to_speaker": e - t0, "speaker_to_wire": u - e, "wire_to_fib": f[0] - u}
        st["sum"] = f[0] - t0
        st["total"] = mv["latency"]
        st["residual"] = mv["latency"] - st["sum"]
        st["gap"] = mv["gap"]
        st["vip"] = vip
        steps.append(st)
    return steps, failures


def adds_up(step):
    """Whether a step's stages are each >= -SLACK_S and add up to its measured total: the residual (total - sum)
    lies within [-SLACK_S, the poller's cycle around the observation + SLACK_S]."""
    return (all(step[s] >= -SLACK_S for s in STAGES)
            and -SLACK_S <= step["residual"] <= step["gap"] + SLACK_S)


def metrics(steps, failures, n_moves, percentile):
    """The churn rows of the decomposition: per stage p50/p99 (ms), the stage sum's p50/p99, the residual's max,
    how many moves were decomposed and how many did not add up."""
    m = {"churn_moves": n_moves, "churn_decomposed": len(steps),
         "churn_not_adding_up": sum(1 for s in steps if not adds_up(s))}
    for key in STAGES + ("sum",):
        vals = [s[key] for s in steps]
        if vals:
            m[f"churn_{key}_p50_ms"] = 1000 * percentile(vals, 50)
            m[f"churn_{key}_p99_ms"] = 1000 * percentile(vals, 99)
    if steps:
        m["churn_residual_p50_ms"] = 1000 * percentile([s["residual"] for s in steps], 50)
        m["churn_residual_max_ms"] = 1000 * max(abs(s["residual"]) for s in steps)
        m["churn_poll_gap_p50_ms"] = 1000 * percentile([s["gap"] for s in steps], 50)
    return m


def describe_failures(steps, failures, limit=5):
    """A short text of the moves that could not be decomposed or did not add up (for notes and errors)."""
    bad = [f"{v}: {why}" for v, why in failures]
    bad += [f"{s['vip']}: stages {', '.join(f'{k} {1000 * s[k]:.1f} ms' for k in STAGES)}, total "
            f"{1000 * s['total']:.1f} ms, residual {1000 * s['residual']:.1f} ms, poll cycle {1000 * s['gap']:.1f} ms"
            for s in steps if not adds_up(s)]
    return "; ".join(bad[:limit]) + (f" (+{len(bad) - limit} more)" if len(bad) > limit else "")


def histogram_delta(before, after, name):
    """(count, sum, {le: cumulative count}) of Prometheus histogram `name` between two scrapes (summed over the
    texts in each list, one per speaker)."""
    def read(texts):
        count = total = 0.0
        buckets = {}
        for text in texts:
            for line in text.splitlines():
                if line.startswith(f"{name}_count"):
                    count += float(line.split()[-1])
                elif line.startswith(f"{name}_sum"):
                    total += float(line.split()[-1])
                elif line.startswith(f"{name}_bucket"):
                    le = re.search(r'le="([^"]+)"', line).group(1)
                    buckets[le] = buckets.get(le, 0.0) + float(line.split()[-1])
        return count, total, buckets

    c0, s0, b0 = read(before)
    c1, s1, b1 = read(after)
    return c1 - c0, s1 - s0, {le: v - b0.get(le, 0.0) for le, v in b1.items()}


def bucket_quantile(count, buckets, q):
    """The upper bound of the histogram bucket that holds quantile q (inf when beyond the last finite bound)."""
    for le, v in sorted(buckets.items(), key=lambda kv: float(kv[0])):
        if count and v >= q * count:
            return float(le)
    return float("nan")

