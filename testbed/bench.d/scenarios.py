"""The scenarios: scale (with its packing phase), churn, failover, restart, peers3. Each returns {metric: value}
for one repetition."""

import json
import math
import os
import signal
import subprocess
import threading
import time

import decompose as dc
from labctl import Capture, Kube, canon, run
from workload import ServiceWatch, Workload, svc_name

# Most routes one 4096-byte UPDATE can carry with iBGP attributes ORIGIN (4) + empty AS_PATH (3) + LOCAL_PREF (7)
# after the 19-byte header and the two 2-byte length fields:
#   IPv4 /32 in the NLRI field, + NEXT_HOP (7): (4096 - 23 - 21) // 5 = 810
#   IPv6 /128 in MP_REACH_NLRI (RFC 4760: 4-byte attribute header with extended length, AFI 2, SAFI 1, next hop
#   length 1, one 16-byte global next hop, reserved 1 = 25): (4096 - 23 - 39) // 17 = 237
PREFIXES_PER_UPDATE = {"ipv4": (4096 - 23 - 21) // 5, "ipv6": (4096 - 23 - 39) // 17}


def family_of(addr):
    return "ipv6" if ":" in addr else "ipv4"


class Converge:
    """What "converged" means: every Service has an address and the router's FIB holds exactly one route per
    address with the right set of next hops (the nodes with endpoints of the Services on that address)."""

    def __init__(self, lab, impl, wl):
        self.lab, self.impl, self.wl = lab, impl, wl

    def expected(self, ips):
        """{address: frozenset(node addresses)} the FIB should hold for the address map `ips`."""
        out = {}
        for i in range(self.wl.n):
            ip = ips.get(svc_name(i))
            if not ip:
                return None
            ip = canon(ip)
            nh = self.lab.node_ip6 if ":" in ip else self.lab.node_ip
            out[ip] = out.get(ip, frozenset()) | frozenset(nh(x) for x in self.wl.nodes[i])
        return out

    def fib_matches(self, ips, fib=None):
        exp = self.expected(ips)
        if exp is None:
            return False
        fib = self.lab.fib() if fib is None else fib
        return fib == exp

    def wait(self, ips_fn, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            self.impl.check_alive()
            if self.fib_matches(ips_fn()):
                return time.monotonic()
            if time.monotonic() > deadline:
                fib = self.lab.fib()
                ips = ips_fn()
                raise TimeoutError(f"{what}: not converged after {timeout:.0f}s: {sum(1 for v in ips.values() if v)}"
                                   f" of {self.wl.n} Services have an address, the router FIB has {len(fib)} "
                                   f"BGP routes; figures are lower bounds")
            time.sleep(0.1 if self.wl.n <= 1000 else 0.5)

    def per_node(self, ips):
        """{node index: prefixes it announces}."""
        counts = {}
        exp = self.expected(ips) or {}
        for nodes in exp.values():
            for addr in nodes:
                x = int(addr.rsplit(".", 1)[-1] if "." in addr else addr.rsplit(":", 1)[-1]) - 10
                counts[x] = counts.get(x, 0) + 1
        return counts


def bgp_counters(lab):
    """Sum of FRR's updatesRecv over its (node) sessions, and the number of those sessions."""
    total = sessions = 0
    for addr, nb in lab.frr_neighbors().items():
        if isinstance(nb, dict) and "messageStats" in nb:
            total += int(nb.get("messageStats", {}).get("updatesRecv", 0))
            sessions += 1
    return total, sessions


def wait_router_clean(lab, timeout=180):
    """Wait until the router has no BGP route and no node session (between repetitions)."""
    deadline = time.monotonic() + timeout
    while lab.fib() or any(isinstance(nb, dict) and "messageStats" in nb for nb in lab.frr_neighbors().values()):
        if time.monotonic() > deadline:
            raise RuntimeError("router still has BGP routes or node sessions after the implementation stopped")
        time.sleep(0.2)


def timeout_for(n):
    """How long a convergence may take before its figures count as lower bounds."""
    return min(900.0, 120 + 0.5 * n)


def resources(impl, m, suffix=""):
    """CPU seconds and peak RSS of the controller and the speakers, into m."""
    if impl.controller is not None and not suffix:
        m["controller_cpu_s"], m["controller_peak_rss_mb"] = impl.controller.sample()
    spk = [s.sample() for s in impl.speakers.values()]
    m["speaker_cpu_s_mean"] = sum(c for c, _ in spk) / len(spk)
    m["speaker_peak_rss_mb_max"] = max(r for _, r in spk)


def update_counts(lab, impl, cap, m):
    """UPDATEs sent, three ways, into m: FRR's counters, the speakers' own metric (when the implementation
    exports one) and the capture `cap`, which this stops. Returns the capture's per-session counts."""
    m["updates_frr"], _ = bgp_counters(lab)
    if impl.speaker_counts_updates:
        vals = [impl.speaker_updates(i) for i in impl.speakers]
        if all(v is not None for v in vals):
            m["updates_speaker_metric"] = sum(vals)
    sessions = cap.stop()
    m["updates_pcap"] = sum(s["updates"] for s in sessions.values())
    m["update_bytes_pcap"] = sum(s["bytes"] for s in sessions.values())
    return sessions


def scale(lab, impl, n, family, out_dir, tag, notes, keep=False, packing=True, last=False):
    """Create N Services with the implementation stopped, then start it and time convergence ("scale": the
    controller assigns the addresses one by one while the speakers run, so the speakers see a trickle).
    Then ("packing") stop the speakers, wait until the router has nothing, and start them again with every
    Service holding its address: the UPDATEs of that start are what packing alone decides.

    Returns (scale metrics, packing metrics or None, state); state (workload, watch, converge) is kept running
    when `keep`; otherwise the workload is deleted unless this is the `last` run of the lab."""
    wl = Workload(lab, impl.endpoints_kind, n, family)
    t_create = time.monotonic()
    wl.create()
    create_s = time.monotonic() - t_create
    cap = Capture(lab, f"{out_dir}/{tag}.pcap")
    conv = Converge(lab, impl, wl)
    t0 = time.monotonic()
    watch = ServiceWatch(lab, n, t0)
    watch.start()
    impl.start_controller()
    impl.start_speakers()
    m = {"services_create_s": create_s, "converged": 1}
    try:
        t_routes = conv.wait(watch.snapshot, timeout_for(n), f"{impl.name} N={n} {family}")
    except TimeoutError as e:
        # Not converged in time: the figures are lower bounds (value = timeout), and the run says so.
        notes.append(str(e))
        m["converged"] = 0
        t_routes = time.monotonic()
        keep, packing = False, False
    if m["converged"] and watch.all_assigned_at is None:
        raise RuntimeError(f"{impl.name}: FIB converged but the Service watch saw no full assignment "
                           f"({watch.error})")
    if watch.rewatches:
        notes.append(f"{impl.name} N={n} {family}: the bench's Service watch ended and was resumed "
                     f"{watch.rewatches} times")
    time.sleep(2.0)  # stragglers (End-of-RIB) before counting
    m["time_to_all_ips_s"] = (watch.all_assigned_at or time.monotonic()) - t0
    if watch.assign_rate() is not None:
        m["controller_services_per_s"] = watch.assign_rate()
    m["time_to_all_routes_s"] = t_routes - t0
    resources(impl, m)
    update_counts(lab, impl, cap, m)
    p = packing_phase(lab, impl, wl, watch, conv, out_dir, tag) if packing else None
    if not keep:
        watch.stop_flag = True
        impl.stop_all()
        if not last:  # the lab goes down after the last one (deleting 10,000 Services takes minutes)
            wl.delete()
            wait_router_clean(lab)
        return m, p, None
    return m, p, (wl, watch, conv)


def packing_phase(lab, impl, wl, watch, conv, out_dir, tag):
    """Speakers stopped and started again with every address assigned: UPDATEs per session against the optimum."""
    impl.stop_speakers()
    wait_router_clean(lab)
    cap = Capture(lab, f"{out_dir}/{tag}-packing.pcap")
    t0 = time.monotonic()
    impl.start_speakers()
    t_routes = conv.wait(watch.snapshot, timeout_for(wl.n), f"{impl.name} N={wl.n} {wl.family} speaker start")
    time.sleep(2.0)
    m = {"time_to_all_routes_s": t_routes - t0}
    resources(impl, m, suffix="packing")
    sessions = update_counts(lab, impl, cap, m)
    fam = "ipv6" if wl.family == "ipv6" else "ipv4"
    per_node = conv.per_node(watch.snapshot())
    optimum = {x: math.ceil(c / PREFIXES_PER_UPDATE[fam]) for x, c in per_node.items()}
    over = []
    for (src, _dst), st in sessions.items():
        x = int(src.rsplit(".", 1)[-1]) - 10 if "." in src else int(src.rsplit(":", 1)[-1]) - 10
        over.append(st["updates"] - st["eor"] - optimum.get(x, 0))
    m["updates_eor_pcap"] = sum(s["eor"] for s in sessions.values())
    m["updates_data_pcap"] = m["updates_pcap"] - m["updates_eor_pcap"]
    m["updates_optimum"] = sum(optimum.values())
    m["updates_over_optimum_max"] = max(over) if over else float("nan")
    m["sessions"] = len(sessions)
    return m


def teardown(lab, impl, state, delete=True):
    """Stop the implementation and remove a kept workload (`delete=False`: the lab goes down next anyway, and
    deleting 10,000 Services takes the API server minutes)."""
    wl, watch, _ = state
    watch.stop_flag = True
    impl.stop_all()
    if delete:
        wl.delete()
        wait_router_clean(lab)


def node_addrs(lab, i):
    """Every LAN address of node-i, IPv4 first."""
    return (lab.node_ip(i), lab.node_ip6(i))


def churn(lab, impl, state, rate, duration_s, trace_path=None, timeout_s=10.0):
    """Move one endpoint every 1/rate seconds; latency from the API write to the router's FIB holding the
    new next-hop set. Returns (latencies in seconds, a timed-out move counting as `timeout_s`; the
    decomposition's metrics, or {} without `trace_path`; a text of the moves that could not be decomposed or
    did not add up, or ""). With `trace_path`, the router LAN and FIB are traced (see decompose.py) and, when
    the implementation has one, the speakers' event-to-UPDATE histogram is read before and after."""
    wl, watch, _ = state
    ips = watch.snapshot()
    kube = Kube(lab.kubeconfig)
    pending, moves, lock = [], [], threading.Lock()
    stop = threading.Event()
    trace = dc.Trace(lab, trace_path) if trace_path else None
    hist0 = impl.speaker_metric_texts() if trace and impl.event_histogram else None

    def poll():
        # A change seen by this read happened after the previous read began: `gap` bounds how late it is seen.
        prev = time.monotonic()
        while not stop.is_set() or pending:
            start = time.monotonic()
            with lock:
                waiting = [mv["vip"] for mv in pending]
            fib = lab.fib_of(waiting)
            now = time.monotonic()
            with lock:
                for mv in list(pending):
                    if fib.get(mv["vip"]) == mv["want"]:
                        mv["latency"], mv["gap"] = now - mv["t_mono"], now - max(prev, mv["t_mono"])
                        pending.remove(mv)
                    elif now - mv["t_mono"] > timeout_s:
                        pending.remove(mv)
            prev = start
            time.sleep(0.002)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    n_moves = int(rate * duration_s)
    t_start = time.monotonic()
    step = max(1, wl.n // 7)
    for m in range(n_moves):
        due = t_start + m / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        i = (m * step + m // 7) % wl.n
        vip = canon(ips[svc_name(i)])
        with lock:
            if any(p["vip"] == vip for p in pending):
                continue
        before = set(wl.nodes[i])
        t_wall, t_mono = time.time(), time.monotonic()
        nodes = wl.move(i, kube)
        (new,), (old,) = set(nodes) - before, before - set(nodes)
        # Next hops in the address's family (an IPv6 address is routed via the nodes' IPv6 addresses); a node's
        # UPDATEs and API segments are looked up by each of its addresses (the session of either family, the
        # API server's connection over IPv4).
        nh = lab.node_ip6 if ":" in vip else lab.node_ip
        mv = {"vip": vip, "want": frozenset(nh(x) for x in nodes), "t_write": t_wall, "t_mono": t_mono,
              "new": nh(new), "old": nh(old), "new_addrs": node_addrs(lab, new), "old_addrs": node_addrs(lab, old),
              "latency": None, "gap": 0.0}
        with lock:
            pending.append(mv)
            moves.append(mv)
    stop.set()
    poller.join(timeout=timeout_s + 30)
    lat = [timeout_s if mv["latency"] is None else mv["latency"] for mv in moves]
    if trace is None:
        return lat, {}, ""
    time.sleep(0.5)  # the last frames and FIB notifications
    updates, api, fib = trace.stop()
    steps, failures = dc.decompose(moves, updates, api, fib)
    m = dc.metrics(steps, failures, len(moves), percentile)
    if hist0 is not None:
        count, total, buckets = dc.histogram_delta(hist0, impl.speaker_metric_texts(), impl.event_histogram)
        m["churn_event_to_update_count"] = count
        if count:
            m["churn_event_to_update_mean_ms"] = 1000 * total / count
            m["churn_event_to_update_p99_le_ms"] = 1000 * dc.bucket_quantile(count, buckets, 0.99)
    return lat, m, dc.describe_failures(steps, failures)


def percentile(values, p):
    """The p-th percentile (nearest rank) of values, nan when empty."""
    v = sorted(values)
    if not v:
        return float("nan")
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def ceiling(lab, binary, state):
    """The raw status-patch rate (Services/s) on the case's Services: testbed/benchtools' status-patch-ceiling,
    in the router namespace like the controller, with the lab's kubeconfig."""
    wl, _, _ = state
    out = run(["ip", "netns", "exec", lab.router_ns, binary, "--namespace", "bench", "--expect", str(wl.n)],
              env=dict(os.environ, KUBECONFIG=lab.kubeconfig))
    return float(json.loads(out.strip().splitlines()[-1])["services_per_s"])


def no_route_via(lab, ip):
    return not any(ip in gws for gws in lab.fib().values())


def failover(lab, impl, state, kind, timeout_s):
    """Node 1's speaker SIGKILLed (`kill`) or node 1's link cut at the router (`link`, or `bfd`: the same cut
    with the BGP session guarded by BFD, configured by the caller); seconds until the router's FIB no longer uses
    node 1, then restore and wait for convergence again."""
    wl, watch, conv = state
    node_ip = lab.node_ip(1)
    t0 = time.monotonic()
    if kind == "kill":
        impl.speakers[1].stop(sig=signal.SIGKILL)
    else:
        run(["ip", "-n", lab.router_ns, "link", "set", "n1", "down"])
    try:
        while not no_route_via(lab, node_ip):
            if time.monotonic() - t0 > timeout_s:
                raise RuntimeError(f"{impl.name}: router still routes via {node_ip} {timeout_s}s after {kind}")
            time.sleep(0.02)
        dt = time.monotonic() - t0
    finally:
        if kind == "kill":
            impl.start_speaker(1)
        else:
            run(["ip", "-n", lab.router_ns, "link", "set", "n1", "up"])
    conv.wait(watch.snapshot, 180, f"{impl.name} recovery after {kind}")
    return dt


def with_bfd(lab, impl, state, on, timeout_s=120):
    """Turn BFD (impls.BFD_PROFILE) on or off on the router peer and wait until the sessions are back, the FIB
    is right and (on) the router's BFD session with node-1 is up."""
    _, watch, conv = state
    impl.setup(bfd=on)
    t0 = time.monotonic()
    while not (conv.fib_matches(watch.snapshot()) and (not on or lab.bfd_up(lab.node_ip(1)))):
        impl.check_alive()
        if time.monotonic() - t0 > timeout_s:
            raise RuntimeError(f"{impl.name}: BFD {'on' if on else 'off'}: not converged after {timeout_s}s")
        time.sleep(0.2)


def restart(lab, impl, state):
    """Restart the controller (SIGTERM, start again): seconds until ready, and Services whose address
    changed (or was lost) compared with before, read 3 s + 2 s per 1,000 Services after ready."""
    wl, _, _ = state
    settle_s = 3.0 + 2.0 * wl.n / 1000
    before = wl.ips()
    impl.controller.stop()
    t0 = time.monotonic()
    impl.start_controller()
    while not impl.controller_ready():
        if time.monotonic() - t0 > 300:
            raise RuntimeError(f"{impl.name}: controller not ready 300s after restart")
        time.sleep(0.05)
    ready = time.monotonic() - t0
    time.sleep(settle_s)
    after = wl.ips()
    changed = sum(1 for k, v in before.items() if after.get(k) != v)
    return ready, changed


def peers3(lab, impl, state, timeout_s=300):
    """Speakers with three real FRR sessions each, on the kept state: the router over IPv4 (198.18.0.1), over
    IPv6 (2001:db8:0:1::1), and a second router address 198.18.0.(1+i) reached from a second node address
    198.18.0.(40+i) (FRR keys a neighbour by its address, so a third session needs a third source address;
    the peer entry selects its node with kubernetes.io/hostname, and has its own router address because a
    configuration may not define one peer twice). Every session carries every route of the
    node (IPv6 over the IPv4 sessions with the node's global IPv6 next hop). Waits until FRR has 3 sessions per
    node each with the node's routes and the FIB is right, then reads every speaker's peak RSS.
    Restores the one-peer configuration afterwards."""
    wl, watch, conv = state
    k = lab.nodes
    v6_peer = (f"- peer-address: {lab.env['ROUTER_LAN6']}\n  peer-asn: {lab.env['ROUTER_ASN']}\n"
               f"  my-asn: {lab.env['ROUTER_ASN']}\n  password: \"foo\"\n")
    extra = [v6_peer] + [
        f"- peer-address: 198.18.0.{1 + i}\n  peer-asn: {lab.env['ROUTER_ASN']}\n  my-asn: {lab.env['ROUTER_ASN']}\n"
        f"  password: \"foo\"\n  source-address: 198.18.0.{40 + i}\n"
        f"  node-selectors:\n  - match-labels:\n      kubernetes.io/hostname: node-{i}\n"
        for i in range(1, k + 1)]
    impl.stop_speakers()
    wait_router_clean(lab)
    for i in range(1, k + 1):
        run(["ip", "-n", lab.router_ns, "addr", "add", f"198.18.0.{1 + i}/24", "dev", "lan"])
        run(["ip", "-n", lab.node_ns(i), "addr", "add", f"198.18.0.{40 + i}/24", "dev", "eth0"])
    try:
        impl.setup(extra_peers=extra)
        t0 = time.monotonic()
        impl.start_speakers()
        per_node = conv.per_node(watch.snapshot())
        fam = "ipv6Unicast" if wl.family == "ipv6" else "ipv4Unicast"
        while True:
            impl.check_alive()
            summ = lab.vtysh_json("show bgp summary json").get(fam, {}).get("peers", {})
            ok = [a for a, pe in summ.items() if pe.get("state") == "Established"
                  and pe.get("pfxRcd") == per_node.get(node_of(a), -1)]
            if len(ok) == 3 * k and conv.fib_matches(watch.snapshot()):
                break
            if time.monotonic() - t0 > timeout_s:
                raise RuntimeError(f"peers3: {len(ok)} of {3 * k} sessions hold their routes after {timeout_s}s")
            time.sleep(0.5)
        dt = time.monotonic() - t0
        time.sleep(3.0)
        m = {"time_to_all_routes_s": dt, "sessions": len(ok)}
        resources(impl, m, suffix="peers3")
        for i, sp in impl.speakers.items():
            m[f"speaker_{i}_peak_rss_mb"] = sp.sample()[1]
        m["routes_per_session_max"] = max(per_node.values())
    finally:
        impl.stop_speakers()
        for i in range(1, k + 1):
            run(["ip", "-n", lab.router_ns, "addr", "del", f"198.18.0.{1 + i}/24", "dev", "lan"], check=False)
            run(["ip", "-n", lab.node_ns(i), "addr", "del", f"198.18.0.{40 + i}/24", "dev", "eth0"], check=False)
        impl.setup()
    wait_router_clean(lab)
    impl.start_speakers()
    conv.wait(watch.snapshot, timeout_for(wl.n), f"{impl.name} back to one peer")
    return m


def node_of(addr):
    """Node index of a node address: 198.18.0.(10+i), 198.18.0.(40+i) or 2001:db8:0:1::(10+i)."""
    last = int(addr.rsplit(".", 1)[-1]) if "." in addr else int(addr.rsplit(":", 1)[-1])
    return last - 40 if last > 40 else last - 10


def load_avg():
    """The 1-minute load average."""
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def machine():
    """Cores, memory and kernel of this machine."""
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    cores = int(run(["nproc"]).strip())
    return {"cores": cores, "memory_gb": round(mem_kb / 1024 / 1024, 1), "cpu": model,
            "kernel": run(["uname", "-r"]).strip(), "frr": "FRR " + subprocess.run(["dpkg-query", "-W", "-f=${Version}", "frr"], capture_output=True,
                                              text=True).stdout.strip()}
