"""The benchmark's Services and endpoints, and a watch that timestamps address assignment."""

import http.client
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from labctl import Kube

NAMESPACE = "bench"
# ETP Local makes the API server allocate a health-check node port per Service from the node-port range
# (30000-32767 by default: 2,768 ports), so larger runs use ETP Cluster and say so.
MAX_LOCAL = 2700


def svc_name(i):
    """Name of Service i."""
    return f"s-{i:05d}"


class Workload:
    """N selector-less LoadBalancer Services, each with two ready endpoints on two of the K kwok nodes.

    Service i has endpoints on nodes (i mod K)+1 and ((i+1) mod K)+1, written as EndpointSlices
    (discovery.k8s.io/v1) or as Endpoints (core/v1, which the API server's mirroring controller also turns into
    EndpointSlices) depending on what the implementation under test reads."""

    def __init__(self, lab, kind, n, threads=4):
        self.lab, self.kind, self.n, self.threads = lab, kind, n, threads
        self.k = lab.nodes
        self.nodes = {i: [(i % self.k) + 1, ((i + 1) % self.k) + 1] for i in range(n)}
        self.etp = "Local" if n <= MAX_LOCAL else "Cluster"

    def endpoint_body(self, i):
        nodes = self.nodes[i]
        name = svc_name(i)
        if self.kind == "slices":
            return {
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": f"{name}-bench", "namespace": NAMESPACE,
                             "labels": {"kubernetes.io/service-name": name}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": [f"198.19.{node}.{(i % 250) + 2}"], "nodeName": f"node-{node}",
                               "conditions": {"ready": True, "serving": True, "terminating": False}}
                              for node in nodes],
                "ports": [{"name": "", "port": 80, "protocol": "TCP"}],
            }
        return {
            "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "namespace": NAMESPACE},
            "subsets": [{"addresses": [{"ip": f"198.19.{node}.{(i % 250) + 2}", "nodeName": f"node-{node}"}
                                       for node in nodes],
                         "ports": [{"port": 80, "protocol": "TCP"}]}],
        }

    def endpoint_path(self, i=None):
        if self.kind == "slices":
            base = f"/apis/discovery.k8s.io/v1/namespaces/{NAMESPACE}/endpointslices"
            return base if i is None else f"{base}/{svc_name(i)}-bench"
        base = f"/api/v1/namespaces/{NAMESPACE}/endpoints"
        return base if i is None else f"{base}/{svc_name(i)}"

    def create(self):
        """Create the namespace, the Services and their endpoints (4 connections in parallel)."""
        kube = self.lab.kube
        kube.request("POST", "/api/v1/namespaces",
                     {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        clients = [Kube(self.lab.kubeconfig) for _ in range(self.threads)]

        def make(t):
            c = clients[t]
            for i in range(t, self.n, self.threads):
                c.request("POST", f"/api/v1/namespaces/{NAMESPACE}/services", {
                    "apiVersion": "v1", "kind": "Service", "metadata": {"name": svc_name(i), "namespace": NAMESPACE},
                    "spec": {"type": "LoadBalancer", "externalTrafficPolicy": self.etp,
                             "allocateLoadBalancerNodePorts": False,
                             "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})
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
        """{service name: first ingress IP or None}, from one list."""
        items = self.lab.kube.request("GET", f"/api/v1/namespaces/{NAMESPACE}/services")["items"]
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
        self.all_assigned_at = None
        self.error = None
        self.stop_flag = False
        self.lock = threading.Lock()

    def _update(self, svc):
        ing = (svc.get("status", {}).get("loadBalancer", {}) or {}).get("ingress") or []
        with self.lock:
            self.ips[svc["metadata"]["name"]] = ing[0].get("ip") if ing else None
            if self.all_assigned_at is None and len(self.ips) >= self.n and all(self.ips.values()):
                self.all_assigned_at = time.monotonic()

    def snapshot(self):
        with self.lock:
            return dict(self.ips)

    def run(self):
        try:
            kube = Kube(self.lab.kubeconfig)
            lst = kube.request("GET", f"/api/v1/namespaces/bench/services")
            for s in lst["items"]:
                self._update(s)
            rv = lst["metadata"]["resourceVersion"]
            conn = http.client.HTTPSConnection(kube.host, kube.port, context=kube.ctx, timeout=3600)
            conn.request("GET", f"/api/v1/namespaces/bench/services?watch=1&resourceVersion={rv}"
                                "&allowWatchBookmarks=false&timeoutSeconds=3600")
            resp = conn.getresponse()
            while not self.stop_flag:
                line = resp.readline()
                if not line:
                    break
                ev = json.loads(line)
                if ev.get("type") in ("ADDED", "MODIFIED"):
                    self._update(ev["object"])
        except Exception as e:  # reported by the scenario
            self.error = repr(e)
