//! `ferrolb controller` against the lab's real kube-apiserver: every assertion is on what the API server stores.
//! Each test has its own namespace (Services, ConfigMap and Lease) and its own controller process.
//!
//! Needs root and the built control plane (`testbed/lab deps`); fails loudly without them.

mod controller_common;

use controller_common::*;
use ferrolb_testbed::ControlPlane;
use ferrolb_testbed::k8s_openapi::api::core::v1::Service;
use ferrolb_testbed::k8s_openapi::api::events::v1::Event;
use ferrolb_testbed::kube::api::{DeleteParams, Patch, PatchParams};
use ferrolb_testbed::kube::{Api, Client};
use serde_json::json;
use std::time::Duration;

const CONFIG: &str = "\
address-pools:
- name: gold
  protocol: bgp
  auto-assign: false
  addresses: [198.51.100.16/30]
- name: default
  protocol: bgp
  addresses: [203.0.113.0-203.0.113.7]
";

/// The shared control plane, a client, a fresh namespace with `config`, and a controller for it.
async fn setup(ns: &str, config: &str, extra: &[&str]) -> (Client, ControllerProcess) {
    let cp =
        ControlPlane::shared().expect("the lab control plane (run `testbed/lab deps` as root)");
    let client = cp.kube_client().await.expect("kube client");
    namespace(&client, ns).await;
    put_config(&client, ns, config).await;
    let ctl = ControllerProcess::start(&cp.lab().kubeconfig_path(), ns, "ctl-0", extra);
    (client, ctl)
}

#[tokio::test]
async fn services_get_addresses_from_the_right_pool_and_requested_ips_are_honoured_or_refused() {
    let ns = "ctl-assign";
    let (client, ctl) = setup(ns, CONFIG, &[]).await;
    create(&client, ns, &lb_service("plain", json!({}))).await;
    create(
        &client,
        ns,
        &lb_service(
            "gold",
            json!({"metadata": {"annotations": {"metallb.universe.tf/address-pool": "gold"}}}),
        ),
    )
    .await;
    create(
        &client,
        ns,
        &lb_service("wanted", json!({"spec": {"loadBalancerIP": "203.0.113.5"}})),
    )
    .await;
    create(
        &client,
        ns,
        &lb_service(
            "outside",
            json!({"metadata": {"annotations": {"ferrolb.io/loadBalancerIPs": "198.51.100.200"}}}),
        ),
    )
    .await;
    create(
        &client,
        ns,
        &lb_service(
            "nopool",
            json!({"metadata": {"annotations": {"metallb.io/address-pool": "silver"}}}),
        ),
    )
    .await;

    let plain = wait_assigned_or_refused(&client, ns, "plain", &ctl).await;
    assert_eq!(ingress(&plain), vec!["203.0.113.0"]);
    let (status, reason, message) = condition(&plain).unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Assigned"));
    assert!(message.contains("203.0.113.0 (pool default)"), "{message}");

    let gold = wait_assigned_or_refused(&client, ns, "gold", &ctl).await;
    assert_eq!(ingress(&gold), vec!["198.51.100.16"]);
    let wanted = wait_assigned_or_refused(&client, ns, "wanted", &ctl).await;
    assert_eq!(ingress(&wanted), vec!["203.0.113.5"]);

    let outside = wait_assigned_or_refused(&client, ns, "outside", &ctl).await;
    assert_eq!(ingress(&outside), Vec::<String>::new());
    let (status, reason, message) = condition(&outside).unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "RequestedIPUnavailable")
    );
    assert!(
        message.contains("198.51.100.200 is not in any address pool"),
        "{message}"
    );

    let nopool = wait_assigned_or_refused(&client, ns, "nopool", &ctl).await;
    assert_eq!(condition(&nopool).unwrap().1, "NoPool");

    // Events: one IPAllocated on success, one Warning AllocationFailed on refusal.
    let events = wait_for(
        "events on plain and outside",
        Duration::from_secs(10),
        Some(&ctl),
        || async {
            let a = events_about(&client, ns, "plain").await;
            let b = events_about(&client, ns, "outside").await;
            (!a.is_empty() && !b.is_empty()).then_some((a, b))
        },
    )
    .await;
    assert_eq!(events.0.len(), 1, "{events:?}");
    assert_eq!(
        (events.0[0].0.as_str(), events.0[0].1.as_str()),
        ("Normal", "IPAllocated")
    );
    assert_eq!(
        (events.1[0].0.as_str(), events.1[0].1.as_str()),
        ("Warning", "AllocationFailed")
    );

    // The stored status carries our field manager.
    let managers: Vec<String> = plain
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.subresource.as_deref() == Some("status"))
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(managers, vec!["ferrolb-controller"]);

    // Metrics and probes.
    wait_for(
        "/readyz 200",
        Duration::from_secs(10),
        Some(&ctl),
        || async { (ctl.http_get("/readyz").await?.0 == 200).then_some(()) },
    )
    .await;
    assert_eq!(
        ctl.metric("ferrolb_allocator_addresses_in_use_total{pool=\"default\",family=\"ipv4\"}")
            .await,
        Some(2.0)
    );
    assert_eq!(
        ctl.metric("ferrolb_allocator_addresses_total{pool=\"gold\",family=\"ipv4\"}")
            .await,
        Some(4.0)
    );
    assert_eq!(
        ctl.metric("ferrolb_allocator_allocation_failures_total{reason=\"NoPool\"}")
            .await,
        Some(1.0)
    );
    assert_eq!(
        ctl.metric("ferrolb_k8s_client_config_loaded_bool").await,
        Some(1.0)
    );
    assert_eq!(
        ctl.metric("ferrolb_k8s_client_config_stale_bool").await,
        Some(0.0)
    );
}

#[tokio::test]
async fn sharing_works_only_with_the_same_key_and_disjoint_ports() {
    let ns = "ctl-share";
    let (client, ctl) = setup(ns, CONFIG, &[]).await;
    let shared = |name: &str, port: u16, protocol: &str, extra: serde_json::Value| {
        let mut svc = lb_service(
            name,
            json!({
                "metadata": {"annotations": {"metallb.universe.tf/allow-shared-ip": "dns"}},
                "spec": {"ports": [{"port": port, "protocol": protocol}]}
            }),
        );
        let mut value = serde_json::to_value(&svc).unwrap();
        if let Some(spec) = extra.get("spec") {
            for (k, v) in spec.as_object().unwrap() {
                value["spec"][k] = v.clone();
            }
        }
        svc = serde_json::from_value(value).unwrap();
        svc
    };
    create(&client, ns, &shared("dns-tcp", 53, "TCP", json!({}))).await;
    let tcp = wait_assigned_or_refused(&client, ns, "dns-tcp", &ctl).await;
    assert_eq!(ingress(&tcp), vec!["203.0.113.0"]);
    create(&client, ns, &shared("dns-udp", 53, "UDP", json!({}))).await;
    let udp = wait_assigned_or_refused(&client, ns, "dns-udp", &ctl).await;
    assert_eq!(
        ingress(&udp),
        vec!["203.0.113.0"],
        "same key, disjoint ports: shared"
    );

    // Same key and an overlapping port on the requested shared address: refused, naming the holder and port.
    create(
        &client,
        ns,
        &shared(
            "dns-clash",
            53,
            "TCP",
            json!({"spec": {"loadBalancerIP": "203.0.113.0"}}),
        ),
    )
    .await;
    let clash = wait_assigned_or_refused(&client, ns, "dns-clash", &ctl).await;
    let (status, reason, message) = condition(&clash).unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "SharingConflict")
    );
    assert!(message.contains("TCP/53"), "{message}");
    assert!(ingress(&clash).is_empty());

    // No key: a fresh address.
    create(
        &client,
        ns,
        &lb_service(
            "alone",
            json!({"spec": {"ports": [{"port": 54, "protocol": "UDP"}]}}),
        ),
    )
    .await;
    let alone = wait_assigned_or_refused(&client, ns, "alone", &ctl).await;
    assert_eq!(ingress(&alone), vec!["203.0.113.1"]);
}

#[tokio::test]
async fn type_change_and_delete_release_the_address() {
    let ns = "ctl-release";
    let (client, ctl) = setup(ns, CONFIG, &[]).await;
    let api: Api<Service> = Api::namespaced(client.clone(), ns);
    create(&client, ns, &lb_service("a", json!({}))).await;
    create(&client, ns, &lb_service("b", json!({}))).await;
    let a = wait_assigned_or_refused(&client, ns, "a", &ctl).await;
    let b = wait_assigned_or_refused(&client, ns, "b", &ctl).await;
    let (ip_a, ip_b) = (ingress(&a), ingress(&b));
    assert_eq!(ip_a.len(), 1);
    assert_eq!(ip_b.len(), 1);
    assert_ne!(ip_a, ip_b);

    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"type": "ClusterIP", "externalTrafficPolicy": null}})),
    )
    .await
    .expect("change type");
    let cleared = wait_for(
        "a's status to be cleared",
        Duration::from_secs(20),
        Some(&ctl),
        || async {
            let svc = get(&client, ns, "a").await;
            (ingress(&svc).is_empty() && condition(&svc).is_none()).then_some(svc)
        },
    )
    .await;
    assert_eq!(cleared.spec.unwrap().type_.as_deref(), Some("ClusterIP"));

    api.delete("b", &DeleteParams::default())
        .await
        .expect("delete b");
    // Both addresses are free again: the next two Services get exactly them, lowest first.
    create(&client, ns, &lb_service("c", json!({}))).await;
    let c = wait_assigned_or_refused(&client, ns, "c", &ctl).await;
    create(&client, ns, &lb_service("d", json!({}))).await;
    let d = wait_assigned_or_refused(&client, ns, "d", &ctl).await;
    let mut got = vec![ingress(&c)[0].clone(), ingress(&d)[0].clone()];
    got.sort();
    let mut freed = vec![ip_a[0].clone(), ip_b[0].clone()];
    freed.sort();
    assert_eq!(got, freed);

    // `a` back to LoadBalancer: a second IPAllocated within minutes of the first is the same Event, counted as a
    // series (what kube's recorder does, and what `kubectl describe` shows as "x2").
    let to_lb = json!({"spec": {"type": "LoadBalancer"}});
    let to_cluster_ip = json!({"spec": {"type": "ClusterIP", "externalTrafficPolicy": null}});
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    let allocated_about_a = || async {
        let list = events.list(&Default::default()).await.expect("list events");
        list.items
            .into_iter()
            .filter(|e| {
                e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("a")
                    && e.reason.as_deref() == Some("IPAllocated")
            })
            .collect::<Vec<Event>>()
    };
    api.patch("a", &PatchParams::default(), &Patch::Merge(&to_lb))
        .await
        .expect("back to LoadBalancer");
    let again = wait_assigned_or_refused(&client, ns, "a", &ctl).await;
    assert_eq!(ingress(&again).len(), 1);
    let series = wait_for(
        "a's IPAllocated Event to count 2",
        Duration::from_secs(20),
        Some(&ctl),
        || async {
            let found = allocated_about_a().await;
            found
                .iter()
                .any(|e| e.series.as_ref().map(|s| s.count) == Some(2))
                .then_some(found)
        },
    )
    .await;
    assert_eq!(series.len(), 1, "one Event object, counted: {series:?}");

    // When the remembered Event is gone from the API server, the next occurrence is a new Event (not an error).
    let name = series[0].metadata.name.clone().expect("event name");
    events
        .delete(&name, &DeleteParams::default())
        .await
        .expect("delete the event");
    api.patch("a", &PatchParams::default(), &Patch::Merge(&to_cluster_ip))
        .await
        .expect("ClusterIP again");
    wait_for(
        "a cleared again",
        Duration::from_secs(20),
        Some(&ctl),
        || async {
            ingress(&get(&client, ns, "a").await)
                .is_empty()
                .then_some(())
        },
    )
    .await;
    api.patch("a", &PatchParams::default(), &Patch::Merge(&to_lb))
        .await
        .expect("LoadBalancer again");
    wait_assigned_or_refused(&client, ns, "a", &ctl).await;
    let fresh = wait_for(
        "a new IPAllocated Event about a",
        Duration::from_secs(20),
        Some(&ctl),
        || async {
            let found = allocated_about_a().await;
            (!found.is_empty()).then_some(found)
        },
    )
    .await;
    assert_eq!(fresh.len(), 1, "{fresh:?}");
    assert_ne!(fresh[0].metadata.name.as_deref(), Some(name.as_str()));
    assert!(fresh[0].series.is_none(), "{fresh:?}");
}

#[tokio::test]
async fn an_invalid_config_keeps_the_last_good_one_and_raises_a_warning_event() {
    let ns = "ctl-badconfig";
    let (client, ctl) = setup(ns, CONFIG, &[]).await;
    create(&client, ns, &lb_service("before", json!({}))).await;
    let before = wait_assigned_or_refused(&client, ns, "before", &ctl).await;
    assert_eq!(ingress(&before), vec!["203.0.113.0"]);

    // A range whose start is after its end.
    put_config(
        &client,
        ns,
        "address-pools:\n- name: default\n  protocol: bgp\n  addresses: [198.51.100.9-198.51.100.4]\n",
    )
    .await;
    let warnings = wait_events(&client, ns, "config", "Warning", &ctl).await;
    assert_eq!(warnings[0].1, "ConfigInvalid");
    assert!(warnings[0].2.contains("198.51.100.9"), "{warnings:?}");
    wait_metric(&ctl, "ferrolb_k8s_client_config_stale_bool", 1.0).await;

    // The old pools stay in force: the next Service gets the next address of the old default pool.
    create(&client, ns, &lb_service("after", json!({}))).await;
    let after = wait_assigned_or_refused(&client, ns, "after", &ctl).await;
    assert_eq!(ingress(&after), vec!["203.0.113.1"]);
    assert_eq!(
        ingress(&get(&client, ns, "before").await),
        vec!["203.0.113.0"]
    );

    // A valid config that strands 203.0.113.0-1: both keep their addresses, flagged.
    put_config(
        &client,
        ns,
        "address-pools:\n- name: default\n  protocol: bgp\n  addresses: [198.51.100.0/29]\n",
    )
    .await;
    let stranded = wait_for(
        "stranded condition",
        Duration::from_secs(20),
        Some(&ctl),
        || async {
            let svc = get(&client, ns, "before").await;
            (condition(&svc)?.1 == "AddressStranded").then_some(svc)
        },
    )
    .await;
    assert_eq!(ingress(&stranded), vec!["203.0.113.0"]);
    assert_eq!(
        ctl.metric("ferrolb_k8s_client_config_stale_bool").await,
        Some(0.0)
    );
    wait_metric(&ctl, "ferrolb_allocator_stranded_addresses", 2.0).await;
}

#[tokio::test]
async fn load_balancer_class_is_honoured() {
    let ns = "ctl-class";
    let (client, ctl) = setup(ns, CONFIG, &["--no-default-class"]).await;
    create(&client, ns, &lb_service("unclassed", json!({}))).await;
    create(
        &client,
        ns,
        &lb_service(
            "other",
            json!({"spec": {"loadBalancerClass": "example.com/other"}}),
        ),
    )
    .await;
    create(
        &client,
        ns,
        &lb_service(
            "ours",
            json!({"spec": {"loadBalancerClass": "ferrolb.io/bgp"}}),
        ),
    )
    .await;
    let ours = wait_assigned_or_refused(&client, ns, "ours", &ctl).await;
    assert_eq!(ingress(&ours), vec!["203.0.113.0"]);
    // Created before "ours", so already seen: still untouched.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for name in ["unclassed", "other"] {
        let svc = get(&client, ns, name).await;
        assert_eq!(
            svc.status
                .and_then(|s| s.load_balancer)
                .and_then(|l| l.ingress),
            None,
            "{name}"
        );
        assert!(events_about(&client, ns, name).await.is_empty(), "{name}");
    }
}

const ATTRIBUTES_CONFIG: &str = "\
bgp-communities:
  tag: 65000:100
address-pools:
- name: default
  protocol: bgp
  addresses: [203.0.113.8/29]
  bgp-advertisements:
  - allowed-service-communities: [tag, large:65000:1:2]
    allowed-service-localprefs: [100-300]
";

/// Waits until `name`'s attributes condition satisfies `done`; returns the stored Service.
async fn wait_attributes(
    client: &Client,
    ns: &str,
    name: &str,
    ctl: &ControllerProcess,
    done: impl Fn(Option<&(String, String, String)>) -> bool,
) -> Service {
    wait_for(
        &format!("the attributes condition of {ns}/{name}"),
        Duration::from_secs(20),
        Some(ctl),
        || async {
            let svc = get(client, ns, name).await;
            (condition(&svc).is_some() && done(attributes_condition(&svc).as_ref())).then_some(svc)
        },
    )
    .await
}

#[tokio::test]
async fn bgp_attribute_annotations_are_checked_against_the_pool_policy() {
    let ns = "ctl-attrs";
    let (client, ctl) = setup(ns, ATTRIBUTES_CONFIG, &[]).await;
    let annotated = |name: &str, key: &str, value: &str| {
        lb_service(name, json!({"metadata": {"annotations": {key: value}}}))
    };
    create(
        &client,
        ns,
        &annotated("permitted", "ferrolb.io/bgp-communities", "tag"),
    )
    .await;
    create(
        &client,
        ns,
        &annotated("forbidden", "ferrolb.io/bgp-communities", "65535:666"),
    )
    .await;
    create(
        &client,
        ns,
        &annotated("badpref", "ferrolb.io/bgp-local-pref", "high"),
    )
    .await;
    create(&client, ns, &lb_service("none", json!({}))).await;

    let permitted = wait_attributes(&client, ns, "permitted", &ctl, |c| c.is_some()).await;
    assert_eq!(
        attributes_condition(&permitted),
        Some((
            "True".into(),
            "Accepted".into(),
            "announced with communities 65000:100".into()
        ))
    );
    assert_eq!(ingress(&permitted).len(), 1);

    let forbidden = wait_attributes(&client, ns, "forbidden", &ctl, |c| c.is_some()).await;
    assert_eq!(
        attributes_condition(&forbidden),
        Some((
            "False".into(),
            "CommunityNotAllowed".into(),
            "ferrolb.io/bgp-communities: community 65535:666 is not in allowed-service-communities of \
             pool \"default\"; announcing with the pool's attributes instead"
                .into()
        ))
    );
    // The address is assigned regardless; only the attributes are refused.
    assert_eq!(condition(&forbidden).unwrap().1, "Assigned");
    let warnings = wait_events(&client, ns, "forbidden", "Warning", &ctl).await;
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].1, "CommunityNotAllowed");
    assert!(warnings[0].2.contains("65535:666"), "{warnings:?}");

    let badpref = wait_attributes(&client, ns, "badpref", &ctl, |c| c.is_some()).await;
    let (status, reason, message) = attributes_condition(&badpref).unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "InvalidLocalPref")
    );
    assert!(message.contains("\"high\""), "{message}");
    assert_eq!(
        wait_events(&client, ns, "badpref", "Warning", &ctl).await[0].1,
        "InvalidLocalPref"
    );

    let none = wait_assigned_or_refused(&client, ns, "none", &ctl).await;
    assert_eq!(attributes_condition(&none), None);

    // Annotation removed: the condition goes, the address condition stays.
    Api::<Service>::namespaced(client.clone(), ns)
        .patch(
            "permitted",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"ferrolb.io/bgp-communities": null}}}),
            ),
        )
        .await
        .expect("remove the annotation");
    let removed = wait_attributes(&client, ns, "permitted", &ctl, |c| c.is_none()).await;
    assert_eq!(condition(&removed).unwrap().1, "Assigned");
    assert_eq!(ingress(&removed), ingress(&permitted));

    // A config that allows the community: re-evaluated without any change to the Service.
    put_config(
        &client,
        ns,
        &ATTRIBUTES_CONFIG.replace("[tag,", "[tag, 65535:666,"),
    )
    .await;
    let allowed = wait_attributes(&client, ns, "forbidden", &ctl, |c| {
        c.is_some_and(|c| c.0 == "True")
    })
    .await;
    assert_eq!(
        attributes_condition(&allowed).unwrap().2,
        "announced with communities 65535:666"
    );
    // One Warning for the one refusal, however many times the Service was looked at since.
    let warnings = events_about(&client, ns, "forbidden").await;
    assert_eq!(
        warnings.iter().filter(|e| e.0 == "Warning").count(),
        1,
        "{warnings:?}"
    );
}

/// Dual-stack needs an API server with an IPv6 Service range: a lab of its own.
#[tokio::test]
async fn dual_stack_gives_one_address_per_family() {
    let (lab, client) = ipv6_lab().await;
    let ns = "ctl-dual";
    namespace(&client, ns).await;
    put_config(
        &client,
        ns,
        "address-pools:\n- name: dual\n  protocol: bgp\n  addresses: [203.0.113.64/30, 2001:db8:1::/126]\n",
    )
    .await;
    let ctl = ControllerProcess::start(&lab.kubeconfig_path(), ns, "ctl-0", &[]);
    create(
        &client,
        ns,
        &lb_service(
            "v6first",
            json!({"spec": {"ipFamilyPolicy": "RequireDualStack", "ipFamilies": ["IPv6", "IPv4"]}}),
        ),
    )
    .await;
    create(
        &client,
        ns,
        &lb_service("v6only", json!({"spec": {"ipFamilies": ["IPv6"]}})),
    )
    .await;
    let dual = wait_assigned_or_refused(&client, ns, "v6first", &ctl).await;
    assert_eq!(ingress(&dual), vec!["2001:db8:1::", "203.0.113.64"]);
    let v6 = wait_assigned_or_refused(&client, ns, "v6only", &ctl).await;
    assert_eq!(ingress(&v6), vec!["2001:db8:1::1"]);
    drop(ctl);
    lab.down().expect("lab down");
}
