//! The `doorstep` binary. See `doorstep --help`.

use clap::Parser;
use doorstep_pipelines::cli::Cli;

/// mimalloc instead of glibc's allocator: the pipelines allocate and free many small and
/// mid-sized blocks per batch, and glibc's malloc and free were 17 % of the location
/// pipeline's CPU and 30 % of the status pipeline's (`docs/profiles.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match Cli::parse().run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("doorstep: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
