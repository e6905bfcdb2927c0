//! What a Service's status should say, and the patch that makes it so. A patch is built only when the stored
//! status differs from the desired one, so a resync writes nothing and raises no Event.
//!
//! Every ingress entry carries `ipMode: VIP` (KEP-1860): the nodes themselves are the load balancer, so
//! kube-proxy must keep its in-cluster rules for the address rather than send in-cluster traffic out to it.
//!
//! Two conditions are ferrolb's: `ferrolb.io/AddressAssigned` on every Service it handles, and
//! `ferrolb.io/BGPAttributesAccepted` on those with per-Service BGP attribute annotations.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use std::net::IpAddr;

use super::view::ServiceView;

/// The condition type ferrolb maintains on each Service it handles.
pub const CONDITION_TYPE: &str = "ferrolb.io/AddressAssigned";
/// The condition type on Services with BGP attribute annotations (shared with the speaker's crate).
pub const ATTRIBUTES_CONDITION_TYPE: &str = ferrolb_announce::CONDITION_TYPE;
/// Attributes condition reason: the annotations are valid and allowed by the Service's pool.
pub const REASON_ATTRIBUTES_ACCEPTED: &str = "Accepted";

/// `status.loadBalancer.ingress[].ipMode` of every address ferrolb writes.
pub const IP_MODE: &str = "VIP";

/// Condition reason: the Service holds its addresses.
pub const REASON_ASSIGNED: &str = "Assigned";
/// Condition reason: the Service keeps addresses that no current pool contains (kept so traffic keeps flowing).
pub const REASON_STRANDED: &str = "AddressStranded";
/// Condition reason: the Service keeps addresses that the current `service-allocation` rules, a namespace fence or
/// a withdrawn sharing opt-in would not give it now (kept so traffic keeps flowing, like [`REASON_STRANDED`]).
pub const REASON_OUTSIDE_ALLOCATION: &str = "OutsideServiceAllocation";
/// Condition reason: the Service's address is also claimed by an older Service, which keeps it.
pub const REASON_CONFLICT: &str = "AddressConflict";
/// Condition reason: no valid configuration has been loaded.
pub const REASON_CONFIG_INVALID: &str = "ConfigInvalid";

/// Event reason on a Service that got (or changed) its addresses.
pub const EVENT_ALLOCATED: &str = "IPAllocated";
/// Event reason on a Service that could not get addresses.
pub const EVENT_FAILED: &str = "AllocationFailed";
/// Event action of address Events.
pub const ACTION_ALLOCATE: &str = "Allocate";
/// Event action of attribute Events.
pub const ACTION_CHECK_ATTRIBUTES: &str = "CheckBGPAttributes";

/// How a condition message names an assigned address and its pool: `203.0.113.10 (pool public)`. `ferrolb
/// status` reads the pools back with [`recorded_pools`].
pub fn address_in_pool(ip: IpAddr, pool: &str) -> String {
    format!("{ip} (pool {pool})")
}

/// The addresses and pools a condition message names (written by [`address_in_pool`]), in order; words that
/// are not `ADDRESS (pool NAME)` are skipped.
pub fn recorded_pools(message: &str) -> Vec<(IpAddr, String)> {
    const MARK: &str = " (pool ";
    let mut out = Vec::new();
    let mut rest = message;
    while let Some(at) = rest.find(MARK) {
        let before = &rest[..at];
        let ip = before
            .rsplit([' ', ','])
            .next()
            .and_then(|w| w.parse::<IpAddr>().ok());
        rest = &rest[at + MARK.len()..];
        let Some(end) = rest.find(')') else { break };
        if let Some(ip) = ip {
            out.push((ip, rest[..end].to_owned()));
        }
        rest = &rest[end..];
    }
    out
}

/// The status a Service should have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredStatus {
    /// `status.loadBalancer.ingress`, in order. `None`: leave the stored ingress as it is (no valid config yet).
    pub ingress: Option<Vec<IpAddr>>,
    /// Our condition; `None` removes it.
    pub condition: Option<DesiredCondition>,
    /// The `ferrolb.io/BGPAttributesAccepted` condition; `None` removes it.
    pub attributes: Option<DesiredCondition>,
}

/// One of our conditions, without its timestamps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredCondition {
    /// `True` or `False`.
    pub ok: bool,
    /// A CamelCase reason code.
    pub reason: String,
    /// A sentence for people.
    pub message: String,
}

impl DesiredStatus {
    /// The status that removes everything ferrolb wrote (a Service that stopped being `LoadBalancer`).
    pub fn cleared() -> DesiredStatus {
        DesiredStatus {
            ingress: Some(Vec::new()),
            condition: None,
            attributes: None,
        }
    }
}

impl DesiredCondition {
    /// A condition as stored, without its timestamps.
    pub fn from_stored(c: &Condition) -> DesiredCondition {
        DesiredCondition {
            ok: c.status == "True",
            reason: c.reason.clone(),
            message: c.message.clone(),
        }
    }
}

/// An Event to record on a Service after its status was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceEvent {
    /// `Warning` (true) or `Normal`.
    pub warning: bool,
    /// `IPAllocated`, `AllocationFailed`, or an attribute refusal's reason.
    pub reason: String,
    /// What the controller was doing ([`ACTION_ALLOCATE`] or [`ACTION_CHECK_ATTRIBUTES`]).
    pub action: &'static str,
    /// What happened.
    pub note: String,
}

/// Our address condition as stored on the Service.
pub fn stored_condition(svc: &ServiceView) -> Option<&Condition> {
    svc.condition(CONDITION_TYPE)
}

/// Our attributes condition as stored on the Service.
pub fn stored_attributes(svc: &ServiceView) -> Option<&Condition> {
    svc.condition(ATTRIBUTES_CONDITION_TYPE)
}

/// Whether the stored condition already says what `want` says (for this generation).
fn matches(
    stored: Option<&Condition>,
    want: Option<&DesiredCondition>,
    generation: Option<i64>,
) -> bool {
    match (want, stored) {
        (None, None) => true,
        (Some(want), Some(have)) => {
            have.status == status_word(want.ok)
                && have.reason == want.reason
                && have.message == want.message
                && have.observed_generation == generation
        }
        _ => false,
    }
}

/// The condition `type_` to store for `want`; `lastTransitionTime` moves only when the status does.
fn condition_value(
    type_: &str,
    stored: Option<&Condition>,
    want: &DesiredCondition,
    generation: Option<i64>,
    now: Timestamp,
) -> Option<Value> {
    let since = match stored {
        Some(have) if have.status == status_word(want.ok) => have.last_transition_time.clone(),
        _ => Time(now),
    };
    serde_json::to_value(Condition {
        type_: type_.into(),
        status: status_word(want.ok).into(),
        reason: want.reason.clone(),
        message: want.message.clone(),
        observed_generation: generation,
        last_transition_time: since,
    })
    .ok()
}

/// The merge patch for the status subresource that turns the stored status into `desired`, or `None` when it
/// already matches. Other conditions on the Service are kept; `lastTransitionTime` changes only when the
/// condition's status does.
pub fn status_patch(svc: &ServiceView, desired: &DesiredStatus, now: Timestamp) -> Option<Value> {
    let generation = svc.generation;
    let ours = [
        (CONDITION_TYPE, desired.condition.as_ref()),
        (ATTRIBUTES_CONDITION_TYPE, desired.attributes.as_ref()),
    ];
    let conditions_match = ours
        .iter()
        .all(|(type_, want)| matches(svc.condition(type_), *want, generation));
    // Entries that are not exactly `ips` (e.g. a hostname someone added), or written before ferrolb set
    // `ipMode`, are rewritten.
    let ingress_matches = match &desired.ingress {
        None => true,
        Some(ips) => svc.status.ingress == *ips && svc.status.only_ips && svc.status.all_vip,
    };
    if conditions_match && ingress_matches {
        return None;
    }
    let mut status = serde_json::Map::new();
    if let Some(ips) = &desired.ingress {
        let ingress: Vec<Value> = ips
            .iter()
            .map(|ip| json!({"ip": ip.to_string(), "ipMode": IP_MODE}))
            .collect();
        status.insert(
            "loadBalancer".into(),
            if ingress.is_empty() {
                json!({"ingress": null})
            } else {
                json!({ "ingress": ingress })
            },
        );
    }
    if !conditions_match {
        let mut conditions: Vec<Value> = svc
            .status
            .conditions
            .iter()
            .filter(|c| c.type_ != CONDITION_TYPE && c.type_ != ATTRIBUTES_CONDITION_TYPE)
            .filter_map(|c| serde_json::to_value(c).ok())
            .collect();
        for (type_, want) in ours {
            if let Some(want) = want {
                conditions.extend(condition_value(
                    type_,
                    svc.condition(type_),
                    want,
                    generation,
                    now,
                ));
            }
        }
        status.insert("conditions".into(), Value::Array(conditions));
    }
    Some(json!({ "status": status }))
}

fn status_word(ok: bool) -> &'static str {
    if ok { "True" } else { "False" }
}

/// The Events to record when the stored status changes to `desired`:
/// - on the addresses: only when they or the condition's reason/message change (not for a new
///   `observedGeneration` alone), never when removing our status;
/// - on the BGP attributes: a Warning when they are newly refused or refused for another reason (once per
///   distinct problem, so a resync raises nothing).
pub fn events_for(svc: &ServiceView, desired: &DesiredStatus) -> Vec<ServiceEvent> {
    let mut events = Vec::new();
    if let Some(want) = desired.condition.as_ref() {
        let same_ips = desired
            .ingress
            .as_ref()
            .is_none_or(|ips| svc.status.ingress == *ips);
        let same_reason = stored_condition(svc)
            .is_some_and(|c| c.reason == want.reason && c.message == want.message);
        if !(same_ips && same_reason) {
            // A kept address the current pools or rules would not give now is a Warning too. Its reason stays
            // `IPAllocated` (it holds its address): kube's Recorder folds Events of one reason, type and action
            // on one object into a series that keeps the first note, so a kept address reported as
            // `AllocationFailed` after a refusal would never show its own message.
            events.push(ServiceEvent {
                warning: !want.ok
                    || want.reason == REASON_STRANDED
                    || want.reason == REASON_OUTSIDE_ALLOCATION,
                reason: if want.ok {
                    EVENT_ALLOCATED
                } else {
                    EVENT_FAILED
                }
                .to_owned(),
                action: ACTION_ALLOCATE,
                note: want.message.clone(),
            });
        }
    }
    if let Some(want) = desired.attributes.as_ref().filter(|a| !a.ok) {
        let same = stored_attributes(svc).is_some_and(|c| {
            c.status == "False" && c.reason == want.reason && c.message == want.message
        });
        if !same {
            events.push(ServiceEvent {
                warning: true,
                reason: want.reason.clone(),
                action: ACTION_CHECK_ATTRIBUTES,
                note: want.message.clone(),
            });
        }
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::service::tests::{applied, lb_service};
    use k8s_openapi::api::core::v1::Service;

    /// [`super::status_patch`] on what the controller keeps of `svc`.
    fn status_patch(svc: &Service, desired: &DesiredStatus, now: Timestamp) -> Option<Value> {
        super::status_patch(&ServiceView::of(svc).1, desired, now)
    }

    /// [`super::events_for`] on what the controller keeps of `svc`.
    fn events_for(svc: &Service, desired: &DesiredStatus) -> Vec<ServiceEvent> {
        super::events_for(&ServiceView::of(svc).1, desired)
    }

    fn assigned(ips: &[&str]) -> DesiredStatus {
        DesiredStatus {
            ingress: Some(ips.iter().map(|s| s.parse().unwrap()).collect()),
            condition: Some(DesiredCondition {
                ok: true,
                reason: REASON_ASSIGNED.into(),
                message: format!("assigned {}", ips.join(", ")),
            }),
            attributes: None,
        }
    }

    fn now() -> Timestamp {
        Timestamp::from_second(1_000_000).unwrap()
    }

    #[test]
    fn pools_are_read_back_from_the_condition_message() {
        let a: IpAddr = "203.0.113.10".parse().unwrap();
        let b: IpAddr = "2001:db8::a".parse().unwrap();
        let message = format!(
            "assigned {}, {}",
            address_in_pool(a, "public"),
            address_in_pool(b, "v6")
        );
        assert_eq!(
            message,
            "assigned 203.0.113.10 (pool public), 2001:db8::a (pool v6)"
        );
        assert_eq!(
            recorded_pools(&message),
            [(a, "public".to_owned()), (b, "v6".to_owned())]
        );
        assert_eq!(recorded_pools("assigned 203.0.113.10"), []);
        assert_eq!(recorded_pools("x (pool public)"), []);
        assert_eq!(
            recorded_pools("assigned 203.0.113.10 (pool unterminated"),
            []
        );
    }

    #[test]
    fn first_assignment_writes_ingress_and_condition_exactly() {
        let svc = lb_service("ns", "web", 1);
        let patch = status_patch(&svc, &assigned(&["203.0.113.1"]), now()).unwrap();
        assert_eq!(
            patch,
            json!({"status": {
                "loadBalancer": {"ingress": [{"ip": "203.0.113.1", "ipMode": "VIP"}]},
                "conditions": [{
                    "type": "ferrolb.io/AddressAssigned",
                    "status": "True",
                    "reason": "Assigned",
                    "message": "assigned 203.0.113.1",
                    "observedGeneration": 1,
                    "lastTransitionTime": "1970-01-12T13:46:40Z",
                }],
            }})
        );
        let event = events_for(&svc, &assigned(&["203.0.113.1"])).remove(0);
        assert_eq!(event.reason, "IPAllocated");
        assert!(!event.warning);
    }

    #[test]
    fn a_kept_address_outside_the_pools_or_rules_is_a_warning_ip_allocated() {
        let svc = lb_service("ns", "web", 1);
        for reason in [REASON_STRANDED, REASON_OUTSIDE_ALLOCATION] {
            let mut kept = assigned(&["203.0.113.1"]);
            if let Some(c) = kept.condition.as_mut() {
                c.reason = reason.into();
                c.message = format!("kept: {reason}");
            }
            let event = events_for(&svc, &kept).remove(0);
            assert_eq!(
                (event.warning, event.reason.as_str(), event.note.as_str()),
                (true, "IPAllocated", &*format!("kept: {reason}")),
                "{reason}"
            );
        }
    }

    #[test]
    fn resync_of_an_unchanged_status_writes_nothing_and_raises_no_event() {
        let svc = lb_service("ns", "web", 1);
        let desired = assigned(&["203.0.113.1", "2001:db8::1"]);
        let stored = applied(&svc, &status_patch(&svc, &desired, now()).unwrap());
        assert_eq!(status_patch(&stored, &desired, now()), None);
        assert_eq!(events_for(&stored, &desired), Vec::new());
    }

    #[test]
    fn failure_keeps_other_conditions_and_transition_time_moves_only_on_status_change() {
        let mut svc = lb_service("ns", "web", 1);
        svc.status = Some(
            serde_json::from_value(json!({"conditions": [{
                "type": "example.com/Other", "status": "True", "reason": "X", "message": "",
                "lastTransitionTime": "2020-01-01T00:00:00Z"}]}))
            .unwrap(),
        );
        let failed = DesiredStatus {
            ingress: Some(vec![]),
            condition: Some(DesiredCondition {
                ok: false,
                reason: "PoolExhausted".into(),
                message: "no free address".into(),
            }),
            attributes: None,
        };
        let patch = status_patch(&svc, &failed, now()).unwrap();
        assert_eq!(patch["status"]["loadBalancer"], json!({"ingress": null}));
        let conditions = patch["status"]["conditions"].as_array().unwrap();
        assert_eq!(conditions.len(), 2);
        assert_eq!(conditions[0]["type"], "example.com/Other");
        assert_eq!(conditions[1]["reason"], "PoolExhausted");
        let event = events_for(&svc, &failed).remove(0);
        assert!(event.warning);
        assert_eq!(event.reason, "AllocationFailed");

        let stored = applied(&svc, &patch);
        let mut other_failure = failed.clone();
        other_failure.condition.as_mut().unwrap().reason = "NoPool".into();
        let later = Timestamp::from_second(2_000_000).unwrap();
        let patch = status_patch(&stored, &other_failure, later).unwrap();
        assert_eq!(
            patch["status"]["conditions"][1]["lastTransitionTime"],
            "1970-01-12T13:46:40Z"
        );
        assert!(patch["status"].get("loadBalancer").is_some());
    }

    #[test]
    fn clearing_removes_ingress_and_our_condition_only_when_present() {
        let svc = lb_service("ns", "web", 1);
        assert_eq!(status_patch(&svc, &DesiredStatus::cleared(), now()), None);
        let stored = applied(
            &svc,
            &status_patch(&svc, &assigned(&["203.0.113.1"]), now()).unwrap(),
        );
        let patch = status_patch(&stored, &DesiredStatus::cleared(), now()).unwrap();
        assert_eq!(
            patch,
            json!({"status": {"loadBalancer": {"ingress": null}, "conditions": []}})
        );
        assert_eq!(events_for(&stored, &DesiredStatus::cleared()), Vec::new());
    }

    #[test]
    fn an_ingress_written_without_ip_mode_gets_vip_without_an_event() {
        let mut svc = lb_service("ns", "web", 1);
        let desired = assigned(&["203.0.113.1"]);
        let stored = applied(&svc, &status_patch(&svc, &desired, now()).unwrap());
        svc.status = stored.status.clone();
        svc.status
            .as_mut()
            .and_then(|s| s.load_balancer.as_mut())
            .and_then(|lb| lb.ingress.as_mut())
            .unwrap()[0]
            .ip_mode = None;
        let patch = status_patch(&svc, &desired, now()).unwrap();
        assert_eq!(
            patch,
            json!({"status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.1", "ipMode": "VIP"}]}}})
        );
        assert_eq!(events_for(&svc, &desired), Vec::new());
    }

    #[test]
    fn unknown_ingress_is_left_alone_without_a_config() {
        let svc = lb_service("ns", "web", 1);
        let stored = applied(
            &svc,
            &status_patch(&svc, &assigned(&["203.0.113.1"]), now()).unwrap(),
        );
        let no_config = DesiredStatus {
            ingress: None,
            condition: Some(DesiredCondition {
                ok: false,
                reason: REASON_CONFIG_INVALID.into(),
                message: "no valid configuration".into(),
            }),
            attributes: None,
        };
        let patch = status_patch(&stored, &no_config, now()).unwrap();
        assert!(patch["status"].get("loadBalancer").is_none());
    }
}
