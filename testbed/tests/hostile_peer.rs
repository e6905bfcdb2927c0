//! A hostile BGP peer against a running `ferrolb speaker` in the lab: node-1's speaker has the router's FRR as
//! its normal peer and, as a second peer, a Rust peer in a `lan-host` namespace (198.18.0.100, eBGP) that
//! attacks it, one session after another (the speaker reconnects after each):
//!
//! 1. flood: UPDATEs as fast as TCP allows for `FERROLB_HOSTILE_SECS` (default 20): 1,000,000 distinct IPv6
//!    /64s packed into 4,096-octet UPDATEs, alternating with 4,096-octet UPDATEs carrying every path attribute;
//! 2. stall: ROUTE-REFRESH requests (each makes the speaker send its table and End-of-RIB again) without ever
//!    reading, on a socket with the smallest receive buffer, so the speaker's send buffer fills;
//! 3. silence: a valid OPEN, then nothing;
//! 4. 100 connections at once to the speaker's node on the BGP port.
//!
//! Checked: the speaker's RSS stays under twice its idle RSS; its session with FRR is never reset and its
//! KEEPALIVEs never late (FRR's `show bgp neighbors json`); a Service created during the flood reaches FRR; the
//! flood session stays up (every message was valid); the stalled session is closed by the write timeout; the
//! silent one with NOTIFICATION Hold Timer Expired; the 100 connections are refused (the speaker only connects
//! out). Figures are printed (`cargo test --test hostile_peer -- --nocapture`). Needs root, FRR and the
//! control plane (`testbed/lab deps`); fails loudly without them.

mod hostile_peer_common;
mod speaker_common;

use ferrolb_bgp::wire::{Family, HOLD_TIMER_EXPIRED, Message, RouteRefresh};
use ferrolb_testbed::Lab;
use ferrolb_testbed::kube::Client;
use ferrolb_testbed::serde_json::{Value, json};
use hostile_peer_common::*;
use speaker_common::*;
use std::io::{ErrorKind, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const NS: &str = "hostile";
/// The speaker's hold time toward the hostile peer (ConfigMap `hold-time`).
const HOSTILE_HOLD_SECS: u16 = 9;
/// The speaker's write timeout (`MIN_WRITE_TIMEOUT` in crates/bgp/src/session/driver.rs: the larger of it and
/// the hold time).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

fn hostile_peer_config() -> String {
    format!(
        "    - peer-address: {HOSTILE_ADDR}\n      peer-asn: {HOSTILE_ASN}\n      my-asn: {SPEAKER_ASN}\n      \
         hold-time: {HOSTILE_HOLD_SECS}s\n      node-selectors:\n      - match-labels:\n          \
         kubernetes.io/hostname: node-1\n"
    )
}

/// A selector-less LoadBalancer Service `name` with one ready endpoint on node-1: its VIP, once FRR has it
/// from node-1 only.
async fn service_on_node_1(lab: &Lab, client: &Client, name: &str) -> String {
    apply(client, json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": [{"port": 80}]}
    }))
    .await;
    apply(client, json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("{name}-1"), "namespace": NS,
                     "labels": {"kubernetes.io/service-name": name}},
        "addressType": "IPv4",
        "ports": [{"port": 80, "protocol": "TCP"}],
        "endpoints": [{"addresses": ["198.19.1.201"], "nodeName": "node-1", "conditions": {"ready": true}}]
    }))
    .await;
    let vip = ingress_ip(client, NS, name).await;
    wait_paths(
        lab,
        &vip,
        &set(&[&node_addr(1)]),
        &format!("{name} from node-1"),
    );
    vip
}

/// What FRR reports about its session with node-1's speaker, sampled once a second during the attacks.
#[derive(Debug, Default, Clone)]
struct FrrSample {
    established: u64,
    dropped: u64,
    up_ms: u64,
    last_read_ms: u64,
    keepalive_ms: u64,
    keepalives_recv: u64,
    state: String,
}

fn frr_sample(lab: &Lab) -> FrrSample {
    let n: Value = neighbors(lab)
        .remove(&node_addr(1))
        .expect("FRR lists node-1 as a neighbour");
    let u = |k: &str| {
        n[k].as_u64()
            .unwrap_or_else(|| panic!("no {k} in FRR's neighbour JSON: {n}"))
    };
    FrrSample {
        established: u("connectionsEstablished"),
        dropped: u("connectionsDropped"),
        up_ms: u("bgpTimerUpMsec"),
        last_read_ms: u("bgpTimerLastRead"),
        keepalive_ms: u("bgpTimerKeepAliveIntervalMsecs"),
        keepalives_recv: n["messageStats"]["keepalivesRecv"]
            .as_u64()
            .unwrap_or_default(),
        state: n["bgpState"].as_str().unwrap_or_default().to_owned(),
    }
}

/// Samples FRR's session with node-1 every second until `stop`.
fn watch_frr(lab: &'static Lab, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<FrrSample>> {
    std::thread::spawn(move || {
        let mut samples = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            samples.push(frr_sample(lab));
            std::thread::sleep(Duration::from_secs(1));
        }
        samples
    })
}

/// `ferrolb_bgp_messages_received_total{peer=HOSTILE_ADDR,type=update}` of node-1's speaker.
fn updates_received_by_speaker(lab: &Lab) -> u64 {
    let text = speaker_metrics(lab, 1);
    text.lines()
        .find(|l| {
            l.starts_with("ferrolb_bgp_messages_received_total{")
                && l.contains(&format!("peer=\"{HOSTILE_ADDR}\""))
                && l.contains("type=\"update\"")
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no UPDATE counter for {HOSTILE_ADDR} in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_peer_leaves_memory_other_sessions_and_kubernetes_work_alone() {
    let lab = Lab::shared().expect("lab up (run testbed/lab deps first)");
    let client = lab.kube_client().await.unwrap();
    lab.kubectl(&["create", "namespace", CONFIG_NS]).unwrap();
    lab.kubectl(&["create", "namespace", NS]).unwrap();
    let (hostile_ns, _) = lab.lan_host("hostile", HOSTILE_ADDR).unwrap();
    let listener: TcpListener = in_netns(&hostile_ns, || {
        let l = TcpListener::bind(format!("{HOSTILE_ADDR}:179")).expect("bind the hostile peer");
        // Inherited by accepted sockets: the smallest window, so a peer that stops reading stalls the
        // speaker's writes as early as possible.
        set_rcvbuf(&l, 1);
        l
    });
    kubectl_apply(lab, &configmap(lab, &hostile_peer_config(), ""));
    let ferrolb = Ferrolb::start(lab, Identities::admin(lab), "hostile");
    let pid = ferrolb.speakers[0].as_ref().unwrap().pid();
    let steady_vip = service_on_node_1(lab, &client, "steady").await;

    // --- Session 1 (flood): the messages are encoded first (for the context the session negotiates), then
    // Established, idle RSS, and UPDATEs as fast as TCP allows.
    let flood_secs: u64 = std::env::var("FERROLB_HOSTILE_SECS")
        .ok()
        .map(|s| {
            s.parse()
                .expect("FERROLB_HOSTILE_SECS is a number of seconds")
        })
        .unwrap_or(20);
    let ctx = flood_context();
    let prefix_updates = million_prefix_updates(&ctx, 1_000_000);
    let prefix_messages: u64 = prefix_updates.iter().map(|(_, n)| n).sum();
    let max_updates: Vec<u8> = (0..500)
        .flat_map(|n| max_attribute_update(&ctx, n).to_vec())
        .collect();
    let keepalive = Message::Keepalive.encode(&ctx).unwrap();
    let mut conn = Conn::accept(&listener);
    conn.establish(90);
    assert!(
        conn.ctx.four_octet_as
            && conn.ctx.supports(Family::Ipv6Unicast)
            && conn.ctx.max_message_len() == ctx.max_message_len(),
        "the flood was encoded for another context: {:?}",
        conn.ctx
    );
    let mut writer = conn.stream.try_clone().unwrap();
    // Everything the speaker sends meanwhile (KEEPALIVEs, its routes), read so that its writes never block.
    let stop_reading = Arc::new(AtomicBool::new(false));
    let stop = stop_reading.clone();
    let log_path = ferrolb.speakers[0].as_ref().unwrap().log_path().to_owned();
    let reader = std::thread::spawn(move || {
        let started = Instant::now();
        let mut heard = Vec::new();
        let closed = |heard: &[Message]| {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let tail: Vec<&str> = log.lines().filter(|l| l.contains(HOSTILE_ADDR)).collect();
            panic!(
                "the speaker closed the flood session after {:?}; it sent {:?}\nits log:\n{}",
                started.elapsed(),
                heard.iter().map(Message::message_type).collect::<Vec<_>>(),
                tail[tail.len().saturating_sub(30)..].join("\n")
            )
        };
        while !stop.load(Ordering::Relaxed) {
            match conn.read_message(Duration::from_millis(200)) {
                Ok(Some(Message::Notification(_))) | Ok(None) => closed(&heard),
                Ok(Some(m)) => heard.push(m),
                Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {}
                Err(e) => panic!("flood session: {e}"),
            }
        }
        (conn, heard)
    });
    // Idle: the session up, a KEEPALIVE a second.
    let mut idle_kb = 0;
    for _ in 0..4 {
        writer.write_all(&keepalive).expect("KEEPALIVE");
        std::thread::sleep(Duration::from_secs(1));
        idle_kb = idle_kb.max(proc_status_kb(pid, "VmRSS"));
    }
    let hwm_before = proc_status_kb(pid, "VmHWM");
    let frr_before = frr_sample(lab);
    assert_eq!(frr_before.state, "Established", "{frr_before:?}");
    let rss = RssSampler::start(pid);
    let stop_frr = Arc::new(AtomicBool::new(false));
    let frr_watch = watch_frr(lab, stop_frr.clone());
    let received_before = updates_received_by_speaker(lab);
    let flood = std::thread::spawn(move || {
        let started = Instant::now();
        let (mut messages, mut bytes, mut full_passes) = (0u64, 0u64, 0u64);
        'flood: loop {
            for (batch, count) in &prefix_updates {
                writer.write_all(batch).expect("flood write");
                bytes += batch.len() as u64;
                messages += count;
                if started.elapsed() >= Duration::from_secs(flood_secs) {
                    break 'flood;
                }
            }
            full_passes += 1;
            writer.write_all(&max_updates).expect("flood write");
            messages += 500;
            bytes += max_updates.len() as u64;
        }
        (messages, bytes, full_passes, started.elapsed(), writer)
    });
    // Kubernetes work during the flood: a new Service reaches FRR from node-1.
    std::thread::sleep(Duration::from_secs(flood_secs / 3));
    let k8s_started = Instant::now();
    let during_vip = service_on_node_1(lab, &client, "during").await;
    let k8s_latency = k8s_started.elapsed();
    let (sent_messages, sent_bytes, full_passes, flood_time, mut writer) = flood.join().unwrap();
    // Every flooded message was valid: the session is still up a hold time later, and the speaker sent
    // nothing but KEEPALIVEs and its own routes (we send KEEPALIVEs now, or its hold timer would expire).
    for _ in 0..=HOSTILE_HOLD_SECS {
        writer
            .write_all(&keepalive)
            .expect("KEEPALIVE after the flood");
        std::thread::sleep(Duration::from_secs(1));
    }
    let received = updates_received_by_speaker(lab) - received_before;
    stop_reading.store(true, Ordering::Relaxed);
    let (conn, heard) = reader.join().unwrap();
    // The 4,096-octet UPDATEs with every attribute were well formed: no RFC 7606 handling was needed.
    let log = ferrolb.speakers[0].as_ref().unwrap().log();
    assert!(
        !log.contains("UPDATE with errors handled per RFC 7606"),
        "the speaker found errors in the flood:\n{log}"
    );
    assert!(
        heard
            .iter()
            .all(|m| matches!(m, Message::Keepalive | Message::Update(_))),
        "the speaker sent {heard:?}"
    );
    assert!(
        heard.iter().any(|m| matches!(m, Message::Keepalive)),
        "no KEEPALIVE from the speaker during the flood"
    );
    assert!(
        full_passes >= 1,
        "the flood did not announce all 1,000,000 prefixes in {flood_secs} s ({sent_bytes} octets sent)"
    );
    println!(
        "flood: {sent_messages} UPDATEs ({} MB) in {:.1} s = {:.0} UPDATEs/s sent; the speaker decoded {received} \
         ({:.0}/s); 1,000,000 IPv6 /64s in {prefix_messages} UPDATEs, announced {full_passes} times; \
         Service created during the flood in FRR after {:.2} s",
        sent_bytes / 1_000_000,
        flood_time.as_secs_f64(),
        sent_messages as f64 / flood_time.as_secs_f64(),
        received as f64 / flood_time.as_secs_f64(),
        k8s_latency.as_secs_f64(),
    );
    drop(conn);

    // --- Session 2 (stall): ROUTE-REFRESH requests, never reading.
    let mut conn = Conn::accept(&listener);
    conn.establish(90);
    let refresh = Message::RouteRefresh(RouteRefresh {
        afi: 1,
        subtype: 0,
        safi: 1,
    })
    .encode(&conn.ctx)
    .unwrap()
    .repeat(200);
    conn.stream
        .set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let stall_started = Instant::now();
    // A write may stop mid-message: resume where it stopped, so the stream stays well framed.
    let mut offset = 0;
    let closed = loop {
        match conn.stream.write(&refresh[offset..]) {
            Ok(n) => offset = (offset + n) % refresh.len(),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => break e,
        }
        assert!(
            stall_started.elapsed() < WRITE_TIMEOUT + Duration::from_secs(30),
            "the speaker kept a peer that does not read for {:?}",
            stall_started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    let stall_time = stall_started.elapsed();
    // The speaker drops the connection (the reset we saw), then logs why.
    let speaker = ferrolb.speakers[0].as_ref().unwrap();
    lab.wait_until(
        Duration::from_secs(5),
        "the write timeout in the log",
        || Ok(speaker.log().contains("the peer is not reading")),
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}: the stalled session was not closed by the write timeout ({closed}):\n{}",
            speaker.log()
        )
    });
    let log = speaker.log();
    let refresh_lines = log
        .lines()
        .filter(|l| l.contains("ROUTE-REFRESH: sending the table again"))
        .count();
    println!(
        "stall: the speaker closed the session that stopped reading after {:.1} s ({closed}), without a \
         NOTIFICATION (its send buffer was full); it answered {refresh_lines} ROUTE-REFRESH requests (one log \
         line each)",
        stall_time.as_secs_f64()
    );
    drop(conn);

    // --- Session 3 (silence): a valid OPEN (hold time 3 s), then nothing.
    let mut conn = Conn::accept(&listener);
    conn.exchange_opens(3);
    let silent_started = Instant::now();
    let notification = loop {
        match conn.read_message(Duration::from_secs(30)) {
            Ok(Some(Message::Keepalive)) => {}
            Ok(Some(Message::Notification(n))) => break n,
            other => panic!("expected KEEPALIVE then NOTIFICATION from the speaker, got {other:?}"),
        }
    };
    let silent_time = silent_started.elapsed();
    assert_eq!(
        code_of(&notification),
        (HOLD_TIMER_EXPIRED, 0),
        "{notification:?}"
    );
    assert!(
        matches!(conn.read_message(Duration::from_secs(5)), Ok(None)),
        "the connection stays open after the NOTIFICATION"
    );
    println!(
        "silence: NOTIFICATION Hold Timer Expired (4/0) {:.1} s after our OPEN (hold time 3 s)",
        silent_time.as_secs_f64()
    );
    drop(conn);

    // --- 100 connections at once to node-1's BGP port: refused (the speaker only connects out).
    let target = format!("{}:179", node_addr(1));
    let outcomes: Vec<std::io::ErrorKind> = in_netns(&hostile_ns, || {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..100)
                .map(|_| {
                    s.spawn(|| {
                        let addr = target.parse().unwrap();
                        match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
                            Ok(_) => ErrorKind::Other,
                            Err(e) => e.kind(),
                        }
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    });
    assert!(
        outcomes.iter().all(|k| *k == ErrorKind::ConnectionRefused),
        "{outcomes:?}"
    );
    println!("100 simultaneous connections to {target}: all refused");

    // --- The speaker is still a good peer: a normal session comes up again.
    let mut conn = Conn::accept(&listener);
    conn.establish(90);
    drop(conn);

    stop_frr.store(true, Ordering::Relaxed);
    let frr = frr_watch.join().unwrap();
    let (peak_kb, hwm_after) = rss.finish();
    println!(
        "speaker RSS: idle {idle_kb} kB, peak during the attacks {peak_kb} kB ({:.2}x idle); VmHWM {hwm_before} kB \
         before, {hwm_after} kB after",
        peak_kb as f64 / idle_kb as f64
    );
    assert!(
        peak_kb < 2 * idle_kb,
        "RSS {peak_kb} kB is not under 2x idle {idle_kb} kB"
    );
    // VmHWM also holds the start-up peak (the initial LISTs): the attacks must not have raised it past 2x idle.
    assert!(
        hwm_after == hwm_before || hwm_after < 2 * idle_kb,
        "VmHWM rose from {hwm_before} to {hwm_after} kB, not under 2x idle {idle_kb} kB"
    );

    // FRR's session with node-1: never reset, never a late KEEPALIVE.
    let last = frr.last().cloned().unwrap_or_default();
    let max_silence = frr.iter().map(|s| s.last_read_ms).max().unwrap_or_default();
    println!(
        "FRR <-> node-1 over {} samples: connections established {} -> {}, dropped {} -> {}, up {} -> {} ms, \
         keepalives received {} -> {}, longest silence {max_silence} ms (keepalive interval {} ms)",
        frr.len(),
        frr_before.established,
        last.established,
        frr_before.dropped,
        last.dropped,
        frr_before.up_ms,
        last.up_ms,
        frr_before.keepalives_recv,
        last.keepalives_recv,
        last.keepalive_ms,
    );
    assert!(frr.len() >= 10, "too few FRR samples: {frr:?}");
    for s in &frr {
        assert_eq!(s.state, "Established", "{s:?}");
        assert_eq!(
            s.established, frr_before.established,
            "FRR's session was reset: {s:?}"
        );
        assert_eq!(
            s.dropped, frr_before.dropped,
            "FRR's session dropped: {s:?}"
        );
        assert!(
            s.up_ms >= frr_before.up_ms,
            "FRR's session restarted: {s:?}"
        );
        // A KEEPALIVE (or UPDATE) at least every keepalive interval, with 1 s of sampling and scheduling slack.
        assert!(
            s.last_read_ms <= s.keepalive_ms + 1000,
            "FRR heard nothing from node-1 for {} ms (keepalive interval {} ms)",
            s.last_read_ms,
            s.keepalive_ms
        );
    }
    assert!(
        last.keepalives_recv > frr_before.keepalives_recv,
        "no KEEPALIVE reached FRR during the attacks"
    );
    // Both Services are still announced from node-1.
    for vip in [&steady_vip, &during_vip] {
        assert_eq!(path_peers(lab, vip), set(&[&node_addr(1)]), "{vip}");
    }
    ferrolb.stop();
}
