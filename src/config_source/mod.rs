//! Where the configuration comes from (the ConfigMap, or MetalLB's metallb.io objects), and the one
//! configuration state both daemons keep of it.

pub mod input;
pub mod metallb;
pub mod problems;
pub mod state;

use clap::ValueEnum;

/// Which configuration source the daemons read (`--config-source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum SourceKind {
    /// The ConfigMap's `config` key (MetalLB v0.12 YAML).
    #[default]
    Configmap,
    /// MetalLB's metallb.io custom resources (IPAddressPool, BGPAdvertisement, BGPPeer, Community,
    /// BFDProfile) in the configuration namespace.
    Metallb,
}

use ferrolb_config::metallb::Warning;
use state::{Outcome, Rejection};

/// Logs what an offered input did (every error of a rejection on its own line, with its object and path),
/// and, when the input is new, its warnings. `source` says where it came from (`ConfigMap ns/name`).
pub fn log_outcome<T>(outcome: &Outcome<T>, warnings: &[Warning], source: &str) {
    match outcome {
        Outcome::Unchanged => return,
        Outcome::Loaded(_) => tracing::info!(%source, "configuration loaded"),
        Outcome::Missing => tracing::warn!(%source, "no configuration; keeping the last good one"),
        Outcome::Rejected(Rejection::Invalid(errors)) => {
            tracing::error!(%source, errors = errors.len(), "configuration rejected; the last good one stays in force");
            for e in errors {
                let object = e
                    .object
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                tracing::error!(%source, %object, path = %e.path, line = e.line, error = %e.message(), "configuration error");
            }
        }
        Outcome::Rejected(Rejection::Refused(message)) => {
            tracing::error!(%source, error = %message, "configuration refused; the last good one stays in force");
        }
    }
    for w in warnings {
        tracing::warn!(%source, object = %w.object, "{}", w.message);
    }
}
