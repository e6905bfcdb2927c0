//! The two loads the control-plane VIP test runs from the client namespace: a request loop (10 new TLS
//! connections per second, each one `GET /version`) and a set of long-lived watches, as kubelets and
//! controllers hold them. Both are small Python asyncio scripts whose pids are recorded in the lab, so `lab down`
//! stops them too; each writes one line per event, flushed, and stops when its `stop` file exists.

use ferrolb_testbed::Lab;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The request loop: one request every 100 ms, each on its own asyncio task with a 2 s budget; one line per
/// request, `<start unix time> ok|<error>`.
const REQUESTS: &str = r#"
import asyncio, os, ssl, sys, time
vip, port, ca, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)
async def request():
    reader, writer = await asyncio.open_connection(vip, port, ssl=ctx, server_hostname=vip)
    try:
        writer.write(b"GET /version HTTP/1.1\r\nHost: " + vip.encode() + b"\r\nConnection: close\r\n\r\n")
        await writer.drain()
        return await reader.read()
    finally:
        writer.close()
async def one():
    started = time.time()
    try:
        data = await asyncio.wait_for(request(), 2)
        status = data.split(b"\r\n", 1)[0]
        res = "ok" if b" 200 " in status else "http:" + status.decode(errors="replace").replace(" ", "_")
    except asyncio.TimeoutError:
        res = "timeout"
    except (OSError, ssl.SSLError) as e:
        res = type(e).__name__
    print(f"{started:.3f} {res}", flush=True)
async def main():
    nxt = time.monotonic()
    tasks = set()
    while not os.path.exists(stop):
        t = asyncio.ensure_future(one())
        tasks.add(t)
        t.add_done_callback(tasks.discard)
        nxt += 0.1
        await asyncio.sleep(max(0, nxt - time.monotonic()))
    if tasks:
        await asyncio.wait(tasks)
asyncio.run(main())
"#;

/// The watches: N watches of one ConfigMap (as the lab's admin, client certificate), each re-opened at once when
/// it breaks, as client-go's reflectors do. TCP keepalive every second, so a connection whose path moved to a
/// node that does not know it is reset within seconds even without events. Lines: `<time> open <i> <local port>`
/// once the API server answered 200, `<time> broken <i> <local port> <reason>`.
const WATCHES: &str = r#"
import asyncio, os, socket, ssl, sys, time
host, port, ca, cert, key, n, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]), sys.argv[7]
ctx = ssl.create_default_context(cafile=ca)
ctx.load_cert_chain(cert, key)
path = b"/api/v1/namespaces/default/configmaps?watch=1&fieldSelector=metadata.name%3Dcpvip-tick&timeoutSeconds=3600"
def log(*words):
    print(f"{time.time():.3f}", *words, flush=True)
async def watch(i):
    while True:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=ctx, server_hostname=host), 3)
        except (OSError, ssl.SSLError, asyncio.TimeoutError) as e:
            log("connect-failed", i, type(e).__name__)
            await asyncio.sleep(0.5)
            continue
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
        lport = sock.getsockname()[1]
        reason = "eof"
        try:
            writer.write(b"GET " + path + b" HTTP/1.1\r\nHost: " + host.encode() + b"\r\n\r\n")
            await writer.drain()
            status = await reader.readline()
            if b" 200 " not in status:
                reason = "http:" + status.decode(errors="replace").strip().replace(" ", "_")
            else:
                log("open", i, lport)
                while await reader.read(65536):
                    pass
        except (OSError, ssl.SSLError) as e:
            reason = type(e).__name__
        log("broken", i, lport, reason)
        writer.close()
        await asyncio.sleep(0.2)
async def main():
    for i in range(n):
        asyncio.ensure_future(watch(i))
    while not os.path.exists(stop):
        await asyncio.sleep(0.2)
asyncio.run(main())
"#;

/// A Python script running in the client namespace, its output in the lab's logs.
struct Script {
    child: Child,
    out: PathBuf,
    stop: PathBuf,
}

impl Script {
    fn start(lab: &Lab, tag: &str, script: &str, args: &[String]) -> Script {
        let out = lab.dir().join("logs").join(format!("{tag}.out"));
        let stop = lab.dir().join(format!("{tag}.stop"));
        let path = lab.dir().join(format!("{tag}.py"));
        std::fs::write(&path, script).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &lab.client_netns().unwrap(), "python3"])
            .arg(&path)
            .args(args)
            .arg(&stop)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("start a client script");
        std::fs::write(lab.dir().join("pids").join(tag), child.id().to_string()).unwrap();
        Script { child, out, stop }
    }

    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.stop, "");
        std::thread::sleep(Duration::from_millis(2500));
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The request loop against `https://host:port/version`.
pub struct Client(Script);

impl Client {
    /// Starts the loop; `tag` names its files.
    pub fn start(lab: &Lab, host: &str, port: u16, tag: &str) -> Client {
        let ca = lab.dir().join("pki").join("ca.crt");
        let args = [host.to_owned(), port.to_string(), ca.display().to_string()];
        Client(Script::start(
            lab,
            &format!("{tag}-client"),
            REQUESTS,
            &args,
        ))
    }

    /// (start time, ok) of every finished request.
    pub fn results(&self) -> Vec<(f64, bool)> {
        self.0
            .lines()
            .iter()
            .filter_map(|l| {
                let (t, r) = l.split_once(' ')?;
                Some((t.parse().ok()?, r == "ok"))
            })
            .collect()
    }
}

/// One watch connection's life, by the client's local port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WatchEvent {
    Open,
    Broken,
}

/// `n` long-lived watches through `host:port` (see [`WATCHES`]).
pub struct Watches {
    script: Script,
    n: usize,
}

impl Watches {
    /// Starts the watches; `tag` names the files.
    pub fn start(lab: &Lab, host: &str, port: u16, n: usize, tag: &str) -> Watches {
        let pki = lab.dir().join("pki");
        let file = |name: &str| pki.join(name).display().to_string();
        let args = [
            host.to_owned(),
            port.to_string(),
            file("ca.crt"),
            file("admin.crt"),
            file("admin.key"),
            n.to_string(),
        ];
        Watches {
            script: Script::start(lab, &format!("{tag}-watches"), WATCHES, &args),
            n,
        }
    }

    fn events(&self) -> Vec<(f64, WatchEvent, u16)> {
        self.script
            .lines()
            .iter()
            .filter_map(|l| {
                let words: Vec<&str> = l.split(' ').collect();
                let event = match *words.get(1)? {
                    "open" => WatchEvent::Open,
                    "broken" => WatchEvent::Broken,
                    _ => return None,
                };
                Some((words[0].parse().ok()?, event, words.get(3)?.parse().ok()?))
            })
            .collect()
    }

    /// The local ports of the watches open now.
    pub fn open(&self) -> BTreeSet<u16> {
        let mut open = BTreeSet::new();
        for (_, event, port) in self.events() {
            match event {
                WatchEvent::Open => open.insert(port),
                WatchEvent::Broken => open.remove(&port),
            };
        }
        open
    }

    /// Waits until all `n` watches are open (at most 30 s).
    pub fn wait_all_open(&self, lab: &Lab) {
        lab.wait_until(Duration::from_secs(30), "every watch open", || {
            Ok(self.open().len() == self.n)
        })
        .unwrap_or_else(|e| panic!("{e}: {} of {} open", self.open().len(), self.n));
    }

    /// The local ports of the watches that broke at or after `since` (unix time).
    pub fn broken_since(&self, since: f64) -> Vec<u16> {
        self.events()
            .into_iter()
            .filter(|(t, event, _)| *t >= since && *event == WatchEvent::Broken)
            .map(|(_, _, port)| port)
            .collect()
    }
}

/// The established TCP connections to local port `port` in node `node`'s namespace, by (peer address, peer port);
/// IPv4 peers of a dual-stack listener (`[::ffff:198.18.1.2]`) are shown as IPv4.
pub fn connections_to(lab: &Lab, node: usize, port: u16) -> BTreeSet<(String, u16)> {
    let filter = format!("( sport = :{port} )");
    let out = lab
        .exec_in_node(node, &["ss", "-Htn", "state", "established", &filter])
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let peer = l.split_whitespace().nth(3)?;
            let (addr, port) = peer.rsplit_once(':')?;
            let addr = addr.trim_start_matches('[').trim_end_matches(']');
            let addr = addr.strip_prefix("::ffff:").unwrap_or(addr);
            Some((addr.to_owned(), port.parse().ok()?))
        })
        .collect()
}

/// Closes (`ss -K`) every connection from `client` to local port `port` on every node: what a rehash left
/// half-open on the servers, whose retransmissions never reach a peer that would reset them.
pub fn destroy_connections(lab: &Lab, client: &str, port: u16) {
    let sport = format!(":{port}");
    for node in 1..=lab.nodes() {
        for dst in [client.to_owned(), format!("[::ffff:{client}]")] {
            lab.exec_in_node(node, &["ss", "-K", "dst", &dst, "sport", "=", &sport])
                .unwrap();
        }
    }
}

/// Which node holds each of the client's connections to the API servers' port 6443: client port → node.
pub fn holders(lab: &Lab, client: &str) -> BTreeMap<u16, usize> {
    (1..=lab.nodes())
        .flat_map(|node| {
            connections_to(lab, node, 6443)
                .into_iter()
                .filter(|(addr, _)| addr == client)
                .map(move |(_, port)| (port, node))
        })
        .collect()
}

/// Changes the ConfigMap the watches follow once a second (through the lab's own API server, not the VIP), so
/// every watch carries data, as watches in a live cluster do, and HAProxy's idle timeouts never close one.
/// Stopped when dropped (its pid is also recorded, for `lab down`).
pub struct Ticker(Child);

impl Ticker {
    /// Creates the ConfigMap and starts changing it.
    pub fn start(lab: &Lab) -> Ticker {
        let _ = lab.kubectl(&["delete", "configmap", "cpvip-tick", "--ignore-not-found"]);
        lab.kubectl(&["create", "configmap", "cpvip-tick", "--from-literal=t=0"])
            .unwrap();
        let script = format!(
            "i=0; while :; do i=$((i+1)); '{kubectl}' --kubeconfig '{kc}' patch configmap cpvip-tick \
             -p \"{{\\\"data\\\":{{\\\"t\\\":\\\"$i\\\"}}}}\" >/dev/null 2>&1; sleep 1; done",
            kubectl = lab.kubectl_path().display(),
            kc = lab.kubeconfig_path().display(),
        );
        let child = Command::new("bash")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the ConfigMap ticker");
        std::fs::write(
            lab.dir().join("pids").join("cpvip-tick"),
            child.id().to_string(),
        )
        .unwrap();
        Ticker(child)
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
