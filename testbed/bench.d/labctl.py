"""The lab as the benchmark sees it: the lab script, a small Kubernetes REST client, processes in namespaces,
the router's FIB and FRR's counters. Standard library only (the lab has python3, nothing else)."""

import base64
import http.client
import ipaddress
import json
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.parse

CLK_TCK = os.sysconf("SC_CLK_TCK")
# Every LoadBalancer Service with externalTrafficPolicy Local holds a health-check node port, even with
# allocateLoadBalancerNodePorts: false; the default range (2,768 ports) cannot hold 10,000 of them, and the
# scaling curve runs 30,000.
NODE_PORT_RANGE = "20000-65535"


def canon(addr):
    """An IP address in canonical text form (IPv6 compressed as RFC 5952)."""
    return str(ipaddress.ip_address(addr))


def run(args, check=True, **kw):
    """Run a command, return its stdout (text)."""
    p = subprocess.run(args, check=False, capture_output=True, text=True, **kw)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {p.returncode}: {p.stderr.strip()[-2000:]}")
    return p.stdout


class Kube:
    """A minimal REST client for the lab API server (admin client certificate, one kept-alive connection)."""

    def __init__(self, kubeconfig):
        with open(kubeconfig) as f:
            text = f.read()
        # The lab's kubeconfig is flat YAML written by testbed/lab; read the four fields we need.
        fields = {}
        for line in text.splitlines():
            line = line.strip()
            for key in ("server", "certificate-authority-data", "client-certificate-data", "client-key-data"):
                if line.startswith(key + ":"):
                    fields[key] = line.split(":", 1)[1].strip()
        url = urllib.parse.urlparse(fields["server"])
        self.host, self.port = url.hostname, url.port or 443
        self._dir = tempfile.mkdtemp(prefix="ferrolb-bench-")
        paths = {}
        for key, name in (
            ("certificate-authority-data", "ca.crt"),
            ("client-certificate-data", "client.crt"),
            ("client-key-data", "client.key"),
        ):
            paths[name] = os.path.join(self._dir, name)
            with open(paths[name], "wb") as f:
                f.write(base64.b64decode(fields[key]))
            os.chmod(paths[name], 0o600)
        self.ctx = ssl.create_default_context(cafile=paths["ca.crt"])
        self.ctx.load_cert_chain(paths["client.crt"], paths["client.key"])
        shutil.rmtree(self._dir, ignore_errors=True)  # the context holds them now
        self.conn = None

    def request(self, method, path, body=None, content_type="application/json", ok=(200, 201, 202)):
        """Send one request; return the decoded JSON answer. Raises on a status outside `ok`."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = content_type
        for attempt in range(3):
            if self.conn is None:
                self.conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=60)
            try:
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                raw = resp.read()
                break
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
                time.sleep(0.5)
        if resp.status not in ok:
            raise RuntimeError(f"{method} {path}: HTTP {resp.status}: {raw[:500]!r}")
        return json.loads(raw) if raw else {}

    def exists(self, path):
        """Whether GET path answers 200."""
        try:
            self.request("GET", path)
            return True
        except RuntimeError as e:
            if "HTTP 404" in str(e):
                return False
            raise


class Proc:
    """A process started inside a network namespace (`ip netns exec` execs, so the pid is the program's)."""

    def __init__(self, name, ns, argv, env, log_path):
        self.name = name
        self.log = open(log_path, "ab")
        full_env = dict(os.environ)
        full_env.update(env)
        self.p = subprocess.Popen(
            ["ip", "netns", "exec", ns] + argv,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=full_env,
            start_new_session=True,
        )
        self.pid = self.p.pid
        self.last_cpu = 0.0
        self.last_hwm_mb = 0.0

    def alive(self):
        """Whether the process still runs."""
        return self.p.poll() is None

    def sample(self):
        """Read CPU seconds (user + system) and peak RSS (VmHWM, MB) while the process lives."""
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            self.last_cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        self.last_hwm_mb = int(line.split()[1]) / 1024.0
        except (OSError, IndexError, ValueError):
            pass
        return self.last_cpu, self.last_hwm_mb

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Signal the process (our own pid only) and wait for it; SIGKILL after `timeout` seconds."""
        if self.alive():
            self.sample()
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.p.wait()
        self.log.close()


class Lab:
    """One `testbed/lab` lab, started and torn down by the benchmark."""

    def __init__(self, testbed, name, nodes):
        self.testbed, self.name, self.nodes = testbed, name, nodes
        self.env = {}
        self.up_done = False
        self.workaround = None

    def lab(self, *args, check=True):
        """Run `testbed/lab --lab NAME ARGS`."""
        return run([os.path.join(self.testbed, "lab"), "--lab", self.name] + list(args), check=check)

    def lab_env(self, *args, env=None):
        """Run `testbed/lab --lab NAME ARGS` with extra environment."""
        return run([os.path.join(self.testbed, "lab"), "--lab", self.name] + list(args),
                   env=dict(os.environ, **(env or {})))

    def up(self):
        """Start the lab (removing a leftover one of the same name first) and read its env file.

        Workaround, used only when the lab's kwok exits with "no stages found" (kwok v0.8 standalone has no
        built-in stages and this lab script passes none): the lab is started again with HOME pointing at a
        directory whose .kwok/kwok.yaml holds kwok's own node stages (initialize + heartbeat with lease),
        copied from the kwok module in the Go module cache."""
        self.lab("down", check=False)
        up = ["up", "--nodes", str(self.nodes), "--ipv6"]
        try:
            self.lab_env(*up, env={"FERROLB_LAB_NODE_PORT_RANGE": NODE_PORT_RANGE})
        except RuntimeError as e:
            if "no stages found" not in str(e):
                raise
            self.workaround = "kwok had no stages; lab started with kwok's node stages in $HOME/.kwok/kwok.yaml"
            self.lab("down", check=False)
            home = self.kwok_home()
            cp_bin = run([os.path.join(self.testbed, "controlplane", "build")]).strip().splitlines()[-1]
            self.lab_env(*up, env={"HOME": home, "FERROLB_CP_BIN": cp_bin,
                                   "FERROLB_LAB_NODE_PORT_RANGE": NODE_PORT_RANGE})
        self.up_done = True
        d = os.environ.get("FERROLB_LAB_ROOT", "/run/ferrolb-lab")
        with open(os.path.join(d, self.name, "env")) as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#") and "=" in line:
                    k, v = line.split("=", 1)
                    self.env[k] = v.strip('"')
        self.dir = self.env["LAB_DIR"]
        self.kubeconfig = self.env["KUBECONFIG"]
        self.router_ns = self.env["ROUTER_NS"]
        self.kube = Kube(self.kubeconfig)

    def kwok_home(self):
        """A HOME whose .kwok/kwok.yaml has kwok v0.8.0's node stages (see `up`)."""
        mod = run(["go", "env", "GOMODCACHE"]).strip() + "/sigs.k8s.io/kwok@v0.8.0/kustomize/stage/node"
        home = os.path.join(tempfile.gettempdir(), f"ferrolb-bench-kwok-{self.name}")
        os.makedirs(os.path.join(home, ".kwok"), exist_ok=True)
        docs = []
        for f in ("fast/node-initialize.yaml", "heartbeat-with-lease/node-heartbeat-with-lease.yaml"):
            with open(os.path.join(mod, f)) as fh:
                docs.append(fh.read().strip())
        with open(os.path.join(home, ".kwok", "kwok.yaml"), "w") as fh:
            fh.write("\n---\n".join(docs) + "\n")
        return home

    def down(self):
        """Tear the lab down (every process in its namespaces, the namespaces, its files)."""
        if self.up_done:
            self.lab("down", check=False)
            self.up_done = False

    def node_ns(self, i):
        """Namespace of node-i."""
        return f"{self.name}-node-{i}"

    @staticmethod
    def node_ip(i):
        """LAN address of node-i."""
        return f"198.18.0.{10 + i}"

    @staticmethod
    def node_ip6(i):
        """IPv6 LAN address of node-i (testbed/lab writes the decimal 10 + i as the last group)."""
        return f"2001:db8:0:1::{10 + i}"

    def fib(self):
        """The router's BGP routes in its kernel FIB, both families: {address: frozenset(gateways)}, the
        address without its /32 or /128 and in canonical form (as `ipaddress` prints it)."""
        routes = {}
        for fam in ("-4", "-6"):
            _routes_into(routes, run(["ip", "-n", self.router_ns, fam, "-j", "route", "show", "proto", "bgp"]))
        return routes

    def fib_of(self, addrs):
        """As `fib`, for these addresses only (one `ip route show exact` each): what a poller waiting for a few
        routes reads, since a whole dump of 10,000 routes took it about 700 ms per cycle."""
        routes = {}
        for a in addrs:
            fam, plen = ("-6", 128) if ":" in a else ("-4", 32)
            _routes_into(routes, run(["ip", "-n", self.router_ns, fam, "-j", "route", "show", "exact", f"{a}/{plen}",
                                      "proto", "bgp"]))
        return routes

    def vtysh_json(self, cmd):
        """A `vtysh -c CMD` answer as JSON."""
        return json.loads(run(["vtysh", "-N", self.name, "-c", cmd]) or "{}")

    def bfd_missing(self):
        """Why the lab router cannot run BFD with the speakers, or None when it can (bfdd answers and the
        router's FRR configuration enables BFD toward the node LAN's peer groups)."""
        with open(os.path.join(self.testbed, "frr", "frr.conf")) as f:
            conf = f.read()
        if "bfd" not in conf:
            return "the lab's FRR configuration (testbed/frr/frr.conf) enables no BFD toward the nodes"
        p = subprocess.run(["vtysh", "-N", self.name, "-c", "show bfd peers json"], capture_output=True, text=True)
        if p.returncode != 0:
            return f"the lab router's bfdd does not answer: {p.stdout.strip()[-200:]} {p.stderr.strip()[-200:]}"
        return None

    def bfd_up(self, peer):
        """Whether the router's BFD session with `peer` is up."""
        try:
            peers = self.vtysh_json("show bfd peers json")
        except (RuntimeError, ValueError):
            return False
        return any(p.get("peer") == peer and p.get("status") == "up" for p in peers)

    def frr_neighbors(self):
        """FRR's `show bgp neighbors json`: {address: neighbor}."""
        return self.vtysh_json("show bgp neighbors json")

    def curl(self, ns, url):
        """GET url from inside namespace ns; (http status or 0, body)."""
        p = subprocess.run(
            ["ip", "netns", "exec", ns, "curl", "-s", "-m", "2", "-w", "\n%{http_code}", url],
            capture_output=True,
            text=True,
        )
        body, _, code = p.stdout.rpartition("\n")
        try:
            return int(code), body
        except ValueError:
            return 0, ""


class Capture:
    """dumpcap on the router's node LAN bridge: the BGP messages the speakers send (tcp dst port 179), or what
    the capture filter `bpf` selects."""

    def __init__(self, lab, path, bpf="tcp dst port 179"):
        self.path = path
        self.p = subprocess.Popen(
            ["ip", "netns", "exec", lab.router_ns, "dumpcap", "-q", "-i", "lan", "-f", bpf, "-w", path],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while not (os.path.exists(path) and os.path.getsize(path) > 0):
            if self.p.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dumpcap did not start: {self.p.stderr.read().decode()[-500:]}")
            time.sleep(0.05)
        time.sleep(0.3)

    def halt(self):
        """Stop dumpcap (our pid); the capture file stays."""
        if self.p.poll() is None:
            os.kill(self.p.pid, signal.SIGTERM)
            self.p.wait(timeout=15)

    def fields(self, display_filter, fields):
        """The capture's frames that match `display_filter`, as lists of the tshark `fields` (tab-separated;
        a field that occurs several times in a frame is comma-separated)."""
        args = ["tshark", "-r", self.path, "-Y", display_filter, "-T", "fields", "-E", "occurrence=a"]
        for f in fields:
            args += ["-e", f]
        return [line.split("\t") for line in run(args).splitlines() if line]

    def stop(self):
        """Stop dumpcap (our pid) and return the UPDATEs in the capture, per session:
        {(source address, destination address): {"updates", "eor", "bytes"}}. An UPDATE with no route
        (23 bytes: IPv4 End-of-RIB; 29 or 30 bytes: an MP_UNREACH_NLRI with only AFI/SAFI, the End-of-RIB of
        another family) counts as `eor`; it is also in `updates`."""
        self.halt()
        out = run(["tshark", "-r", self.path, "-Y", "bgp", "-T", "fields", "-e", "ip.src", "-e", "ipv6.src",
                   "-e", "ip.dst", "-e", "ipv6.dst", "-e", "bgp.type", "-e", "bgp.length"])
        sessions = {}
        for line in out.splitlines():
            parts = line.split("\t")
            if len(parts) != 6:
                continue
            key = (parts[0] or parts[1], parts[2] or parts[3])
            st = sessions.setdefault(key, {"updates": 0, "eor": 0, "bytes": 0})
            for t, n in zip(parts[4].split(","), parts[5].split(",")):
                if t == "2":
                    st["updates"] += 1
                    st["bytes"] += int(n)
                    if int(n) in (23, 29, 30):
                        st["eor"] += 1
        return sessions


def _routes_into(routes, out):
    """Adds `ip -j route show` output to {address: frozenset(gateways)}."""
    for r in json.loads(out or "[]"):
        gws = set()
        if "gateway" in r:
            gws.add(canon(r["gateway"]))
        for nh in r.get("nexthops", []) or []:
            if "gateway" in nh:
                gws.add(canon(nh["gateway"]))
        routes[canon(r["dst"].split("/")[0])] = frozenset(gws)
