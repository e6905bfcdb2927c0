"""The scenarios: scale, churn, failover, restart. Each returns {metric: value} for one repetition."""

import math
import signal
import subprocess
import threading
import time

from labctl import Capture, Kube, run
from workload import ServiceWatch, Workload, svc_name

# Most /32s one UPDATE can carry with iBGP attributes ORIGIN (4) + empty AS_PATH (3) + NEXT_HOP (7) +
# LOCAL_PREF (7) = 21 bytes: (4096 - 19 header - 2 - 2 length fields - 21) / 5 bytes per /32.
PREFIXES_PER_UPDATE = (4096 - 19 - 2 - 2 - 21) // 5


class Converge:
    """What "converged" means: every Service has an address and the router's FIB holds exactly one /32 per
    Service with the right set of next hops (the nodes the implementation should announce from)."""

    def __init__(self, lab, impl, wl):
        self.lab, self.impl, self.wl = lab, impl, wl

    def expected(self, ips):
        """{prefix: frozenset(node IPs)} the FIB should hold for the address map `ips`."""
        out = {}
        for i in range(self.wl.n):
            ip = ips.get(svc_name(i))
            if not ip:
                return None
            nodes = self.wl.nodes[i]
            if self.wl.etp == "Cluster" and self.impl.name.startswith("metallb"):
                nodes = range(1, self.lab.nodes + 1)  # MetalLB announces ETP Cluster from every node
            out[ip] = frozenset(self.lab.node_ip(x) for x in nodes)
        return out

    def fib_matches(self, ips, fib=None):
        exp = self.expected(ips)
        if exp is None:
            return False
        fib = self.lab.fib() if fib is None else fib
        return {k.removesuffix("/32"): v for k, v in fib.items()} == exp

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
            time.sleep(0.1)


def bgp_counters(lab):
    """Sum of FRR's updatesRecv over the node sessions, and the number of those sessions."""
    total = sessions = 0
    for addr, nb in lab.frr_neighbors().items():
        if addr.startswith("198.18.0."):
            total += int(nb.get("messageStats", {}).get("updatesRecv", 0))
            sessions += 1
    return total, sessions


def wait_router_clean(lab, timeout=120):
    """Wait until the router has no BGP route and no node session (between repetitions)."""
    deadline = time.monotonic() + timeout
    while lab.fib() or any(a.startswith("198.18.0.") for a in lab.frr_neighbors()):
        if time.monotonic() > deadline:
            raise RuntimeError("router still has BGP routes or node sessions after the implementation stopped")
        time.sleep(0.2)


def scale(lab, impl, n, out_dir, tag, notes, keep=False):
    """Create N Services with the implementation stopped, then start it and time convergence.

    Returns (metrics, state); state (workload, watch, converge) is kept running when `keep`."""
    wl = Workload(lab, impl.endpoints_kind, n)
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
    timeout = 120 + n * 0.1
    m = {"services_create_s": create_s, "converged": 1}
    try:
        t_routes = conv.wait(watch.snapshot, timeout, f"{impl.name} N={n}")
    except TimeoutError as e:
        # Not converged in time: the figures are lower bounds (value = timeout), and the run says so.
        notes.append(str(e))
        m["converged"] = 0
        t_routes = time.monotonic()
        keep = False
    if m["converged"] and watch.all_assigned_at is None:
        raise RuntimeError(f"{impl.name}: FIB converged but the Service watch saw no full assignment "
                           f"({watch.error})")
    time.sleep(2.0)  # stragglers (End-of-RIB) before counting
    m["time_to_all_ips_s"] = (watch.all_assigned_at or time.monotonic()) - t0
    m["time_to_all_routes_s"] = t_routes - t0
    ctl_cpu, ctl_rss = impl.controller.sample()
    spk = [s.sample() for s in impl.speakers.values()]
    m["controller_cpu_s"], m["controller_peak_rss_mb"] = ctl_cpu, ctl_rss
    m["speaker_cpu_s_mean"] = sum(c for c, _ in spk) / len(spk)
    m["speaker_peak_rss_mb_max"] = max(r for _, r in spk)
    frr_updates, sessions = bgp_counters(lab)
    m["updates_frr"] = frr_updates
    per_node = {}
    for nodes in wl.nodes.values():
        for x in (nodes if not (wl.etp == "Cluster" and impl.name.startswith("metallb"))
                  else range(1, lab.nodes + 1)):
            per_node[x] = per_node.get(x, 0) + 1
    m["updates_optimum"] = sum(math.ceil(p / PREFIXES_PER_UPDATE) for p in per_node.values())
    m["updates_over_optimum"] = frr_updates - m["updates_optimum"]
    if impl.speaker_counts_updates:
        vals = [impl.speaker_updates(i) for i in impl.speakers]
        if all(v is not None for v in vals):
            m["updates_speaker_metric"] = sum(vals)
    cap_updates, cap_bytes = cap.stop()
    m["updates_pcap"], m["update_bytes_pcap"] = cap_updates, cap_bytes
    if not keep:
        watch.stop_flag = True
        impl.stop_all()
        wl.delete()
        wait_router_clean(lab)
        return m, None
    return m, (wl, watch, conv)


def teardown(lab, impl, state):
    """Stop the implementation and remove a kept workload."""
    wl, watch, _ = state
    watch.stop_flag = True
    impl.stop_all()
    wl.delete()
    wait_router_clean(lab)


def churn(lab, impl, state, rate, duration_s, timeout_s=10.0):
    """Move one endpoint every 1/rate seconds; latency from the API write to the router's FIB holding the
    new next-hop set. Returns the latency list (seconds; a timed-out move counts as `timeout_s`)."""
    wl, watch, _ = state
    ips = watch.snapshot()
    kube = Kube(lab.kubeconfig)
    pending, done, lock = [], [], threading.Lock()
    stop = threading.Event()

    def poll():
        while not stop.is_set() or pending:
            fib = {k.removesuffix("/32"): v for k, v in lab.fib().items()}
            now = time.monotonic()
            with lock:
                for mv in list(pending):
                    vip, want, t_write = mv
                    if fib.get(vip) == want:
                        done.append(now - t_write)
                        pending.remove(mv)
                    elif now - t_write > timeout_s:
                        done.append(timeout_s)
                        pending.remove(mv)
            time.sleep(0.002)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    moves = int(rate * duration_s)
    busy = set()
    t_start = time.monotonic()
    step = max(1, wl.n // 7)
    for m in range(moves):
        due = t_start + m / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        i = (m * step + m // 7) % wl.n
        vip = ips[svc_name(i)]
        with lock:
            if any(p[0] == vip for p in pending):
                continue
        t_write = time.monotonic()
        nodes = wl.move(i, kube)
        want = frozenset(lab.node_ip(x) for x in nodes)
        with lock:
            pending.append((vip, want, t_write))
        busy.add(i)
    stop.set()
    poller.join(timeout=timeout_s + 30)
    return done


def no_route_via(lab, ip):
    return not any(ip in gws for gws in lab.fib().values())


def failover(lab, impl, state, kind, timeout_s):
    """Node 1's speaker SIGKILLed (`kill`) or node 1's link cut at the router (`link`); seconds until the
    router's FIB no longer uses node 1, then restore and wait for convergence again."""
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


def restart(lab, impl, state, settle_s=3.0):
    """Restart the controller (SIGTERM, start again): seconds until ready, and Services whose address
    changed (or was lost) compared with before."""
    wl, _, _ = state
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
            "kernel": run(["uname", "-r"]).strip(), "frr": subprocess.run(
                ["vtysh", "--version"], capture_output=True, text=True).stdout.split("\n")[0]}
