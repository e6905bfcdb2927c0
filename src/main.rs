//! `ferrolb`: a BGP load balancer for bare-metal Kubernetes.
//!
//! This binary is CLI and Kubernetes glue only; the protocol, the allocator and the
//! configuration model live in the crates under `crates/`.

mod cli;
mod cluster_args;
mod config_source;
mod control_plane_vip;
mod controller;
mod crds;
mod event_recorder;
mod logging;
#[cfg(test)]
mod safe_defaults_tests;
mod serve;
mod service_filter;
mod speaker;
mod watch;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    tune_malloc();
    let cli = cli::Cli::parse();
    logging::init(cli.log_format);
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(cli.run()),
        Err(err) => {
            eprintln!("ferrolb: cannot start the async runtime: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Two glibc allocator settings, made before any thread exists (glibc only: musl, the image's libc, has neither
/// per-thread arenas nor these thresholds). Measured on speakers at 10,000 Services with three BGP sessions:
/// - One malloc arena. With glibc every thread that allocates gets an arena of its own (up to eight per core),
///   and memory freed in one arena serves only that arena's threads: 2.7 MB lower peak (32.2 against 34.9 MB).
/// - Fixed mmap and trim thresholds of 128 KiB. By default glibc raises its mmap threshold to the size of each
///   large block freed (up to 32 MB), after which such blocks come from the heap and stay resident; fixed, every
///   block of 128 KiB or more is mapped and unmapped on its own, and free memory at the top of the heap goes
///   back at 128 KiB: the worst of three speakers peaked at 28.4 MB against 30.1 MB, the others unchanged.
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc allocator parameters; it is called before any other thread exists,
    // with supported settings and values.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 * 1024);
    }
}
