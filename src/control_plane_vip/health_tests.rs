use super::*;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::PrivateKeyDer;

const CA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/src/control_plane_vip/testdata/ca.crt"
);
const SERVER_CERT: &[u8] = include_bytes!("testdata/server.crt");
const SERVER_KEY: &[u8] = include_bytes!("testdata/server.key");

/// What the test server does with each request.
#[derive(Clone, Copy)]
enum Answer {
    Status(u16),
    Hang,
}

/// A server on 127.0.0.1 (TLS with the test certificate, for `kubernetes` and 127.0.0.1, when `tls`).
async fn server(answer: Answer, tls: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tls.then(|| {
        let certs = CertificateDer::pem_slice_iter(SERVER_CERT)
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(SERVER_KEY).unwrap();
        let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        TlsAcceptor::from(Arc::new(config))
    });
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                match acceptor {
                    None => respond(tcp, answer).await,
                    Some(a) => {
                        if let Ok(s) = a.accept(tcp).await {
                            respond(s, answer).await;
                        }
                    }
                }
            });
        }
    });
    addr
}

async fn respond<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, answer: Answer) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    assert!(
        buf.starts_with(b"GET /readyz HTTP/1.1\r\nHost: "),
        "{buf:?}"
    );
    match answer {
        Answer::Status(code) => {
            let _ = s
                .write_all(format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n").as_bytes())
                .await;
            let _ = s.shutdown().await;
        }
        Answer::Hang => tokio::time::sleep(Duration::from_secs(60)).await,
    }
}

fn check(url: String, trust: TlsTrust, server_name: Option<&str>) -> HealthCheck {
    HealthCheck {
        url,
        trust,
        server_name: server_name.map(str::to_owned),
        interval: Duration::from_secs(1),
        timeout: Duration::from_millis(300),
        rise: 2,
        fall: 3,
        listen_probe: None,
    }
}

#[test]
fn urls_split_into_host_port_and_path() {
    let t = |host: &str, port, path: &str, https| Target {
        host: host.into(),
        port,
        path: path.into(),
        https,
    };
    assert_eq!(
        target("https://127.0.0.1:6443/readyz"),
        Some(t("127.0.0.1", 6443, "/readyz", true))
    );
    assert_eq!(
        target("http://[::1]:8080/readyz?verbose"),
        Some(t("::1", 8080, "/readyz?verbose", false))
    );
    assert_eq!(
        target("https://kubernetes"),
        Some(t("kubernetes", 443, "/", true))
    );
    assert_eq!(target("http://h?x"), Some(t("h", 80, "/?x", false)));
    assert_eq!(target("https://h:0/"), None);
    assert_eq!(target("ftp://h/"), None);
}

#[test]
fn status_lines() {
    assert_eq!(status_of(b"HTTP/1.1 200 OK\r\n\r\n").unwrap(), 200);
    assert_eq!(
        status_of(b"HTTP/1.0 503 Service Unavailable\r\n").unwrap(),
        503
    );
    assert!(matches!(
        status_of(b"SSH-2.0-OpenSSH\r\n"),
        Err(CheckFailure::Malformed(_))
    ));
    assert!(matches!(status_of(b""), Err(CheckFailure::Malformed(_))));
}

#[tokio::test]
async fn plain_http_200_is_healthy_and_anything_else_fails() {
    let ok = server(Answer::Status(200), false).await;
    let c = Checker::new(&check(format!("http://{ok}/readyz"), TlsTrust::Plain, None)).unwrap();
    c.check().await.unwrap();
    let bad = server(Answer::Status(503), false).await;
    let c = Checker::new(&check(
        format!("http://{bad}/readyz"),
        TlsTrust::Plain,
        None,
    ))
    .unwrap();
    assert!(matches!(c.check().await, Err(CheckFailure::Status(503))));
    let hang = server(Answer::Hang, false).await;
    let c = Checker::new(&check(
        format!("http://{hang}/readyz"),
        TlsTrust::Plain,
        None,
    ))
    .unwrap();
    assert!(matches!(c.check().await, Err(CheckFailure::Timeout(_))));
}

#[tokio::test]
async fn https_with_the_ca_checks_the_name_and_insecure_accepts_any() {
    let addr = server(Answer::Status(200), true).await;
    let url = format!("https://{addr}/readyz");
    let ca = || TlsTrust::CaFile(CA.into());
    // The certificate is for 127.0.0.1 and `kubernetes`.
    Checker::new(&check(url.clone(), ca(), None))
        .unwrap()
        .check()
        .await
        .unwrap();
    Checker::new(&check(url.clone(), ca(), Some("kubernetes")))
        .unwrap()
        .check()
        .await
        .unwrap();
    let wrong_name = Checker::new(&check(url.clone(), ca(), Some("other.example")))
        .unwrap()
        .check()
        .await;
    assert!(
        matches!(
            &wrong_name,
            Err(CheckFailure::Io {
                what: "TLS handshake",
                ..
            })
        ),
        "{wrong_name:?}"
    );
    Checker::new(&check(
        url.clone(),
        TlsTrust::InsecureSkipVerify,
        Some("other.example"),
    ))
    .unwrap()
    .check()
    .await
    .unwrap();
    let bad = server(Answer::Status(500), true).await;
    let c = Checker::new(&check(
        format!("https://{bad}/readyz"),
        TlsTrust::InsecureSkipVerify,
        None,
    ))
    .unwrap();
    assert!(matches!(c.check().await, Err(CheckFailure::Status(500))));
}

#[test]
fn a_missing_or_empty_ca_file_is_a_setup_error() {
    let missing = Checker::new(&check(
        "https://127.0.0.1:6443/readyz".into(),
        TlsTrust::CaFile("/nonexistent/ca.crt".into()),
        None,
    ));
    assert!(matches!(missing, Err(SetupError::CaFile { .. })));
    let not_a_cert = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let empty = Checker::new(&check(
        "https://127.0.0.1:6443/readyz".into(),
        TlsTrust::CaFile(not_a_cert.into()),
        None,
    ));
    assert!(
        matches!(empty, Err(SetupError::NoCa(_))),
        "{:?}",
        empty.err()
    );
}
