//! The small HTTP server every ferrolb daemon runs: `/metrics` (Prometheus text format), `/healthz` (the process
//! answers) and `/readyz` (the daemon says it is ready). The controller and the speaker share it; the speaker adds
//! `/explain` ([`spawn_with`]).

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tokio::net::TcpListener;

/// Whether the daemon is ready; cheap to clone, shared between the daemon (which sets it) and the server.
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// A new flag, not ready.
    pub fn new() -> Readiness {
        Readiness::default()
    }

    /// Sets whether `/readyz` answers 200 (ready) or 503 (not ready).
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Relaxed);
    }

    /// Whether the daemon is ready.
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Where `/metrics` and the probes listen when no `--metrics-addr` is given: loopback only. In a Pod the
/// manifests pass `--metrics-addr=$(POD_IP):7472` (the downward API's `status.podIP`), so Prometheus and the
/// kubelet's probes reach it on the Pod's (for the speaker: the node's) address and nothing else.
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:7472";

/// Parses a listen address `IP:PORT`. An IPv6 address may be bracketed (`[2001:db8::1]:7472`) or not
/// (`2001:db8::1:7472`: the port is always the part after the last colon), so that a manifest can write
/// `$(POD_IP):7472` whatever the Pod's IP family.
pub fn parse_listen_addr(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let bad = || {
        format!(
            "`{text}` is not IP:PORT (e.g. 192.0.2.1:7472, [2001:db8::1]:7472 or 2001:db8::1:7472); \
             in a Pod, is the POD_IP variable set from status.podIP?"
        )
    };
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let ip = host.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
    let port = port.parse::<u16>().map_err(|_| bad())?;
    Ok(SocketAddr::new(ip.into(), port))
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen for /metrics and probes on {addr}: {source}")]
pub struct ServeError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// The bind error.
    #[source]
    pub source: std::io::Error,
}

#[derive(Clone)]
struct Shared {
    registry: Arc<Registry>,
    readiness: Readiness,
    /// The length of the last `/metrics` text: the next one is built in a buffer of about that size, not
    /// grown by doubling (at 10,000 Services the text is about 0.6 MB, and doubling peaked near 1 MB).
    last_len: Arc<AtomicUsize>,
}

/// Binds `addr` and serves `/metrics`, `/healthz` and `/readyz` in a background task. Returns the bound address
/// (useful with port 0) once listening.
pub async fn spawn(
    addr: SocketAddr,
    registry: Arc<Registry>,
    readiness: Readiness,
) -> Result<SocketAddr, ServeError> {
    spawn_with(addr, registry, readiness, Router::new()).await
}

/// Like [`spawn`], also serving the daemon's own routes `extra` (the speaker's `/explain`).
pub async fn spawn_with(
    addr: SocketAddr,
    registry: Arc<Registry>,
    readiness: Readiness,
    extra: Router,
) -> Result<SocketAddr, ServeError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ServeError { addr, source })?;
    let app = router(Shared {
        registry,
        readiness,
        last_len: Arc::default(),
    })
    .merge(extra);
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!(%bound, error = %err, "metrics server stopped");
        }
    });
    Ok(bound)
}

fn router(shared: Shared) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(shared)
}

async fn metrics(State(shared): State<Shared>) -> Response {
    let last = shared.last_len.load(Ordering::Relaxed);
    let mut text = String::with_capacity(last + last / 16);
    match prometheus_client::encoding::text::encode(&mut text, &shared.registry) {
        Ok(()) => {
            shared.last_len.store(text.len(), Ordering::Relaxed);
            (
                [(
                    header::CONTENT_TYPE,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )],
                text,
            )
                .into_response()
        }
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "metrics encoding failed\n",
        )
            .into_response(),
    }
}

async fn readyz(State(shared): State<Shared>) -> Response {
    if shared.readiness.get() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use prometheus_client::metrics::gauge::Gauge;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// The raw HTTP/1.1 response to `GET path` (with extra header lines, each ending in CRLF).
    pub(crate) async fn get_with(addr: SocketAddr, path: &str, headers: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).await.unwrap();
        out
    }

    #[test]
    fn listen_addresses_parse_in_both_families_with_or_without_brackets() {
        let v4: SocketAddr = "192.0.2.7:7472".parse().unwrap();
        assert_eq!(parse_listen_addr("192.0.2.7:7472"), Ok(v4));
        let v6: SocketAddr = "[2001:db8::5]:7472".parse().unwrap();
        assert_eq!(parse_listen_addr("[2001:db8::5]:7472"), Ok(v6));
        assert_eq!(parse_listen_addr("2001:db8::5:7472"), Ok(v6));
        assert_eq!(
            parse_listen_addr(DEFAULT_METRICS_ADDR),
            Ok("127.0.0.1:7472".parse().unwrap())
        );
        for bad in [
            "$(POD_IP):7472",
            "192.0.2.7",
            ":7472",
            "2001:db8::5",
            "192.0.2.7:http",
        ] {
            let err = parse_listen_addr(bad).unwrap_err();
            assert!(err.starts_with(&format!("`{bad}` is not IP:PORT")), "{err}");
        }
    }

    async fn get_path(addr: SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn serves_metrics_health_and_readiness() {
        let mut registry = Registry::with_prefix("ferrolb");
        let gauge: Gauge = Gauge::default();
        gauge.set(7);
        registry.register("example", "An example", gauge);
        let readiness = Readiness::new();
        let addr = spawn(
            "127.0.0.1:0".parse().unwrap(),
            Arc::new(registry),
            readiness.clone(),
        )
        .await
        .unwrap();

        let metrics = get_path(addr, "/metrics").await;
        assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
        assert!(metrics.contains("\nferrolb_example 7\n"), "{metrics}");
        assert!(get_path(addr, "/healthz").await.starts_with("HTTP/1.1 200"));
        assert!(get_path(addr, "/readyz").await.starts_with("HTTP/1.1 503"));
        readiness.set(true);
        assert!(get_path(addr, "/readyz").await.starts_with("HTTP/1.1 200"));
    }
}
