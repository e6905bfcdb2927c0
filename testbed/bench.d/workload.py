"""The benchmark's Services and endpoints, and a watch that timestamps address assignment."""

import http.client
import json
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

from labctl import Kube

NAMESPACE = "bench"
# The IPv4 pools' size: 203.0.113.0/24 and 198.51.100.0/24, every address usable (avoid-buggy-ips off).
V4_ADDRESSES = 512
# Families of a run (a row's "family" column):
#   ipv4         one IPv4 address per Service (N <= 510)
#   ipv4-shared  N Services on at most 510 IPv4 addresses, shared with metallb.universe.tf/allow-shared-ip:
#                Service i has key g(i mod G), port 1000 + i div G; G is 510 rounded down to a multiple of the
#                node count, so the Services on one address have the same endpoint nodes
#   ipv6         one IPv6 /128 per Service from 2001:db8:100::/112 (spec.ipFamilies [IPv6])
FAMILIES = ("ipv4", "ipv4-shared", "ipv6")


def svc_name(i):
    """Name of Service i."""
    return f"s-{i:05d}"


def share_groups(nodes):
    """G: how many shared IPv4 addresses an ipv4-shared run uses (<= 510, a multiple of the node count)."""
    return (510 // nodes) * nodes


class Workload:
    """N selector-less LoadBalancer Services (externalTrafficPolicy Local, allocateLoadBalancerNodePorts false),
    each with two ready endpoints on two of the K kwok nodes.

    Service i has endpoints on nodes (i mod K)+1 and ((i+1) mod K)+1, written as EndpointSlices
    (discovery.k8s.io/v1) or as Endpoints (core/v1, which the API server's mirroring controller also turns into
    EndpointSlices) depending on what the implementation under test reads."""

    def __init__(self, lab, kind, n, family="ipv4", threads=None):
        if family not in FAMILIES:
            raise ValueError(f"unknown family {family}")
        if family == "ipv4" and n > V4_ADDRESSES - 2:
            raise ValueError(f"family ipv4 holds at most {V4_ADDRESSES - 2} Services; use ipv4-shared or ipv6")
        self.lab, self.kind, self.n, self.family = lab, kind, n, family
        self.threads = threads or (4 if n <= 1000 else 8)
        self.k = lab.nodes
        self.groups = share_groups(self.k) if family == "ipv4-shared" else n
        self.nodes = {i: [(i % self.k) + 1, ((i + 1) % self.k) + 1] for i in range(n)}
        self.etp = "Local"

    def routes(self):
        """How many distinct prefixes the run announces."""
        return min(self.n, self.groups)

    def service_body(self, i):
        name = svc_name(i)
        meta = {"name": name, "namespace": NAMESPACE}
        spec = {"type": "LoadBalancer", "externalTrafficPolicy": self.etp, "allocateLoadBalancerNodePorts": False,
                "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
        if self.family == "ipv4-shared":
            meta["annotations"] = {"metallb.universe.tf/allow-shared-ip": f"g{i % self.groups}"}
            spec["ports"] = [{"name": "http", "port": 1000 + i // self.groups, "protocol": "TCP"}]
        elif self.family == "ipv6":
            spec["ipFamilies"], spec["ipFamilyPolicy"] = ["IPv6"], "SingleStack"
        return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}

    def endpoint_addr(self, node, i):
        if self.family == "ipv6":
            return f"2001:db8:1:{node}::{(i % 65000) + 2:x}"
        return f"198.19.{node}.{(i % 250) + 2}"

    def endpoint_body(self, i):
        nodes = self.nodes[i]
        name = svc_name(i)
        port = self.service_body(i)["spec"]["ports"][0]["port"]
        if self.kind == "slices":
            return {
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": f"{name}-bench", "namespace": NAMESPACE,
                             "labels": {"kubernetes.io/service-name": name}},
                "addressType": "IPv6" if self.family == "ipv6" else "IPv4",
                "endpoints": [{"addresses": [self.endpoint_addr(node, i)], "nodeName": f"node-{node}",
                               "conditions": {"ready": True, "serving": True, "terminating": False}}
                              for node in nodes],
                "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
            }
        return {
            "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "namespace": NAMESPACE},
            "subsets": [{"addresses": [{"ip": self.endpoint_addr(node, i), "nodeName": f"node-{node}"}
                                       for node in nodes],
                         "ports": [{"name": "http", "port": port, "protocol": "TCP"}]}],
        }

    def endpoint_path(self, i=None):
        if self.kind == "slices":
            base = f"/apis/discovery.k8s.io/v1/namespaces/{NAMESPACE}/endpointslices"
            return base if i is None else f"{base}/{svc_name(i)}-bench"
        base = f"/api/v1/namespaces/{NAMESPACE}/endpoints"
        return base if i is None else f"{base}/{svc_name(i)}"

    def create(self):
        """Create the namespace, the Services and their endpoints (4 connections in parallel, 8 above 1,000)."""
        kube = self.lab.kube
        kube.request("POST", "/api/v1/namespaces",
                     {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        clients = [Kube(self.lab.kubeconfig) for _ in range(self.threads)]

        def make(t):
            c = clients[t]
            for i in range(t, self.n, self.threads):
                c.request("POST", f"/api/v1/namespaces/{NAMESPACE}/services", self.service_body(i))
                c.request("POST", self.endpoint_path(), self.endpoint_body(i))

        with ThreadPoolExecutor(self.threads) as ex:
            list(ex.map(make, range(self.threads)))

    def move(self, i, kube):
        """Move Service i's first endpoint to the node that has none; return the new node list."""
        old = self.nodes[i]
        free = [x for x in range(1, self.k + 1) if x not in old]
        self.nodes[i] = [free[0], old[1]]
        body = self.endpoint_body(i)
        patch = {"endpoints": body["endpoints"]} if self.kind == "slices" else {"subsets": body["subsets"]}
        kube.request("PATCH", self.endpoint_path(i), patch, content_type="application/merge-patch+json")
        return self.nodes[i]

    def ips(self):
        """{service name: first ingress IP or None}, from one list (pages of 2,000)."""
        items, cont = [], ""
        while True:
            page = self.lab.kube.request("GET", f"/api/v1/namespaces/{NAMESPACE}/services?limit=2000"
                                         + (f"&continue={urllib.parse.quote(cont)}" if cont else ""))
            items += page["items"]
            cont = page.get("metadata", {}).get("continue")
            if not cont:
                break
        out = {}
        for s in items:
            ing = (s.get("status", {}).get("loadBalancer", {}) or {}).get("ingress") or []
            out[s["metadata"]["name"]] = ing[0].get("ip") if ing else None
        return out

    def delete(self, timeout=600):
        """Delete the namespace and wait until it is gone."""
        kube = self.lab.kube
        kube.request("DELETE", f"/api/v1/namespaces/{NAMESPACE}", ok=(200, 202, 404))
        deadline = time.monotonic() + timeout
        while kube.exists(f"/api/v1/namespaces/{NAMESPACE}"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"namespace {NAMESPACE} not deleted after {timeout}s")
            time.sleep(0.5)


class ServiceWatch(threading.Thread):
    """Watches the benchmark namespace's Services; records when every one of `n` first has an address."""

    def __init__(self, lab, n, t0):
        super().__init__(daemon=True)
        self.lab, self.n, self.t0 = lab, n, t0
        self.ips = {}
        # When each Service was first seen with an address (the controller's assignment rate).
        self.first_ip_at = {}
        self.all_assigned_at = None
        self.error = None
        self.stop_flag = False
        # How often the watch ended and was resumed (or listed again).
        self.rewatches = 0
        self.lock = threading.Lock()

    def _update(self, svc):
        ing = (svc.get("status", {}).get("loadBalancer", {}) or {}).get("ingress") or []
        with self.lock:
            name = svc["metadata"]["name"]
            self.ips[name] = ing[0].get("ip") if ing else None
            if self.ips[name] and name not in self.first_ip_at:
                self.first_ip_at[name] = time.monotonic()
            if self.all_assigned_at is None and len(self.ips) >= self.n and all(self.ips.values()):
                self.all_assigned_at = time.monotonic()

    def assign_rate(self):
        """Services per second between the first and the last first assignment (None below two)."""
        with self.lock:
            ts = sorted(self.first_ip_at.values())
        return (len(ts) - 1) / (ts[-1] - ts[0]) if len(ts) >= 2 and ts[-1] > ts[0] else None

    def snapshot(self):
        with self.lock:
            return dict(self.ips)

    def run(self):
        """List, then watch from the list's version. A watch the API server ends (its timeout, or a dropped
        connection under load) is resumed from the last version seen; an expired version (410) lists again."""
        try:
            kube = Kube(self.lab.kubeconfig)
            rv = None
            started = False
            while not self.stop_flag:
                if started:
                    self.rewatches += 1
                started = True
                if rv is None:
                    lst = kube.request("GET", "/api/v1/namespaces/bench/services")
                    for s in lst["items"]:
                        self._update(s)
                    rv = lst["metadata"]["resourceVersion"]
                rv = self._watch(kube, rv)
        except Exception as e:  # reported by the scenario
            self.error = repr(e)

    def _watch(self, kube, rv):
        """Follows one watch from `rv`; returns the version to resume from, or None to list again."""
        conn = http.client.HTTPSConnection(kube.host, kube.port, context=kube.ctx, timeout=3600)
        try:
            conn.request("GET", f"/api/v1/namespaces/bench/services?watch=1&resourceVersion={rv}"
                                "&allowWatchBookmarks=true&timeoutSeconds=3600")
            resp = conn.getresponse()
            if resp.status == 410:
                return None
            if resp.status != 200:
                raise RuntimeError(f"watch of bench Services: HTTP {resp.status}")
            while not self.stop_flag:
                try:
                    line = resp.readline()
                except (OSError, http.client.HTTPException):
                    return rv
                if not line:
                    return rv
                ev = json.loads(line)
                kind = ev.get("type")
                if kind == "ERROR":
                    # 410 Gone: the version is too old to resume from.
                    return None if ev.get("object", {}).get("code") == 410 else rv
                obj = ev.get("object", {})
                rv = obj.get("metadata", {}).get("resourceVersion", rv)
                if kind in ("ADDED", "MODIFIED"):
                    self._update(obj)
            return rv
        finally:
            conn.close()
