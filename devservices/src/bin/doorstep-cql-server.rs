//! `doorstep-cql-server`: the in-memory kassandra CQL engine on a TCP port.

use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use doorstep_devservices::{cql, shutdown, telemetry};

/// In-memory CQL v4 server (kassandra) standing in for ScyllaDB in dev and tests.
///
/// Data lives in memory only and is lost on exit. Drivers must disable schema metadata
/// fetching and schema agreement waits (see SERVICES.md).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "DOORSTEP_CQL_LISTEN", default_value = "127.0.0.1:19042")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    telemetry::init("info");
    cql::panic::install_hook();
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(addr = %args.listen, "CQL server listening");
    cql::serve(listener, cql::Engine::new(), shutdown::signal()).await?;
    tracing::info!("CQL server stopped");
    Ok(())
}
