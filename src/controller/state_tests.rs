//! Tests of the pure reconcile: Services and configs in, exact status patches out.

use super::*;
use crate::controller::service::tests::{annotate, applied, lb_service};
use crate::controller::service::{key_of, resource_version};
use crate::service_filter::ingress_ips;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use std::net::IpAddr;
use std::ops::{Deref, DerefMut};

/// The state fed as the controller's watcher feeds it (each Service projected on arrival), beside the whole
/// objects it took: what the API server holds, for a test to read back and change.
struct Fed {
    state: ControllerState,
    services: BTreeMap<ServiceKey, Service>,
}

impl Deref for Fed {
    type Target = ControllerState;
    fn deref(&self) -> &ControllerState {
        &self.state
    }
}

impl DerefMut for Fed {
    fn deref_mut(&mut self) -> &mut ControllerState {
        &mut self.state
    }
}

/// Our address condition as stored on the whole object.
fn stored_condition(svc: &Service) -> Option<Condition> {
    super::stored_condition(&ServiceView::of(svc).1).cloned()
}

impl Fed {
    fn new(filter: ServiceFilter, config_name: &str) -> Fed {
        Fed {
            state: ControllerState::new(filter, config_name),
            services: BTreeMap::new(),
        }
    }

    fn services_relisted(&mut self, services: Vec<Service>) {
        self.state
            .services_listed(services.iter().map(ServiceView::of).collect());
        self.services = services.into_iter().map(|s| (key_of(&s), s)).collect();
    }

    fn service_applied(&mut self, svc: Service) {
        let (key, view) = ServiceView::of(&svc);
        self.state.service_applied(key.clone(), view.clone());
        if self.state.services.get(&key) == Some(&view) {
            self.services.insert(key, svc);
        }
    }

    fn service_written(&mut self, svc: Service) {
        let (key, view) = ServiceView::of(&svc);
        self.state.service_written(key.clone(), view);
        self.services.insert(key, svc);
    }

    fn service_deleted(&mut self, svc: &Service) {
        let key = key_of(svc);
        self.state.service_deleted(&key);
        self.services.remove(&key);
    }
}

const POOLS: &str = "address-pools:\n- name: gold\n  protocol: bgp\n  addresses: [203.0.113.8/30]\n  \
                     auto-assign: false\n- name: auto\n  protocol: bgp\n  addresses: [203.0.113.0-203.0.113.3]\n";

fn now() -> Timestamp {
    Timestamp::from_second(1_700_000_000).unwrap()
}

/// A synced state with `POOLS` loaded and `services` listed.
fn synced(services: Vec<Service>) -> Fed {
    let mut state = Fed::new(ServiceFilter::default(), "ConfigMap ferrolb-system/config");
    assert_eq!(state.config_changed(Some(POOLS)), ConfigOutcome::Loaded(0));
    state.config_listed();
    state.services_relisted(services);
    state
}

/// Applies every write to the cached Services, as the API server would, and returns them by name.
fn apply_writes(state: &mut Fed, writes: &[StatusWrite]) {
    for w in writes {
        let svc = state.services.get(&w.key).unwrap().clone();
        let mut written = applied(&svc, &w.patch);
        let rv = resource_version(&svc).unwrap_or(0) + 1;
        written.metadata.resource_version = Some(rv.to_string());
        state.service_written(written);
    }
}

fn reconcile_and_apply(state: &mut Fed) {
    let writes = state.reconcile(now());
    apply_writes(state, &writes);
}

fn ips_of(state: &Fed, name: &str) -> Vec<IpAddr> {
    ingress_ips(&state.services[&ServiceKey::new("ns", name)])
}

fn reason_of(state: &Fed, name: &str) -> String {
    stored_condition(&state.services[&ServiceKey::new("ns", name)])
        .map(|c| c.reason.clone())
        .unwrap_or_default()
}

fn with_ip(mut svc: Service, ip: &str) -> Service {
    svc.status = Some(
        serde_json::from_value(serde_json::json!({"loadBalancer": {"ingress": [{"ip": ip}]}}))
            .unwrap(),
    );
    svc
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn nothing_is_written_before_both_caches_synced() {
    let mut state = Fed::new(ServiceFilter::default(), "x/config");
    state.services_relisted(vec![lb_service("ns", "a", 1)]);
    assert!(state.reconcile(now()).is_empty());
    state.config_changed(Some(POOLS));
    state.config_listed();
    assert_eq!(state.reconcile(now()).len(), 1);
}

#[test]
fn services_get_the_lowest_free_auto_assign_address_and_a_resync_writes_nothing() {
    let mut state = synced(vec![lb_service("ns", "a", 1), lb_service("ns", "b", 2)]);
    let writes = state.reconcile(now());
    assert_eq!(writes.len(), 2);
    assert_eq!(writes[0].events[0].reason, "IPAllocated");
    assert_eq!(writes[0].failure, None);
    assert_eq!(
        writes[0].patch["status"]["loadBalancer"],
        serde_json::json!({"ingress": [{"ip": "203.0.113.0", "ipMode": "VIP"}]})
    );
    apply_writes(&mut state, &writes);
    assert_eq!(ips_of(&state, "a"), vec![ip("203.0.113.0")]);
    assert_eq!(ips_of(&state, "b"), vec![ip("203.0.113.1")]);
    assert_eq!(reason_of(&state, "a"), "Assigned");

    // A resync (every object re-applied unchanged, or a full re-list) writes nothing.
    let all: Vec<Service> = state.services.values().cloned().collect();
    for svc in all.clone() {
        state.service_applied(svc);
    }
    assert_eq!(state.reconcile(now()), vec![]);
    state.services_relisted(all);
    assert_eq!(state.reconcile(now()), vec![]);
}

#[test]
fn pool_annotation_and_requested_ip_are_honoured_or_refused_with_the_reason() {
    let mut gold = lb_service("ns", "gold", 1);
    annotate(&mut gold, "metallb.universe.tf/address-pool", "gold");
    let mut wanted = lb_service("ns", "wanted", 2);
    wanted.spec.as_mut().unwrap().load_balancer_ip = Some("203.0.113.10".into());
    let mut outside = lb_service("ns", "outside", 3);
    outside.spec.as_mut().unwrap().load_balancer_ip = Some("198.51.100.1".into());
    let mut nopool = lb_service("ns", "nopool", 4);
    annotate(&mut nopool, "ferrolb.io/address-pool", "silver");
    let mut state = synced(vec![gold, wanted, outside, nopool]);
    let writes = state.reconcile(now());
    apply_writes(&mut state, &writes);
    assert_eq!(ips_of(&state, "gold"), vec![ip("203.0.113.8")]);
    assert_eq!(ips_of(&state, "wanted"), vec![ip("203.0.113.10")]);
    assert_eq!(ips_of(&state, "outside"), Vec::<IpAddr>::new());
    assert_eq!(reason_of(&state, "outside"), "RequestedIPUnavailable");
    assert_eq!(reason_of(&state, "nopool"), "NoPool");
    let failures: Vec<_> = writes.iter().filter_map(|w| w.failure.clone()).collect();
    assert_eq!(failures, vec!["NoPool", "RequestedIPUnavailable"]);
}

#[test]
fn restart_keeps_every_existing_address_and_the_older_of_two_claimants_wins() {
    // As listed after a restart: a and b hold addresses (b's is not the lowest free one), c is new, and d
    // (newer than a) claims a's address by a hand edit.
    let a = with_ip(lb_service("ns", "a", 10), "203.0.113.2");
    let b = with_ip(lb_service("ns", "b", 20), "203.0.113.0");
    let c = lb_service("ns", "c", 30);
    let d = with_ip(lb_service("ns", "d", 40), "203.0.113.2");
    let mut state = synced(vec![d, c, b, a]);
    let writes = state.reconcile(now());
    apply_writes(&mut state, &writes);
    assert_eq!(ips_of(&state, "a"), vec![ip("203.0.113.2")]);
    assert_eq!(ips_of(&state, "b"), vec![ip("203.0.113.0")]);
    assert_eq!(ips_of(&state, "c"), vec![ip("203.0.113.1")]);
    assert_eq!(ips_of(&state, "d"), Vec::<IpAddr>::new());
    assert_eq!(reason_of(&state, "d"), "AddressConflict");
    let d_write = writes.iter().find(|w| w.key.name == "d").unwrap();
    assert!(
        d_write.events[0].note.contains("in use by ns/a"),
        "{d_write:?}"
    );
    // The conflict stays (no silent re-addressing) across a resync and a restart.
    let all: Vec<Service> = state.services.values().cloned().collect();
    state.services_relisted(all);
    assert_eq!(state.reconcile(now()), vec![]);
    // Changing d's request retries: it gets a free address.
    let mut d = state.services[&ServiceKey::new("ns", "d")].clone();
    annotate(&mut d, "ferrolb.io/allow-shared-ip", "k");
    d.metadata.generation = Some(2);
    state.service_applied(d);
    let writes = state.reconcile(now());
    apply_writes(&mut state, &writes);
    assert_eq!(ips_of(&state, "d"), vec![ip("203.0.113.3")]);
}

#[test]
fn invalid_config_keeps_the_last_good_one() {
    let mut state = synced(vec![lb_service("ns", "a", 1)]);
    reconcile_and_apply(&mut state);
    let outcome = state.config_changed(Some(
        "address-pools:\n- name: x\n  addresses: [not-an-ip]\n",
    ));
    assert!(matches!(outcome, ConfigOutcome::Rejected(_)), "{outcome:?}");
    assert!(state.config_stale());
    assert!(state.config_loaded());
    assert!(
        state
            .config_rejection()
            .unwrap()
            .to_string()
            .contains("not-an-ip"),
        "{:?}",
        state.config_rejection()
    );
    assert_eq!(
        state.config_changed(Some(
            "address-pools:\n- name: x\n  addresses: [not-an-ip]\n"
        )),
        ConfigOutcome::Unchanged
    );
    state.service_applied(lb_service("ns", "b", 2));
    let writes = state.reconcile(now());
    apply_writes(&mut state, &writes);
    assert_eq!(ips_of(&state, "a"), vec![ip("203.0.113.0")]);
    assert_eq!(ips_of(&state, "b"), vec![ip("203.0.113.1")]);
}

#[test]
fn stranded_addresses_are_kept_and_flagged() {
    let mut state = synced(vec![lb_service("ns", "a", 1)]);
    reconcile_and_apply(&mut state);
    let smaller = "address-pools:\n- name: auto\n  protocol: bgp\n  addresses: [198.51.100.0/30]\n";
    assert_eq!(
        state.config_changed(Some(smaller)),
        ConfigOutcome::Loaded(1)
    );
    assert!(!state.config_stale());
    let writes = state.reconcile(now());
    assert_eq!(writes.len(), 1);
    assert!(writes[0].events[0].warning);
    apply_writes(&mut state, &writes);
    assert_eq!(ips_of(&state, "a"), vec![ip("203.0.113.0")]);
    assert_eq!(reason_of(&state, "a"), "AddressStranded");
    assert_eq!(state.allocator().unwrap().stranded().len(), 1);
    // The next Service gets an address from the new pool, never the stranded one.
    state.service_applied(lb_service("ns", "b", 2));
    reconcile_and_apply(&mut state);
    assert_eq!(ips_of(&state, "b"), vec![ip("198.51.100.0")]);
}

#[test]
fn type_change_and_delete_release_the_address() {
    let mut state = synced(vec![lb_service("ns", "a", 1), lb_service("ns", "b", 2)]);
    reconcile_and_apply(&mut state);
    let mut a = state.services[&ServiceKey::new("ns", "a")].clone();
    a.spec.as_mut().unwrap().type_ = Some("ClusterIP".into());
    state.service_applied(a);
    let writes = state.reconcile(now());
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0].events, Vec::new());
    apply_writes(&mut state, &writes);
    assert_eq!(ips_of(&state, "a"), Vec::<IpAddr>::new());
    assert_eq!(reason_of(&state, "a"), "");

    let b = state.services[&ServiceKey::new("ns", "b")].clone();
    state.service_deleted(&b);
    state.service_applied(lb_service("ns", "c", 3));
    state.service_applied(lb_service("ns", "d", 4));
    reconcile_and_apply(&mut state);
    assert_eq!(ips_of(&state, "c"), vec![ip("203.0.113.0")]);
    assert_eq!(ips_of(&state, "d"), vec![ip("203.0.113.1")]);
}

#[test]
fn other_classes_are_untouched_and_without_config_addresses_are_left_alone() {
    let mut other = with_ip(lb_service("ns", "other", 1), "192.0.2.1");
    other.spec.as_mut().unwrap().load_balancer_class = Some("example.com/lb".into());
    let held = with_ip(lb_service("ns", "held", 2), "203.0.113.3");
    let mut state = Fed::new(ServiceFilter::default(), "ConfigMap ferrolb-system/config");
    assert_eq!(state.config_changed(None), ConfigOutcome::Missing);
    state.config_listed();
    state.services_relisted(vec![other, held]);
    let writes = state.reconcile(now());
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0].key.name, "held");
    apply_writes(&mut state, &writes);
    assert_eq!(ips_of(&state, "held"), vec![ip("203.0.113.3")]);
    assert_eq!(reason_of(&state, "held"), "ConfigInvalid");
    assert_eq!(ips_of(&state, "other"), vec![ip("192.0.2.1")]);

    // Once a config arrives, the held address is re-registered and kept.
    state.config_changed(Some(POOLS));
    reconcile_and_apply(&mut state);
    assert_eq!(ips_of(&state, "held"), vec![ip("203.0.113.3")]);
    assert_eq!(reason_of(&state, "held"), "Assigned");
}

#[test]
fn watch_events_older_than_our_write_are_ignored() {
    let original = lb_service("ns", "a", 1);
    let mut state = synced(vec![original.clone()]);
    reconcile_and_apply(&mut state);
    // The creation event (resourceVersion 1) arrives after our write (resourceVersion 2) returned.
    state.service_applied(original);
    assert_eq!(state.reconcile(now()), vec![]);
    assert_eq!(ips_of(&state, "a"), vec![ip("203.0.113.0")]);
}

const FENCED: &str = "address-pools:\n- name: open\n  protocol: bgp\n  addresses: [198.51.100.0/30]\n\
                      - name: team-a\n  protocol: bgp\n  addresses: [203.0.113.0/30]\n  service-allocation:\n    \
                      namespace-selectors: [{match-labels: {tenant: a}}]\n    exclusive: true\n";

fn tenant(labels: &[(&str, &str)]) -> Labels {
    labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn condition(state: &Fed, ns: &str, name: &str) -> (String, String, String) {
    let c = stored_condition(&state.services[&ServiceKey::new(ns, name)]).unwrap();
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

#[test]
fn namespace_selectors_wait_for_the_namespaces_and_fence_by_label() {
    let mut state = Fed::new(ServiceFilter::default(), "x/config");
    state.config_changed(Some(FENCED));
    state.config_listed();
    state.services_relisted(vec![lb_service("team-a", "web", 1)]);
    assert!(
        !state.synced(),
        "a fence by label needs the Namespaces first"
    );
    assert!(state.reconcile(now()).is_empty());
    state.namespaces_relisted([("team-a".to_string(), tenant(&[("tenant", "a")]))]);
    reconcile_and_apply(&mut state);
    let svc = &state.services[&ServiceKey::new("team-a", "web")];
    assert_eq!(ingress_ips(svc), vec![ip("203.0.113.0")]);
}

#[test]
fn a_refused_request_is_not_allowed_with_a_warning_naming_the_rule() {
    let mut state = Fed::new(ServiceFilter::default(), "x/config");
    state.config_changed(Some(FENCED));
    state.config_listed();
    state.namespaces_relisted([
        ("team-a".to_string(), tenant(&[("tenant", "a")])),
        ("team-b".to_string(), tenant(&[])),
    ]);
    let mut attack = lb_service("team-b", "steal", 1);
    attack.spec.as_mut().unwrap().load_balancer_ip = Some("203.0.113.0".into());
    state.services_relisted(vec![attack]);
    let writes = state.reconcile(now());
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0].failure.as_deref(), Some("NotAllowed"));
    assert!(writes[0].events[0].warning);
    apply_writes(&mut state, &writes);
    assert_eq!(
        condition(&state, "team-b", "steal"),
        (
            "False".to_string(),
            "NotAllowed".to_string(),
            "not allowed: requested address 203.0.113.0: address pool \"team-a\" does not serve namespace \"team-b\" (its service-allocation has 1 namespace-selector, which does not match)".to_string()
        )
    );
    assert_eq!(
        ingress_ips(&state.services[&ServiceKey::new("team-b", "steal")]),
        Vec::<IpAddr>::new()
    );
}

#[test]
fn a_namespace_label_change_keeps_the_address_outside_the_rules() {
    let mut state = Fed::new(ServiceFilter::default(), "x/config");
    state.config_changed(Some(FENCED));
    state.config_listed();
    state.namespaces_relisted([("team-a".to_string(), tenant(&[("tenant", "a")]))]);
    state.services_relisted(vec![lb_service("team-a", "web", 1)]);
    reconcile_and_apply(&mut state);
    assert_eq!(condition(&state, "team-a", "web").1, "Assigned");
    // The label that selected the namespace is removed: the address stays, flagged, with a Warning.
    state.namespace_applied("team-a".into(), tenant(&[]));
    let writes = state.reconcile(now());
    assert_eq!(writes.len(), 1);
    assert!(writes[0].events[0].warning);
    assert_eq!(writes[0].failure, None);
    apply_writes(&mut state, &writes);
    let svc = &state.services[&ServiceKey::new("team-a", "web")];
    assert_eq!(ingress_ips(svc), vec![ip("203.0.113.0")]);
    assert_eq!(
        condition(&state, "team-a", "web"),
        (
            "True".to_string(),
            "OutsideServiceAllocation".to_string(),
            "assigned 203.0.113.0 (pool team-a), which the current rules would not give it (address pool \"team-a\" does not serve namespace \"team-a\" (its service-allocation has 1 namespace-selector, which does not match)); kept (still announced) so traffic keeps flowing. Change the rules back, or remove the address from this Service to move it".to_string()
        )
    );
    assert_eq!(state.allocator().unwrap().outside_rules().len(), 1);
    // `ferrolb status` reads the pool back from the message, past the rules' own parentheses.
    assert_eq!(
        crate::controller::status::recorded_pools(&condition(&state, "team-a", "web").2),
        [(ip("203.0.113.0"), "team-a".to_owned())]
    );
    // A new Service in the namespace gets an open address now (it is no longer fenced).
    state.service_applied(lb_service("team-a", "new", 2));
    reconcile_and_apply(&mut state);
    assert_eq!(
        ingress_ips(&state.services[&ServiceKey::new("team-a", "new")]),
        vec![ip("198.51.100.0")]
    );
    // Relabelled back: Assigned again, nothing moved.
    state.namespace_applied("team-a".into(), tenant(&[("tenant", "a")]));
    reconcile_and_apply(&mut state);
    assert_eq!(condition(&state, "team-a", "web").1, "Assigned");
    assert_eq!(
        condition(&state, "team-a", "new").1,
        "OutsideServiceAllocation"
    );
}

#[test]
fn sharing_across_namespaces_needs_both_opt_ins_and_a_withdrawal_flags_both() {
    let share = |ns: &str, name: &str, port: i32, with: &str| {
        let mut svc = lb_service(ns, name, 1);
        annotate(&mut svc, "ferrolb.io/allow-shared-ip", "k");
        annotate(&mut svc, "ferrolb.io/share-with-namespaces", with);
        svc.spec.as_mut().unwrap().ports = Some(vec![k8s_openapi::api::core::v1::ServicePort {
            port,
            ..Default::default()
        }]);
        svc
    };
    let mut state = synced(vec![share("team-a", "web", 80, "team-b")]);
    reconcile_and_apply(&mut state);
    state.service_applied(share("team-b", "dns", 53, "team-a"));
    reconcile_and_apply(&mut state);
    let ips = |state: &Fed, ns: &str, name: &str| {
        ingress_ips(&state.services[&ServiceKey::new(ns, name)])
    };
    assert_eq!(ips(&state, "team-b", "dns"), ips(&state, "team-a", "web"));
    // team-a withdraws its opt-in: both keep the address, both are flagged.
    let mut withdrawn = share("team-a", "web", 80, "");
    withdrawn.metadata.resource_version = Some("100".into());
    state.service_applied(withdrawn);
    reconcile_and_apply(&mut state);
    assert_eq!(ips(&state, "team-b", "dns"), ips(&state, "team-a", "web"));
    assert_eq!(
        condition(&state, "team-a", "web").1,
        "OutsideServiceAllocation"
    );
    assert_eq!(
        condition(&state, "team-b", "dns").1,
        "OutsideServiceAllocation"
    );
    assert_eq!(state.allocator().unwrap().outside_rules().len(), 2);
}

#[test]
fn a_large_reconcile_goes_in_batches_in_key_order_and_a_failed_write_waits_for_the_retry() {
    let services = (1..=5)
        .map(|i| lb_service("ns", &format!("s{i}"), i))
        .collect();
    let mut state = synced(services);
    assert!(!state.more_to_reconcile());
    let names = |writes: &[StatusWrite]| -> Vec<String> {
        writes.iter().map(|w| w.key.name.clone()).collect()
    };
    let first = state.reconcile_some(now(), 2);
    assert_eq!(names(&first), ["s1", "s2"]);
    assert!(state.more_to_reconcile());
    apply_writes(&mut state, &first);
    // The write for s3 fails while the second batch is out: it is looked at again with the last batch.
    let second = state.reconcile_some(now(), 2);
    assert_eq!(names(&second), ["s3", "s4"]);
    apply_writes(&mut state, &second[1..]);
    state.retry(second[0].key.clone());
    assert!(state.more_to_reconcile());
    let third = state.reconcile_some(now(), 2);
    assert_eq!(names(&third), ["s3", "s5"]);
    assert!(!state.more_to_reconcile());
    // Every Service got its own address, as one reconcile of all five gives.
    assert_eq!(ips_of(&state, "s1"), [ip("203.0.113.0")]);
    assert_eq!(ips_of(&state, "s2"), [ip("203.0.113.1")]);
    assert_eq!(ips_of(&state, "s4"), [ip("203.0.113.3")]);
    assert_eq!(
        third[0].patch["status"]["loadBalancer"]["ingress"][0]["ip"],
        "203.0.113.2"
    );
    // A failed write alone is not more to do: it waits for the caller's retry tick.
    apply_writes(&mut state, &third[..1]);
    state.retry(third[1].key.clone());
    assert!(!state.more_to_reconcile());
    assert_eq!(names(&state.reconcile_some(now(), 2)), ["s5"]);
}

#[test]
fn the_echo_of_our_own_write_is_nothing_to_do_and_only_a_sharing_change_wakes_the_co_holders() {
    let shared = |name: &str, port: i32, created: i64| {
        let mut svc = lb_service("ns", name, created);
        annotate(&mut svc, "ferrolb.io/allow-shared-ip", "k");
        svc.spec.as_mut().unwrap().ports = Some(vec![k8s_openapi::api::core::v1::ServicePort {
            port,
            ..Default::default()
        }]);
        svc
    };
    let mut state = synced(vec![shared("a", 80, 1), shared("b", 443, 2)]);
    reconcile_and_apply(&mut state);
    assert_eq!(ips_of(&state, "a"), ips_of(&state, "b"));
    let (a, b) = (ServiceKey::new("ns", "a"), ServiceKey::new("ns", "b"));

    // The watch's echoes of both writes: the write results already said so, nothing to look at.
    for svc in state.services.clone().into_values() {
        state.service_applied(svc);
    }
    assert_eq!(state.dirty, BTreeSet::new());

    // Someone else rewrites a's status: a alone is looked at (and put back); b reads nothing of it.
    let mut scribbled = with_ip(state.services[&a].clone(), "203.0.113.3");
    scribbled.metadata.resource_version = Some("10".into());
    state.service_applied(scribbled);
    assert_eq!(state.dirty, BTreeSet::from([a.clone()]));
    let writes = state.reconcile(now());
    assert_eq!(writes.len(), 1);
    apply_writes(&mut state, &writes);
    assert_eq!(ips_of(&state, "a"), ips_of(&state, "b"));

    // A changes a BGP attribute annotation: its own business.
    let mut annotated = state.services[&a].clone();
    annotate(&mut annotated, "ferrolb.io/bgp-local-pref", "200");
    annotated.metadata.resource_version = Some("20".into());
    state.service_applied(annotated);
    assert_eq!(state.dirty, BTreeSet::from([a.clone()]));
    reconcile_and_apply(&mut state);

    // A changes its sharing key: what b's sharing reads changed, so b is looked at too
    // (`sharing_across_namespaces_needs_both_opt_ins_and_a_withdrawal_flags_both` shows a co-holder flagged by one).
    let mut withdrawn = state.services[&a].clone();
    annotate(&mut withdrawn, "ferrolb.io/allow-shared-ip", "other");
    withdrawn.metadata.resource_version = Some("30".into());
    state.service_applied(withdrawn);
    assert_eq!(state.dirty, BTreeSet::from([a, b]));
    reconcile_and_apply(&mut state);
    // The user asked for another sharing key, so a moves; b keeps its address.
    assert_eq!(ips_of(&state, "a"), [ip("203.0.113.1")]);
    assert_eq!(ips_of(&state, "b"), [ip("203.0.113.0")]);
    assert_eq!(reason_of(&state, "b"), "Assigned");
}

#[test]
fn a_change_made_while_our_write_was_in_flight_is_looked_at_though_its_echo_says_nothing_new() {
    let mut state = synced(vec![lb_service("ns", "s", 1)]);
    reconcile_and_apply(&mut state);
    let key = ServiceKey::new("ns", "s");
    let first = ips_of(&state, "s");
    assert_eq!(first, [ip("203.0.113.0")]);

    // The user makes it a ClusterIP Service (rv 10): the controller clears its status...
    let mut cluster_ip = state.services[&key].clone();
    cluster_ip.spec.as_mut().unwrap().type_ = Some("ClusterIP".into());
    cluster_ip.metadata.resource_version = Some("10".into());
    state.service_applied(cluster_ip.clone());
    let writes = state.reconcile(now());
    assert_eq!(writes.len(), 1);
    assert_eq!(
        writes[0].patch["status"]["loadBalancer"],
        serde_json::json!({"ingress": null})
    );
    // ...but before that write lands, the user makes it a LoadBalancer again (rv 11). The API server applies
    // our patch on top of that (rv 12) and returns it.
    let mut load_balancer = cluster_ip;
    load_balancer.spec.as_mut().unwrap().type_ = Some("LoadBalancer".into());
    load_balancer.metadata.resource_version = Some("11".into());
    let mut written = applied(&load_balancer, &writes[0].patch);
    written.metadata.resource_version = Some("12".into());
    state.service_written(written.clone());
    // The queued events follow: rv 11 is older than what we hold, rv 12 is the echo of our write.
    state.service_applied(load_balancer);
    state.service_applied(written);
    assert_eq!(ips_of(&state, "s"), Vec::<IpAddr>::new());
    // Still, the Service is a LoadBalancer without an address: it gets one.
    let writes = state.reconcile(now());
    assert_eq!(writes.len(), 1);
    assert_eq!(
        writes[0].patch["status"]["loadBalancer"]["ingress"][0]["ip"],
        "203.0.113.0"
    );
}
