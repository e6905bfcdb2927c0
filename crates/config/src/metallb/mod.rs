//! MetalLB's `metallb.io` custom resources (v0.13+) as a configuration source: `IPAddressPool`,
//! `BGPAdvertisement`, `BGPPeer` (v1beta2), `Community` and `BFDProfile`, read strictly (every
//! field, with its path in the object and, for files, its line) and translated into the same
//! [`Config`] the ConfigMap gives, through the same checks.
//!
//! Translation reuses the ConfigMap reader: each spec is checked against its kind's fields, then
//! renamed into the ConfigMap's shape and read by the same functions, so both sources share
//! every check and error text. [`convert`] goes the other way, as MetalLB's `configmaptocrs`.

mod allocation;
mod convert;
mod objects;
mod schema;
mod translate;

use crate::error::ConfigErrors;
use crate::model::Config;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A kind this module reads (or, for `L2Advertisement`, recognises in order to warn about).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `metallb.io/v1beta1` `IPAddressPool`.
    IpAddressPool,
    /// `metallb.io/v1beta1` `BGPAdvertisement`.
    BgpAdvertisement,
    /// `metallb.io/v1beta2` `BGPPeer` (v1beta1 is also accepted in files).
    BgpPeer,
    /// `metallb.io/v1beta1` `Community`.
    Community,
    /// `metallb.io/v1beta1` `BFDProfile`.
    BfdProfile,
    /// `metallb.io/v1beta1` `L2Advertisement`: not ferrolb's business (BGP only); warned about.
    L2Advertisement,
}

impl Kind {
    /// Every kind, in the order the daemons watch them.
    pub const ALL: [Kind; 6] = [
        Kind::IpAddressPool,
        Kind::BgpAdvertisement,
        Kind::BgpPeer,
        Kind::Community,
        Kind::BfdProfile,
        Kind::L2Advertisement,
    ];

    /// The API group.
    pub const GROUP: &'static str = "metallb.io";

    /// The `kind` as Kubernetes spells it (`IPAddressPool`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::IpAddressPool => "IPAddressPool",
            Kind::BgpAdvertisement => "BGPAdvertisement",
            Kind::BgpPeer => "BGPPeer",
            Kind::Community => "Community",
            Kind::BfdProfile => "BFDProfile",
            Kind::L2Advertisement => "L2Advertisement",
        }
    }

    /// The resource's plural (`ipaddresspools`).
    pub fn plural(self) -> &'static str {
        match self {
            Kind::IpAddressPool => "ipaddresspools",
            Kind::BgpAdvertisement => "bgpadvertisements",
            Kind::BgpPeer => "bgppeers",
            Kind::Community => "communities",
            Kind::BfdProfile => "bfdprofiles",
            Kind::L2Advertisement => "l2advertisements",
        }
    }

    /// The version the daemons watch (`v1beta2` for `BGPPeer`, the storage version; `v1beta1`
    /// otherwise).
    pub fn version(self) -> &'static str {
        match self {
            Kind::BgpPeer => "v1beta2",
            _ => "v1beta1",
        }
    }

    /// The kind called `name` (Kubernetes' spelling), if this module knows it.
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Which object: kind, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId {
    /// The kind.
    pub kind: Kind,
    /// `metadata.namespace` (empty when a file gives none).
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
}

impl fmt::Display for ObjectId {
    /// `IPAddressPool metallb-system/public`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {}", self.kind.name(), self.name)
        } else {
            write!(f, "{} {}/{}", self.kind.name(), self.namespace, self.name)
        }
    }
}

/// One object as read: its identity and labels, and its spec kept as a tree with lines, to be
/// checked field by field by [`translate`]. `Debug` leaves the spec out: a `BGPPeer`'s holds its
/// `password`.
#[derive(Clone)]
pub struct Object {
    /// Kind, namespace and name.
    pub id: ObjectId,
    /// `metadata.labels` (`ipAddressPoolSelectors` match a pool's labels).
    pub labels: BTreeMap<String, String>,
    /// `spec`, with lines (all 0 for API JSON); null when absent.
    spec: crate::yaml::Node,
    /// The object's line (0 for API JSON).
    line: usize,
    /// `metadata.creationTimestamp` (empty in files): of two objects in conflict (overlapping
    /// pools, duplicate peers) the newer one is blamed, so an existing pool's status never
    /// reports a problem someone else's new object made.
    created: String,
    /// `apiVersion` as written.
    api_version: String,
    /// The [`EXCLUSIVE_NAMESPACES`] annotation of an `IPAddressPool`, when set.
    exclusive_namespaces: Option<bool>,
    /// The [`AS_PATH_PREPEND`] annotation of a `BGPAdvertisement`, when set.
    as_path_prepend: Option<crate::AsPathPrepend>,
}

impl fmt::Debug for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Object")
            .field("id", &self.id)
            .field("labels", &self.labels)
            .field("line", &self.line)
            .field("created", &self.created)
            .field("api_version", &self.api_version)
            .field("exclusive_namespaces", &self.exclusive_namespaces)
            .field("as_path_prepend", &self.as_path_prepend)
            .finish_non_exhaustive()
    }
}

/// The `IPAddressPool` annotation that fences in the namespaces its `serviceAllocation` selects
/// (`"true"` or `"false"`): the ConfigMap's `service-allocation.exclusive`, which MetalLB's CRD
/// has no field for.
pub const EXCLUSIVE_NAMESPACES: &str = "ferrolb.io/exclusive-namespaces";

/// The `BGPAdvertisement` annotation (`ASN:COUNT`, e.g. `"65000:3"`) that stands for the ConfigMap
/// advertisement's `as-path-prepend`, which MetalLB's CRD has no field for. The same name and format
/// as the Service annotation.
pub const AS_PATH_PREPEND: &str = "ferrolb.io/bgp-as-path-prepend";

/// The spec fields each kind reads, as `(kind, fields)`; `LabelSelector` and
/// `CommunityAlias` are the shapes nested in them. Any other field is an error.
pub fn known_fields() -> impl Iterator<Item = (&'static str, &'static [&'static str])> {
    [
        ("IPAddressPool", schema::POOL.known),
        ("BGPAdvertisement", schema::ADVERTISEMENT.known),
        ("BGPPeer", schema::PEER.known),
        ("Community", schema::COMMUNITY.known),
        ("CommunityAlias", schema::ALIAS.known),
        ("BFDProfile", schema::BFD.known),
        ("LabelSelector", schema::LABEL_SELECTOR.known),
        ("ServiceAllocation", allocation::ALLOCATION.known),
    ]
    .into_iter()
}

/// Spec fields ferrolb knows but refuses (not implemented yet), as `(kind, field)`.
pub fn unsupported_fields() -> impl Iterator<Item = (&'static str, &'static str)> {
    [
        ("IPAddressPool", schema::POOL.not_supported),
        ("BGPPeer", schema::PEER.not_supported),
    ]
    .into_iter()
    .flat_map(|(kind, fields)| fields.iter().map(move |(f, _)| (kind, *f)))
}

/// Reads a file of MetalLB objects: one or more YAML documents separated by `---`, each one
/// object or a `kind: List` of objects. Line numbers in errors are the file's.
pub fn parse_documents(text: &str) -> Result<Vec<Object>, ConfigErrors> {
    objects::documents(text)
}

/// Reads one object as the API server returned it (its JSON). Errors carry no line (the text
/// is not something a person wrote), only the object and the field path.
pub fn parse_object_json(json: &str) -> Result<Object, ConfigErrors> {
    objects::json(json)
}

/// A `passwordSecret`'s Secret as the translation needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretData {
    /// `type` (must be `kubernetes.io/basic-auth`).
    pub secret_type: String,
    /// `data.password`, decoded; None when the key is absent or not UTF-8.
    pub password: Option<crate::Password>,
}

/// Secrets in the configuration namespace, by name.
pub type Secrets = BTreeMap<String, SecretData>;

/// Something about an object that does not invalidate the configuration (an
/// `L2Advertisement`, the deprecated `disableMP`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The object it is about.
    pub object: ObjectId,
    /// What to tell the user.
    pub message: String,
}

/// What [`translate`] made of a set of objects.
#[derive(Debug, Clone)]
pub struct Translation {
    /// The configuration, or every problem found. Each error's `object` names the object it is
    /// about (for its Warning Event); its `path` starts at the object (`spec.addresses[1]`).
    pub config: Result<Config, ConfigErrors>,
    /// Warnings, whether or not the configuration is valid.
    pub warnings: Vec<Warning>,
    /// The Secrets the peers refer to (so a change to another Secret changes nothing).
    pub secrets_used: BTreeSet<String>,
}

/// Translates MetalLB objects (of one namespace) into a [`Config`], with MetalLB's semantics,
/// and runs the same checks as the ConfigMap. `secrets` holds the Secrets of that namespace
/// that the peers may refer to. Pools, peers and BFD profiles keep the order of `objects`
/// (pass them sorted by name for a result that does not depend on watch order); each pool's
/// advertisements are ordered by advertisement name (`adv2` before `adv10`).
pub fn translate(objects: &[Object], secrets: &Secrets) -> Translation {
    translate::translate(objects, secrets)
}

/// What [`convert`] made of a ConfigMap configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversion {
    /// The equivalent objects, as multi-document YAML (`kubectl apply -f`-able).
    pub yaml: String,
    /// Every setting with no MetalLB equivalent, one line each (empty when none).
    pub report: Vec<String>,
}

/// Converts a ConfigMap configuration into the equivalent MetalLB objects in `namespace`, as
/// MetalLB's `configmaptocrs` does, and reports what has no equivalent.
pub fn convert(config: &Config, namespace: &str) -> Conversion {
    convert::convert(config, namespace)
}
