//! `ferrolb status` on the seed scenario: exact table and JSON.
//!
//! One peer (198.18.0.1, AS 64500) and five nodes: node-1 and node-2 advertise pool `public` over Established
//! sessions; node-3's session (pools `public` and `private`) is down; node-4 is excluded; node-5 hosts an
//! endpoint but has no speaker status. Services: `web` (Cluster, pool recorded by the controller), `api` (Local,
//! pool from the annotation, a terminating endpoint on node-2), `internal` (pool `private`, which only node-3
//! advertises), `pending` (no address), plus one of another class and a ClusterIP Service, which are not reported.

use super::report::{self, Report};
use super::table;
use crate::controller::status::CONDITION_TYPE;
use crate::crds::session_status::{
    BGPSessionStatus, BGPSessionStatusSpec, SessionError, SessionStatus,
};
use crate::service_filter::ServiceFilter;
use crate::speaker::translate::tests::slice;
use k8s_openapi::api::core::v1::{
    LoadBalancerIngress, LoadBalancerStatus, Service, ServiceSpec, ServiceStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use serde_json::json;

fn time(second: i64) -> Time {
    Time(Timestamp::from_second(second).unwrap())
}

/// 2026-12-07T02:00:00Z plus `minutes`.
fn at(minutes: i64) -> Time {
    time(1_796_608_800 + minutes * 60)
}

fn service(ns: &str, name: &str, policy: &str, ip: Option<&str>) -> Service {
    Service {
        metadata: ObjectMeta {
            namespace: Some(ns.into()),
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("LoadBalancer".into()),
            external_traffic_policy: Some(policy.into()),
            ..ServiceSpec::default()
        }),
        status: Some(ServiceStatus {
            load_balancer: Some(LoadBalancerStatus {
                ingress: ip.map(|ip| {
                    vec![LoadBalancerIngress {
                        ip: Some(ip.into()),
                        ..LoadBalancerIngress::default()
                    }]
                }),
            }),
            conditions: None,
        }),
    }
}

fn with_condition(mut svc: Service, status: &str, message: &str) -> Service {
    if let Some(s) = svc.status.as_mut() {
        s.conditions = Some(vec![Condition {
            type_: CONDITION_TYPE.into(),
            status: status.into(),
            reason: "Reason".into(),
            message: message.into(),
            last_transition_time: at(0),
            observed_generation: None,
        }]);
    }
    svc
}

fn session(node: &str, status: SessionStatus) -> BGPSessionStatus {
    let mut s = BGPSessionStatus::new(
        &format!("{node}.198.18.0.1"),
        BGPSessionStatusSpec {
            node: node.into(),
            peer: "198.18.0.1".into(),
            peer_asn: 64500,
            peer_name: String::new(),
        },
    );
    s.status = Some(status);
    s
}

fn established(prefixes: u32, pools: &[&str]) -> SessionStatus {
    SessionStatus {
        state: "Established".into(),
        last_transition_time: Some(at(1)),
        hold_time_seconds: Some(90),
        keepalive_seconds: Some(30),
        capabilities: vec!["ipv4-unicast".into(), "4-octet-as".into()],
        prefixes_sent: prefixes,
        bfd: "Disabled".into(),
        pools: pools.iter().map(|p| (*p).to_owned()).collect(),
        ..SessionStatus::default()
    }
}

/// The seed scenario's report.
fn seed() -> Report {
    let mut api = service("default", "api", "Local", Some("203.0.113.11"));
    api.metadata.annotations = Some(
        [(
            "metallb.universe.tf/address-pool".to_owned(),
            "public".to_owned(),
        )]
        .into(),
    );
    let mut other = service("kube-system", "other", "Cluster", Some("192.0.2.1"));
    if let Some(spec) = other.spec.as_mut() {
        spec.load_balancer_class = Some("other.io/lb".into());
    }
    let mut cluster_ip = service("default", "cip", "Cluster", None);
    if let Some(spec) = cluster_ip.spec.as_mut() {
        spec.type_ = Some("ClusterIP".into());
    }
    let services = vec![
        with_condition(
            service("default", "web", "Cluster", Some("203.0.113.10")),
            "True",
            "assigned 203.0.113.10 (pool public)",
        ),
        api,
        with_condition(
            service("default", "internal", "Cluster", Some("198.51.100.5")),
            "True",
            "assigned 198.51.100.5 (pool private)",
        ),
        with_condition(
            service("default", "pending", "Cluster", None),
            "False",
            "no address available in pool \"public\"",
        ),
        other,
        cluster_ip,
    ];
    let slices = vec![
        slice(
            "web",
            &[
                ("node-1", None, None, None),
                ("node-2", Some(true), None, None),
                ("node-3", Some(true), None, None),
                ("node-5", Some(true), None, None),
            ],
        ),
        slice(
            "api",
            &[
                ("node-1", Some(true), Some(true), Some(false)),
                ("node-2", Some(false), Some(true), Some(true)),
            ],
        ),
        slice(
            "internal",
            &[
                ("node-1", Some(true), None, None),
                ("node-2", Some(true), None, None),
            ],
        ),
        slice("pending", &[("node-1", Some(true), None, None)]),
    ];
    let sessions = vec![
        session("node-2", established(2, &["public"])),
        session("node-1", established(2, &["public"])),
        session(
            "node-3",
            SessionStatus {
                state: "Connect".into(),
                last_transition_time: Some(at(7)),
                last_error: Some(SessionError {
                    message: "received NOTIFICATION 6/2 (Cease / Administrative Shutdown)".into(),
                    code: Some(6),
                    subcode: Some(2),
                    time: Some(at(7)),
                }),
                bfd: "Down".into(),
                pools: vec!["private".into(), "public".into()],
                ..SessionStatus::default()
            },
        ),
        session(
            "node-4",
            SessionStatus {
                node_excluded: Some(
                    "node is labelled node.kubernetes.io/exclude-from-external-load-balancers"
                        .into(),
                ),
                ..established(0, &[])
            },
        ),
    ];
    report::report(&ServiceFilter::default(), &services, &slices, &sessions)
}

#[test]
fn seed_scenario_table() {
    let got = table::render(&seed());
    let want = "\
SERVICE            ADDRESS        POOL        POLICY    ANNOUNCED BY
default/api        203.0.113.11   public      Local     node-1
default/internal   198.51.100.5   private     Cluster   <none>
default/pending    <pending>      <unknown>   Cluster   -
default/web        203.0.113.10   public      Cluster   node-1,node-2

SERVICE            NODES           WHY NOT
default/api        node-2          no ready endpoint on this node (ready on node-1)
default/api        node-3          no ready endpoint on this node (ready on node-1); no Established session: 198.18.0.1 is Connect
default/api        node-4          node excluded: node is labelled node.kubernetes.io/exclude-from-external-load-balancers; no ready endpoint on this node (ready on node-1)
default/internal   node-1,node-2   pool private is advertised to none of this node's peers
default/internal   node-3          no ready endpoint on this node (ready on node-1, node-2); no Established session: 198.18.0.1 is Connect
default/internal   node-4          node excluded: node is labelled node.kubernetes.io/exclude-from-external-load-balancers; no ready endpoint on this node (ready on node-1, node-2)
default/pending    <all>           no address: no address available in pool \"public\"
default/web        node-3          no Established session: 198.18.0.1 is Connect
default/web        node-4          node excluded: node is labelled node.kubernetes.io/exclude-from-external-load-balancers; no ready endpoint on this node (ready on node-1, node-2, node-3, node-5)
default/web        node-5          no BGPSessionStatus object for this node: no speaker reports from it

NODE     PEER         ASN     STATE         SINCE                  PREFIXES   BFD        POOLS            LAST ERROR
node-1   198.18.0.1   64500   Established   2026-12-07T02:01:00Z   2          Disabled   public           -
node-2   198.18.0.1   64500   Established   2026-12-07T02:01:00Z   2          Disabled   public           -
node-3   198.18.0.1   64500   Connect       2026-12-07T02:07:00Z   0          Down       private,public   received NOTIFICATION 6/2 (Cease / Administrative Shutdown)
node-4   198.18.0.1   64500   Established   2026-12-07T02:01:00Z   0          Disabled   -                -
";
    assert_eq!(got, want, "got:\n{got}");
}

#[test]
fn seed_scenario_json() {
    let got = serde_json::to_value(seed()).unwrap();
    let session = |node: &str, prefixes: u32, pools: &[&str]| {
        json!({"node": node, "excluded": null, "sessions": [{
            "peer": "198.18.0.1", "peerName": "", "peerAsn": 64500, "state": "Established",
            "since": "2026-12-07T02:01:00Z", "prefixesSent": prefixes, "bfd": "Disabled",
            "holdTimeSeconds": 90, "keepaliveSeconds": 30, "capabilities": ["ipv4-unicast", "4-octet-as"],
            "pools": pools, "lastError": null,
        }]})
    };
    let mut node_4 = session("node-4", 0, &[]);
    node_4["excluded"] =
        json!("node is labelled node.kubernetes.io/exclude-from-external-load-balancers");
    let excluded = json!({"kind": "nodeExcluded", "message": "node excluded: node is labelled node.kubernetes.io/exclude-from-external-load-balancers"});
    let down = json!({"kind": "noEstablishedSession", "message": "no Established session: 198.18.0.1 is Connect"});
    let no_ready = |on: &str| json!({"kind": "noUsableEndpoint", "message": format!("no ready endpoint on this node (ready on {on})")});
    let not_advertised = json!({"kind": "poolNotAdvertised", "message": "pool private is advertised to none of this node's peers"});
    let want = json!({
        "services": [
            {
                "namespace": "default", "name": "api", "addresses": ["203.0.113.11"], "pools": ["public"],
                "externalTrafficPolicy": "Local", "pending": null, "announcedBy": ["node-1"],
                "notAnnouncedBy": [
                    {"node": "node-2", "reasons": [no_ready("node-1")]},
                    {"node": "node-3", "reasons": [no_ready("node-1"), down]},
                    {"node": "node-4", "reasons": [excluded, no_ready("node-1")]},
                ],
            },
            {
                "namespace": "default", "name": "internal", "addresses": ["198.51.100.5"], "pools": ["private"],
                "externalTrafficPolicy": "Cluster", "pending": null, "announcedBy": [],
                "notAnnouncedBy": [
                    {"node": "node-1", "reasons": [not_advertised]},
                    {"node": "node-2", "reasons": [not_advertised]},
                    {"node": "node-3", "reasons": [no_ready("node-1, node-2"), down]},
                    {"node": "node-4", "reasons": [excluded, no_ready("node-1, node-2")]},
                ],
            },
            {
                "namespace": "default", "name": "pending", "addresses": [], "pools": [],
                "externalTrafficPolicy": "Cluster", "pending": "no address available in pool \"public\"",
                "announcedBy": [], "notAnnouncedBy": [],
            },
            {
                "namespace": "default", "name": "web", "addresses": ["203.0.113.10"], "pools": ["public"],
                "externalTrafficPolicy": "Cluster", "pending": null, "announcedBy": ["node-1", "node-2"],
                "notAnnouncedBy": [
                    {"node": "node-3", "reasons": [down]},
                    {"node": "node-4", "reasons": [excluded, no_ready("node-1, node-2, node-3, node-5")]},
                    {"node": "node-5", "reasons": [{"kind": "noSpeakerStatus", "message": "no BGPSessionStatus object for this node: no speaker reports from it"}]},
                ],
            },
        ],
        "nodes": [
            session("node-1", 2, &["public"]),
            session("node-2", 2, &["public"]),
            {"node": "node-3", "excluded": null, "sessions": [{
                "peer": "198.18.0.1", "peerName": "", "peerAsn": 64500, "state": "Connect",
                "since": "2026-12-07T02:07:00Z", "prefixesSent": 0, "bfd": "Down",
                "holdTimeSeconds": null, "keepaliveSeconds": null, "capabilities": [],
                "pools": ["private", "public"],
                "lastError": {"message": "received NOTIFICATION 6/2 (Cease / Administrative Shutdown)",
                    "code": 6, "subcode": 2, "time": "2026-12-07T02:07:00Z"},
            }]},
            node_4,
        ],
    });
    assert_eq!(
        got,
        want,
        "got:\n{}",
        serde_json::to_string_pretty(&got).unwrap()
    );
}

#[test]
fn serving_terminating_endpoints_count_when_none_is_ready_and_no_status_means_no_sessions() {
    let svc = with_condition(
        service("default", "drain", "Local", Some("203.0.113.12")),
        "True",
        "assigned 203.0.113.12 (pool public)",
    );
    let slices = [slice(
        "drain",
        &[("node-2", Some(false), Some(true), Some(true))],
    )];
    let sessions = [
        session("node-1", established(1, &["public"])),
        session("node-2", established(1, &["public"])),
    ];
    let r = report::report(&ServiceFilter::default(), &[svc], &slices, &sessions);
    assert_eq!(r.services[0].announced_by, ["node-2"]);
    assert_eq!(
        r.services[0].not_announced_by[0].reasons[0].message,
        "no serving endpoint on this node (serving on node-2)"
    );
    let empty = report::report(&ServiceFilter::default(), &[], &[], &[]);
    assert_eq!(
        table::render(&empty),
        "No LoadBalancer Services.\n\nNo BGP sessions reported.\n"
    );
}

#[test]
fn one_service_is_namespace_slash_name_or_name_with_n() {
    let args = |service: Option<&str>, namespace: Option<&str>| super::StatusArgs {
        service: service.map(str::to_owned),
        namespace: namespace.map(str::to_owned),
        status_namespace: "ferrolb-system".into(),
        output: super::Output::Table,
        no_default_class: false,
    };
    let pair = |ns: &str, name: &str| Some((ns.to_owned(), name.to_owned()));
    assert_eq!(
        args(Some("a/web"), None).one_service().unwrap(),
        pair("a", "web")
    );
    assert_eq!(
        args(Some("web"), Some("a")).one_service().unwrap(),
        pair("a", "web")
    );
    assert_eq!(args(None, Some("a")).one_service().unwrap(), None);
    for (service, namespace) in [
        ("web", None),
        ("a/web", Some("a")),
        ("a/b/c", None),
        ("/web", None),
        ("a/", None),
    ] {
        let err = args(Some(service), namespace).one_service().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("Service {service:?}: expected NAMESPACE/NAME, or NAME with -n NAMESPACE")
        );
    }
}
