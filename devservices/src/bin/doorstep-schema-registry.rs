//! `doorstep-schema-registry`: a Confluent Schema Registry API stand-in over HTTP.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use doorstep_devservices::registry::{self, AppState, Registry};
use doorstep_devservices::{shutdown, telemetry};

/// Confluent-compatible schema registry (Avro only) for dev and tests.
///
/// Implements registration, lookup, fetch by id, versions, compatibility checks and
/// compatibility configuration, with the real API's JSON shapes and error codes.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(
        long,
        env = "DOORSTEP_SCHEMA_REGISTRY_LISTEN",
        default_value = "127.0.0.1:18081"
    )]
    listen: SocketAddr,

    /// Keep the registry in this JSON file (loaded at start, written on every change).
    /// Without it, state lives in memory only.
    #[arg(long)]
    data: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    telemetry::init("info");
    let state = match &args.data {
        Some(path) => registry::persist::load(path)?,
        None => Registry::new(),
    };
    let app = registry::router(AppState::new(state, args.data.clone()));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(addr = %args.listen, data = ?args.data, "schema registry listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown::signal())
        .await
        .context("HTTP server failed")?;
    tracing::info!("schema registry stopped");
    Ok(())
}
