//! What a Service's status should say, and the patch that makes it so. A patch is built only when the stored
//! status differs from the desired one, so a resync writes nothing and raises no Event.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use std::net::IpAddr;

use super::service::ingress_ips;

/// The condition type ferrolb maintains on each Service it handles.
pub const CONDITION_TYPE: &str = "ferrolb.io/AddressAssigned";

/// Condition reason: the Service holds its addresses.
pub const REASON_ASSIGNED: &str = "Assigned";
/// Condition reason: the Service keeps addresses that no current pool contains (kept so traffic keeps flowing).
pub const REASON_STRANDED: &str = "AddressStranded";
/// Condition reason: the Service's address is also claimed by an older Service, which keeps it.
pub const REASON_CONFLICT: &str = "AddressConflict";
/// Condition reason: no valid configuration has been loaded.
pub const REASON_CONFIG_INVALID: &str = "ConfigInvalid";

/// Event reason on a Service that got (or changed) its addresses.
pub const EVENT_ALLOCATED: &str = "IPAllocated";
/// Event reason on a Service that could not get addresses.
pub const EVENT_FAILED: &str = "AllocationFailed";

/// The status a Service should have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredStatus {
    /// `status.loadBalancer.ingress`, in order. `None`: leave the stored ingress as it is (no valid config yet).
    pub ingress: Option<Vec<IpAddr>>,
    /// Our condition; `None` removes it.
    pub condition: Option<DesiredCondition>,
}

/// The `ferrolb.io/AddressAssigned` condition, without its timestamps.
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
        }
    }
}

/// An Event to record on a Service after its status was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceEvent {
    /// `Warning` (true) or `Normal`.
    pub warning: bool,
    /// `IPAllocated` or `AllocationFailed`.
    pub reason: &'static str,
    /// What happened.
    pub note: String,
}

/// Our condition as stored on the Service.
pub fn stored_condition(svc: &Service) -> Option<&Condition> {
    svc.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == CONDITION_TYPE)
}

/// The merge patch for the status subresource that turns the stored status into `desired`, or `None` when it
/// already matches. Other conditions on the Service are kept; `lastTransitionTime` changes only when the
/// condition's status does.
pub fn status_patch(svc: &Service, desired: &DesiredStatus, now: Timestamp) -> Option<Value> {
    let generation = svc.metadata.generation;
    let stored = stored_condition(svc);
    let condition_matches = match (&desired.condition, stored) {
        (None, None) => true,
        (Some(want), Some(have)) => {
            have.status == status_word(want.ok)
                && have.reason == want.reason
                && have.message == want.message
                && have.observed_generation == generation
        }
        _ => false,
    };
    let ingress_matches = match &desired.ingress {
        None => true,
        Some(ips) => ingress_ips(svc) == *ips && !has_non_ip_ingress(svc, ips),
    };
    if condition_matches && ingress_matches {
        return None;
    }
    let mut status = serde_json::Map::new();
    if let Some(ips) = &desired.ingress {
        let ingress: Vec<Value> = ips.iter().map(|ip| json!({"ip": ip.to_string()})).collect();
        status.insert(
            "loadBalancer".into(),
            if ingress.is_empty() {
                json!({"ingress": null})
            } else {
                json!({ "ingress": ingress })
            },
        );
    }
    if !condition_matches {
        let mut conditions: Vec<Value> = svc
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .filter(|c| c.type_ != CONDITION_TYPE)
            .filter_map(|c| serde_json::to_value(c).ok())
            .collect();
        if let Some(want) = &desired.condition {
            let since = match stored {
                Some(have) if have.status == status_word(want.ok) => {
                    have.last_transition_time.clone()
                }
                _ => Time(now),
            };
            let condition = Condition {
                type_: CONDITION_TYPE.into(),
                status: status_word(want.ok).into(),
                reason: want.reason.clone(),
                message: want.message.clone(),
                observed_generation: generation,
                last_transition_time: since,
            };
            conditions.extend(serde_json::to_value(condition).ok());
        }
        status.insert("conditions".into(), Value::Array(conditions));
    }
    Some(json!({ "status": status }))
}

/// Whether the stored ingress has entries other than exactly `ips` (e.g. a hostname someone added).
fn has_non_ip_ingress(svc: &Service, ips: &[IpAddr]) -> bool {
    let count = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .map_or(0, Vec::len);
    count != ips.len()
}

fn status_word(ok: bool) -> &'static str {
    if ok { "True" } else { "False" }
}

/// The Event to record when the stored status changes to `desired`: only when the addresses or the condition's
/// reason change (not for a new `observedGeneration` alone), never when removing our status.
pub fn event_for(svc: &Service, desired: &DesiredStatus) -> Option<ServiceEvent> {
    let want = desired.condition.as_ref()?;
    let same_ips = desired
        .ingress
        .as_ref()
        .is_none_or(|ips| ingress_ips(svc) == *ips);
    let same_reason =
        stored_condition(svc).is_some_and(|c| c.reason == want.reason && c.message == want.message);
    if same_ips && same_reason {
        return None;
    }
    Some(ServiceEvent {
        warning: !want.ok || want.reason == REASON_STRANDED,
        reason: if want.ok {
            EVENT_ALLOCATED
        } else {
            EVENT_FAILED
        },
        note: want.message.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::service::tests::{applied, lb_service};

    fn assigned(ips: &[&str]) -> DesiredStatus {
        DesiredStatus {
            ingress: Some(ips.iter().map(|s| s.parse().unwrap()).collect()),
            condition: Some(DesiredCondition {
                ok: true,
                reason: REASON_ASSIGNED.into(),
                message: format!("assigned {}", ips.join(", ")),
            }),
        }
    }

    fn now() -> Timestamp {
        Timestamp::from_second(1_000_000).unwrap()
    }

    #[test]
    fn first_assignment_writes_ingress_and_condition_exactly() {
        let svc = lb_service("ns", "web", 1);
        let patch = status_patch(&svc, &assigned(&["203.0.113.1"]), now()).unwrap();
        assert_eq!(
            patch,
            json!({"status": {
                "loadBalancer": {"ingress": [{"ip": "203.0.113.1"}]},
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
        let event = event_for(&svc, &assigned(&["203.0.113.1"])).unwrap();
        assert_eq!(event.reason, "IPAllocated");
        assert!(!event.warning);
    }

    #[test]
    fn resync_of_an_unchanged_status_writes_nothing_and_raises_no_event() {
        let svc = lb_service("ns", "web", 1);
        let desired = assigned(&["203.0.113.1", "2001:db8::1"]);
        let stored = applied(&svc, &status_patch(&svc, &desired, now()).unwrap());
        assert_eq!(status_patch(&stored, &desired, now()), None);
        assert_eq!(event_for(&stored, &desired), None);
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
        };
        let patch = status_patch(&svc, &failed, now()).unwrap();
        assert_eq!(patch["status"]["loadBalancer"], json!({"ingress": null}));
        let conditions = patch["status"]["conditions"].as_array().unwrap();
        assert_eq!(conditions.len(), 2);
        assert_eq!(conditions[0]["type"], "example.com/Other");
        assert_eq!(conditions[1]["reason"], "PoolExhausted");
        let event = event_for(&svc, &failed).unwrap();
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
        assert_eq!(event_for(&stored, &DesiredStatus::cleared()), None);
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
        };
        let patch = status_patch(&stored, &no_config, now()).unwrap();
        assert!(patch["status"].get("loadBalancer").is_none());
    }
}
