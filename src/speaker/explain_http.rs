//! `GET /explain` on the speaker's metrics port: why this node does or does not announce a Service, from the
//! speaker's cached objects, with the same content as `ferrolb speaker --explain` ([`explain_service`]).
//!
//! - `?service=namespace/name`: that Service; `?ip=203.0.113.10`: every Service whose ingress has that address
//!   (several when the IP is shared).
//! - Plain text by default; JSON with `Accept: application/json` or `?format=json` (an object for `service`,
//!   an array for `ip`).
//! - 404 for an unknown Service or an address no Service has, 400 for a malformed query, 503 before a valid
//!   configuration is loaded.

use super::explain::explain_service;
use super::store::Store;
use super::views::{ServiceView, SliceView};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ferrolb_announce::{Explanation, not_known};
use ferrolb_config::Config;
use k8s_openapi::api::core::v1::Node;
use kube::runtime::reflector::{self, ObjectRef};
use std::net::IpAddr;
use std::sync::Arc;
use tokio::sync::watch;

/// What the endpoint reads: the speaker's stores and the configuration in force.
#[derive(Clone)]
pub struct ExplainSource {
    /// This node's name.
    pub node_name: String,
    /// The Service store.
    pub services: Store<ServiceView>,
    /// The EndpointSlice store.
    pub slices: Store<SliceView>,
    /// The store holding this node.
    pub nodes: reflector::Store<Node>,
    /// The configuration in force (`None` until a valid one is loaded).
    pub config: watch::Receiver<Option<Arc<Config>>>,
}

/// What `/explain` was asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExplainQuery {
    /// `?service=namespace/name`.
    Service {
        /// The namespace.
        namespace: String,
        /// The name.
        name: String,
    },
    /// `?ip=address`.
    Ip(IpAddr),
}

/// Why `/explain` cannot answer, with the HTTP status it gets.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExplainError {
    /// The query is malformed (400).
    #[error(
        "{0}; ask /explain?service=namespace/name or /explain?ip=address (add format=json for JSON)"
    )]
    BadQuery(String),
    /// No valid configuration is loaded yet (503).
    #[error("no valid configuration is loaded yet")]
    NoConfig,
    /// The Service is not known (404).
    #[error("{0}")]
    UnknownService(String),
    /// No Service has that address (404).
    #[error("no Service known to node {node} has the address {ip} in its status")]
    UnknownIp {
        /// The address asked for.
        ip: IpAddr,
        /// This node.
        node: String,
    },
}

impl ExplainError {
    fn status(&self) -> StatusCode {
        match self {
            ExplainError::BadQuery(_) => StatusCode::BAD_REQUEST,
            ExplainError::NoConfig => StatusCode::SERVICE_UNAVAILABLE,
            ExplainError::UnknownService(_) | ExplainError::UnknownIp { .. } => {
                StatusCode::NOT_FOUND
            }
        }
    }
}

/// Decodes `%XX` escapes and `+` (a space) of one query-string component; `None` if malformed.
fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'%' => {
                let hi = char::from(bytes.next()?).to_digit(16)?;
                let lo = char::from(bytes.next()?).to_digit(16)?;
                out.push(u8::try_from(hi * 16 + lo).ok()?);
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

/// Parses the query string: what is asked, and whether `format=json` was given.
pub fn parse_query(query: Option<&str>) -> Result<(ExplainQuery, bool), ExplainError> {
    let mut service = None;
    let mut ip = None;
    let mut json = false;
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v)
            .ok_or_else(|| ExplainError::BadQuery(format!("cannot decode {pair:?}")))?;
        match k {
            "service" => service = Some(v),
            "ip" => ip = Some(v),
            "format" => match v.as_str() {
                "json" => json = true,
                "text" => json = false,
                other => {
                    return Err(ExplainError::BadQuery(format!(
                        "unknown format {other:?} (json or text)"
                    )));
                }
            },
            other => {
                return Err(ExplainError::BadQuery(format!(
                    "unknown parameter {other:?}"
                )));
            }
        }
    }
    let asked = match (service, ip) {
        (Some(key), None) => {
            let (namespace, name) = key
                .split_once('/')
                .filter(|(ns, name)| !ns.is_empty() && !name.is_empty() && !name.contains('/'))
                .ok_or_else(|| {
                    ExplainError::BadQuery(format!("service wants namespace/name, got {key:?}"))
                })?;
            ExplainQuery::Service {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            }
        }
        (None, Some(ip)) => ExplainQuery::Ip(ip.parse().map_err(|_| {
            ExplainError::BadQuery(format!("ip wants an IPv4 or IPv6 address, got {ip:?}"))
        })?),
        (Some(_), Some(_)) => {
            return Err(ExplainError::BadQuery(
                "give service or ip, not both".into(),
            ));
        }
        (None, None) => return Err(ExplainError::BadQuery("nothing asked".into())),
    };
    Ok((asked, json))
}

impl ExplainSource {
    fn explain_one(&self, config: &Config, svc: &ServiceView) -> Option<Explanation> {
        let slices = self.slices.state();
        let node = self.nodes.get(&ObjectRef::new(&self.node_name));
        explain_service(
            &self.node_name,
            node.as_deref(),
            config,
            svc,
            slices
                .iter()
                .filter(|s| s.belongs_to(&svc.namespace, &svc.name))
                .map(|s| s.as_ref()),
        )
    }

    /// The explanations `query` asks for, from the stores as they are now.
    pub fn explain(&self, query: &ExplainQuery) -> Result<Vec<Explanation>, ExplainError> {
        let config = self.config.borrow().clone().ok_or(ExplainError::NoConfig)?;
        match query {
            ExplainQuery::Service { namespace, name } => {
                let unknown = || {
                    ExplainError::UnknownService(not_known(
                        &format!("{namespace}/{name}"),
                        &self.node_name,
                    ))
                };
                let svc = self.services.get(namespace, name).ok_or_else(unknown)?;
                let e = self.explain_one(&config, &svc).ok_or_else(unknown)?;
                Ok(vec![e])
            }
            ExplainQuery::Ip(ip) => {
                let mut out: Vec<Explanation> = self
                    .services
                    .state()
                    .iter()
                    .filter(|svc| {
                        svc.service
                            .as_ref()
                            .is_some_and(|s| s.ingress_ips.contains(ip))
                    })
                    .filter_map(|svc| self.explain_one(&config, svc))
                    .collect();
                out.sort_by(|a, b| a.service.cmp(&b.service));
                if out.is_empty() {
                    return Err(ExplainError::UnknownIp {
                        ip: *ip,
                        node: self.node_name.clone(),
                    });
                }
                Ok(out)
            }
        }
    }
}

/// The `/explain` route, to merge into the metrics server ([`crate::serve::spawn_with`]).
pub fn router(source: ExplainSource) -> Router {
    Router::new()
        .route("/explain", get(handle))
        .with_state(source)
}

/// [`router`] when `enabled`, else no route at all: `GET /explain` then gets the server's 404
/// (`--no-explain-endpoint`).
pub fn router_if(enabled: bool, source: ExplainSource) -> Router {
    if enabled {
        router(source)
    } else {
        Router::new()
    }
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/json"))
}

async fn handle(State(source): State<ExplainSource>, uri: Uri, headers: HeaderMap) -> Response {
    let parsed = parse_query(uri.query());
    let json = wants_json(&headers) || parsed.as_ref().is_ok_and(|(_, json)| *json);
    let result = parsed.and_then(|(query, _)| {
        source
            .explain(&query)
            .map(|found| (matches!(query, ExplainQuery::Ip(_)), found))
    });
    match (result, json) {
        (Ok((_, found)), false) => {
            let text: String = found.iter().map(ToString::to_string).collect();
            text_response(StatusCode::OK, text)
        }
        (Ok((by_ip, found)), true) => {
            let body = if by_ip {
                serde_json::to_string(&found)
            } else {
                serde_json::to_string(&found.first())
            };
            match body {
                Ok(body) => json_response(StatusCode::OK, body),
                Err(err) => text_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("cannot encode the explanation: {err}\n"),
                ),
            }
        }
        (Err(err), false) => text_response(err.status(), format!("{err}\n")),
        (Err(err), true) => json_response(
            err.status(),
            serde_json::json!({ "error": err.to_string() }).to_string(),
        ),
    }
}

fn text_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

#[cfg(test)]
#[path = "explain_http_tests.rs"]
mod tests;
