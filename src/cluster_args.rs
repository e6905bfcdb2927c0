//! Options shared by the controller and the speaker: where the configuration lives and which
//! Services are ours.

use clap::Args;

/// Where the configuration ConfigMap is, and which `loadBalancerClass` is handled.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// Namespace of the configuration ConfigMap (and of the controller's leader Lease).
    #[arg(
        long,
        default_value = "ferrolb-system",
        env = "FERROLB_CONFIG_NAMESPACE"
    )]
    pub config_namespace: String,
    /// Name of the configuration ConfigMap (its `config` key holds MetalLB v0.12 YAML).
    #[arg(long, default_value = "config")]
    pub config_name: String,
    /// Only handle Services with `spec.loadBalancerClass: ferrolb.io/bgp`, not those without a class.
    #[arg(long)]
    pub no_default_class: bool,
}

impl ClusterArgs {
    /// `namespace/name` of the ConfigMap, for messages.
    pub fn config_ref(&self) -> String {
        format!("{}/{}", self.config_namespace, self.config_name)
    }
}
