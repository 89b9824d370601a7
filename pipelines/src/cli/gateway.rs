//! `doorstep gateway`: serve the producer API on `gateway.listen` (and `/metrics`, `/healthz`
//! on `ops.listen` only) until SIGINT/SIGTERM.

use super::token::parse_duration;
use crate::config::Config;
use crate::gateway::Gateway;
use crate::gateway::track::TrackingConfig;
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
    /// Do not serve `GET /v1/orders/{order_id}` nor the live tracking WebSocket (no
    /// connection to the order store or to Redis).
    #[arg(long)]
    pub no_order_store: bool,
    /// Serve the live tracking demo page on `/demo` (DEMO ONLY: it hands out read tokens
    /// for recent orders to anyone who can reach the gateway).
    #[arg(long)]
    pub demo_page: bool,
    /// Other processes' `/metrics` URLs the demo page's operations panel sums (repeatable).
    #[arg(long = "demo-metrics", value_name = "URL")]
    pub demo_metrics: Vec<String>,
}

/// Runs the gateway until a shutdown signal, then flushes the producer.
pub async fn run(config: &Config, args: &GatewayArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        !args.produce_timeout.is_zero(),
        "--produce-timeout must be more than 0"
    );
    let mut gateway = Gateway::from_config(config, args.produce_timeout).await?;
    if !args.no_order_store {
        gateway = gateway
            .with_order_store(config)
            .with_open_orders_cap(config)
            .with_live_tracking(config, TrackingConfig::from_live(&config.live))?;
    }
    if let Err(e) = gateway.ping_broker().await {
        tracing::warn!(error = %e, "the broker is not reachable yet; requests answer 503 until it is");
    }
    let addr = args.listen.unwrap_or(config.gateway_listen);
    let (trigger, signal) = shutdown::channel();
    if args.demo_page {
        gateway = with_demo_page(gateway, config, addr, &args.demo_metrics, signal.clone())?;
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    shutdown::on_signals(trigger);
    // Like every Doorstep process, the gateway serves /metrics and /healthz on the ops port
    // only (never on the public one), so deployments scrape and probe all processes the same
    // way and the internet sees neither.
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

/// Adds the demo page (`/demo`), fed by its own reader of `orders.status.v1`.
fn with_demo_page(
    gateway: Gateway,
    config: &Config,
    addr: SocketAddr,
    metrics: &[String],
    stop: shutdown::Signal,
) -> anyhow::Result<Gateway> {
    use crate::gateway::page::{DemoPage, RecentOrders};
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "the demo page is on a non-loopback address: anyone who reaches it gets read tokens for recent orders");
    }
    let key = crate::auth::TokenKeys::from_config(config)?
        .context("the demo page signs tokens: set gateway.auth_secret")?
        .current()
        .clone();
    let orders = RecentOrders::new();
    orders.spawn_feed(config, gateway.catalog(), stop);
    let page = DemoPage::new(key, orders, gateway.registry().clone(), metrics.to_vec());
    tracing::info!(url = %format!("http://{addr}/demo"), "demo page enabled");
    Ok(gateway.with_routes(page.router()))
}
