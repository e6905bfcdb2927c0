//! The health check: one `GET` of the configured URL (HTTPS through rustls, or plain HTTP) per interval. 200 is
//! healthy; any other status, a connection or TLS error, or no status line within the timeout is a failure.
//! Only the status line is read.

use ferrolb_config::{HealthCheck, TlsTrust};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    self, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

/// The longest status line read.
const MAX_STATUS_LINE: usize = 1024;

/// Why the checker could not be built (at startup).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The URL could not be split into host, port and path.
    #[error("health-check url {0:?} is not http(s)://HOST[:PORT]/PATH")]
    Url(String),
    /// The CA file could not be read.
    #[error("cannot read the CA certificates in {path}: {source}")]
    CaFile {
        /// The file.
        path: String,
        /// What went wrong.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// The CA file holds no usable certificate.
    #[error("{0} holds no usable CA certificate")]
    NoCa(String),
    /// The server name is not a DNS name or an IP address.
    #[error("invalid TLS server name {0:?}")]
    ServerName(String),
    /// rustls refused the configuration.
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
}

/// Why one check failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckFailure {
    /// No status within the timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// TCP connect, TLS handshake, or I/O failed.
    #[error("{what}: {source}")]
    Io {
        /// The step that failed.
        what: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The answer did not start with an HTTP status line.
    #[error("not an HTTP answer: {0:?}")]
    Malformed(String),
    /// A status other than 200.
    #[error("HTTP status {0}")]
    Status(u16),
}

/// Where the check goes: `(host, port, path)` from a URL, and whether it is HTTPS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The host, without brackets for IPv6.
    pub host: String,
    /// The port (443 / 80 by default).
    pub port: u16,
    /// The path and query (at least `/`).
    pub path: String,
    /// Whether it is https.
    pub https: bool,
}

/// Splits an `http(s)://HOST[:PORT]/PATH` URL (the configuration has checked its form already).
pub fn target(url: &str) -> Option<Target> {
    let (https, rest) = match url.strip_prefix("https://") {
        Some(rest) => (true, rest),
        None => (false, url.strip_prefix("http://")?),
    };
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']')?;
            (host, after.strip_prefix(':'))
        }
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let port = match port {
        Some(p) => p.parse().ok().filter(|p| *p != 0)?,
        None if https => 443,
        None => 80,
    };
    (!host.is_empty()).then(|| Target {
        host: host.to_owned(),
        port,
        path,
        https,
    })
}

/// Runs health checks against one URL.
pub struct Checker {
    target: Target,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    timeout: Duration,
}

impl Checker {
    /// Builds the checker (reads the CA file now).
    pub fn new(check: &HealthCheck) -> Result<Checker, SetupError> {
        let target = target(&check.url).ok_or_else(|| SetupError::Url(check.url.clone()))?;
        let tls = match &check.trust {
            TlsTrust::Plain => None,
            trust => {
                let name = check.server_name.as_deref().unwrap_or(&target.host);
                let server_name = ServerName::try_from(name.to_owned())
                    .map_err(|_| SetupError::ServerName(name.to_owned()))?;
                Some((
                    TlsConnector::from(Arc::new(client_config(trust)?)),
                    server_name,
                ))
            }
        };
        Ok(Checker {
            target,
            tls,
            timeout: check.timeout,
        })
    }

    /// The TCP port checked.
    pub fn port(&self) -> u16 {
        self.target.port
    }

    /// One check: Ok for a 200.
    pub async fn check(&self) -> Result<(), CheckFailure> {
        tokio::time::timeout(self.timeout, self.get())
            .await
            .map_err(|_| CheckFailure::Timeout(self.timeout))?
    }

    async fn get(&self) -> Result<(), CheckFailure> {
        let io = |what| move |source| CheckFailure::Io { what, source };
        let tcp = TcpStream::connect((self.target.host.as_str(), self.target.port))
            .await
            .map_err(io("connect"))?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => self.exchange(tcp).await,
            Some((connector, name)) => {
                let stream = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(io("TLS handshake"))?;
                self.exchange(stream).await
            }
        }
    }

    async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        mut stream: S,
    ) -> Result<(), CheckFailure> {
        let host = if self.target.host.contains(':') {
            format!("[{}]", self.target.host)
        } else {
            self.target.host.clone()
        };
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {host}:{}\r\nUser-Agent: ferrolb-control-plane-vip\r\nAccept: */*\r\nConnection: close\r\n\r\n",
            self.target.path, self.target.port
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|source| CheckFailure::Io {
                what: "send the request",
                source,
            })?;
        let mut buf = Vec::with_capacity(128);
        let mut chunk = [0u8; 256];
        while !buf.windows(2).any(|w| w == b"\r\n") && buf.len() < MAX_STATUS_LINE {
            let n = stream
                .read(&mut chunk)
                .await
                .map_err(|source| CheckFailure::Io {
                    what: "read the answer",
                    source,
                })?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        match status_of(&buf)? {
            200 => Ok(()),
            other => Err(CheckFailure::Status(other)),
        }
    }
}

/// The status code of an answer's first line (`HTTP/1.1 200 OK`).
pub fn status_of(answer: &[u8]) -> Result<u16, CheckFailure> {
    let end = answer
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(answer.len());
    let line = String::from_utf8_lossy(&answer[..end]);
    let mut words = line.split(' ');
    match (words.next(), words.next()) {
        (Some(version), Some(code)) if version.starts_with("HTTP/1.") && code.len() == 3 => code
            .parse()
            .map_err(|_| CheckFailure::Malformed(line.to_string())),
        _ => Err(CheckFailure::Malformed(line.chars().take(80).collect())),
    }
}

fn client_config(trust: &TlsTrust) -> Result<ClientConfig, SetupError> {
    let provider = Arc::new(ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    Ok(match trust {
        TlsTrust::CaFile(path) => {
            let shown = path.display().to_string();
            let mut roots = RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|source| SetupError::CaFile {
                    path: shown.clone(),
                    source,
                })?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|source| SetupError::CaFile {
                    path: shown.clone(),
                    source,
                })?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(SetupError::NoCa(shown));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        TlsTrust::InsecureSkipVerify | TlsTrust::Plain => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth(),
    })
}

/// `insecure-skip-verify: true`: any certificate, for any name, is accepted (the handshake's signatures are
/// still checked, so the connection is encrypted to whoever holds the certificate's key).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
