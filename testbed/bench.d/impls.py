"""The load balancers under test: how each is configured and started out of cluster in the lab."""

import glob
import json
import os
import re
import subprocess
import time

from labctl import Proc, run

HOLD_TIME_S = 9
# Pools: IPv4 only from the two documentation ranges (512 addresses), IPv6 /128s from 2001:db8:100::/112.
POOL_V4 = ["203.0.113.0/24", "198.51.100.0/24"]
POOL_V6 = "2001:db8:100::/112"
# The BFD profile of the "link cut, BFD" failover (ferrolb only): 100 ms x 3.
BFD_PROFILE = {"name": "bench", "receive-interval": 100, "transmit-interval": 100, "detect-multiplier": 3}


def legacy_config(router_ip, asn, v6=False, extra_peers=(), bfd=False):
    """The MetalLB v0.12 ConfigMap body both ferrolb and MetalLB v0.12.1 read: one iBGP peer (the router), the
    IPv4 pool, and with `v6` the IPv6 pool. `extra_peers` are more peer entries, already as YAML lines;
    `bfd` guards the router peer with BFD_PROFILE."""
    addrs = "\n".join(f"  - {r}" for r in POOL_V4)
    text = (f"peers:\n- peer-address: {router_ip}\n  peer-asn: {asn}\n  my-asn: {asn}\n  password: \"foo\"\n"
            f"  hold-time: {HOLD_TIME_S}s\n")
    if bfd:
        text += f"  bfd-profile: {BFD_PROFILE['name']}\n"
    for p in extra_peers:
        text += p
    text += f"address-pools:\n- name: bench\n  protocol: bgp\n  addresses:\n{addrs}\n"
    if v6:
        text += f"- name: bench6\n  protocol: bgp\n  addresses:\n  - {POOL_V6}\n"
    if bfd:
        text += "bfd-profiles:\n- " + "\n  ".join(f"{k}: {v}" for k, v in BFD_PROFILE.items()) + "\n"
    return text


class Impl:
    """One load balancer: name, where its config lives, which endpoint objects it reads."""

    name = "?"
    families = ("ipv4", "ipv4-shared")
    build = "?"
    endpoints_kind = "slices"  # "slices" (discovery.k8s.io/v1) or "endpoints" (core/v1)
    speaker_counts_updates = False

    def __init__(self, lab, out_dir):
        self.lab, self.out_dir = lab, out_dir
        self.controller = None
        self.speakers = {}

    def log(self, what):
        return os.path.join(self.out_dir, f"{self.name}-{what}.log")

    def create_namespace(self, ns):
        kube = self.lab.kube
        if not kube.exists(f"/api/v1/namespaces/{ns}"):
            kube.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                        "metadata": {"name": ns}})

    def apply_configmap(self, ns, **kw):
        self.create_namespace(ns)
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "config", "namespace": ns},
                "data": {"config": legacy_config(self.lab.env["ROUTER_LAN4"], self.lab.env["ROUTER_ASN"], **kw)}}
        path = f"/api/v1/namespaces/{ns}/configmaps"
        if self.lab.kube.exists(f"{path}/config"):
            self.lab.kube.request("PUT", f"{path}/config", body)
        else:
            self.lab.kube.request("POST", path, body)

    def start_speakers(self):
        for i in range(1, self.lab.nodes + 1):
            self.start_speaker(i)

    def check_alive(self):
        """Raise with the end of its log if the controller or a speaker has exited."""
        for p in [self.controller] + list(self.speakers.values()):
            if p is not None and not p.alive():
                with open(p.log.name, errors="replace") as f:
                    tail = "".join(f.readlines()[-6:])
                raise RuntimeError(f"{self.name} {p.name} exited {p.p.returncode}: {tail.strip()}")

    def stop_speakers(self):
        for s in self.speakers.values():
            s.stop()
        self.speakers = {}

    def stop_controller(self):
        if self.controller:
            self.controller.stop()
            self.controller = None

    def stop_all(self):
        self.stop_speakers()
        self.stop_controller()

    # The speaker's counter of UPDATE messages sent (summed over its peers), if it exports one.
    updates_metric = None
    # The speaker's histogram of watch event received -> UPDATE written, if it exports one.
    event_histogram = None

    def speaker_metric_texts(self):
        """Every running speaker's /metrics text ("" for one that does not answer)."""
        out = []
        for i in self.speakers:
            code, body = self.lab.curl(self.lab.node_ns(i), "http://127.0.0.1:7472/metrics")
            out.append(body if code == 200 else "")
        return out

    def speaker_updates(self, i):
        """UPDATE messages the speaker on node-i says it sent (`updates_metric` summed over peers), or None."""
        if self.updates_metric is None:
            return None
        code, body = self.lab.curl(self.lab.node_ns(i), "http://127.0.0.1:7472/metrics")
        if code != 200:
            return None
        found = re.findall(r"^" + self.updates_metric + r"\{[^}]*\} ([0-9.e+]+)$", body, re.M)
        return sum(int(float(v)) for v in found) if found else None


class Ferrolb(Impl):
    """ferrolb controller + speakers (graceful restart off, so a killed speaker is a plain failure)."""

    name = "ferrolb"
    families = ("ipv4", "ipv4-shared", "ipv6")
    speaker_counts_updates = True
    updates_metric = "ferrolb_bgp_updates_sent_total"
    event_histogram = "ferrolb_speaker_event_to_update_seconds"

    def __init__(self, lab, out_dir, binary):
        super().__init__(lab, out_dir)
        self.binary = binary
        self.leases_left_held = 0
        parts = os.path.realpath(binary).split(os.sep)
        profile = next((x for x in ("release", "debug") if x in parts), "unknown profile")
        built = time.strftime("%H:%M UTC", time.gmtime(os.path.getmtime(binary)))
        commit = os.environ.get("FERROLB_COMMIT")
        self.build = (f"{profile} build ({binary}, built {built}"
                      + (f" from commit {commit}" if commit else "") + ")")

    def setup(self, **kw):
        """The ConfigMap: the router peer, both pools; keywords as for `legacy_config`."""
        self.apply_configmap("ferrolb-system", v6=True, **kw)

    def start_controller(self):
        self.controller = Proc("controller", self.lab.router_ns,
                               [self.binary, "controller", "--metrics-addr", "127.0.0.1:7472"],
                               {"KUBECONFIG": self.lab.kubeconfig, "RUST_LOG": "warn"}, self.log("controller"))

    def start_speaker(self, i):
        self.speakers[i] = Proc(
            f"speaker-{i}", self.lab.node_ns(i),
            [self.binary, "speaker", "--node-name", f"node-{i}", "--metrics-addr", "127.0.0.1:7472",
             "--state-dir", os.path.join(self.lab.dir, f"bench-speaker-{i}"), "--no-graceful-restart"],
            {"KUBECONFIG": self.lab.kubeconfig, "RUST_LOG": "warn"}, self.log(f"speaker-{i}"))

    def controller_ready(self):
        return self.lab.curl(self.lab.router_ns, "http://127.0.0.1:7472/readyz")[0] == 200

    LEASE = "/apis/coordination.k8s.io/v1/namespaces/ferrolb-system/leases/ferrolb-controller"

    def stop_all(self):
        """Stop everything; then, so that the next scale repetition is a cold start, delete the controller's
        Lease if the stopped controller left it held (counted in `leases_left_held`)."""
        super().stop_all()
        try:
            lease = self.lab.kube.request("GET", self.LEASE)
        except RuntimeError:
            return
        if (lease.get("spec") or {}).get("holderIdentity"):
            self.leases_left_held += 1
            self.lab.kube.request("DELETE", self.LEASE, ok=(200, 202, 404))


class MetalLBLegacy(Impl):
    """MetalLB v0.12.x: ConfigMap configuration, native BGP speaker, memberlist off (no --ml-labels)."""

    endpoints_kind = "endpoints"  # v0.12 reads discovery.k8s.io/v1beta1 slices, gone since Kubernetes 1.25
    speaker_counts_updates = True
    updates_metric = "metallb_bgp_updates_total"

    def __init__(self, lab, out_dir, bin_dir, version):
        super().__init__(lab, out_dir)
        self.bin_dir, self.name = bin_dir, f"metallb-{version}"
        self.build = f"Go {version} built by bench.d/metallb-build ({bin_dir})"

    def setup(self, **kw):
        self.apply_configmap("metallb-system")

    def start_controller(self):
        self.controller = Proc(
            "controller", self.lab.router_ns,
            [os.path.join(self.bin_dir, "controller"), "--kubeconfig", self.lab.kubeconfig,
             "--namespace", "metallb-system", "--port", "7472", "--log-level", "warn"],
            {}, self.log("controller"))

    def start_speaker(self, i):
        self.speakers[i] = Proc(
            f"speaker-{i}", self.lab.node_ns(i),
            [os.path.join(self.bin_dir, "speaker"), "--kubeconfig", self.lab.kubeconfig,
             "--namespace", "metallb-system", "--node-name", f"node-{i}", "--port", "7472",
             "--log-level", "warn"],
            {}, self.log(f"speaker-{i}"))

    def controller_ready(self):
        # v0.12 has no readiness endpoint; its manifests probe the metrics port.
        return self.lab.curl(self.lab.router_ns, "http://127.0.0.1:7472/metrics")[0] == 200


class MetalLBCrd(MetalLBLegacy):
    """MetalLB v0.13+: CRD configuration (IPAddressPool, BGPPeer, BGPAdvertisement), native BGP mode,
    webhooks and certificate rotation off, memberlist off; the kubeconfig comes from $KUBECONFIG
    (controller-runtime), these versions have no --kubeconfig flag of their own."""

    endpoints_kind = "slices"

    def __init__(self, lab, out_dir, bin_dir, version, src_dir):
        super().__init__(lab, out_dir, bin_dir, version)
        self.src_dir, self.version = src_dir, version

    def setup(self, **kw):
        self.create_namespace("metallb-system")
        crds = sorted(glob.glob(os.path.join(self.src_dir, "config", "crd", "bases", "*.yaml")))
        if not crds:
            raise RuntimeError(f"no CRDs under {self.src_dir}/config/crd/bases")
        kubectl = os.path.join(self.lab.env["CP_BIN"], "kubectl")
        for c in crds:
            run([kubectl, "--kubeconfig", self.lab.kubeconfig, "apply", "--server-side", "-f", c])
        run([kubectl, "--kubeconfig", self.lab.kubeconfig, "wait", "--for=condition=Established",
             "--timeout=60s"] + [x for c in crds for x in ("-f", c)])
        asn = int(self.lab.env["ROUTER_ASN"])
        objs = [
            {"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
             "metadata": {"name": "bench", "namespace": "metallb-system"}, "spec": {"addresses": POOL_V4}},
            {"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer",
             "metadata": {"name": "router", "namespace": "metallb-system"},
             "spec": {"myASN": asn, "peerASN": asn, "peerAddress": self.lab.env["ROUTER_LAN4"],
                      "password": "foo", "holdTime": f"{HOLD_TIME_S}s"}},
            {"apiVersion": "metallb.io/v1beta1", "kind": "BGPAdvertisement",
             "metadata": {"name": "bench", "namespace": "metallb-system"}, "spec": {"ipAddressPools": ["bench"]}},
        ]
        p = subprocess.run([kubectl, "--kubeconfig", self.lab.kubeconfig, "apply", "-f", "-"],
                           input="\n---\n".join(json.dumps(o) for o in objs), capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"MetalLB CRD objects: {p.stderr.strip()}")
        # v0.14+ speakers read their own Pod at start ("unable to get speaker pod itself"): one Pod object per
        # node, bound to it (kwok plays it), named as METALLB_POD_NAME says.
        for i in range(1, self.lab.nodes + 1):
            pod = {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": f"speaker-node-{i}", "namespace": "metallb-system",
                                "labels": {"app": "metallb", "component": "speaker"}},
                   "spec": {"nodeName": f"node-{i}", "automountServiceAccountToken": False,
                            "containers": [{"name": "speaker", "image": f"quay.io/metallb/speaker:{self.version}"}]}}
            path = "/api/v1/namespaces/metallb-system/pods"
            for attempt in range(60):  # the namespace's default ServiceAccount may not exist yet
                if self.lab.kube.exists(f"{path}/speaker-node-{i}"):
                    break
                try:
                    self.lab.kube.request("POST", path, pod)
                    break
                except RuntimeError:
                    if attempt == 59:
                        raise
                    time.sleep(0.5)

    def start_controller(self):
        self.controller = Proc(
            "controller", self.lab.router_ns,
            [os.path.join(self.bin_dir, "controller"),
             "--namespace", "metallb-system", "--port", "7472", "--log-level", "warn",
             "--disable-cert-rotation", "--webhook-mode", "disabled"],
            {"METALLB_NAMESPACE": "metallb-system", "KUBECONFIG": self.lab.kubeconfig}, self.log("controller"))

    def start_speaker(self, i):
        self.speakers[i] = Proc(
            f"speaker-{i}", self.lab.node_ns(i),
            [os.path.join(self.bin_dir, "speaker"),
             "--namespace", "metallb-system", "--node-name", f"node-{i}", "--port", "7472",
             "--log-level", "warn"],
            {"METALLB_NAMESPACE": "metallb-system", "METALLB_NODE_NAME": f"node-{i}",
             "METALLB_POD_NAME": f"speaker-node-{i}", "METALLB_BGP_TYPE": "native",
             "KUBECONFIG": self.lab.kubeconfig}, self.log(f"speaker-{i}"))
