//! `doorstep gateway`: serve the producer API (and `/metrics`, `/healthz`) on
//! `gateway.listen` until SIGINT/SIGTERM.

use super::token::parse_duration;
use crate::auth::TokenKey;
use crate::config::Config;
use crate::gateway::{self, GatewayConfig, GatewayMetrics, GatewayState, KafkaSink};
use crate::shutdown;
use anyhow::Context;
use clap::Args;
use doorstep_schemas::avro::Catalog;
use doorstep_schemas::events::topics;
use prometheus::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
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
}

/// Runs the gateway until a shutdown signal, then flushes the producer.
pub async fn run(config: &Config, args: &GatewayArgs) -> anyhow::Result<()> {
    let secret = config.auth_secret.as_deref().context(
        "the gateway needs gateway.auth_secret (DOORSTEP_AUTH_SECRET) to verify bearer tokens",
    )?;
    let key = TokenKey::new(secret.as_bytes())?;
    anyhow::ensure!(
        !args.produce_timeout.is_zero(),
        "--produce-timeout must be more than 0"
    );
    let sink = KafkaSink::new(&config.endpoints.kafka_brokers, args.produce_timeout)?;
    if let Err(e) = sink.producer().ping().await {
        tracing::warn!(error = %e, "the broker is not reachable yet; requests answer 503 until it is");
    }
    let registry = Registry::new();
    let metrics = GatewayMetrics::register(&registry)?;
    let settings = GatewayConfig::new(config.topic(topics::ORDER_EVENTS))
        .with_produce_timeout(args.produce_timeout);
    let state = GatewayState::new(
        key,
        Arc::new(sink.clone()),
        Catalog::embedded()?,
        settings,
        metrics,
    );
    let app = gateway::router(state.clone(), registry, gateway::health(&state));
    let addr = args.listen.unwrap_or(config.gateway_listen);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let (trigger, signal) = shutdown::channel();
    shutdown::on_signals(trigger);
    gateway::serve(listener, app, signal).await?;
    sink.producer()
        .flush(Duration::from_secs(5))
        .await
        .context("flushing the producer at shutdown")?;
    tracing::info!("gateway stopped");
    Ok(())
}
