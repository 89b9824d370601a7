//! `doorstep simulate`: drive a simulated fleet on the real street network through the
//! gateway's public API.

use crate::auth::{Claims, TokenKeys, unix_now};
use crate::config::Config;
use crate::shutdown;
use crate::simulate::{
    self, ApiClient, DrivePace, Fleet, Routes, SimulationConfig, TokenFn, World,
};
use anyhow::Context;
use clap::Args;
use doorstep_connectors::routing::{OsrmClient, OsrmConfig};
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
    /// Speed-up of the actors' pace, except driving (60: a minute lasts a second).
    #[arg(long, default_value_t = 60.0)]
    pub speedup: f64,
    /// Speed-up of driving and of the ping period, lowered per drive so that the speed the
    /// pings imply stays under --max-apparent-speed.
    #[arg(long, default_value_t = 3.0)]
    pub drive_speedup: f64,
    /// Cap on the speed (m/s) pings imply in real time; the location pipeline drops pings
    /// implying more than 70 m/s as impossible.
    #[arg(long, default_value_t = DrivePace::DEFAULT_MAX_APPARENT_MPS)]
    pub max_apparent_speed: f64,
    /// Simulated seconds between two GPS pings of a driving driver.
    #[arg(long, default_value_t = 5.0)]
    pub ping_interval: f64,
    /// Drivers in the fleet.
    #[arg(long, default_value_t = 50)]
    pub drivers: u32,
    /// Seed of the pseudo-random choices (same seed, same plans).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Drive straight lines instead of asking the routing engine (services.osrm_url).
    #[arg(long)]
    pub no_routing: bool,
    /// Seconds each command waits for the status pipeline's decision (`Prefer: wait`, at
    /// most 10); 0 sends and moves on without learning what became of it.
    #[arg(long, default_value_t = 10)]
    pub wait: u64,
}

/// Token minting with the configured secret, for the simulated apps.
pub fn token_fn(config: &Config) -> anyhow::Result<TokenFn> {
    let key = Arc::new(TokenKeys::from_config(config)?.context(
        "the simulator signs its apps' tokens: set gateway.auth_secret (DOORSTEP_AUTH_SECRET)",
    )?);
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
    anyhow::ensure!(
        args.rate > 0.0
            && args.speedup > 0.0
            && args.drive_speedup > 0.0
            && args.max_apparent_speed > 0.0,
        "--rate, --speedup, --drive-speedup and --max-apparent-speed must be more than 0"
    );
    anyhow::ensure!(
        args.ping_interval >= 0.1,
        "--ping-interval must be at least 0.1 s"
    );
    let base = args
        .gateway
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.gateway_listen));
    anyhow::ensure!(args.wait <= 10, "--wait is at most 10 seconds");
    let api = ApiClient::new(
        base,
        token_fn(config)?,
        std::time::Duration::from_secs(args.wait),
    )?;
    let osrm = if args.no_routing {
        None
    } else {
        Some(OsrmClient::new(
            &OsrmConfig::new(&config.endpoints.osrm_url).with_max_snap_distance(500.0),
        )?)
    };
    let (trigger, signal) = shutdown::channel();
    shutdown::on_signals(trigger);
    let run_id = format!("sim{}", unix_now() % 1_000_000);
    let world = Arc::new(World {
        api,
        fleet: Fleet::new(args.drivers, &format!("{run_id}-"), args.seed),
        routes: Routes::new(osrm),
        config: SimulationConfig {
            orders: args.orders,
            orders_per_second: args.rate,
            speedup: args.speedup,
            drive_speedup: args.drive_speedup,
            max_apparent_mps: args.max_apparent_speed,
            ping_interval_s: args.ping_interval,
            drivers: args.drivers,
            run_id,
            seed: args.seed,
        },
    });
    let stats = simulate::run(world.clone(), signal).await;
    println!(
        "placed {} · delivered {} · cancelled {} · errors {} · commands refused {} (learnt from their outcome) · re-sent {} · routes {} (straight-line fallbacks {})",
        stats.placed.load(Ordering::Relaxed),
        stats.delivered.load(Ordering::Relaxed),
        stats.cancelled.load(Ordering::Relaxed),
        stats.errors.load(Ordering::Relaxed),
        world.api.rejected.load(Ordering::Relaxed),
        world.api.resent.load(Ordering::Relaxed),
        world.routes.routed.load(Ordering::Relaxed),
        world.routes.fallbacks.load(Ordering::Relaxed),
    );
    if stats.errors.load(Ordering::Relaxed) > 0 {
        anyhow::bail!("some simulated orders failed; see the warnings above");
    }
    Ok(())
}
