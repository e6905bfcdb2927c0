//! Harness for the ferrolb lab: network namespaces, FRR, and a real Kubernetes control plane.
//!
//! There is one implementation of the lab, the `testbed/lab` script; this crate drives it with a unique lab
//! name per [`Lab`], reads the state file it writes (`<lab dir>/env`), and tears the lab down on drop, also
//! while a test panics. [`Lab::shared`] gives one lab per test binary, removed when the process exits; a test
//! binary killed outright leaves a lab that the next harness run reaps (its owner pid is gone).
//!
//! Every lab needs root, FRR, GoBGP and the built control plane (`testbed/lab deps`). When one is missing,
//! starting a lab fails with a [`LabError`] that says which; tests must let that fail, never skip.
#![warn(missing_docs)]

mod command;
mod error;
mod gobgp;
mod lab;
mod process;

pub use error::LabError;
pub use gobgp::GobgpSpeaker;
pub use lab::{ControlPlane, Lab, LabOptions};
pub use process::NodeProcess;

/// Re-exported so lab tests build Kubernetes clients with the versions the harness uses.
pub use k8s_openapi;
/// Re-exported so lab tests build Kubernetes clients with the versions the harness uses.
pub use kube;
/// Re-exported: [`Lab::vtysh`] returns [`serde_json::Value`].
pub use serde_json;

use std::path::PathBuf;

/// Path of the `testbed/lab` script.
pub fn lab_script() -> PathBuf {
    testbed_dir().join("lab")
}

/// Path of the `testbed/` directory (FRR configuration, containerlab topology, the lab script).
pub fn testbed_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("testbed"))
}
