//! `doorstep simulate`: drive a simulated fleet through the gateway's public API.

use crate::auth::{Claims, TokenKey, unix_now};
use crate::config::Config;
use crate::shutdown;
use crate::simulate::{self, ApiClient, SimulationConfig, TokenFn};
use anyhow::Context;
use clap::Args;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// `doorstep simulate` arguments.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Gateway base URL (default: http://<gateway.listen>).
    #[arg(long)]
    pub gateway: Option<String>,
    /// Orders to place; 0 runs until Ctrl-C.
    #[arg(long, default_value_t = 20)]
    pub orders: u64,
    /// Orders placed per second.
    #[arg(long, default_value_t = 2.0)]
    pub rate: f64,
    /// Speed-up of the actors' pace (60: a minute lasts a second).
    #[arg(long, default_value_t = 60.0)]
    pub speedup: f64,
    /// Drivers in the fleet.
    #[arg(long, default_value_t = 50)]
    pub drivers: u32,
    /// Seed of the pseudo-random choices (same seed, same plans).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// Token minting with the configured secret, for the simulated apps.
pub fn token_fn(config: &Config) -> anyhow::Result<TokenFn> {
    let secret = config.auth_secret.as_deref().context(
        "the simulator signs its apps' tokens: set gateway.auth_secret (DOORSTEP_AUTH_SECRET)",
    )?;
    let key = Arc::new(TokenKey::new(secret.as_bytes())?);
    Ok(Arc::new(move |kind, id, order| {
        let mut claims = Claims::new(kind, id, unix_now() + 3_600);
        if let Some(o) = order {
            claims = claims.for_order(o);
        }
        key.sign(&claims).unwrap_or_default()
    }))
}

/// Runs the simulation and prints a summary.
pub async fn run(config: &Config, args: &SimulateArgs) -> anyhow::Result<()> {
    let base = args
        .gateway
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.gateway_listen));
    let client = Arc::new(ApiClient::new(base, token_fn(config)?)?);
    let (trigger, signal) = shutdown::channel();
    shutdown::on_signals(trigger);
    let run_id = format!("sim{}", unix_now() % 1_000_000);
    let cfg = SimulationConfig {
        orders: args.orders,
        orders_per_second: args.rate,
        speedup: args.speedup,
        drivers: args.drivers,
        run_id,
        seed: args.seed,
    };
    let stats = simulate::run(client, cfg, signal).await;
    println!(
        "placed {} · delivered {} · cancelled {} · errors {}",
        stats.placed.load(Ordering::Relaxed),
        stats.delivered.load(Ordering::Relaxed),
        stats.cancelled.load(Ordering::Relaxed),
        stats.errors.load(Ordering::Relaxed)
    );
    if stats.errors.load(Ordering::Relaxed) > 0 {
        anyhow::bail!("some simulated orders failed; see the warnings above");
    }
    Ok(())
}
