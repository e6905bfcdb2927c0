#!/usr/bin/env python3
"""ferrolb lab Pod agent: gives every Running Pod of the lab a network namespace and an HTTP server.

Started by `testbed/lab up --data-path` in the host namespace (it creates namespaces, which `ip netns exec` would
hide in its own mount namespace); `lab down` stops it by its recorded pid before removing the namespaces.

For each Pod with a node of this lab, phase Running and a Pod IP (kwok gives them from the node's podCIDR):
- namespace `<lab>-pod-<n>` (recorded in the lab's netns list, so `down` removes it by name), a veth pair
  `vp<n>` (node side) / `eth0` (Pod side), the Pod IP /32 on eth0, default route via 169.254.1.1 (held by every
  node-side veth, as Calico does), and a /32 route to the Pod in the node namespace;
- an HTTP server on port 80 in that namespace, answering `POD NODE PEER\\n` (the Pod's name, its node, the
  connection's source address);
- with annotation `ferrolb.io/lab-ready: agent` (testbed/kwok/pod-stages.yaml leaves such Pods not Ready) the
  agent then sets the Ready condition, as a kubelet does once a readiness probe passes.
The namespace goes when the Pod object is gone (kwok deletes it after the pod-delete stage's delay), so a
terminating Pod keeps serving until then.
Usage: podagent.py LAB LAB_DIR APISERVER NODE=NETNS...
"""
import ctypes
import http.client
import json
import os
import selectors
import socket
import ssl
import subprocess
import sys
import threading
import time

LAB, LAB_DIR, APISERVER = sys.argv[1], sys.argv[2], sys.argv[3]
NODES = dict(arg.split("=", 1) for arg in sys.argv[4:])
PKI = os.path.join(LAB_DIR, "pki")
GATEWAY = "169.254.1.1"
CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL("libc.so.6", use_errno=True)


def log(msg):
    print(f"{time.time():.3f} podagent: {msg}", file=sys.stderr, flush=True)


def ip(*args):
    subprocess.run(["ip", *args], check=True, stdout=subprocess.DEVNULL)


def tls():
    ctx = ssl.create_default_context(cafile=os.path.join(PKI, "ca.crt"))
    ctx.load_cert_chain(os.path.join(PKI, "admin.crt"), os.path.join(PKI, "admin.key"))
    return ctx


HOST, PORT = APISERVER.removeprefix("https://").rsplit(":", 1)
CTX = tls()


def api(method, path, body=None, content_type="application/json", timeout=10):
    conn = http.client.HTTPSConnection(HOST, int(PORT), context=CTX, timeout=timeout)
    headers = {"Content-Type": content_type} if body is not None else {}
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    return conn, conn.getresponse()


class Server:
    """One thread serving every Pod's listening socket (sockets keep the namespace they were made in)."""

    def __init__(self):
        self.sel = selectors.DefaultSelector()
        self.lock = threading.Lock()
        r, self.wake = os.pipe()
        self.sel.register(r, selectors.EVENT_READ, ("wake", None))
        threading.Thread(target=self.run, daemon=True).start()

    def listen(self, netns, reply):
        own = os.open("/proc/self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{netns}", os.O_RDONLY)
        try:
            if libc.setns(target, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns {netns}")
            try:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("0.0.0.0", 80))
                s.listen(256)
                s.setblocking(False)
            finally:
                libc.setns(own, CLONE_NEWNET)
        finally:
            os.close(own)
            os.close(target)
        with self.lock:
            self.sel.register(s, selectors.EVENT_READ, ("listen", reply))
        os.write(self.wake, b"x")
        return s

    def close(self, s):
        with self.lock:
            try:
                self.sel.unregister(s)
            except (KeyError, ValueError):
                pass
        s.close()

    def run(self):
        while True:
            for key, _ in self.sel.select(timeout=1):
                kind, data = key.data
                if kind == "wake":
                    os.read(key.fd, 64)
                elif kind == "listen":
                    try:
                        c, peer = key.fileobj.accept()
                    except OSError:
                        continue
                    c.setblocking(False)
                    with self.lock:
                        self.sel.register(c, selectors.EVENT_READ, ("conn", (data, peer[0], bytearray())))
                else:
                    self.answer(key.fileobj, *data)

    def answer(self, c, reply, peer, buf):
        try:
            chunk = c.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        buf += chunk
        if chunk and b"\r\n\r\n" not in buf:
            return
        with self.lock:
            self.sel.unregister(c)
        if chunk:
            body = f"{reply} {peer}\n".encode()
            head = f"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n"
            try:
                c.setblocking(True)
                c.settimeout(2)
                c.sendall(head.encode() + body)
            except OSError:
                pass
        c.close()


class Agent:
    def __init__(self):
        self.server = Server()
        self.pods = {}  # uid -> (netns, socket)
        self.next = 1

    def want(self, pod):
        st, spec = pod.get("status", {}), pod.get("spec", {})
        return st.get("phase") == "Running" and st.get("podIP") and spec.get("nodeName") in NODES

    def apply(self, kind, pod):
        uid = pod["metadata"]["uid"]
        if kind != "DELETED" and self.want(pod):
            if uid not in self.pods:
                self.add(pod)
        elif uid in self.pods:
            self.remove(uid)

    def add(self, pod):
        meta, node = pod["metadata"], pod["spec"]["nodeName"]
        pod_ip, node_ns = pod["status"]["podIP"], NODES[node]
        n = self.next
        self.next += 1
        netns, veth = f"{LAB}-pod-{n}", f"vp{n}"
        with open(os.path.join(LAB_DIR, "netns"), "a") as f:
            f.write(netns + "\n")
        try:
            ip("netns", "add", netns)
            ip("-n", netns, "link", "set", "lo", "up")
            ip("-n", node_ns, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
            ip("-n", node_ns, "addr", "add", f"{GATEWAY}/32", "dev", veth)
            ip("-n", node_ns, "link", "set", veth, "up")
            ip("-n", netns, "addr", "add", f"{pod_ip}/32", "dev", "eth0")
            ip("-n", netns, "link", "set", "eth0", "up")
            ip("-n", netns, "route", "add", GATEWAY, "dev", "eth0", "scope", "link")
            ip("-n", netns, "route", "add", "default", "via", GATEWAY, "dev", "eth0")
            ip("-n", node_ns, "route", "replace", f"{pod_ip}/32", "dev", veth)
            sock = self.server.listen(netns, f"{meta['name']} {node}")
        except (OSError, subprocess.CalledProcessError) as e:
            log(f"pod {meta['namespace']}/{meta['name']}: {e}")
            subprocess.run(["ip", "netns", "del", netns], stderr=subprocess.DEVNULL)
            return
        self.pods[meta["uid"]] = (netns, sock)
        log(f"pod {meta['namespace']}/{meta['name']} {pod_ip} on {node}: namespace {netns}")
        if meta.get("annotations", {}).get("ferrolb.io/lab-ready") == "agent":
            self.set_ready(meta)

    def set_ready(self, meta):
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        conds = [{"type": t, "status": "True", "lastTransitionTime": now} for t in ("ContainersReady", "Ready")]
        path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status"
        try:
            conn, resp = api("PATCH", path, {"status": {"conditions": conds}},
                             "application/strategic-merge-patch+json")
            resp.read()
            conn.close()
            if resp.status != 200:
                log(f"pod {meta['namespace']}/{meta['name']}: setting Ready: HTTP {resp.status}")
        except OSError as e:
            log(f"pod {meta['namespace']}/{meta['name']}: setting Ready: {e}")

    def remove(self, uid):
        netns, sock = self.pods.pop(uid)
        self.server.close(sock)
        subprocess.run(["ip", "netns", "del", netns], stderr=subprocess.DEVNULL)
        log(f"namespace {netns} removed")

    def run(self):
        while True:
            try:
                self.list_and_watch()
            except (OSError, ValueError, http.client.HTTPException) as e:
                log(f"watch: {e}; listing again")
                time.sleep(0.5)

    def list_and_watch(self):
        conn, resp = api("GET", "/api/v1/pods")
        doc = json.loads(resp.read())
        conn.close()
        if resp.status != 200:
            raise ValueError(f"list pods: HTTP {resp.status}")
        seen = set()
        for pod in doc["items"]:
            seen.add(pod["metadata"]["uid"])
            self.apply("ADDED", pod)
        for uid in [u for u in self.pods if u not in seen]:
            self.remove(uid)
        rv = doc["metadata"]["resourceVersion"]
        conn, resp = api("GET", f"/api/v1/pods?watch=1&resourceVersion={rv}&allowWatchBookmarks=false",
                         timeout=None)
        if resp.status != 200:
            raise ValueError(f"watch pods: HTTP {resp.status}")
        while True:
            line = resp.readline()
            if not line:
                raise ValueError("watch ended")
            ev = json.loads(line)
            if ev["type"] == "ERROR":
                raise ValueError(f"watch error: {ev['object'].get('message')}")
            self.apply(ev["type"], ev["object"])


if __name__ == "__main__":
    log(f"lab {LAB}, nodes {NODES}")
    Agent().run()
