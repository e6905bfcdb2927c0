#!/usr/bin/env python3
"""ferrolb lab data-plane responder (runs inside one node namespace; the lab has no kube-proxy).

Answers HTTP on port 80 with this node's name, but only for connections addressed to an IP that is
currently assigned to the node's VIP interface (default `flb-vip`). Any other destination gets 404, so a
curl that reaches it proves the router forwarded a Service VIP to a node that holds that VIP.
Usage: responder.py NODE_NAME [VIP_INTERFACE] [PORT]
"""
import http.server
import json
import socket
import subprocess
import sys

NODE = sys.argv[1]
VIP_IF = sys.argv[2] if len(sys.argv) > 2 else "flb-vip"
PORT = int(sys.argv[3]) if len(sys.argv) > 3 else 80


def vips():
    out = subprocess.run(["ip", "-j", "addr", "show", "dev", VIP_IF],
                         capture_output=True, text=True, check=False).stdout
    try:
        return {a["local"] for link in json.loads(out or "[]") for a in link.get("addr_info", [])}
    except (ValueError, KeyError):
        return set()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        local = self.connection.getsockname()[0]
        if local.startswith("::ffff:"):
            local = local[len("::ffff:"):]
        if local in vips():
            body, code = f"{NODE}\n", 200
        else:
            body, code = f"{NODE}: {local} is not on {VIP_IF}\n", 404
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.client_address[0], fmt % args))


class DualStackServer(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


if __name__ == "__main__":
    DualStackServer(("::", PORT), Handler).serve_forever()
