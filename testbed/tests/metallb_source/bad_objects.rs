//! Step 4 of the metallb source test: each bad object, one at a time.

use super::*;

/// One bad object: its kind, name (in metallb-system), version and spec, and its Warning Event's exact note.
pub(super) struct BadObject {
    kind: &'static str,
    name: &'static str,
    version: &'static str,
    spec: &'static str,
    note: &'static str,
}

/// Each case issue 16 names that the API server's schema does not already refuse.
pub(super) const BAD_OBJECTS: &[BadObject] = &[
    BadObject {
        kind: "IPAddressPool",
        name: "bad-cidr",
        version: "v1beta1",
        spec: "  addresses: [203.0.113.300/32]\n",
        note: "spec.addresses[0]: invalid CIDR \"203.0.113.300/32\"",
    },
    BadObject {
        kind: "IPAddressPool",
        name: "overlapping",
        version: "v1beta1",
        spec: "  addresses: [203.0.113.15/32]\n",
        note: "spec.addresses[0]: 203.0.113.15/32 in pool \"overlapping\" overlaps 203.0.113.10-203.0.113.20 in pool \"public-pool\" (IPAddressPool metallb-system/public-pool spec.addresses[0])",
    },
    BadObject {
        kind: "BGPAdvertisement",
        name: "missing-pool",
        version: "v1beta1",
        spec: "  ipAddressPools: [nope]\n",
        note: "spec.ipAddressPools[0]: no IPAddressPool named \"nope\" (defined: public-pool)",
    },
    BadObject {
        kind: "BGPAdvertisement",
        name: "missing-peer",
        version: "v1beta1",
        spec: "  ipAddressPools: [public-pool]\n  peers: [ghost]\n",
        note: "spec.peers[0]: no BGPPeer named \"ghost\" (defined: node1, peer1)",
    },
    BadObject {
        kind: "BGPPeer",
        name: "missing-secret",
        version: "v1beta2",
        spec: "  myASN: 65559\n  peerASN: 65559\n  peerAddress: 198.18.0.3\n  passwordSecret: {name: nope, namespace: metallb-system}\n",
        note: "spec.passwordSecret.name: Secret \"nope\" not found in the configuration namespace",
    },
];

/// Applies `case`, checks what a rejected object must do, and deletes it again.
pub(super) async fn bad_object(
    lab: &Lab,
    client: &Client,
    ferrolb: &MetallbFerrolb,
    want: &BTreeMap<String, BTreeSet<String>>,
    case: &BadObject,
) {
    let BadObject {
        kind,
        name,
        version,
        spec,
        note,
    } = case;
    kubectl_apply(
        lab,
        &format!(
            "apiVersion: metallb.io/{version}\nkind: {kind}\nmetadata: {{name: {name}, namespace: {METALLB_NS}}}\nspec:\n{spec}"
        ),
    );
    ferrolb.wait_stale(
        lab,
        true,
        &format!("{kind} {name}: stale on the controller and every speaker"),
    );
    let events = Api::<Event>::namespaced(client.clone(), METALLB_NS);
    let mut warning = None;
    for _ in 0..100 {
        warning = events
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .find(|e| {
                e.regarding.as_ref().is_some_and(|r| {
                    r.kind.as_deref() == Some(*kind)
                        && r.name.as_deref() == Some(*name)
                        && r.uid.is_some()
                }) && e.type_.as_deref() == Some("Warning")
            });
        if warning.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let warning = warning
        .unwrap_or_else(|| panic!("no Warning Event on {kind} {name}\n{}", ferrolb.logs(lab)));
    println!(
        "{kind} {name}: Warning Event {:?} {:?}",
        warning.reason, warning.note
    );
    assert_eq!(
        warning.reason.as_deref(),
        Some("ConfigInvalid"),
        "{kind} {name}"
    );
    let text = warning.note.unwrap_or_default();
    assert!(
        text.starts_with(note),
        "{kind} {name}: note {text:?} does not start with {note:?}"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        &routes(lab),
        want,
        "{kind} {name}: a rejected object changed the routes"
    );
    lab.kubectl(&["delete", &kind.to_lowercase(), name, "-n", METALLB_NS])
        .unwrap();
    ferrolb.wait_stale(
        lab,
        false,
        &format!("{kind} {name} deleted: not stale anywhere"),
    );
    assert_eq!(&routes(lab), want);
}
