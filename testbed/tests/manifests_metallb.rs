//! The `components/metallb-crds` and `components/metallb-source` half of the manifests test: the committed CRDs
//! are exactly `ferrolb crds`, the components render onto the base and the API server accepts them (the CRDs
//! take MetalLB-style objects and the IPAddressPool status counters), and the added Roles grant exactly the
//! calls of `--config-source=metallb` ([`metallb_checks`]), nothing of [`metallb_denied`], each rule needed.

use ferrolb_testbed::Lab;
use ferrolb_testbed::kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams,
};
use ferrolb_testbed::kube::config::{KubeConfigOptions, Kubeconfig};
use ferrolb_testbed::serde_json::{self, Value, json};

use super::rbac::{
    CHECKS, Check, METALLB_NS, SYSTEM, check, every_rule_of_is_needed, kubectl_ok, named,
    objects_of, repo, roles_of, status, wait_answers, wrong,
};

/// MetalLB's kinds the configuration watchers list and watch (L2Advertisements only to report them ignored).
const KINDS: &[&str] = &[
    "ipaddresspools",
    "bgpadvertisements",
    "bgppeers",
    "communities",
    "bfdprofiles",
    "l2advertisements",
];

/// A `'static` string for a check built at run time (a test process leaks a few dozen).
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// Every call `--config-source=metallb` adds, as `kubectl auth can-i` questions.
pub fn metallb_checks() -> Vec<Check> {
    let mut checks = Vec::new();
    for account in ["controller", "speaker"] {
        for kind in KINDS {
            for (verb, does) in [("list", "lists"), ("watch", "watches")] {
                checks.push(check(
                    leak(format!("{account} {does} {kind}")),
                    account,
                    verb,
                    leak(format!("{kind}.metallb.io")),
                    Some(METALLB_NS),
                ));
            }
        }
        checks.push(check(
            leak(format!("{account} gets a BGP password Secret")),
            account,
            "get",
            "secrets",
            Some(METALLB_NS),
        ));
    }
    checks.push(status(check(
        "controller patches IPAddressPool status",
        "controller",
        "patch",
        "ipaddresspools.metallb.io",
        Some(METALLB_NS),
    )));
    // The Lease lives in the config namespace.
    checks.push(named(
        check(
            "controller reads its Lease in the config namespace",
            "controller",
            "get",
            "leases.coordination.k8s.io",
            Some(METALLB_NS),
        ),
        "ferrolb-controller",
    ));
    checks.push(named(
        check(
            "controller renews its Lease in the config namespace",
            "controller",
            "update",
            "leases.coordination.k8s.io",
            Some(METALLB_NS),
        ),
        "ferrolb-controller",
    ));
    checks.push(check(
        "controller creates its Lease in the config namespace",
        "controller",
        "create",
        "leases.coordination.k8s.io",
        Some(METALLB_NS),
    ));
    checks
}

/// What `components/metallb-source` must not grant.
pub fn metallb_denied() -> Vec<Check> {
    let mut denied = Vec::new();
    for account in ["controller", "speaker"] {
        for (verb, ns, what) in [
            ("list", Some(METALLB_NS), "list Secrets"),
            ("watch", Some(METALLB_NS), "watch Secrets"),
            (
                "get",
                Some(SYSTEM),
                "read Secrets outside the config namespace",
            ),
            ("get", Some("kube-system"), "read kube-system Secrets"),
            ("get", None, "read Secrets cluster-wide"),
        ] {
            denied.push(check(
                leak(format!("{account} may not {what}")),
                account,
                verb,
                "secrets",
                ns,
            ));
        }
        for verb in ["create", "update", "patch", "delete"] {
            denied.push(check(
                leak(format!("{account} may not {verb} IPAddressPools")),
                account,
                verb,
                "ipaddresspools.metallb.io",
                Some(METALLB_NS),
            ));
        }
        denied.push(check(
            leak(format!("{account} may not list IPAddressPools elsewhere")),
            account,
            "list",
            "ipaddresspools.metallb.io",
            Some(SYSTEM),
        ));
        denied.push(check(
            leak(format!("{account} may not patch BGPPeers")),
            account,
            "patch",
            "bgppeers.metallb.io",
            Some(METALLB_NS),
        ));
    }
    denied.push(status(check(
        "controller may not update IPAddressPool status",
        "controller",
        "update",
        "ipaddresspools.metallb.io",
        Some(METALLB_NS),
    )));
    denied.push(status(check(
        "speaker may not patch IPAddressPool status",
        "speaker",
        "patch",
        "ipaddresspools.metallb.io",
        Some(METALLB_NS),
    )));
    denied.push(named(
        check(
            "controller may not take other Leases in the config namespace",
            "controller",
            "update",
            "leases.coordination.k8s.io",
            Some(METALLB_NS),
        ),
        "other",
    ));
    denied.push(check(
        "speaker may not create Leases in the config namespace",
        "speaker",
        "create",
        "leases.coordination.k8s.io",
        Some(METALLB_NS),
    ));
    denied
}

/// Renders the base with both components; checks the CRDs file and the daemons' arguments.
fn render(lab: &Lab) -> String {
    let components = repo().join("manifests/components");
    let committed = std::fs::read_to_string(components.join("metallb-crds/crds.yaml"))
        .expect("manifests/components/metallb-crds/crds.yaml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferrolb"))
        .arg("crds")
        .output()
        .expect("run ferrolb crds");
    assert!(out.status.success(), "ferrolb crds failed");
    assert!(
        committed == String::from_utf8_lossy(&out.stdout),
        "manifests/components/metallb-crds/crds.yaml differs from `ferrolb crds`; regenerate it with\n  \
         cargo run -q -- crds > manifests/components/metallb-crds/crds.yaml"
    );
    let rendered = super::kustomize_overlay::render(
        lab,
        "metallb-overlay",
        &["metallb-crds", "metallb-source"],
    );
    for arg in [
        "--config-source=metallb",
        "--config-namespace=metallb-system",
    ] {
        assert_eq!(rendered.matches(arg).count(), 2, "{arg} on both daemons");
    }
    assert!(!rendered.contains("--config-namespace=ferrolb-system"));
    assert_eq!(
        rendered.matches("kind: CustomResourceDefinition").count(),
        5
    );
    rendered
}

/// Applies `file` (relative to the repository) for real.
fn apply(lab: &Lab, file: &str) {
    kubectl_ok(
        lab,
        &["apply", "-f", &repo().join(file).display().to_string()],
    );
}

/// Writes `value` to a temporary file and returns its path.
fn temp_json(name: &str, value: &Value) -> std::path::PathBuf {
    let file = std::env::temp_dir().join(format!("ferrolb-{name}-{}.json", std::process::id()));
    std::fs::write(&file, serde_json::to_vec(value).unwrap()).unwrap();
    file
}

/// A client of the lab's API server that acts as ServiceAccount `account` (impersonation by the admin).
async fn client_as(lab: &Lab, account: &str) -> ferrolb_testbed::kube::Client {
    let kubeconfig = Kubeconfig::read_from(lab.kubeconfig_path()).expect("admin kubeconfig");
    let mut config = ferrolb_testbed::kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &KubeConfigOptions::default(),
    )
    .await
    .expect("kube config");
    config.auth_info.impersonate = Some(format!("system:serviceaccount:{SYSTEM}:{account}"));
    ferrolb_testbed::kube::Client::try_from(config).expect("kube client")
}

/// The whole MetalLB-source step (after the base's RBAC checks; the base is applied).
pub async fn metallb_source(lab: &Lab) {
    let rendered = render(lab);
    let file = std::env::temp_dir().join(format!("ferrolb-metallb-{}.yaml", std::process::id()));
    std::fs::write(&file, &rendered).unwrap();
    // The namespace and the CRDs for real first: a dry run creates nothing the namespaced objects need.
    apply(lab, "manifests/components/metallb-crds/namespace.yaml");
    apply(lab, "manifests/components/metallb-crds/crds.yaml");
    // MetalLB's L2Advertisement is not among ferrolb's CRDs (it reads them only to report them ignored, on
    // clusters that have MetalLB's CRDs); a stand-in lets `kubectl auth can-i` resolve the resource.
    let l2 = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "l2advertisements.metallb.io"},
        "spec": {"group": "metallb.io", "scope": "Namespaced",
                 "names": {"kind": "L2Advertisement", "plural": "l2advertisements"},
                 "versions": [{"name": "v1beta1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object",
                                          "x-kubernetes-preserve-unknown-fields": true}}}]}
    });
    let f = temp_json("l2crd", &l2);
    kubectl_ok(lab, &["apply", "-f", &f.display().to_string()]);
    let _ = std::fs::remove_file(&f);
    kubectl_ok(
        lab,
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=30s",
            "crd/ipaddresspools.metallb.io",
            "crd/bgpadvertisements.metallb.io",
            "crd/bgppeers.metallb.io",
            "crd/communities.metallb.io",
            "crd/bfdprofiles.metallb.io",
            "crd/l2advertisements.metallb.io",
        ],
    );
    kubectl_ok(
        lab,
        &[
            "apply",
            "--dry-run=server",
            "-f",
            &file.display().to_string(),
        ],
    );
    let _ = std::fs::remove_file(&file);
    apply(lab, "manifests/components/metallb-source/rbac.yaml");
    println!(
        "components/metallb-crds and metallb-source: rendered, dry-run accepted, CRDs and RBAC applied"
    );

    // MetalLB-style objects validate, defaults are filled in, and the controller's status patch is stored.
    let pool = json!({
        "apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
        "metadata": {"name": "web", "namespace": METALLB_NS},
        "spec": {"addresses": ["203.0.113.0/24", "2001:db8::/126"]}
    });
    let peer = json!({
        "apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer",
        "metadata": {"name": "r1", "namespace": METALLB_NS},
        "spec": {"myASN": 64512, "peerASN": 64513, "peerAddress": "198.18.0.1", "holdTime": "90s",
                 "passwordSecret": {"name": "r1-password", "namespace": METALLB_NS},
                 "nodeSelectors": [{"matchLabels": {"rack": "a"}}]}
    });
    for (name, obj) in [("pool", &pool), ("peer", &peer)] {
        let f = temp_json(name, obj);
        kubectl_ok(lab, &["apply", "-f", &f.display().to_string()]);
        let _ = std::fs::remove_file(&f);
    }
    // The controller's write exactly: a merge patch of the status subresource, no get (kubectl patch would get
    // first), under the controller's ServiceAccount.
    let counts = json!({"status": {"assignedIPv4": 2, "assignedIPv6": 0, "availableIPv4": 254,
                                   "availableIPv6": 4}});
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("metallb.io", "v1beta1", "IPAddressPool"),
        "ipaddresspools",
    );
    let pools: Api<DynamicObject> =
        Api::namespaced_with(client_as(lab, "controller").await, METALLB_NS, &resource);
    pools
        .patch_status("web", &PatchParams::default(), &Patch::Merge(&counts))
        .await
        .expect("the controller patches IPAddressPool status");
    let stored: Value = serde_json::from_str(&kubectl_ok(
        lab,
        &[
            "get",
            "ipaddresspool",
            "web",
            "-n",
            METALLB_NS,
            "-o",
            "json",
        ],
    ))
    .unwrap();
    assert_eq!(stored["status"], counts["status"]);
    assert_eq!(stored["spec"]["autoAssign"], true, "the CRD's default");
    assert_eq!(stored["spec"]["avoidBuggyIPs"], false, "the CRD's default");
    let stored: Value = serde_json::from_str(&kubectl_ok(
        lab,
        &[
            "get",
            "bgppeers.v1beta2.metallb.io",
            "r1",
            "-n",
            METALLB_NS,
            "-o",
            "json",
        ],
    ))
    .unwrap();
    assert_eq!(stored["spec"]["peerPort"], 179, "the CRD's default");
    assert_eq!(stored["spec"]["holdTime"], "90s");
    println!(
        "IPAddressPool and BGPPeer objects accepted; status written as the controller: {}",
        stored["spec"]
    );

    let checks = metallb_checks();
    let mut all: Vec<Check> = CHECKS.to_vec();
    all.extend(checks.iter().copied());
    wait_answers(lab, &checks, true, "every call of --config-source=metallb");
    let allowed = wrong(lab, &metallb_denied(), false);
    assert!(allowed.is_empty(), "granted but must not be: {allowed:?}");
    let roles = roles_of(objects_of(
        lab,
        &repo().join("manifests/components/metallb-source/rbac.yaml"),
    ));
    assert_eq!(roles.len(), 2, "a Role each in the config namespace");
    every_rule_of_is_needed(lab, &roles, &checks, &all);
}
