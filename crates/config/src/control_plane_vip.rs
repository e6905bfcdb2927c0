//! The file of `ferrolb control-plane-vip`: the API servers' address, how it is announced (ECMP or
//! active-backup), the health check that gates it, and the BGP peers (the ConfigMap's `peers` and
//! `bfd-profiles` schema, with the same checks). Read strictly, every error with its path and line:
//!
//! ```
//! let text = "addresses: [198.18.0.100]\nmode: active-backup\npriority: 300\nhealth-check: {insecure-skip-verify: true}\n";
//! let errors = ferrolb_config::ControlPlaneVip::from_yaml(text).unwrap_err();
//! assert_eq!(
//!     errors.to_string(),
//!     "line 1: missing required key `peers`\npriority (line 3): 300 is out of range (1 to 255)"
//! );
//! ```

use crate::bfd::BfdProfile;
use crate::error::{ConfigError, ConfigErrorKind, ConfigErrors};
use crate::fields::{Object, Schema, bool_value, duration_value, index, integer, ip_value, string};
use crate::model::Peer;
use crate::yaml::{self, Node, Value};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// The default health-check URL: the local kube-apiserver's readiness.
pub const DEFAULT_HEALTH_URL: &str = "https://127.0.0.1:6443/readyz";
/// The default interface the addresses are added to.
pub const DEFAULT_VIP_INTERFACE: &str = "flb-cp-vip";
/// The default `priority` (keepalived's).
pub const DEFAULT_PRIORITY: u8 = 100;
/// The default address of `/metrics` and `/healthz`: localhost only.
pub const DEFAULT_METRICS_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 7473);

const TOP: Schema = Schema {
    known: &[
        "addresses",
        "mode",
        "priority",
        "interface",
        "health-check",
        "drain-time",
        "metrics-addr",
        "bfd-profiles",
        "peers",
    ],
    not_supported: &[],
};

const HEALTH: Schema = Schema {
    known: &[
        "url",
        "ca-file",
        "insecure-skip-verify",
        "server-name",
        "interval",
        "timeout",
        "rise",
        "fall",
        "listen-probe-interval",
    ],
    not_supported: &[],
};

/// What is wrong in a control-plane-vip file, beyond what the ConfigMap's checks find.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VipError {
    /// `addresses` is empty.
    #[error("at least one address is needed")]
    NoAddresses,
    /// `peers` is empty.
    #[error("at least one peer is needed (nothing would be announced)")]
    NoPeers,
    /// An address that cannot be an API server's.
    #[error("{0} is not a unicast host address")]
    NotUnicast(IpAddr),
    /// The same address twice.
    #[error("duplicate address {address} (first at {first_path}, line {first_line})")]
    DuplicateAddress {
        /// The address.
        address: IpAddr,
        /// Where it first appears.
        first_path: String,
        /// That line.
        first_line: usize,
    },
    /// An unknown `mode`.
    #[error("unknown mode {0:?} (expected `ecmp` or `active-backup`)")]
    UnknownMode(String),
    /// `priority` with `mode: ecmp`.
    #[error("priority only applies to `mode: active-backup` (ECMP announces without MED)")]
    PriorityWithoutActiveBackup,
    /// An interface name Linux refuses.
    #[error("invalid interface name {0:?} (1 to 15 characters, no `/`, `:` or whitespace)")]
    BadInterface(String),
    /// A URL that is not `http://host[:port]/path` or `https://…`.
    #[error("invalid URL {0:?} (expected http://HOST[:PORT]/PATH or https://HOST[:PORT]/PATH)")]
    BadUrl(String),
    /// An https URL with neither `ca-file` nor `insecure-skip-verify: true`.
    #[error(
        "an https URL needs `ca-file` (the API server's CA) or, explicitly, `insecure-skip-verify: true`"
    )]
    NoTrust,
    /// Both `ca-file` and `insecure-skip-verify: true`.
    #[error("`ca-file` and `insecure-skip-verify: true` exclude each other: use one")]
    BothTrusts,
    /// TLS settings with an http URL.
    #[error("`{0}` has no meaning for an http:// URL")]
    TlsOnHttp(&'static str),
    /// A zero interval or timeout.
    #[error("{0} must be greater than 0")]
    ZeroDuration(&'static str),
    /// `listen-probe-interval` with a URL whose host is not this node's loopback.
    #[error(
        "listen-probe-interval looks for a listening socket on this node: the url's host must be a loopback \
         address or localhost (or set listen-probe-interval: 0s)"
    )]
    ProbeNotLocal,
    /// A bad `metrics-addr`.
    #[error("invalid address {0:?} (expected IP:PORT, e.g. 127.0.0.1:7473 or [::1]:7473)")]
    BadSocketAddr(String),
    /// A peer with `node-selectors`.
    #[error(
        "node-selectors has no meaning here: each node runs control-plane-vip with its own file"
    )]
    NodeSelectors,
}

/// How the nodes share the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VipMode {
    /// Every healthy node announces without MED: the router spreads connections over all of them.
    Ecmp,
    /// Every healthy node announces with MED [`med_from_priority`]: the router sends everything to the healthy
    /// node of the highest priority.
    ActiveBackup {
        /// This node's priority, 1 to 255 (higher wins, as in keepalived).
        priority: u8,
    },
}

impl VipMode {
    /// The MED this node's routes carry: none for ECMP, [`med_from_priority`] for active-backup.
    pub fn med(self) -> Option<u32> {
        match self {
            VipMode::Ecmp => None,
            VipMode::ActiveBackup { priority } => Some(med_from_priority(priority)),
        }
    }
}

/// The MED of an active-backup node: `255 - priority`, so the highest priority (255) has MED 0 and wins,
/// since routers prefer the lowest MED. Priority 100 (the default) is MED 155.
pub fn med_from_priority(priority: u8) -> u32 {
    255 - u32::from(priority)
}

/// How the health check's TLS server certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsTrust {
    /// An http:// URL: no TLS.
    Plain,
    /// Verified against the CA certificates in this PEM file.
    CaFile(PathBuf),
    /// Any certificate is accepted (`insecure-skip-verify: true`).
    InsecureSkipVerify,
}

/// The health check that gates the announcement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// The URL; 200 is healthy, anything else (or no answer within `timeout`) a failure.
    pub url: String,
    /// How the server certificate is checked.
    pub trust: TlsTrust,
    /// The name sent in SNI and checked in the certificate; None: the URL's host.
    pub server_name: Option<String>,
    /// Time between checks (default 1 s).
    pub interval: Duration,
    /// How long one check may take (default 1 s).
    pub timeout: Duration,
    /// Consecutive successes before announcing (default 2).
    pub rise: u32,
    /// Consecutive failures before withdrawing (default 3).
    pub fall: u32,
    /// How often to look for a socket listening on the URL's port on this node (default 100 ms when the URL's
    /// host is local; None: off). None listening (the API server died, not shutting down: that one keeps its
    /// listener through `--shutdown-delay-duration`) withdraws at once, without waiting for `fall` failures.
    pub listen_probe: Option<Duration>,
}

/// A whole control-plane-vip file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlPlaneVip {
    /// The addresses announced (as /32 and /128) and added to [`ControlPlaneVip::interface`].
    pub addresses: Vec<IpAddr>,
    /// ECMP or active-backup.
    pub mode: VipMode,
    /// The interface the addresses are added to (a dummy interface, created if missing).
    pub interface: String,
    /// The health check.
    pub health_check: HealthCheck,
    /// After SIGTERM: how long to wait between the withdraw and closing the sessions.
    pub drain_time: Duration,
    /// Where `/metrics` and `/healthz` are served.
    pub metrics_addr: SocketAddr,
    /// BFD profiles the peers name.
    pub bfd_profiles: Vec<BfdProfile>,
    /// The BGP peers.
    pub peers: Vec<Peer>,
}

impl ControlPlaneVip {
    /// Parses and checks a control-plane-vip file.
    pub fn from_yaml(text: &str) -> Result<ControlPlaneVip, ConfigErrors> {
        let root = yaml::parse(text, 0).map_err(ConfigErrors::new)?;
        read(root.as_ref()).map_err(ConfigErrors::new)
    }

    /// The BFD profile called `name`.
    pub fn bfd_profile(&self, name: &str) -> Option<&BfdProfile> {
        self.bfd_profiles.iter().find(|p| p.name == name)
    }
}

fn vip(obj: &Object<'_>, key: &str, error: VipError) -> ConfigError {
    obj.error(key, error.into())
}

fn read(root: Option<&Node>) -> Result<ControlPlaneVip, Vec<ConfigError>> {
    let mut errs = Vec::new();
    let Some(top) = Object::read_document(root, &TOP, &mut errs) else {
        return Err(errs);
    };
    let addresses = addresses(&top, &mut errs);
    let mode = mode(&top, &mut errs);
    let interface = top
        .get("interface", &mut errs, |n| {
            let name = string(n)?;
            let valid = !name.is_empty()
                && name.len() <= 15
                && !name.contains(|c: char| c == '/' || c == ':' || c.is_whitespace());
            if valid {
                Ok(name)
            } else {
                Err(VipError::BadInterface(name).into())
            }
        })
        .unwrap_or_else(|| DEFAULT_VIP_INTERFACE.to_owned());
    // Absent, it is all defaults, and the default URL's TLS still needs a trust setting.
    let health_check = health_check(
        top.entry("health-check").map_or(
            &Node {
                line: top.line,
                value: Value::Null,
            },
            |e| &e.value,
        ),
        &mut errs,
    );
    let drain_time = top
        .get("drain-time", &mut errs, duration_value)
        .map_or(Duration::from_secs(2), |(d, _)| d);
    let metrics_addr = top
        .get("metrics-addr", &mut errs, |n| {
            let text = string(n)?;
            text.parse::<SocketAddr>()
                .map_err(|_| VipError::BadSocketAddr(text).into())
        })
        .unwrap_or(DEFAULT_METRICS_ADDR);

    let (bfd_profiles, profile_names) = crate::bfd::profiles(&top, &mut errs);
    let mut peer_keys = Vec::new();
    let mut peers = Vec::new();
    let peer_nodes = top.seq("peers", &mut errs);
    for (i, node) in peer_nodes.iter().enumerate() {
        let path = index("peers", i);
        let Some(p) = crate::parse::peer(
            node,
            path.clone(),
            &profile_names,
            &mut peer_keys,
            &mut errs,
        ) else {
            continue;
        };
        match node
            .get("node-selectors")
            .filter(|_| !p.node_selectors.is_empty())
        {
            None => peers.push(p),
            Some(entry) => errs.push(ConfigError::new(
                format!("{path}.node-selectors"),
                entry.key_line,
                VipError::NodeSelectors.into(),
            )),
        }
    }
    match top.entry("peers") {
        None => top.missing("peers", &mut errs),
        Some(e) if matches!(&e.value.value, Value::Seq(items) if items.is_empty()) => {
            errs.push(vip(&top, "peers", VipError::NoPeers));
        }
        Some(_) => {}
    }
    crate::validate::duplicate_peers(&peer_keys, &mut errs);

    match (addresses, mode, health_check) {
        (Some(addresses), Some(mode), Some(health_check)) if errs.is_empty() => {
            Ok(ControlPlaneVip {
                addresses,
                mode,
                interface,
                health_check,
                drain_time,
                metrics_addr,
                bfd_profiles,
                peers,
            })
        }
        _ => Err(errs),
    }
}

fn addresses(top: &Object<'_>, errs: &mut Vec<ConfigError>) -> Option<Vec<IpAddr>> {
    if top.entry("addresses").is_none() {
        top.missing("addresses", errs);
        return None;
    }
    let before = errs.len();
    let nodes = top.seq("addresses", errs);
    if errs.len() != before {
        return None;
    }
    if nodes.is_empty() {
        errs.push(vip(top, "addresses", VipError::NoAddresses));
        return None;
    }
    let mut out: Vec<(IpAddr, String, usize)> = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let path = index("addresses", i);
        let checked = ip_value(n).and_then(|ip| {
            let unicast = !(ip.is_unspecified() || ip.is_multicast() || ip.is_loopback())
                && ip != IpAddr::V4(Ipv4Addr::BROADCAST);
            if !unicast {
                return Err(VipError::NotUnicast(ip).into());
            }
            match out.iter().find(|(a, _, _)| *a == ip) {
                Some((_, first_path, first_line)) => Err(VipError::DuplicateAddress {
                    address: ip,
                    first_path: first_path.clone(),
                    first_line: *first_line,
                }
                .into()),
                None => Ok(ip),
            }
        });
        match checked {
            Ok(ip) => out.push((ip, path, n.line)),
            Err(kind) => errs.push(ConfigError::new(path, n.line, kind)),
        }
    }
    (errs.len() == before).then(|| out.into_iter().map(|(a, _, _)| a).collect())
}

fn mode(top: &Object<'_>, errs: &mut Vec<ConfigError>) -> Option<VipMode> {
    let before = errs.len();
    let active_backup = top
        .get("mode", errs, |n| match string(n)?.as_str() {
            "ecmp" => Ok(false),
            "active-backup" => Ok(true),
            other => Err(VipError::UnknownMode(other.to_owned()).into()),
        })
        .unwrap_or(false);
    let priority = top.get("priority", errs, |n| {
        let v = integer(n, 255, "1 to 255")?;
        match u8::try_from(v) {
            Ok(p) if p > 0 => Ok(p),
            _ => Err(ConfigErrorKind::OutOfRange {
                value: v.to_string(),
                range: "1 to 255",
            }),
        }
    });
    if !active_backup && top.entry("priority").is_some() && errs.len() == before {
        errs.push(vip(top, "priority", VipError::PriorityWithoutActiveBackup));
    }
    if errs.len() != before {
        return None;
    }
    Some(if active_backup {
        VipMode::ActiveBackup {
            priority: priority.unwrap_or(DEFAULT_PRIORITY),
        }
    } else {
        VipMode::Ecmp
    })
}

/// An `http(s)://` URL split into (https, authority, host without brackets); None for another scheme or an
/// unclosed `[`.
fn url_parts(url: &str) -> Option<(bool, &str, &str)> {
    let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else {
        (false, url.strip_prefix("http://")?)
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map(|(h, _)| h)?,
        None => authority.split(':').next().unwrap_or_default(),
    };
    Some((https, authority, host))
}

/// Whether `url` is `http(s)://HOST[:PORT]/...` with a non-empty host; true for https.
fn url_scheme(url: &str) -> Option<bool> {
    let (https, authority, host) = url_parts(url)?;
    let port_ok = match authority.rsplit_once(':') {
        Some((h, port))
            if !h.ends_with(':') && (authority.starts_with('[') == h.ends_with(']')) =>
        {
            port.parse::<u16>().is_ok_and(|p| p > 0)
        }
        _ => true,
    };
    (!host.is_empty() && !authority.contains('@') && port_ok).then_some(https)
}

fn health_check(node: &Node, errs: &mut Vec<ConfigError>) -> Option<HealthCheck> {
    let obj = Object::read(node, "health-check".to_owned(), &HEALTH, errs)?;
    let before = errs.len();
    let url = obj
        .get("url", errs, string)
        .unwrap_or_else(|| DEFAULT_HEALTH_URL.to_owned());
    let https = match url_scheme(&url) {
        Some(https) => Some(https),
        None => {
            errs.push(vip(&obj, "url", VipError::BadUrl(url.clone())));
            None
        }
    };
    let ca_file = obj.get("ca-file", errs, string).map(PathBuf::from);
    let insecure = obj
        .get("insecure-skip-verify", errs, bool_value)
        .unwrap_or(false);
    let server_name = obj.get("server-name", errs, string);
    let trust = match (https, ca_file, insecure) {
        (Some(true), Some(ca), false) => Some(TlsTrust::CaFile(ca)),
        (Some(true), None, true) => Some(TlsTrust::InsecureSkipVerify),
        (Some(true), None, false) => {
            errs.push(vip(&obj, "url", VipError::NoTrust));
            None
        }
        (Some(true), Some(_), true) => {
            errs.push(vip(&obj, "insecure-skip-verify", VipError::BothTrusts));
            None
        }
        (Some(false), ca, insecure) => {
            let stray = [
                ("ca-file", ca.is_some()),
                ("insecure-skip-verify", insecure),
                ("server-name", server_name.is_some()),
            ];
            for (key, _) in stray.into_iter().filter(|(_, set)| *set) {
                errs.push(vip(&obj, key, VipError::TlsOnHttp(key)));
            }
            Some(TlsTrust::Plain)
        }
        (None, _, _) => None,
    };
    let positive = |key: &'static str, default: Duration, errs: &mut Vec<ConfigError>| match obj
        .get(key, errs, duration_value)
    {
        Some((d, _)) if d.is_zero() => {
            errs.push(vip(&obj, key, VipError::ZeroDuration(key)));
            default
        }
        Some((d, _)) => d,
        None => default,
    };
    let interval = positive("interval", Duration::from_secs(1), errs);
    let timeout = positive("timeout", Duration::from_secs(1), errs);
    let count = |key: &str, default: u32, errs: &mut Vec<ConfigError>| {
        obj.get(key, errs, |n| {
            let v = integer(n, 1000, "1 to 1000")?;
            if v == 0 {
                return Err(ConfigErrorKind::OutOfRange {
                    value: "0".into(),
                    range: "1 to 1000",
                });
            }
            Ok(v as u32)
        })
        .unwrap_or(default)
    };
    let rise = count("rise", 2, errs);
    let fall = count("fall", 3, errs);
    let local = url_host_is_loopback(&url);
    let listen_probe = match obj.get("listen-probe-interval", errs, duration_value) {
        Some((d, _)) if d.is_zero() => None,
        Some((d, _)) if local => Some(d),
        Some(_) => {
            errs.push(vip(&obj, "listen-probe-interval", VipError::ProbeNotLocal));
            None
        }
        None => local.then_some(DEFAULT_LISTEN_PROBE),
    };
    (errs.len() == before).then_some(HealthCheck {
        url,
        trust: trust?,
        server_name,
        interval,
        timeout,
        rise,
        fall,
        listen_probe,
    })
}

/// The default `listen-probe-interval` for a local URL.
pub const DEFAULT_LISTEN_PROBE: Duration = Duration::from_millis(100);

/// Whether an http(s) URL's host is this node's loopback (`127.0.0.0/8`, `::1` or `localhost`).
pub fn url_host_is_loopback(url: &str) -> bool {
    url_parts(url).is_some_and(|(_, _, host)| {
        host.eq_ignore_ascii_case("localhost")
            || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    })
}

#[cfg(test)]
#[path = "control_plane_vip_tests.rs"]
mod tests;
