//! No configuration type prints a BGP password: every type that can hold one (or an error made from one) is
//! built with a planted secret and formatted with `{:?}`, `{:#?}` and, where it has one, `Display`; none of the
//! texts may contain the secret. The one output that carries it on purpose is the configuration itself
//! serialised back to YAML (`Config::to_yaml`, `metallb::convert`): that is the file the user asked for.

use ferrolb_config::metallb::{
    SecretData, Secrets, convert, parse_documents, parse_object_json, translate,
};
use ferrolb_config::{Config, ControlPlaneVip, Password, load};

const PLANTED: &str = "s3cr3t-planted";

/// Fails if any formatting of `value` shows the planted secret.
fn assert_redacted<T: std::fmt::Debug>(what: &str, value: &T) {
    for text in [format!("{value:?}"), format!("{value:#?}")] {
        assert!(
            !text.contains(PLANTED),
            "{what} shows the password:\n{text}"
        );
    }
}

/// [`assert_redacted`], and the same for `Display`.
fn assert_redacted_display<T: std::fmt::Debug + std::fmt::Display>(what: &str, value: &T) {
    assert_redacted(what, value);
    let text = value.to_string();
    assert!(
        !text.contains(PLANTED),
        "{what} displays the password:\n{text}"
    );
}

fn configmap_yaml(extra_peer_line: &str) -> String {
    format!(
        "peers:\n- peer-address: 198.18.0.1\n  peer-asn: 64512\n  my-asn: 64513\n  password: {PLANTED}\n\
         {extra_peer_line}address-pools:\n- name: p\n  protocol: bgp\n  addresses: [203.0.113.0/24]\n"
    )
}

#[test]
fn a_configmap_configuration_and_its_peer_do_not_print_the_password() {
    let config = Config::from_yaml(&configmap_yaml("")).unwrap();
    assert_eq!(config.peers[0].password.as_deref(), Some(PLANTED));
    assert_redacted("Config", &config);
    assert_redacted("Peer", &config.peers[0]);
    assert_redacted("Password", &config.peers[0].password);
    // The YAML round trip keeps it: the configuration itself, not a log line.
    assert!(config.to_yaml().unwrap().contains(PLANTED));

    let configmap = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: config, namespace: ferrolb-system}}\ndata:\n  config: |\n{}",
        configmap_yaml("")
            .lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    );
    assert_redacted("load(ConfigMap)", &load(&configmap).unwrap());
}

#[test]
fn errors_about_a_peer_with_a_password_do_not_print_it() {
    // Another field of the same peer is wrong: the errors name the peer, never its password.
    let errors = Config::from_yaml(&configmap_yaml("  hold-time: 1s\n")).unwrap_err();
    assert_redacted_display("ConfigErrors (hold-time)", &errors);
    // The password itself is wrong.
    let long = format!("{PLANTED}{}", "x".repeat(80));
    for bad in [
        format!("password: {long}\n"),
        format!("password: [{PLANTED}]\n"),
        format!("password: {{{PLANTED}: 1}}\n"),
        format!("password: \"{PLANTED}\n"),
        format!("password: {PLANTED}\n  password: {PLANTED}\n"),
    ] {
        let text = configmap_yaml("").replace(&format!("password: {PLANTED}\n"), &bad);
        let errors = Config::from_yaml(&text).unwrap_err();
        assert_redacted_display(&format!("ConfigErrors ({bad:?})"), &errors);
        for e in errors.errors() {
            assert_redacted_display("ConfigError", e);
            assert_redacted_display("ConfigErrorKind", &e.kind);
        }
    }
}

#[test]
fn a_control_plane_vip_file_does_not_print_the_password() {
    let text = format!(
        "addresses: [198.18.0.100]\nmode: ecmp\nhealth-check: {{insecure-skip-verify: true}}\npeers:\n\
         - {{peer-address: 198.18.0.1, peer-asn: 64512, my-asn: 64513, password: {PLANTED}}}\n"
    );
    let vip = ControlPlaneVip::from_yaml(&text).unwrap();
    assert_eq!(vip.peers[0].password.as_deref(), Some(PLANTED));
    assert_redacted("ControlPlaneVip", &vip);
    let errors =
        ControlPlaneVip::from_yaml(&text.replace("mode: ecmp", "mode: anycast")).unwrap_err();
    assert_redacted_display("ControlPlaneVip errors", &errors);
}

const BGP_PEER_INLINE: &str = "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata:\n  namespace: metallb-system\n  \
    name: inline\nspec:\n  myASN: 64500\n  peerASN: 64501\n  peerAddress: 198.18.0.1\n  password: s3cr3t-planted\n";

const BGP_PEER_SECRET: &str = "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata:\n  namespace: metallb-system\n  \
    name: from-secret\nspec:\n  myASN: 64500\n  peerASN: 64501\n  peerAddress: 198.18.0.2\n  \
    passwordSecret: {name: router-password, namespace: metallb-system}\n";

fn secret_of(kind: &str, password: Option<&str>) -> Secrets {
    Secrets::from([(
        "router-password".to_owned(),
        SecretData {
            secret_type: kind.to_owned(),
            password: password.map(Password::from),
        },
    )])
}

#[test]
fn metallb_objects_secrets_and_their_translation_do_not_print_the_password() {
    let objects = parse_documents(&format!("{BGP_PEER_INLINE}---\n{BGP_PEER_SECRET}")).unwrap();
    assert_redacted("metallb::Object", &objects);
    let secrets = secret_of("kubernetes.io/basic-auth", Some(PLANTED));
    assert_redacted("Secrets", &secrets);
    let translation = translate(&objects, &secrets);
    let config = translation.config.as_ref().unwrap();
    assert_eq!(config.peers[0].password.as_deref(), Some(PLANTED));
    assert_eq!(config.peers[1].password.as_deref(), Some(PLANTED));
    assert_redacted("Translation", &translation);

    // Refused: the Secret has the wrong type, the inline password is too long, and both are set.
    let too_long = BGP_PEER_INLINE.replace(PLANTED, &format!("{PLANTED}{}", "x".repeat(80)));
    let both = format!("{BGP_PEER_SECRET}  password: {PLANTED}\n");
    let objects = parse_documents(&format!("{too_long}---\n{both}")).unwrap();
    for secrets in [
        secret_of("Opaque", Some(PLANTED)),
        secret_of("kubernetes.io/basic-auth", Some(PLANTED)),
    ] {
        let translation = translate(&objects, &secrets);
        let errors = translation.config.as_ref().unwrap_err();
        assert!(!errors.errors().is_empty());
        assert_redacted("Translation (refused)", &translation);
        assert_redacted_display("ConfigErrors (MetalLB)", errors);
    }

    // The API's JSON form, as the speaker reads it.
    let json = format!(
        r#"{{"apiVersion":"metallb.io/v1beta2","kind":"BGPPeer","metadata":{{"namespace":"metallb-system","name":"j"}},
           "spec":{{"myASN":64500,"peerASN":64501,"peerAddress":"198.18.0.1","password":"{PLANTED}"}}}}"#
    );
    assert_redacted("metallb::Object (JSON)", &parse_object_json(&json).unwrap());
    let bad = parse_object_json(&json.replace("\"peerASN\":64501", "\"peerASN\":\"x\"")).unwrap();
    let translation = translate(&[bad], &Secrets::new());
    assert_redacted("Translation (JSON)", &translation);
    assert_redacted_display(
        "ConfigErrors (JSON)",
        translation.config.as_ref().unwrap_err(),
    );

    // The conversion's YAML is the output asked for and carries the password; its report does not.
    let conversion = convert(config, "metallb-system");
    assert!(conversion.yaml.contains(PLANTED));
    assert!(conversion.report.iter().all(|l| !l.contains(PLANTED)));
}
