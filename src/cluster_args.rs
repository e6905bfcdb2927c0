//! Options shared by the controller and the speaker: where the configuration lives and which
//! Services are ours.

use crate::config_source::SourceKind;
use crate::service_filter::ServiceFilter;
use clap::Args;
use std::time::Duration;

/// Where the configuration is, and which `loadBalancerClass` is handled.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// Namespace of the configuration (the ConfigMap, or the metallb.io objects and their Secrets), and of the
    /// controller's leader Lease.
    #[arg(
        long,
        default_value = "ferrolb-system",
        env = "FERROLB_CONFIG_NAMESPACE"
    )]
    pub config_namespace: String,
    /// Name of the configuration ConfigMap (its `config` key holds MetalLB v0.12 YAML).
    #[arg(long, default_value = "config")]
    pub config_name: String,
    /// Where the configuration comes from: `configmap` (the ConfigMap `--config-name`), or `metallb`
    /// (MetalLB's metallb.io IPAddressPool, BGPAdvertisement, BGPPeer, Community and BFDProfile objects in
    /// `--config-namespace`; their CRDs must be installed).
    #[arg(long, value_enum, default_value_t = SourceKind::Configmap)]
    pub config_source: SourceKind,
    /// With `--config-source metallb`: how often the BGPPeers' `passwordSecret` Secrets are read again (they
    /// are only read by name, never watched, so a rotation is picked up within this time; they are also read
    /// whenever a metallb.io object changes). Seconds.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub secret_refresh: u64,
    /// Only handle Services with `spec.loadBalancerClass: ferrolb.io/bgp`, not those without a class.
    #[arg(long)]
    pub no_default_class: bool,
}

impl ClusterArgs {
    /// `namespace/name` of the ConfigMap, for messages.
    pub fn config_ref(&self) -> String {
        format!("{}/{}", self.config_namespace, self.config_name)
    }

    /// Where the configuration is, for messages: `ConfigMap ns/name` or `metallb.io objects in namespace ns`.
    pub fn source_ref(&self) -> String {
        match self.config_source {
            SourceKind::Configmap => {
                format!("ConfigMap {}/{}", self.config_namespace, self.config_name)
            }
            SourceKind::Metallb => {
                format!("metallb.io objects in namespace {}", self.config_namespace)
            }
        }
    }

    /// Which Services are ours: [`crate::service_filter::LOAD_BALANCER_CLASS`], and unclassed ones unless
    /// `--no-default-class`.
    pub fn service_filter(&self) -> ServiceFilter {
        ServiceFilter {
            default_class: !self.no_default_class,
            ..ServiceFilter::default()
        }
    }

    /// `--secret-refresh` as a duration.
    pub fn secret_refresh(&self) -> Duration {
        Duration::from_secs(self.secret_refresh.max(1))
    }
}
