//! `ferrolb config ...`.

use clap::Subcommand;
use std::process::ExitCode;

/// Configuration subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a configuration file (`-` reads stdin).
    Check {
        /// The file to check.
        file: String,
    },
}

impl ConfigCommand {
    /// Runs the subcommand.
    pub fn run(self) -> ExitCode {
        match self {
            ConfigCommand::Check { file } => {
                eprintln!("config check {file}: not implemented yet");
                ExitCode::FAILURE
            }
        }
    }
}
