//! `doorstep gateway`: serve the producer API (and `/metrics`, `/healthz`) on
//! `gateway.listen` until SIGINT/SIGTERM.

use super::token::parse_duration;
use crate::config::Config;
use crate::gateway::Gateway;
use crate::shutdown;
use anyhow::Context;
use clap::Args;
use std::net::SocketAddr;
use std::time::Duration;

/// Options of `doorstep gateway`.
#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// Address to listen on, instead of `gateway.listen` (DOORSTEP_GATEWAY_LISTEN).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// How long a request waits for the broker's acknowledgement before answering 503
    /// (`500ms`, `5s`, ...).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub produce_timeout: Duration,
    /// Do not serve `GET /v1/orders/{order_id}` (no connection to the order store).
    #[arg(long)]
    pub no_order_store: bool,
}

/// Runs the gateway until a shutdown signal, then flushes the producer.
pub async fn run(config: &Config, args: &GatewayArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        !args.produce_timeout.is_zero(),
        "--produce-timeout must be more than 0"
    );
    let mut gateway = Gateway::from_config(config, args.produce_timeout)?;
    if !args.no_order_store {
        gateway = gateway.with_order_store(config);
    }
    if let Err(e) = gateway.ping_broker().await {
        tracing::warn!(error = %e, "the broker is not reachable yet; requests answer 503 until it is");
    }
    let addr = args.listen.unwrap_or(config.gateway_listen);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let (trigger, signal) = shutdown::channel();
    shutdown::on_signals(trigger);
    // Like every Doorstep process, the gateway also serves /metrics and /healthz on the ops
    // port, so deployments scrape and probe all processes the same way.
    let health = crate::gateway::health(gateway.state());
    let ops = crate::ops::spawn(
        config.ops_listen,
        gateway.registry().clone(),
        health,
        signal.clone(),
    );
    gateway.serve(listener, signal).await?;
    ops.abort();
    Ok(())
}
