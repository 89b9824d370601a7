//! The `doorstep` binary. See `doorstep --help`.

use clap::Parser;
use doorstep_pipelines::cli::Cli;

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
