use super::*;

const FULL: &str = "\
addresses: [198.18.0.100, 2001:db8::100]
mode: active-backup
priority: 200
interface: cp-vip
health-check:
  url: https://127.0.0.1:6443/readyz
  ca-file: /etc/kubernetes/pki/ca.crt
  server-name: kubernetes
  interval: 500ms
  timeout: 400ms
  rise: 3
  fall: 2
  listen-probe-interval: 250ms
drain-time: 5s
metrics-addr: '[::1]:9000'
bfd-profiles:
- name: fast
  receive-interval: 100
  transmit-interval: 100
peers:
- peer-address: 198.18.0.1
  peer-asn: 64512
  my-asn: 64513
  password: s3cret
  bfd-profile: fast
  hold-time: 9s
";

fn errors(text: &str) -> String {
    ControlPlaneVip::from_yaml(text).unwrap_err().to_string()
}

const PEERS: &str = "peers:\n- {peer-address: 198.18.0.1, peer-asn: 64512, my-asn: 64513}\n";
const INSECURE: &str = "health-check: {insecure-skip-verify: true}\n";

#[test]
fn a_full_file_is_read_field_for_field() {
    let v = ControlPlaneVip::from_yaml(FULL).unwrap();
    assert_eq!(
        v.addresses,
        vec![
            "198.18.0.100".parse::<IpAddr>().unwrap(),
            "2001:db8::100".parse().unwrap()
        ]
    );
    assert_eq!(v.mode, VipMode::ActiveBackup { priority: 200 });
    assert_eq!(v.mode.med(), Some(55));
    assert_eq!(v.interface, "cp-vip");
    assert_eq!(
        v.health_check,
        HealthCheck {
            url: "https://127.0.0.1:6443/readyz".into(),
            trust: TlsTrust::CaFile("/etc/kubernetes/pki/ca.crt".into()),
            server_name: Some("kubernetes".into()),
            interval: Duration::from_millis(500),
            timeout: Duration::from_millis(400),
            rise: 3,
            fall: 2,
            listen_probe: Some(Duration::from_millis(250)),
        }
    );
    assert_eq!(v.drain_time, Duration::from_secs(5));
    assert_eq!(v.metrics_addr, "[::1]:9000".parse().unwrap());
    assert_eq!(v.peers.len(), 1);
    let p = &v.peers[0];
    assert_eq!(p.password.as_deref(), Some("s3cret"));
    assert_eq!(p.hold_time, Duration::from_secs(9));
    assert_eq!(p.keepalive_time, Duration::from_secs(3));
    assert_eq!(p.bfd_profile.as_deref(), Some("fast"));
    assert_eq!(v.bfd_profile("fast").map(|b| b.receive_interval), Some(100));
}

#[test]
fn defaults() {
    let v = ControlPlaneVip::from_yaml(&format!("addresses: [198.18.0.100]\n{INSECURE}{PEERS}"))
        .unwrap();
    assert_eq!(v.mode, VipMode::Ecmp);
    assert_eq!(v.mode.med(), None);
    assert_eq!(v.interface, "flb-cp-vip");
    assert_eq!(v.drain_time, Duration::from_secs(2));
    assert_eq!(v.metrics_addr, DEFAULT_METRICS_ADDR);
    assert_eq!(v.metrics_addr.to_string(), "127.0.0.1:7473");
    let h = &v.health_check;
    assert_eq!(h.url, "https://127.0.0.1:6443/readyz");
    assert_eq!(h.trust, TlsTrust::InsecureSkipVerify);
    assert_eq!(h.server_name, None);
    assert_eq!(
        (h.interval, h.timeout),
        (Duration::from_secs(1), Duration::from_secs(1))
    );
    assert_eq!((h.rise, h.fall), (2, 3));
    assert_eq!(h.listen_probe, Some(Duration::from_millis(100)));
    let ab = ControlPlaneVip::from_yaml(&format!(
        "addresses: [198.18.0.100]\nmode: active-backup\n{INSECURE}{PEERS}"
    ))
    .unwrap();
    assert_eq!(ab.mode, VipMode::ActiveBackup { priority: 100 });
    assert_eq!(ab.mode.med(), Some(155));
}

#[test]
fn med_is_lower_for_a_higher_priority() {
    assert_eq!(med_from_priority(255), 0);
    assert_eq!(med_from_priority(100), 155);
    assert_eq!(med_from_priority(1), 254);
    assert!(med_from_priority(150) < med_from_priority(100));
}

#[test]
fn an_empty_file_needs_addresses_peers_and_a_trust_setting() {
    assert_eq!(
        errors(""),
        "line 1: missing required key `addresses`\n\
         line 1: missing required key `peers`\n\
         health-check.url (line 1): an https URL needs `ca-file` (the API server's CA) or, explicitly, `insecure-skip-verify: true`"
    );
}

#[test]
fn address_errors_have_their_lines() {
    let text = format!(
        "addresses:\n- 198.18.0.100\n- 224.0.0.1\n- 198.18.0.100\n- 198.18.0.300\n{INSECURE}{PEERS}"
    );
    assert_eq!(
        errors(&text),
        "addresses[1] (line 3): 224.0.0.1 is not a unicast host address\n\
         addresses[2] (line 4): duplicate address 198.18.0.100 (first at addresses[0], line 2)\n\
         addresses[3] (line 5): invalid IP address \"198.18.0.300\""
    );
    assert_eq!(
        errors(&format!("addresses: []\n{INSECURE}{PEERS}")),
        "addresses (line 1): at least one address is needed"
    );
}

#[test]
fn mode_priority_interface_and_metrics_errors() {
    let text = format!(
        "addresses: [198.18.0.100]\nmode: ecmp\npriority: 10\ninterface: a-very-long-interface\nmetrics-addr: localhost:1\n{INSECURE}{PEERS}"
    );
    assert_eq!(
        errors(&text),
        "priority (line 3): priority only applies to `mode: active-backup` (ECMP announces without MED)\n\
         interface (line 4): invalid interface name \"a-very-long-interface\" (1 to 15 characters, no `/`, `:` or whitespace)\n\
         metrics-addr (line 5): invalid address \"localhost:1\" (expected IP:PORT, e.g. 127.0.0.1:7473 or [::1]:7473)"
    );
    assert_eq!(
        errors(&format!(
            "addresses: [198.18.0.100]\nmode: vrrp\npriority: 0\n{INSECURE}{PEERS}"
        )),
        "mode (line 2): unknown mode \"vrrp\" (expected `ecmp` or `active-backup`)\n\
         priority (line 3): 0 is out of range (1 to 255)"
    );
}

#[test]
fn health_check_errors() {
    let base = format!("addresses: [198.18.0.100]\n{PEERS}");
    let check = |hc: &str| errors(&format!("{base}health-check:\n{hc}"));
    assert_eq!(
        check("  ca-file: /ca.crt\n  insecure-skip-verify: true\n"),
        "health-check.insecure-skip-verify (line 6): `ca-file` and `insecure-skip-verify: true` exclude each other: use one"
    );
    assert_eq!(
        check("  url: http://127.0.0.1:8080/readyz\n  ca-file: /ca.crt\n  server-name: k\n"),
        "health-check.ca-file (line 6): `ca-file` has no meaning for an http:// URL\n\
         health-check.server-name (line 7): `server-name` has no meaning for an http:// URL"
    );
    assert_eq!(
        check(
            "  url: ftp://x/\n  interval: 0s\n  timeout: 1 s\n  rise: 0\n  fall: 1001\n  sni: x\n"
        ),
        "health-check.url (line 5): invalid URL \"ftp://x/\" (expected http://HOST[:PORT]/PATH or https://HOST[:PORT]/PATH)\n\
         health-check.interval (line 6): interval must be greater than 0\n\
         health-check.timeout (line 7): invalid duration \"1 s\": unknown unit (use h, m, s, ms, us or ns)\n\
         health-check.rise (line 8): 0 is out of range (1 to 1000)\n\
         health-check.fall (line 9): 1001 is out of range (1 to 1000)\n\
         health-check.sni (line 10): unknown key `sni` (expected one of: url, ca-file, insecure-skip-verify, server-name, interval, timeout, rise, fall, listen-probe-interval)"
    );
}

#[test]
fn the_listen_probe_is_on_for_a_local_url_only() {
    let base = format!("addresses: [198.18.0.100]\n{PEERS}");
    let probe = |hc: &str| {
        ControlPlaneVip::from_yaml(&format!(
            "{base}health-check:\n  insecure-skip-verify: true\n{hc}"
        ))
        .map(|v| v.health_check.listen_probe)
        .map_err(|e| e.to_string())
    };
    assert_eq!(probe(""), Ok(Some(DEFAULT_LISTEN_PROBE)));
    assert_eq!(probe("  listen-probe-interval: 0s\n"), Ok(None));
    assert_eq!(
        probe("  url: https://[::1]:6443/readyz\n  listen-probe-interval: 20ms\n"),
        Ok(Some(Duration::from_millis(20)))
    );
    assert_eq!(
        probe("  url: https://localhost:6443/readyz\n"),
        Ok(Some(DEFAULT_LISTEN_PROBE))
    );
    // A remote URL: off by default, an error when asked for.
    assert_eq!(probe("  url: https://198.18.0.11:6443/readyz\n"), Ok(None));
    assert_eq!(
        probe("  url: https://kubernetes:6443/readyz\n  listen-probe-interval: 100ms\n"),
        Err("health-check.listen-probe-interval (line 7): listen-probe-interval looks for a listening socket on this \
             node: the url's host must be a loopback address or localhost (or set listen-probe-interval: 0s)"
            .into())
    );
}

#[test]
fn loopback_url_hosts() {
    for url in [
        "https://127.0.0.1:6443/readyz",
        "https://127.9.0.1/",
        "http://[::1]:8080/x",
        "https://LOCALHOST:6443/readyz",
    ] {
        assert!(url_host_is_loopback(url), "{url}");
    }
    for url in [
        "https://198.18.0.11:6443/readyz",
        "https://[2001:db8::1]:6443/",
        "https://kubernetes/readyz",
        "https://localhost.example:6443/",
    ] {
        assert!(!url_host_is_loopback(url), "{url}");
    }
}

#[test]
fn urls() {
    assert_eq!(url_scheme("https://127.0.0.1:6443/readyz"), Some(true));
    assert_eq!(url_scheme("http://[::1]:8080/readyz"), Some(false));
    assert_eq!(url_scheme("https://kubernetes/readyz"), Some(true));
    assert_eq!(url_scheme("https://:6443/readyz"), None);
    assert_eq!(url_scheme("https://127.0.0.1:0/readyz"), None);
    assert_eq!(url_scheme("https://127.0.0.1:x/readyz"), None);
    assert_eq!(url_scheme("https://user@host/"), None);
    assert_eq!(url_scheme("127.0.0.1:6443"), None);
}

#[test]
fn peers_are_checked_as_in_the_config_map() {
    let text = "addresses: [198.18.0.100]
health-check: {insecure-skip-verify: true}
peers:
- peer-address: 198.18.0.1
  peer-asn: 64512
  my-asn: 64512
  ebgp-multihop: true
  bfd-profile: nope
  hold-time: 1s
- peer-address: 198.18.0.2
  peer-asn: 64512
  my-asn: 64513
  node-selectors:
  - match-labels: {a: b}
- {peer-address: 198.18.0.2, peer-asn: 64512, my-asn: 64513}
";
    assert_eq!(
        errors(text),
        "peers[0].ebgp-multihop (line 7): ebgp-multihop is set on an iBGP peer (my-asn = peer-asn = 64512)\n\
         peers[0].bfd-profile (line 8): bfd-profile \"nope\" is not defined in bfd-profiles (none are defined)\n\
         peers[0].hold-time (line 9): hold time \"1s\" is invalid: must be 0 or at least 3s\n\
         peers[1].node-selectors (line 13): node-selectors has no meaning here: each node runs control-plane-vip with its own file\n\
         peers[2] (line 15): duplicate peer: 198.18.0.2 port 179 my-asn 64513 is already defined at peers[1] (line 10)"
    );
    assert_eq!(
        errors(
            "addresses: [198.18.0.100]\nhealth-check: {insecure-skip-verify: true}\npeers: []\n"
        ),
        "peers (line 3): at least one peer is needed (nothing would be announced)"
    );
}
