//! Errors: every problem found in a configuration, each with where it is.

use crate::address::AddressError;
use crate::community::CommunityError;
use crate::duration::DurationError;
use crate::service_policy::{BandwidthError, LocalPrefRangeError};
use std::fmt;

/// One problem in a configuration: where it is (`path` and `line`) and what is wrong (`kind`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The MetalLB object the error is about (CRD source); None for a ConfigMap.
    pub object: Option<Box<crate::metallb::ObjectId>>,
    /// Where in the model, e.g. `address-pools[1].addresses[0]`, or in the object
    /// (`spec.addresses[1]`); empty for the document (or object) itself.
    pub path: String,
    /// 1-based line in the text that was given (for a manifest: in the manifest file); 0 when
    /// there is none (an object read from the API server).
    pub line: usize,
    /// What is wrong.
    pub kind: ConfigErrorKind,
}

impl ConfigError {
    /// A new error at `path`, `line`.
    pub fn new(path: impl Into<String>, line: usize, kind: ConfigErrorKind) -> Self {
        ConfigError {
            object: None,
            path: path.into(),
            line,
            kind,
        }
    }

    /// The human-readable message without the location.
    pub fn message(&self) -> String {
        self.kind.to_string()
    }
}

impl fmt::Display for ConfigError {
    /// `path (line N): message` for a ConfigMap; `Kind ns/name: path (line N): message` for a
    /// MetalLB object, without `(line N)` when it came from the API server.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(object) = &self.object {
            write!(f, "{object}: ")?;
        }
        match (self.path.is_empty(), self.line) {
            (true, 0) => write!(f, "{}", self.kind),
            (true, line) => write!(f, "line {line}: {}", self.kind),
            (false, 0) => write!(f, "{}: {}", self.path, self.kind),
            (false, line) => write!(f, "{} (line {line}): {}", self.path, self.kind),
        }
    }
}

impl std::error::Error for ConfigError {}

/// What is wrong at one place in a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// The text is not valid YAML.
    #[error("invalid YAML: {0}")]
    Syntax(String),
    /// The text holds more than one YAML document.
    #[error("expected one YAML document, found more")]
    MultipleDocuments,
    /// A key that no ferrolb version knows.
    #[error("unknown key `{key}` (expected one of: {expected})")]
    UnknownKey {
        /// The key as written.
        key: String,
        /// The keys allowed here, comma-separated.
        expected: String,
    },
    /// A key we know (from MetalLB or a later ferrolb feature) but do not support yet.
    #[error("`{key}` is not supported yet: {reason}")]
    NotSupported {
        /// The key as written.
        key: String,
        /// Why, and what to do instead.
        reason: String,
    },
    /// The same key twice in one mapping.
    #[error("duplicate key `{key}` (first on line {first_line})")]
    DuplicateKey {
        /// The key as written.
        key: String,
        /// Where it first appeared.
        first_line: usize,
    },
    /// A mapping key that is not a plain string.
    #[error("mapping keys must be strings")]
    NonStringKey,
    /// A required key is absent.
    #[error("missing required key `{0}`")]
    Missing(&'static str),
    /// A value of the wrong YAML type.
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// What this key takes.
        expected: &'static str,
        /// What was written (`a mapping`, `a sequence`, `"abc"`).
        found: String,
    },
    /// `echo-mode: true` in a BFD profile.
    #[error(
        "echo mode is not supported (ferrolb's BFD runs in asynchronous mode only); remove echo-mode or set it to false"
    )]
    EchoModeUnsupported,
    /// A BFD profile with an empty name.
    #[error("BFD profile name must not be empty")]
    EmptyBfdProfileName,
    /// Two BFD profiles with the same name.
    #[error(
        "duplicate BFD profile name {name:?} (first defined at {})", at(first_path, *first_line)
    )]
    DuplicateBfdProfileName {
        /// The name.
        name: String,
        /// Where it was first defined.
        first_path: String,
        /// That definition's line.
        first_line: usize,
    },
    /// A peer's `bfd-profile` names no profile in `bfd-profiles`.
    #[error("bfd-profile {name:?} is not defined in bfd-profiles ({known})")]
    UnknownBfdProfile {
        /// The name the peer gives.
        name: String,
        /// The profiles that exist, in words.
        known: String,
    },
    /// A number outside its range.
    #[error("{value} is out of range ({range})")]
    OutOfRange {
        /// The value as written.
        value: String,
        /// The allowed range, in words.
        range: &'static str,
    },
    /// An IP address that does not parse.
    #[error("invalid IP address {0:?}")]
    BadIp(String),
    /// A router ID that is not an IPv4 address.
    #[error("router-id {0:?} must be an IPv4 address (BGP router IDs are 32 bits)")]
    BadRouterId(String),
    /// A malformed address entry.
    #[error(transparent)]
    Address(#[from] AddressError),
    /// A malformed duration.
    #[error(transparent)]
    Duration(#[from] DurationError),
    /// A malformed community.
    #[error(transparent)]
    Community(#[from] CommunityError),
    /// An AS number of 0.
    #[error("{0} must not be 0")]
    ZeroAsn(&'static str),
    /// A hold time between 0 and 3 s.
    #[error("hold time {0:?} is invalid: must be 0 or at least 3s")]
    HoldTimeTooShort(String),
    /// A hold time that does not fit the 16-bit OPEN field.
    #[error("hold time {0:?} is invalid: must be at most 65535s")]
    HoldTimeTooLong(String),
    /// A keepalive longer than the hold time.
    #[error("keepalive-time {keepalive} exceeds hold-time {hold}")]
    KeepaliveExceedsHold {
        /// The keepalive time as written.
        keepalive: String,
        /// The effective hold time.
        hold: String,
    },
    /// `ebgp-multihop` on a peer whose AS equals ours.
    #[error("ebgp-multihop is set on an iBGP peer (my-asn = peer-asn = {0})")]
    EbgpMultihopOnIbgp(u32),
    /// `source-address` of another family than `peer-address`.
    #[error("source-address {source_address} and peer-address {peer} are of different IP families")]
    SourceFamilyMismatch {
        /// The source address.
        source_address: String,
        /// The peer address.
        peer: String,
    },
    /// A TCP-MD5 password the kernel cannot take.
    #[error("password {0}")]
    BadPassword(&'static str),
    /// Two peers with the same address, port and local AS.
    #[error(
        "duplicate peer: {address} port {port} my-asn {my_asn} is already defined at {}", at_paren(first_path, *first_line)
    )]
    DuplicatePeer {
        /// The peer address.
        address: String,
        /// The TCP port.
        port: u16,
        /// The local AS.
        my_asn: u32,
        /// The path of the first definition.
        first_path: String,
        /// The line of the first definition.
        first_line: usize,
    },
    /// `protocol: layer2`.
    #[error(
        "protocol `layer2` is not supported: ferrolb is BGP only (use `protocol: bgp`, or keep this pool on MetalLB)"
    )]
    Layer2,
    /// A protocol other than `bgp` or `layer2`.
    #[error("unknown protocol {0:?} (expected `bgp`)")]
    UnknownProtocol(String),
    /// An `announce-from` value other than `nodes-with-endpoints` or `all-nodes`.
    #[error(
        "unknown announce-from `{0}`: expected `nodes-with-endpoints` (the default) or `all-nodes`"
    )]
    UnknownAnnounceFrom(String),
    /// A pool with no addresses.
    #[error("pool has no addresses")]
    NoAddresses,
    /// An empty pool name.
    #[error("pool name must not be empty")]
    EmptyPoolName,
    /// Two pools of one name.
    #[error("duplicate pool name {name:?} (first defined at {})", at(first_path, *first_line))]
    DuplicatePoolName {
        /// The name.
        name: String,
        /// The path of the first pool with this name.
        first_path: String,
        /// Its line.
        first_line: usize,
    },
    /// Two address entries that share addresses.
    #[error("{0}")]
    Overlap(Box<Overlap>),
    /// An aggregation length longer than the address family allows.
    #[error("aggregation length {length} is too long for {family} (at most {max})")]
    AggregationTooLong {
        /// The length.
        length: u8,
        /// `IPv4` or `IPv6`.
        family: &'static str,
        /// 32 or 128.
        max: u8,
    },
    /// An aggregation length shorter than a prefix in the pool.
    #[error(
        "aggregation length {length} is shorter than prefix /{prefix} of {entry} in this pool ({entry_path})"
    )]
    AggregationTooShort {
        /// The length.
        length: u8,
        /// The prefix length it is shorter than.
        prefix: u8,
        /// The address entry as written.
        entry: String,
        /// The address entry's path.
        entry_path: String,
    },
    /// The same advertisement twice in one pool.
    #[error("duplicate advertisement: identical to {}", at_paren(first_path, *first_line))]
    DuplicateAdvertisement {
        /// The first one's path.
        first_path: String,
        /// Its line.
        first_line: usize,
    },
    /// A malformed `link-bandwidth-per-endpoint`.
    #[error(transparent)]
    Bandwidth(#[from] BandwidthError),
    /// A malformed `allowed-service-localprefs` entry.
    #[error(transparent)]
    LocalPrefRange(#[from] LocalPrefRangeError),
    /// A malformed AS_PATH prepend annotation (`ASN:COUNT`).
    #[error("AS_PATH prepend {0}")]
    AsPathPrepend(#[from] crate::prepend::AsPathPrependError),
    /// A per-Service or weighted-ECMP key on an advertisement that aggregates: those apply to
    /// one Service's own route only.
    #[error(
        "`{key}` needs host routes (aggregation-length 32 and aggregation-length-v6 128), but this advertisement aggregates to /{length}"
    )]
    NeedsHostRoutes {
        /// The key.
        key: &'static str,
        /// The aggregation length in the way.
        length: u8,
    },
    /// `link-bandwidth-per-endpoint` without `weighted-ecmp: true`.
    #[error("link-bandwidth-per-endpoint has no effect without `weighted-ecmp: true`")]
    BandwidthWithoutWeightedEcmp,
    /// A node-selector operator Kubernetes does not know.
    #[error("unknown node-selector operator {0:?} (expected In, NotIn, Exists or DoesNotExist)")]
    UnknownOperator(String),
    /// In/NotIn with no values, or Exists/DoesNotExist with values.
    #[error("operator {operator} {requirement}")]
    SelectorValues {
        /// The operator.
        operator: &'static str,
        /// `needs at least one value` or `takes no values`.
        requirement: &'static str,
    },
    /// A label key that Kubernetes would reject.
    #[error("invalid label key {0:?}")]
    BadLabelKey(String),
    /// A label value that Kubernetes would reject.
    #[error("invalid label value {0:?}")]
    BadLabelValue(String),
    /// `exclusive: true` on a `service-allocation` that names no namespace.
    #[error(
        "exclusive fences in the namespaces the pool selects, so it needs namespaces or namespace-selectors"
    )]
    ExclusiveWithoutNamespaces,
    /// A namespace name that Kubernetes would reject.
    #[error(
        "invalid namespace name {0:?} (expected a DNS label: lower-case letters, digits and '-', at most 63 characters)"
    )]
    BadNamespaceName(String),
    /// An annotation with a value ferrolb does not read.
    #[error("annotation {annotation} must be \"true\" or \"false\", not {value:?}")]
    BadAnnotation {
        /// The annotation.
        annotation: &'static str,
        /// The value found.
        value: String,
    },
    /// A manifest that is not a ConfigMap with `data.config`.
    #[error("{0}")]
    Manifest(String),
    /// A `kind` the MetalLB reader does not know.
    #[error(
        "unknown kind {0:?} (expected IPAddressPool, BGPAdvertisement, BGPPeer, Community, BFDProfile, L2Advertisement or List)"
    )]
    UnknownKind(String),
    /// An `apiVersion` that is not one of the kind's versions ferrolb reads.
    #[error("unknown apiVersion {api_version:?} for {kind} (expected {expected})")]
    UnknownApiVersion {
        /// The version as written.
        api_version: String,
        /// The kind.
        kind: &'static str,
        /// The versions read, in words.
        expected: &'static str,
    },
    /// A second object of the same kind, namespace and name.
    #[error("defined more than once (the first definition is used for nothing: remove one)")]
    DuplicateObject,
    /// A reference to an object that does not exist (a pool, peer or BFD profile).
    #[error("no {} named {name:?} ({known})", kind.name())]
    UnknownObject {
        /// The kind referred to.
        kind: crate::metallb::Kind,
        /// The name given.
        name: String,
        /// The objects of that kind that exist, in words.
        known: String,
    },
    /// A `passwordSecret` naming a Secret that does not exist.
    #[error("Secret {0:?} not found in the configuration namespace")]
    SecretNotFound(String),
    /// A `passwordSecret` in another namespace than the configuration's.
    #[error("Secret namespace {found:?} is not the configuration namespace {expected:?}")]
    SecretNamespace {
        /// The namespace given.
        found: String,
        /// The configuration's namespace.
        expected: String,
    },
    /// A `passwordSecret` of the wrong type.
    #[error("Secret {name:?} has type {found:?}, expected kubernetes.io/basic-auth")]
    SecretType {
        /// The Secret's name.
        name: String,
        /// Its type.
        found: String,
    },
    /// A `passwordSecret` without a usable `password` key.
    #[error("Secret {0:?} has no `password` key (or its value is not UTF-8)")]
    SecretNoPassword(String),
    /// Both `password` and `passwordSecret` on one peer.
    #[error("password and passwordSecret are both set: use one")]
    PasswordAndSecret,
    /// Neither of two keys of which exactly one must be set.
    #[error("one of {0} or {1} is required")]
    NeitherSet(&'static str, &'static str),
    /// An `interface` or `vrf` that is no Linux device name.
    #[error(transparent)]
    BadDevice(#[from] crate::DeviceNameError),
    /// A `peer-address` of `::` or `0.0.0.0`.
    #[error(
        "peer-address {0} is unspecified: give the router's address (or `interface` for an unnumbered router)"
    )]
    UnspecifiedPeerAddress(String),
    /// Two keys of which at most one may be set.
    #[error("{0} and {1} are both set: use one")]
    BothSet(&'static str, &'static str),
    /// A key that only means something next to another.
    #[error("{0} needs {1}")]
    Needs(&'static str, &'static str),
    /// A `dynamic-asn` other than internal or external.
    #[error("dynamic-asn {0:?} must be `internal` or `external`")]
    BadDynamicAsn(String),
    /// Two `Community` aliases of one name.
    #[error("duplicate community alias {name:?} (first defined in {first})")]
    DuplicateCommunityAlias {
        /// The alias.
        name: String,
        /// Where it was first defined.
        first: String,
    },
    /// A problem particular to a `control-plane-vip` file.
    #[error(transparent)]
    ControlPlaneVip(#[from] crate::control_plane_vip::VipError),
}

/// `path, line N`, or `path` alone when there is no line (an object from the API server).
fn at(path: &str, line: usize) -> String {
    match line {
        0 => path.to_owned(),
        line => format!("{path}, line {line}"),
    }
}

/// `path (line N)`, or `path` alone when there is no line.
fn at_paren(path: &str, line: usize) -> String {
    match line {
        0 => path.to_owned(),
        line => format!("{path} (line {line})"),
    }
}

/// Two address entries that share addresses: this one, and the one it overlaps.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{entry} in pool {pool:?} overlaps {other_entry} in pool {other_pool:?} ({})",
    at(other_path, *other_line)
)]
pub struct Overlap {
    /// This entry as written.
    pub entry: String,
    /// This entry's pool.
    pub pool: String,
    /// The entry it overlaps, as written.
    pub other_entry: String,
    /// That entry's pool.
    pub other_pool: String,
    /// That entry's path.
    pub other_path: String,
    /// That entry's line.
    pub other_line: usize,
}

/// Every problem found in a configuration, in file order. Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(Vec<ConfigError>);

impl ConfigErrors {
    /// Wraps a list of errors, sorted by line then path. `errors` must not be empty.
    pub(crate) fn new(mut errors: Vec<ConfigError>) -> Self {
        errors.sort_by(|a, b| (a.line, &a.path).cmp(&(b.line, &b.path)));
        ConfigErrors(errors)
    }

    /// The errors, sorted by line.
    pub fn errors(&self) -> &[ConfigError] {
        &self.0
    }

    /// How many errors.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: there is at least one error.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}
