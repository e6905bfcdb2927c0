//! Traffic during a change: a load client sending HTTP requests to a VIP from the client namespace, and a
//! watch of the router's FIB entry for it.

use ferrolb_testbed::Lab;
use ferrolb_testbed::serde_json::{self, Value};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A client sending HTTP requests to a VIP at a fixed rate from the client namespace until finished (or
/// killed on drop).
pub struct Load(Child);

/// Requests start on a fixed schedule, each as its own asyncio task (one thread, little CPU), so a slow answer
/// (or a busy machine) does not lower the rate; each is a new TCP connection with a 5 s budget (a lost SYN is
/// resent after 1 s and 3 s; the 2 s budget used first turned a CPU-starved moment of the shared test machine
/// into failures). Every request is a new connection, so from a new source port: the router's layer-4 hash
/// spreads them over its paths. Prints a JSON summary when `stop` exists: the latencies of the answered
/// requests, and how many answers each reply body (its first two words: the responder's `NODE`, or a lab Pod's
/// `POD NODE`; a lab Pod's third word, the peer address, is counted apart) gave.
const LOAD_SCRIPT: &str = r#"
import asyncio, json, os, socket, sys, time
host, port, rate, stop = sys.argv[1], 80, float(sys.argv[2]), sys.argv[3]
ok = 0
errors = {}
replies = {}
peers = {}
latencies = []
failures = []
slow_at = []
def err(kind, connected):
    errors[kind] = errors.get(kind, 0) + 1
    if len(failures) < 500:
        failures.append([round(time.time(), 3), kind, connected])
async def request(state):
    reader, writer = await asyncio.open_connection(host, port)
    state["connected"] = True
    try:
        writer.write(b"GET / HTTP/1.0\r\nHost: vip\r\n\r\n")
        await writer.drain()
        return await reader.read()
    finally:
        writer.close()
async def one():
    global ok
    started = time.monotonic()
    state = {"connected": False}
    try:
        data = await asyncio.wait_for(request(state), 5)
        status = data.split(b"\r\n", 1)[0]
        if b" 200 " in status:
            ok += 1
            took = time.monotonic() - started
            latencies.append(took)
            if took >= 0.9 and len(slow_at) < 500:
                slow_at.append(round(time.time() - took, 3))
            words = data.split(b"\r\n\r\n", 1)[-1].decode(errors="replace").split()
            key = " ".join(words[:2])
            replies[key] = replies.get(key, 0) + 1
            if len(words) > 2:
                peers[words[2]] = peers.get(words[2], 0) + 1
        else:
            err("HTTP " + status.decode(errors="replace"), state["connected"])
    except asyncio.TimeoutError:
        err("timed out (5 s)", state["connected"])
    except OSError as e:
        err(e.strerror or str(e), state["connected"])
async def main():
    period = 1.0 / rate
    start = nxt = time.monotonic()
    tasks = set()
    while not os.path.exists(stop):
        t = asyncio.ensure_future(one())
        tasks.add(t)
        t.add_done_callback(tasks.discard)
        nxt += period
        await asyncio.sleep(max(0, nxt - time.monotonic()))
    sent_for = time.monotonic() - start
    if tasks:
        await asyncio.wait(tasks)
    failed = sum(errors.values())
    latencies.sort()
    pick = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else 0
    print(json.dumps({"ok": ok, "failed": failed, "rate": (ok + failed) / sent_for, "errors": errors,
                      "replies": replies, "peers": peers, "failures": failures,
                      "slow": sum(1 for x in latencies if x >= 0.9), "slow_at": slow_at,
                      "p50": pick(0.5), "p99": pick(0.99), "max": pick(1.0)}))
asyncio.run(main())
"#;

/// One failed request.
#[derive(Debug, Clone)]
pub struct Failure {
    /// When it failed, in seconds since the Unix epoch (to compare with the lab's logs and [`FibWatch`]).
    pub at: f64,
    /// The error.
    pub error: String,
    /// Whether the TCP connection had been established (the failure came later: a reset or no answer).
    pub connected: bool,
}

/// What a [`Load`] client saw.
#[derive(Debug, Clone, Default)]
pub struct LoadResult {
    /// Requests answered with 200.
    pub ok: u64,
    /// Requests that failed.
    pub failed: u64,
    /// Requests started per second.
    pub rate: f64,
    /// Failures by error text.
    pub errors: BTreeMap<String, u64>,
    /// Latency of the answered requests, median / 99th percentile / maximum, in seconds.
    pub latency: [f64; 3],
    /// Answers by reply (`NODE` from a responder, `POD NODE` from a lab Pod).
    pub replies: BTreeMap<String, u64>,
    /// Answers from lab Pods by the source address the Pod saw (`PEER`).
    pub peers: BTreeMap<String, u64>,
    /// The first 500 failures.
    pub failures: Vec<Failure>,
    /// Answered requests that took 0.9 s or more: in this lab, a lost SYN resent after 1 s.
    pub slow: u64,
    /// When the first 500 of those started, in seconds since the Unix epoch.
    pub slow_at: Vec<f64>,
}

impl LoadResult {
    /// Answers by the node named in the reply (`node-I`): the node whose Pod (or responder) answered.
    pub fn by_node(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for (reply, n) in &self.replies {
            if let Some(node) = reply.split(' ').find(|w| w.starts_with("node-")) {
                *out.entry(node.to_owned()).or_insert(0) += n;
            }
        }
        out
    }
}

impl std::fmt::Display for LoadResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} requests ok ({} after 0.9 s or more), {} failed {:?}, {:.1} requests/s, latency p50 {:.0} ms / p99 {:.0} ms / max {:.0} ms",
            self.ok,
            self.slow,
            self.failed,
            self.errors,
            self.rate,
            self.latency[0] * 1000.0,
            self.latency[1] * 1000.0,
            self.latency[2] * 1000.0
        )?;
        for x in self.failures.iter().take(10) {
            let when = if x.connected {
                "after connecting"
            } else {
                "connecting"
            };
            write!(f, "; at {:.3}: {} ({when})", x.at, x.error)?;
        }
        Ok(())
    }
}

impl Load {
    /// Starts sending `rate` requests/s to `http://VIP/` (IPv4 or IPv6) until `stop` exists.
    pub fn start(lab: &Lab, vip: &str, rate: u32, stop: &Path) -> Load {
        let _ = std::fs::remove_file(stop);
        let child = Command::new("ip")
            .args(["netns", "exec", &lab.client_netns().unwrap()])
            .args(["python3", "-c", LOAD_SCRIPT])
            .args([vip, &rate.to_string(), &stop.display().to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the load client");
        Load(child)
    }

    /// Stops the client and returns what it saw.
    pub fn finish(mut self, stop: &Path) -> LoadResult {
        std::fs::write(stop, b"stop").unwrap();
        let _ = self.0.wait();
        let mut out = String::new();
        if let Some(mut s) = self.0.stdout.take() {
            let _ = s.read_to_string(&mut out);
        }
        let _ = std::fs::remove_file(stop);
        let v: Value = serde_json::from_str(out.trim())
            .unwrap_or_else(|e| panic!("load client output {out:?}: {e}"));
        LoadResult {
            ok: v["ok"].as_u64().unwrap_or(0),
            failed: v["failed"].as_u64().unwrap_or(u64::MAX),
            rate: v["rate"].as_f64().unwrap_or(0.0),
            errors: counts(&v["errors"]),
            latency: ["p50", "p99", "max"].map(|k| v[k].as_f64().unwrap_or(f64::NAN)),
            replies: counts(&v["replies"]),
            slow: v["slow"].as_u64().unwrap_or(0),
            slow_at: v["slow_at"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_f64)
                .collect(),
            peers: counts(&v["peers"]),
            failures: v["failures"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| Failure {
                    at: f[0].as_f64().unwrap_or(0.0),
                    error: f[1].as_str().unwrap_or("").to_owned(),
                    connected: f[2].as_bool().unwrap_or(false),
                })
                .collect(),
        }
    }
}

/// Seconds since the Unix epoch.
pub fn epoch_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A JSON object of counts as a map.
fn counts(v: &Value) -> BTreeMap<String, u64> {
    v.as_object()
        .into_iter()
        .flatten()
        .map(|(k, n)| (k.clone(), n.as_u64().unwrap_or(0)))
        .collect()
}

impl Drop for Load {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Watches the router's FIB for `prefix` in a thread and counts the samples where it was absent.
pub struct FibWatch {
    stop: Arc<AtomicBool>,
    missing: Arc<AtomicU64>,
    samples: Arc<AtomicU64>,
    fewest: Arc<AtomicU64>,
    changes: Arc<Mutex<Vec<f64>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FibWatch {
    /// Samples `ip route show PREFIX` in the router namespace every 20 ms.
    pub fn start(router_ns: String, prefix: String) -> FibWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let missing = Arc::new(AtomicU64::new(0));
        let samples = Arc::new(AtomicU64::new(0));
        let fewest = Arc::new(AtomicU64::new(u64::MAX));
        let changes = Arc::new(Mutex::new(Vec::new()));
        let (s, m, n, f, c) = (
            stop.clone(),
            missing.clone(),
            samples.clone(),
            fewest.clone(),
            changes.clone(),
        );
        let thread = std::thread::spawn(move || {
            let mut last: Option<Vec<u8>> = None;
            while !s.load(Ordering::Relaxed) {
                let out = Command::new("ip")
                    .args(["-n", &router_ns, "route", "show", &prefix])
                    .output();
                if let Ok(out) = out {
                    n.fetch_add(1, Ordering::Relaxed);
                    if out.stdout.is_empty() {
                        m.fetch_add(1, Ordering::Relaxed);
                    }
                    let hops = String::from_utf8_lossy(&out.stdout)
                        .matches(" via ")
                        .count();
                    f.fetch_min(hops as u64, Ordering::Relaxed);
                    if last.as_ref().is_some_and(|l| *l != out.stdout)
                        && let Ok(mut c) = c.lock()
                    {
                        c.push(epoch_now());
                    }
                    last = Some(out.stdout);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        FibWatch {
            stop,
            missing,
            samples,
            fewest,
            changes,
            thread: Some(thread),
        }
    }

    /// When the route changed (its next hops, or present/absent), in seconds since the Unix epoch.
    pub fn changes(&self) -> Vec<f64> {
        self.changes.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// The fewest next hops seen in one sample so far.
    pub fn fewest_next_hops(&self) -> u64 {
        self.fewest.load(Ordering::Relaxed)
    }

    /// (samples, samples without the route).
    pub fn finish(mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        (
            self.samples.load(Ordering::Relaxed),
            self.missing.load(Ordering::Relaxed),
        )
    }
}

impl Drop for FibWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
