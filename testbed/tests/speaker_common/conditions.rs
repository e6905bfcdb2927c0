//! A Service's `ferrolb.io/BGPAttributesAccepted` condition and the Warning Event of a refusal, as the
//! controller writes them.

use ferrolb_testbed::Lab;
use ferrolb_testbed::serde_json::{self, Value};
use std::time::Duration;

/// Waits for the `ferrolb.io/BGPAttributesAccepted` condition of Service `ns/service` to be `status`
/// (`True`/`False`) with `reason`; for `False`, also for a Warning Event with that reason. Returns the
/// condition's message. `logs` is printed when either does not come.
pub fn wait_attributes_condition(
    lab: &Lab,
    ns: &str,
    service: &str,
    status: &str,
    reason: &str,
    logs: &dyn Fn() -> String,
) -> String {
    let mut message = String::new();
    let mut last = Value::Null;
    lab.wait_until(
        Duration::from_secs(30),
        &format!("BGPAttributesAccepted={status} ({reason})"),
        || {
            let out = lab.kubectl(&["get", "service", service, "-n", ns, "-o", "json"])?;
            let svc: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
            last = svc["status"]["conditions"].clone();
            let found = last.as_array().into_iter().flatten().find(|c| {
                c["type"] == "ferrolb.io/BGPAttributesAccepted"
                    && c["status"] == status
                    && c["reason"] == reason
            });
            message = found
                .and_then(|c| c["message"].as_str())
                .unwrap_or_default()
                .to_owned();
            Ok(found.is_some())
        },
    )
    .unwrap_or_else(|e| panic!("{e}\nconditions: {last:#}\n{}", logs()));
    if status == "False" {
        lab.wait_until(
            Duration::from_secs(30),
            &format!("a Warning Event {reason}"),
            || {
                let out = lab.kubectl(&[
                    "get",
                    "events",
                    "-n",
                    ns,
                    "--field-selector",
                    &format!("involvedObject.name={service},type=Warning,reason={reason}"),
                    "-o",
                    "json",
                ])?;
                let v: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
                Ok(v["items"].as_array().is_some_and(|i| !i.is_empty()))
            },
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", logs()));
    }
    message
}
