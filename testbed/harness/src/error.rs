//! Errors of the lab harness.

use std::path::PathBuf;

/// Why a lab operation failed; each variant carries what a person needs to act on it.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The lab creates namespaces and runs FRR: it needs root.
    #[error("the ferrolb lab needs root (network namespaces, FRR); run the lab tests as root")]
    NotRoot,
    /// A program the lab needs could not be started.
    #[error("could not run `{command}`: {source} (is it installed? run testbed/lab deps)")]
    Spawn {
        /// The command line.
        command: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A command ran and failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Exit status as printed by the OS.
        status: String,
        /// The command's standard error (or standard output when stderr was empty).
        stderr: String,
    },
    /// The lab's state file is missing or malformed.
    #[error("lab state {path}: {reason}")]
    State {
        /// The file read.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The lab's kubeconfig could not be turned into a client configuration.
    #[error("kubeconfig {path}: {reason}")]
    Kubeconfig {
        /// The kubeconfig file.
        path: PathBuf,
        /// What kube-rs reported.
        reason: String,
    },
    /// The Kubernetes client could not be built.
    #[error("kubernetes client: {0}")]
    Kube(#[from] kube::Error),
    /// vtysh printed something that is not JSON for a command that should produce JSON.
    #[error("vtysh `{command}` did not print JSON ({source}): {output}")]
    VtyshJson {
        /// The vtysh command.
        command: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
        /// What vtysh printed (truncated).
        output: String,
    },
    /// A node index outside `1..=nodes`.
    #[error("node {node} does not exist: the lab has nodes 1..={nodes}")]
    NoSuchNode {
        /// The index asked for.
        node: usize,
        /// How many nodes the lab has.
        nodes: usize,
    },
    /// The operation needs the network part of the lab, which a control-plane-only lab lacks.
    #[error("lab {lab} was started with the control plane only; it has no {what}")]
    ControlPlaneOnly {
        /// The lab name.
        lab: String,
        /// What was asked for.
        what: &'static str,
    },
    /// A condition did not become true in time.
    #[error("timed out after {seconds}s waiting for {what}; last: {last}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The timeout.
        seconds: u64,
        /// The last error or state seen.
        last: String,
    },
    /// Writing a file in the lab directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}
