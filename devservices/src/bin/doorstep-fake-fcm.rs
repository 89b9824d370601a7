//! `doorstep-fake-fcm`: a Firebase Cloud Messaging HTTP v1 stand-in for demos.

use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use doorstep_devservices::fakes::fcm::{self, FcmState};
use doorstep_devservices::{shutdown, telemetry};

/// Fake FCM HTTP v1 send API (`POST /v1/projects/{p}/messages:send`).
///
/// Validates messages like FCM, answers with FCM's success and error shapes, and shows what
/// it received at `GET /__fake/messages` and `GET /__fake/requests`.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(
        long,
        env = "DOORSTEP_FAKE_FCM_LISTEN",
        default_value = "127.0.0.1:18090"
    )]
    listen: SocketAddr,

    /// A device token that answers 404 UNREGISTERED (repeatable).
    #[arg(long = "unregistered", value_name = "TOKEN")]
    unregistered: Vec<String>,

    /// Accept only this OAuth access token (default: any bearer token).
    #[arg(long, env = "DOORSTEP_FAKE_FCM_ACCESS_TOKEN")]
    access_token: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    telemetry::init("info");
    let state = FcmState::new();
    for token in &args.unregistered {
        state.unregister(token.clone());
    }
    if let Some(token) = &args.access_token {
        state.require_access_token(token.clone());
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(addr = %args.listen, "fake FCM listening");
    axum::serve(listener, fcm::router(state))
        .with_graceful_shutdown(shutdown::signal())
        .await
        .context("HTTP server failed")?;
    tracing::info!("fake FCM stopped");
    Ok(())
}
