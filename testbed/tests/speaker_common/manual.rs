//! A selector-less LoadBalancer Service whose EndpointSlice the test writes itself (addresses that are no Pod).

use super::{apply, ingress_ip};
use ferrolb_testbed::kube::Client;
use ferrolb_testbed::serde_json::{Value, json};

/// Creates the Service `ns/manual` (`externalTrafficPolicy: Local`) and returns its address once assigned.
pub async fn manual_service(client: &Client, ns: &str) -> String {
    apply(client, json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "manual", "namespace": ns},
        "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": [{"port": 80}]}
    }))
    .await;
    ingress_ip(client, ns, "manual").await
}

/// The Service's EndpointSlice: a ready endpoint on node-1, and one on node-2, ready or not.
pub fn manual_slice(ns: &str, ready2: bool) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "manual-1", "namespace": ns,
                     "labels": {"kubernetes.io/service-name": "manual"}},
        "addressType": "IPv4",
        "ports": [{"port": 80, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": ["198.19.1.200"], "nodeName": "node-1", "conditions": {"ready": true}},
            {"addresses": ["198.19.2.200"], "nodeName": "node-2", "conditions": {"ready": ready2}}
        ]
    })
}
