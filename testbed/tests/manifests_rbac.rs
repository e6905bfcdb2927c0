//! The RBAC half of the manifests test: every call the code makes as a named `kubectl auth can-i` question
//! ([`CHECKS`]), what must be refused ([`DENIED`]), and the proof that each rule is needed.

use ferrolb_testbed::Lab;
use ferrolb_testbed::serde_json::{self, Value};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// Namespace of ferrolb (its ServiceAccounts, ConfigMap and Lease).
pub const SYSTEM: &str = "ferrolb-system";
/// The config namespace of `components/metallb-source` (MetalLB's objects and Secrets).
pub const METALLB_NS: &str = "metallb-system";
/// Namespace of the test's Service.
pub const APP_NS: &str = "rbac-app";

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One `kubectl auth can-i` question, named so that a failure says which permission is missing.
#[derive(Debug, Clone, Copy)]
pub struct Check {
    pub name: &'static str,
    pub account: &'static str,
    pub verb: &'static str,
    /// `resource[.group]`, as kubectl takes it.
    pub resource: &'static str,
    pub subresource: Option<&'static str>,
    /// `None`: all namespaces (or a cluster-scoped resource).
    pub namespace: Option<&'static str>,
    pub object: Option<&'static str>,
}

pub const fn check(
    name: &'static str,
    account: &'static str,
    verb: &'static str,
    resource: &'static str,
    namespace: Option<&'static str>,
) -> Check {
    Check {
        name,
        account,
        verb,
        resource,
        subresource: None,
        namespace,
        object: None,
    }
}

pub const fn named(mut c: Check, object: &'static str) -> Check {
    c.object = Some(object);
    c
}

pub const fn status(mut c: Check) -> Check {
    c.subresource = Some("status");
    c
}

/// Every call the code makes, as `kubectl auth can-i` questions (grep `Api::`, `watcher(`, `patch_status`,
/// `Recorder`, `get_opt`/`create`/`replace` in src/controller and src/speaker).
pub const CHECKS: &[Check] = &[
    // src/controller/run.rs: the Service watcher (all namespaces), status patches, Events.
    check(
        "controller lists Services",
        "controller",
        "list",
        "services",
        None,
    ),
    check(
        "controller watches Services",
        "controller",
        "watch",
        "services",
        None,
    ),
    // The Namespace watcher (cluster-scoped): service-allocation's namespace selectors and fences.
    check(
        "controller lists Namespaces",
        "controller",
        "list",
        "namespaces",
        None,
    ),
    check(
        "controller watches Namespaces",
        "controller",
        "watch",
        "namespaces",
        None,
    ),
    status(check(
        "controller patches Service status",
        "controller",
        "patch",
        "services",
        Some(APP_NS),
    )),
    check(
        "controller creates Events",
        "controller",
        "create",
        "events.events.k8s.io",
        Some(APP_NS),
    ),
    check(
        "controller patches Events",
        "controller",
        "patch",
        "events.events.k8s.io",
        Some(APP_NS),
    ),
    // ConfigInvalid Events are about the ConfigMap, so they live in its namespace.
    check(
        "controller creates Events about its ConfigMap",
        "controller",
        "create",
        "events.events.k8s.io",
        Some(SYSTEM),
    ),
    // With `--config-source=metallb`: ConfigInvalid (and ignored-L2Advertisement) Events about MetalLB's
    // objects, in their namespace.
    check(
        "controller creates Events about MetalLB objects",
        "controller",
        "create",
        "events.events.k8s.io",
        Some(METALLB_NS),
    ),
    // The ConfigMap watcher (fieldSelector metadata.name=config).
    named(
        check(
            "controller lists its ConfigMap",
            "controller",
            "list",
            "configmaps",
            Some(SYSTEM),
        ),
        "config",
    ),
    named(
        check(
            "controller watches its ConfigMap",
            "controller",
            "watch",
            "configmaps",
            Some(SYSTEM),
        ),
        "config",
    ),
    // src/controller/leader.rs: get_opt, create, replace.
    named(
        check(
            "controller reads its Lease",
            "controller",
            "get",
            "leases.coordination.k8s.io",
            Some(SYSTEM),
        ),
        "ferrolb-controller",
    ),
    named(
        check(
            "controller renews its Lease",
            "controller",
            "update",
            "leases.coordination.k8s.io",
            Some(SYSTEM),
        ),
        "ferrolb-controller",
    ),
    check(
        "controller creates its Lease",
        "controller",
        "create",
        "leases.coordination.k8s.io",
        Some(SYSTEM),
    ),
    // src/speaker/run.rs: watchers of Services, EndpointSlices, its Node, the ConfigMap; Events.
    check(
        "speaker lists Services",
        "speaker",
        "list",
        "services",
        None,
    ),
    check(
        "speaker watches Services",
        "speaker",
        "watch",
        "services",
        None,
    ),
    check(
        "speaker lists EndpointSlices",
        "speaker",
        "list",
        "endpointslices.discovery.k8s.io",
        None,
    ),
    check(
        "speaker watches EndpointSlices",
        "speaker",
        "watch",
        "endpointslices.discovery.k8s.io",
        None,
    ),
    named(
        check("speaker lists its Node", "speaker", "list", "nodes", None),
        "node-1",
    ),
    named(
        check(
            "speaker watches its Node",
            "speaker",
            "watch",
            "nodes",
            None,
        ),
        "node-1",
    ),
    named(
        check(
            "speaker lists the ConfigMap",
            "speaker",
            "list",
            "configmaps",
            Some(SYSTEM),
        ),
        "config",
    ),
    named(
        check(
            "speaker watches the ConfigMap",
            "speaker",
            "watch",
            "configmaps",
            Some(SYSTEM),
        ),
        "config",
    ),
    check(
        "speaker creates Events",
        "speaker",
        "create",
        "events.events.k8s.io",
        Some(APP_NS),
    ),
    check(
        "speaker patches Events",
        "speaker",
        "patch",
        "events.events.k8s.io",
        Some(APP_NS),
    ),
    // src/speaker/explain.rs (`--explain`): gets, and the list of EndpointSlices above.
    named(
        check(
            "speaker --explain gets a Service",
            "speaker",
            "get",
            "services",
            Some(APP_NS),
        ),
        "whoami",
    ),
    named(
        check(
            "speaker --explain gets its Node",
            "speaker",
            "get",
            "nodes",
            None,
        ),
        "node-1",
    ),
    named(
        check(
            "speaker --explain gets the ConfigMap",
            "speaker",
            "get",
            "configmaps",
            Some(SYSTEM),
        ),
        "config",
    ),
    // src/speaker/session_status: server-side apply of its BGPSessionStatus objects and their status, the
    // list of its node's objects at start, the deletion of those of removed peers (its namespace only).
    check(
        "speaker applies its BGPSessionStatus objects",
        "speaker",
        "patch",
        "bgpsessionstatuses.ferrolb.io",
        Some(SYSTEM),
    ),
    status(check(
        "speaker applies BGPSessionStatus status",
        "speaker",
        "patch",
        "bgpsessionstatuses.ferrolb.io",
        Some(SYSTEM),
    )),
    // A server-side apply that creates the object is authorised as create too.
    check(
        "speaker creates BGPSessionStatus objects by applying them",
        "speaker",
        "create",
        "bgpsessionstatuses.ferrolb.io",
        Some(SYSTEM),
    ),
    check(
        "speaker lists its node's BGPSessionStatus objects",
        "speaker",
        "list",
        "bgpsessionstatuses.ferrolb.io",
        Some(SYSTEM),
    ),
    check(
        "speaker deletes BGPSessionStatus objects of removed peers",
        "speaker",
        "delete",
        "bgpsessionstatuses.ferrolb.io",
        Some(SYSTEM),
    ),
];

/// What neither ServiceAccount may do.
pub const DENIED: &[Check] = &[
    check(
        "controller may not read Secrets",
        "controller",
        "get",
        "secrets",
        Some(SYSTEM),
    ),
    check(
        "controller may not list Pods",
        "controller",
        "list",
        "pods",
        None,
    ),
    // The first list had `services get` and `services/status update`; the code makes neither call
    // (a watcher lists and watches; the status is merge-patched), so neither is granted.
    check(
        "controller may not get a Service",
        "controller",
        "get",
        "services",
        Some(APP_NS),
    ),
    check(
        "controller may not update Services",
        "controller",
        "update",
        "services",
        Some(APP_NS),
    ),
    check(
        "controller may not delete Services",
        "controller",
        "delete",
        "services",
        Some(APP_NS),
    ),
    status(check(
        "controller may not update Service status",
        "controller",
        "update",
        "services",
        Some(APP_NS),
    )),
    named(
        check(
            "controller may not read other ConfigMaps",
            "controller",
            "get",
            "configmaps",
            Some(SYSTEM),
        ),
        "other",
    ),
    check(
        "controller may not list ConfigMaps elsewhere",
        "controller",
        "list",
        "configmaps",
        Some("kube-system"),
    ),
    named(
        check(
            "controller may not take other Leases",
            "controller",
            "update",
            "leases.coordination.k8s.io",
            Some(SYSTEM),
        ),
        "other",
    ),
    check(
        "controller may not delete Leases",
        "controller",
        "delete",
        "leases.coordination.k8s.io",
        Some(SYSTEM),
    ),
    check(
        "controller may not create core Events",
        "controller",
        "create",
        "events",
        Some(APP_NS),
    ),
    check(
        "controller may not patch Nodes",
        "controller",
        "patch",
        "nodes",
        None,
    ),
    // Only the controller allocates, so only it reads Namespaces; and it never changes them (a tenant's
    // fence is the Namespace's labels, which ferrolb must not be able to edit).
    check(
        "controller may not patch Namespaces",
        "controller",
        "patch",
        "namespaces",
        None,
    ),
    check(
        "speaker may not list Namespaces",
        "speaker",
        "list",
        "namespaces",
        None,
    ),
    check(
        "speaker may not watch Namespaces",
        "speaker",
        "watch",
        "namespaces",
        None,
    ),
    check(
        "speaker may not read Secrets",
        "speaker",
        "get",
        "secrets",
        Some(SYSTEM),
    ),
    check("speaker may not list Pods", "speaker", "list", "pods", None),
    status(check(
        "speaker may not patch Service status",
        "speaker",
        "patch",
        "services",
        Some(APP_NS),
    )),
    check(
        "speaker may not update Services",
        "speaker",
        "update",
        "services",
        Some(APP_NS),
    ),
    check(
        "speaker may not patch Nodes",
        "speaker",
        "patch",
        "nodes",
        None,
    ),
    check(
        "speaker may not create Leases",
        "speaker",
        "create",
        "leases.coordination.k8s.io",
        Some(SYSTEM),
    ),
    named(
        check(
            "speaker may not read other ConfigMaps",
            "speaker",
            "get",
            "configmaps",
            Some(SYSTEM),
        ),
        "other",
    ),
    check(
        "speaker may not update EndpointSlices",
        "speaker",
        "update",
        "endpointslices.discovery.k8s.io",
        None,
    ),
    check(
        "speaker may not write BGPSessionStatus objects in other namespaces",
        "speaker",
        "patch",
        "bgpsessionstatuses.ferrolb.io",
        Some(APP_NS),
    ),
    check(
        "speaker may not list BGPSessionStatus objects cluster-wide",
        "speaker",
        "list",
        "bgpsessionstatuses.ferrolb.io",
        None,
    ),
    check(
        "speaker may not update BGPSessionStatus objects (it applies)",
        "speaker",
        "update",
        "bgpsessionstatuses.ferrolb.io",
        Some(SYSTEM),
    ),
    check(
        "speaker may not delete BGPSessionStatus objects in bulk",
        "speaker",
        "deletecollection",
        "bgpsessionstatuses.ferrolb.io",
        Some(SYSTEM),
    ),
    check(
        "controller may not write BGPSessionStatus objects",
        "controller",
        "patch",
        "bgpsessionstatuses.ferrolb.io",
        Some(SYSTEM),
    ),
];

pub fn kubectl(lab: &Lab) -> Command {
    let mut cmd = Command::new(lab.kubectl_path());
    cmd.arg("--kubeconfig").arg(lab.kubeconfig_path());
    cmd
}

/// Runs kubectl and returns stdout; panics with stderr on failure.
pub fn kubectl_ok(lab: &Lab, args: &[&str]) -> String {
    let out = kubectl(lab).args(args).output().expect("run kubectl");
    assert!(
        out.status.success(),
        "kubectl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `kubectl auth can-i` for `c`: true for "yes".
pub fn can(lab: &Lab, c: &Check) -> bool {
    let resource = match c.object {
        Some(o) => format!("{}/{o}", c.resource),
        None => c.resource.to_owned(),
    };
    let mut cmd = kubectl(lab);
    cmd.args(["auth", "can-i", c.verb, &resource])
        .arg(format!("--as=system:serviceaccount:{SYSTEM}:{}", c.account));
    if let Some(sub) = c.subresource {
        cmd.arg(format!("--subresource={sub}"));
    }
    match c.namespace {
        Some(ns) => cmd.args(["-n", ns]),
        None => cmd.arg("--all-namespaces"),
    };
    let out = cmd.output().expect("run kubectl auth can-i");
    let answer = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    match (out.status.code(), answer.as_str()) {
        (Some(0), "yes") => true,
        (Some(1), "no") => false,
        other => panic!(
            "kubectl auth can-i for {:?}: {other:?} {}",
            c.name,
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// Names of the checks in `checks` whose answer is not `want`.
pub fn wrong(lab: &Lab, checks: &[Check], want: bool) -> Vec<&'static str> {
    checks
        .iter()
        .filter(|c| can(lab, c) != want)
        .map(|c| c.name)
        .collect()
}

/// Polls until every check in `checks` answers `want` (RBAC changes reach the authorizer through a watch).
pub fn wait_answers(lab: &Lab, checks: &[Check], want: bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let bad = wrong(lab, checks, want);
        if bad.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: still answering {}: {bad:?}",
            !want
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Does `rule` (a PolicyRule as JSON) of `role` (a Role grants in its namespace only) grant `c`?
pub fn rule_grants(role: &Value, rule: &Value, c: &Check) -> bool {
    if role["kind"] == "Role" && c.namespace != role["metadata"]["namespace"].as_str() {
        return false;
    }
    let (resource, group) = c.resource.split_once('.').unwrap_or((c.resource, ""));
    let resource = match c.subresource {
        Some(sub) => format!("{resource}/{sub}"),
        None => resource.to_owned(),
    };
    let has = |key: &str, want: &str| {
        rule[key]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == want || v == "*"))
    };
    let names_ok = match rule["resourceNames"].as_array() {
        None => true,
        Some(names) => c.object.is_some_and(|o| names.iter().any(|n| n == o)),
    };
    has("apiGroups", group) && has("resources", &resource) && has("verbs", c.verb) && names_ok
}

/// The objects of `manifests/ferrolb.yaml` as JSON (kubectl converts them; no server involved).
pub fn rendered_objects(lab: &Lab) -> Vec<Value> {
    objects_of(lab, &repo().join("manifests/ferrolb.yaml"))
}

/// The objects of a manifest file as JSON.
pub fn objects_of(lab: &Lab, file: &std::path::Path) -> Vec<Value> {
    let out = kubectl_ok(
        lab,
        &[
            "create",
            "--dry-run=client",
            "-o",
            "json",
            "-f",
            &file.display().to_string(),
        ],
    );
    // One JSON document per object, back to back.
    serde_json::Deserializer::from_str(&out)
        .into_iter::<Value>()
        .collect::<Result<Vec<Value>, _>>()
        .expect("kubectl -o json")
}

/// Which ServiceAccount a Role/ClusterRole is for (from its name: ferrolb-controller, ferrolb-speaker).
pub fn account_of(role: &Value) -> &'static str {
    match role["metadata"]["name"].as_str() {
        Some("ferrolb-controller") => "controller",
        Some("ferrolb-speaker") => "speaker",
        other => panic!("unexpected role {other:?}"),
    }
}

pub fn replace(lab: &Lab, obj: &Value) {
    let file = std::env::temp_dir().join(format!("ferrolb-manifests-{}.json", std::process::id()));
    std::fs::write(&file, serde_json::to_vec(obj).unwrap()).unwrap();
    kubectl_ok(lab, &["replace", "-f", &file.display().to_string()]);
    let _ = std::fs::remove_file(&file);
}

/// The Roles and ClusterRoles among `objects`.
pub fn roles_of(objects: Vec<Value>) -> Vec<Value> {
    objects
        .into_iter()
        .filter(|o| matches!(o["kind"].as_str(), Some("Role" | "ClusterRole")))
        .collect()
}

/// Check 4: each rule, removed alone, fails the checks it covers and none of the others.
pub fn every_rule_is_needed(lab: &Lab) {
    let roles = roles_of(rendered_objects(lab));
    assert_eq!(roles.len(), 4, "two ClusterRoles and two Roles");
    every_rule_of_is_needed(lab, &roles, CHECKS, CHECKS);
}

/// Each rule of `roles`, removed alone, fails the checks of `checks` it covers and none of `all` (which
/// includes `checks`); every check of `checks` is covered by some rule.
pub fn every_rule_of_is_needed(lab: &Lab, roles: &[Value], checks: &[Check], all: &[Check]) {
    let mut covered_somewhere: BTreeSet<&str> = BTreeSet::new();
    for role in roles {
        let account = account_of(role);
        let rules = role["rules"].as_array().expect("rules").clone();
        for (i, rule) in rules.iter().enumerate() {
            let covered: Vec<Check> = checks
                .iter()
                .filter(|c| c.account == account && rule_grants(role, rule, c))
                .copied()
                .collect();
            let label = format!(
                "{} {} rule {i} {}",
                role["kind"], role["metadata"]["name"], rule
            );
            assert!(
                !covered.is_empty(),
                "{label}: no check needs this rule (it grants more than the code uses)"
            );
            let mut without = role.clone();
            without["rules"].as_array_mut().unwrap().remove(i);
            replace(lab, &without);
            wait_answers(lab, &covered, false, &format!("{label} removed"));
            let others: Vec<Check> = all
                .iter()
                .filter(|c| !covered.iter().any(|k| k.name == c.name))
                .copied()
                .collect();
            assert!(
                wrong(lab, &others, true).is_empty(),
                "{label} removed: other checks changed"
            );
            println!(
                "without {label}: failing {:?}",
                covered.iter().map(|c| c.name).collect::<Vec<_>>()
            );
            covered_somewhere.extend(covered.iter().map(|c| c.name));
            let mut restored = role.clone();
            restored["metadata"]
                .as_object_mut()
                .unwrap()
                .remove("resourceVersion");
            replace(lab, &restored);
            wait_answers(lab, all, true, &format!("{label} restored"));
        }
    }
    let uncovered: Vec<&str> = checks
        .iter()
        .map(|c| c.name)
        .filter(|n| !covered_somewhere.contains(n))
        .collect();
    assert!(
        uncovered.is_empty(),
        "checks granted by no single rule: {uncovered:?}"
    );
}
