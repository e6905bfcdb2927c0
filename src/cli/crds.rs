//! `ferrolb crds`: prints the definitions of MetalLB's custom resources that ferrolb reads, or with `--ferrolb`
//! those of ferrolb's own kinds (`BGPSessionStatus`).

use clap::Args;
use std::io::Write;
use std::process::ExitCode;

/// Options of `ferrolb crds`.
#[derive(Debug, Args)]
pub struct CrdsArgs {
    /// Print ferrolb's own CRDs (group ferrolb.io: BGPSessionStatus, `manifests/crds.yaml`) instead of
    /// MetalLB's.
    #[arg(long)]
    pub ferrolb: bool,
}

impl CrdsArgs {
    /// Prints every CRD as multi-document YAML on stdout.
    pub fn run(self) -> ExitCode {
        let yaml = if self.ferrolb {
            crate::crds::ferrolb_definitions_yaml()
        } else {
            crate::crds::definitions_yaml()
        };
        let yaml = match yaml {
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
