use super::*;
use crate::serve::tests::get_with;
use crate::serve::{Readiness, spawn_with};
use crate::service_filter::ServiceFilter;
use crate::speaker::translate;
use crate::speaker::views::NodeNames;
use k8s_openapi::api::core::v1::{
    LoadBalancerIngress, LoadBalancerStatus, Service, ServiceSpec, ServiceStatus,
};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher;
use prometheus_client::registry::Registry;
use std::net::SocketAddr;

const CONFIG: &str = "\
peers:
- peer-address: 198.18.0.1
  peer-asn: 65559
  my-asn: 65559
address-pools:
- name: public-pool
  protocol: bgp
  addresses:
  - 203.0.113.0/24
";

fn service(name: &str, ip: &str) -> ServiceView {
    let svc = Service {
        metadata: ObjectMeta {
            namespace: Some("default".into()),
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("LoadBalancer".into()),
            external_traffic_policy: Some("Local".into()),
            ..ServiceSpec::default()
        }),
        status: Some(ServiceStatus {
            load_balancer: Some(LoadBalancerStatus {
                ingress: Some(vec![LoadBalancerIngress {
                    ip: Some(ip.into()),
                    ..LoadBalancerIngress::default()
                }]),
            }),
            ..ServiceStatus::default()
        }),
    };
    ServiceView::new(&ServiceFilter::default(), &svc, &mut NodeNames::default())
}

fn slice(service: &str, node: &str) -> SliceView {
    let slice = EndpointSlice {
        metadata: ObjectMeta {
            namespace: Some("default".into()),
            name: Some(format!("{service}-abcde")),
            labels: Some([(translate::SERVICE_NAME_LABEL.to_owned(), service.to_owned())].into()),
            ..ObjectMeta::default()
        },
        address_type: "IPv4".into(),
        endpoints: vec![Endpoint {
            addresses: vec!["198.19.1.5".into()],
            node_name: Some(node.into()),
            conditions: Some(EndpointConditions {
                ready: Some(true),
                serving: Some(true),
                terminating: Some(false),
            }),
            ..Endpoint::default()
        }],
        ports: None,
    };
    SliceView::new(&slice, &mut NodeNames::default())
}

fn store_of<V: crate::speaker::store::Keyed>(objects: Vec<V>) -> Store<V> {
    let (store, mut writer) = crate::speaker::store::store();
    for o in objects {
        writer.apply(watcher::Event::Apply(o));
    }
    store
}

fn nodes_of(objects: Vec<Node>) -> reflector::Store<Node> {
    let (store, mut writer): (reflector::Store<Node>, Writer<Node>) = reflector::store();
    for o in objects {
        writer.apply_watcher_event(&watcher::Event::Apply(o));
    }
    store
}

/// `whoami` has a ready endpoint on node-1 (announced); `shared` has the same IP and its endpoint on node-2.
fn source(config: Option<&str>) -> (ExplainSource, watch::Sender<Option<Arc<Config>>>) {
    let (tx, rx) = watch::channel(config.map(|c| Arc::new(Config::from_yaml(c).unwrap())));
    let source = ExplainSource {
        node_name: "node-1".into(),
        services: store_of(vec![
            service("whoami", "203.0.113.10"),
            service("shared", "203.0.113.10"),
            service("lonely", "203.0.113.11"),
        ]),
        slices: store_of(vec![slice("whoami", "node-1"), slice("shared", "node-2")]),
        nodes: nodes_of(vec![]),
        config: rx,
    };
    (source, tx)
}

async fn serve(source: ExplainSource) -> SocketAddr {
    serve_with(router(source)).await
}

async fn serve_with(routes: axum::Router) -> SocketAddr {
    spawn_with(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(Registry::default()),
        Readiness::new(),
        routes,
    )
    .await
    .unwrap()
}

/// (status line, body)
async fn get(addr: SocketAddr, path: &str, headers: &str) -> (String, String) {
    let raw = get_with(addr, path, headers).await;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

#[tokio::test]
async fn a_service_is_explained_in_text_as_the_cli_does_and_in_json_on_request() {
    let (src, _tx) = source(Some(CONFIG));
    let config = Config::from_yaml(CONFIG).unwrap();
    let expected = explain_service(
        "node-1",
        None,
        &config,
        &service("whoami", "203.0.113.10"),
        [&slice("whoami", "node-1")],
    )
    .unwrap();
    assert!(expected.announced);
    let addr = serve(src).await;

    let (status, body) = get(addr, "/explain?service=default/whoami", "").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(body, expected.to_string());
    assert!(
        body.starts_with(
            "Service default/whoami on node node-1: announced\n  routes:\n    203.0.113.10/32\n"
        ),
        "{body}"
    );

    let want = serde_json::to_value(&expected).unwrap();
    let (status, body) = get(addr, "/explain?service=default%2Fwhoami&format=json", "").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        want
    );
    let (_, body) = get(
        addr,
        "/explain?service=default/whoami",
        "Accept: application/json\r\n",
    )
    .await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        want
    );
}

#[tokio::test]
async fn explain_is_served_only_when_enabled_and_the_rest_stays() {
    let (on_src, _on_tx) = source(Some(CONFIG));
    let on = serve_with(router_if(true, on_src)).await;
    let (status, _) = get(on, "/explain?service=default/whoami", "").await;
    assert_eq!(status, "HTTP/1.1 200 OK");

    let (off_src, _off_tx) = source(Some(CONFIG));
    let off = serve_with(router_if(false, off_src)).await;
    let (status, body) = get(off, "/explain?service=default/whoami", "").await;
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    assert_eq!(body, "");
    let (status, _) = get(off, "/healthz", "").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let (status, _) = get(off, "/metrics", "").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
}

#[tokio::test]
async fn an_ip_explains_every_service_that_has_it() {
    let (src, _tx) = source(Some(CONFIG));
    let addr = serve(src).await;
    let (status, body) = get(addr, "/explain?ip=203.0.113.10&format=json", "").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let found: Vec<(&str, bool)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["service"].as_str().unwrap(),
                e["announced"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        found,
        vec![("default/shared", false), ("default/whoami", true)]
    );

    let (_, text) = get(addr, "/explain?ip=203.0.113.10", "").await;
    assert!(
        text.starts_with("Service default/shared on node node-1: not announced\n"),
        "{text}"
    );
    assert!(
        text.contains("\nService default/whoami on node node-1: announced\n"),
        "{text}"
    );
}

#[tokio::test]
async fn unknown_services_and_addresses_are_404_bad_queries_400_and_no_config_503() {
    let (src, tx) = source(Some(CONFIG));
    let addr = serve(src).await;
    let (status, body) = get(addr, "/explain?service=default/nope", "").await;
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    assert_eq!(body, format!("{}\n", not_known("default/nope", "node-1")));
    let (status, body) = get(addr, "/explain?ip=203.0.113.99&format=json", "").await;
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        serde_json::json!({"error": "no Service known to node node-1 has the address 203.0.113.99 in its status"})
    );
    for bad in [
        "/explain",
        "/explain?service=whoami",
        "/explain?ip=nope",
        "/explain?colour=red",
    ] {
        let (status, _) = get(addr, bad, "").await;
        assert_eq!(status, "HTTP/1.1 400 Bad Request", "{bad}");
    }
    tx.send_replace(None);
    let (status, body) = get(addr, "/explain?service=default/whoami", "").await;
    assert_eq!(status, "HTTP/1.1 503 Service Unavailable");
    assert_eq!(body, "no valid configuration is loaded yet\n");
}

#[test]
fn queries_parse_with_escapes_and_reject_what_is_malformed() {
    assert_eq!(
        parse_query(Some("service=kube%2Dsystem%2Fdns&format=json")),
        Ok((
            ExplainQuery::Service {
                namespace: "kube-system".into(),
                name: "dns".into()
            },
            true
        ))
    );
    assert_eq!(
        parse_query(Some("ip=2001:db8::7")),
        Ok((ExplainQuery::Ip("2001:db8::7".parse().unwrap()), false))
    );
    for bad in [
        None,
        Some(""),
        Some("service=a/b&ip=203.0.113.1"),
        Some("service=a/b/c"),
        Some("service=/b"),
        Some("service=a%2"),
        Some("service=a%ZZ/b"),
        Some("ip=203.0.113.1&format=yaml"),
    ] {
        assert!(
            matches!(parse_query(bad), Err(ExplainError::BadQuery(_))),
            "{bad:?}"
        );
    }
}
