//! The rule for two Services sharing one address.

use crate::refusal::SharingMismatch;
use crate::request::{Request, TrafficPolicy};

/// Whether a Service asking `ours` may share an address with a Service holding it with `theirs`.
///
/// Both need the same `allow-shared-ip` key, no protocol/port pair in common, and, when either uses
/// `externalTrafficPolicy: Local`, both must be `Local` with identical selectors (the nodes announcing the address
/// must be the nodes with endpoints of every Service on it). A port conflict names the lowest clashing port.
pub fn can_share(ours: &Request, theirs: &Request) -> Result<(), SharingMismatch> {
    match (&ours.sharing_key, &theirs.sharing_key) {
        (Some(a), Some(b)) if a == b => {}
        _ => {
            return Err(SharingMismatch::Key {
                ours: ours.sharing_key.clone(),
                theirs: theirs.sharing_key.clone(),
            });
        }
    }
    let same_backends = match (&ours.traffic_policy, &theirs.traffic_policy) {
        (TrafficPolicy::Cluster, TrafficPolicy::Cluster) => true,
        (TrafficPolicy::Local { selector: a }, TrafficPolicy::Local { selector: b }) => a == b,
        _ => false,
    };
    if !same_backends {
        return Err(SharingMismatch::Backends);
    }
    let clash = ours
        .ports
        .iter()
        .filter(|p| theirs.ports.contains(p))
        .min()
        .copied();
    match clash {
        Some(port) => Err(SharingMismatch::Port(port)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::PortSpec;
    use std::collections::BTreeMap;

    fn req(key: Option<&str>, ports: &[PortSpec]) -> Request {
        Request {
            sharing_key: key.map(str::to_owned),
            ports: ports.to_vec(),
            ..Request::default()
        }
    }

    #[test]
    fn same_key_disjoint_ports_share() {
        let a = req(Some("k"), &[PortSpec::tcp(53)]);
        let b = req(Some("k"), &[PortSpec::udp(53)]);
        assert_eq!(can_share(&a, &b), Ok(()));
    }

    #[test]
    fn overlapping_port_names_the_lowest_clash() {
        let a = req(Some("k"), &[PortSpec::tcp(443), PortSpec::tcp(80)]);
        let b = req(Some("k"), &[PortSpec::tcp(80), PortSpec::tcp(443)]);
        assert_eq!(
            can_share(&a, &b),
            Err(SharingMismatch::Port(PortSpec::tcp(80)))
        );
    }

    #[test]
    fn missing_or_different_key_refuses() {
        let a = req(Some("k"), &[]);
        let b = req(None, &[]);
        let c = req(Some("other"), &[]);
        assert!(matches!(
            can_share(&a, &b),
            Err(SharingMismatch::Key { .. })
        ));
        assert!(matches!(
            can_share(&b, &b),
            Err(SharingMismatch::Key { .. })
        ));
        assert!(matches!(
            can_share(&a, &c),
            Err(SharingMismatch::Key { .. })
        ));
    }

    #[test]
    fn local_needs_identical_selectors_and_never_mixes_with_cluster() {
        let sel = |v: &str| TrafficPolicy::Local {
            selector: BTreeMap::from([("app".to_owned(), v.to_owned())]),
        };
        let mut a = req(Some("k"), &[PortSpec::tcp(80)]);
        let mut b = req(Some("k"), &[PortSpec::tcp(81)]);
        a.traffic_policy = sel("web");
        b.traffic_policy = sel("web");
        assert_eq!(can_share(&a, &b), Ok(()));
        b.traffic_policy = sel("db");
        assert_eq!(can_share(&a, &b), Err(SharingMismatch::Backends));
        b.traffic_policy = TrafficPolicy::Cluster;
        assert_eq!(can_share(&a, &b), Err(SharingMismatch::Backends));
    }
}
