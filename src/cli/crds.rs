//! `ferrolb crds`: prints the definitions of MetalLB's custom resources that ferrolb reads.

use clap::Args;
use std::io::Write;
use std::process::ExitCode;

/// Options of `ferrolb crds` (none).
#[derive(Debug, Args)]
pub struct CrdsArgs {}

impl CrdsArgs {
    /// Prints every CRD as multi-document YAML on stdout.
    pub fn run(self) -> ExitCode {
        let yaml = match crate::crds::definitions_yaml() {
            Ok(yaml) => yaml,
            Err(err) => {
                eprintln!("ferrolb crds: {err}");
                return ExitCode::FAILURE;
            }
        };
        match std::io::stdout().lock().write_all(yaml.as_bytes()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("ferrolb crds: writing stdout: {err}");
                ExitCode::FAILURE
            }
        }
    }
}
