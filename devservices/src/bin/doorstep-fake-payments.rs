//! `doorstep-fake-payments`: a Stripe Refunds API stand-in for demos.

use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use doorstep_devservices::fakes::stripe::{self, StripeState};
use doorstep_devservices::{shutdown, telemetry};

/// Fake Stripe Refunds API (`POST /v1/refunds`) with Stripe's idempotency-key semantics.
///
/// Answers with Stripe's refund object and error shapes, and shows what it received at
/// `GET /__fake/refunds` and `GET /__fake/requests`.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(
        long,
        env = "DOORSTEP_FAKE_PAYMENTS_LISTEN",
        default_value = "127.0.0.1:18091"
    )]
    listen: SocketAddr,

    /// Accept only this secret key (default: any `sk_…` or `rk_…` key).
    #[arg(long, env = "DOORSTEP_FAKE_PAYMENTS_SECRET_KEY")]
    secret_key: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    telemetry::init("info");
    let state = StripeState::new();
    if let Some(key) = &args.secret_key {
        state.require_secret_key(key.clone());
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(addr = %args.listen, "fake payments API listening");
    axum::serve(listener, stripe::router(state))
        .with_graceful_shutdown(shutdown::signal())
        .await
        .context("HTTP server failed")?;
    tracing::info!("fake payments API stopped");
    Ok(())
}
