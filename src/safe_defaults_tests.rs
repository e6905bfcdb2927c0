//! Safe defaults of the daemons, across the CLI and the glue: the metrics port listens on loopback unless told
//! otherwise (the manifests' `$(POD_IP):7472` parses in both families), and no object built from a
//! configuration with a BGP password prints it (`{:?}`, `{:#?}`). The configuration types themselves are
//! covered by `crates/config/tests/redaction.rs`.

use crate::cli::Cli;
use crate::config_source::metallb::secret_data;
use crate::crds::BGPPeer;
use crate::speaker::peers::{Discovered, SessionDefaults, desired_sessions};
use clap::Parser;
use ferrolb_config::{Config, ControlPlaneVip};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use std::collections::BTreeMap;
use std::time::Duration;

const PLANTED: &str = "s3cr3t-planted";

fn assert_redacted<T: std::fmt::Debug>(what: &str, value: &T) {
    for text in [format!("{value:?}"), format!("{value:#?}")] {
        assert!(
            !text.contains(PLANTED),
            "{what} shows the password:\n{text}"
        );
    }
}

fn parse(args: &[&str]) -> Cli {
    Cli::try_parse_from(std::iter::once("ferrolb").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// The metrics address in the parsed command line's `Debug` (the args structs are private to their modules).
fn metrics_addr_of(cli: &Cli) -> String {
    let text = format!("{cli:?}");
    let at = text.find("metrics_addr: ").expect("metrics_addr") + "metrics_addr: ".len();
    text[at..].split([',', ' ']).next().unwrap().to_owned()
}

#[test]
fn the_metrics_port_listens_on_loopback_unless_an_address_is_given() {
    assert_eq!(metrics_addr_of(&parse(&["controller"])), "127.0.0.1:7472");
    assert_eq!(
        metrics_addr_of(&parse(&["speaker", "--node-name", "n1"])),
        "127.0.0.1:7472"
    );
    // What the manifests pass, `$(POD_IP):7472` expanded, in both families.
    assert_eq!(
        metrics_addr_of(&parse(&["controller", "--metrics-addr=198.18.0.5:7472"])),
        "198.18.0.5:7472"
    );
    assert_eq!(
        metrics_addr_of(&parse(&[
            "speaker",
            "--node-name",
            "n1",
            "--metrics-addr=2001:db8::5:7472"
        ])),
        "[2001:db8::5]:7472"
    );
    // POD_IP not set: the kubelet leaves `$(POD_IP)` as is, and the daemon refuses to start.
    let err = Cli::try_parse_from(["ferrolb", "controller", "--metrics-addr=$(POD_IP):7472"])
        .unwrap_err();
    assert!(
        err.to_string().contains("is the POD_IP variable set"),
        "{err}"
    );
    // /explain is served unless turned off.
    assert!(
        format!("{:?}", parse(&["speaker", "--node-name", "n1"]))
            .contains("no_explain_endpoint: false")
    );
    assert!(
        format!(
            "{:?}",
            parse(&["speaker", "--node-name", "n1", "--no-explain-endpoint"])
        )
        .contains("no_explain_endpoint: true")
    );
}

#[test]
fn no_object_built_from_a_password_prints_it() {
    let cli = parse(&[
        "bgp",
        "check",
        "--peer",
        "198.18.0.1",
        "--peer-asn",
        "64512",
        "--my-asn",
        "64513",
        "--password",
        PLANTED,
    ]);
    assert_redacted("ferrolb bgp check arguments", &cli);

    let config = Config::from_yaml(&format!(
        "peers:\n- {{peer-address: 198.18.0.1, peer-asn: 64512, my-asn: 64513, password: {PLANTED}}}\n"
    ))
    .unwrap();
    let defaults = SessionDefaults {
        graceful_restart: Some(120),
        state_dir: "/run/ferrolb".into(),
        connect_retry: Duration::from_secs(1),
    };
    let sessions = desired_sessions(&config, &BTreeMap::new(), &defaults, &BTreeMap::new());
    let session = sessions.values().next().expect("one session");
    assert_eq!(session.session.tcp.password.as_deref(), Some(PLANTED));
    assert_redacted("the speaker's desired sessions", &sessions);

    let vip = ControlPlaneVip::from_yaml(&format!(
        "addresses: [198.18.0.100]\nmode: ecmp\nhealth-check: {{insecure-skip-verify: true}}\npeers:\n\
         - {{peer-address: 198.18.0.1, peer-asn: 64512, my-asn: 64513, password: {PLANTED}}}\n"
    ))
    .unwrap();
    let session =
        crate::control_plane_vip::sessions::session_config(&vip.peers[0], Discovered::default());
    assert_eq!(session.tcp.password.as_deref(), Some(PLANTED));
    assert_redacted("control-plane-vip session", &session);

    let peer: BGPPeer = serde_json::from_value(serde_json::json!({
        "apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer",
        "metadata": {"name": "r1", "namespace": "metallb-system"},
        "spec": {"myASN": 64513, "peerASN": 64512, "peerAddress": "198.18.0.1", "password": PLANTED}
    }))
    .unwrap();
    assert_eq!(peer.spec.password.as_deref(), Some(PLANTED));
    assert_redacted("BGPPeer", &peer);
    assert!(serde_json::to_string(&peer).unwrap().contains(PLANTED));

    let secret = Secret {
        type_: Some("kubernetes.io/basic-auth".into()),
        data: Some(
            [(
                "password".to_owned(),
                ByteString(PLANTED.as_bytes().to_vec()),
            )]
            .into(),
        ),
        ..Secret::default()
    };
    let data = secret_data(&secret);
    assert_eq!(data.password.as_deref(), Some(PLANTED));
    assert_redacted("SecretData", &data);
}
