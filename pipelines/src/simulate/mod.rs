//! `doorstep simulate`: a fleet of customers, restaurants, drivers and a dispatcher that use
//! the public producer API exactly like real apps: orders are placed at a configurable rate,
//! drivers are assigned, restaurants confirm and prepare with realistic variation, drivers
//! pick up and deliver, and some orders are cancelled by each kind of actor.

mod client;
mod places;
mod rng;
mod script;

pub use client::{ApiClient, ApiError, TokenFn};
pub use places::{RESTAURANTS, random_delivery_point};
pub use rng::SplitMix;
pub use script::{Lifecycle, Outcome, SimulationConfig, run_order};

use crate::shutdown::{self, Signal};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counters of a simulation run.
#[derive(Debug, Default)]
pub struct SimulationStats {
    /// Orders placed.
    pub placed: AtomicU64,
    /// Orders driven to DELIVERED.
    pub delivered: AtomicU64,
    /// Orders cancelled by design of the script.
    pub cancelled: AtomicU64,
    /// API calls that failed.
    pub errors: AtomicU64,
}

/// Places `config.orders` orders (0 = until shutdown) at `config.orders_per_second`, each
/// driven through its lifecycle concurrently.
pub async fn run(
    client: Arc<ApiClient>,
    config: SimulationConfig,
    mut stop: Signal,
) -> Arc<SimulationStats> {
    let stats = Arc::new(SimulationStats::default());
    let period = Duration::from_secs_f64(1.0 / config.orders_per_second.max(0.001));
    let mut ticker = tokio::time::interval(period);
    let mut tasks = tokio::task::JoinSet::new();
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            _ = shutdown::stopped(&mut stop) => break,
            _ = ticker.tick() => {}
        }
        if config.orders > 0 && n >= config.orders {
            break;
        }
        n += 1;
        let (client, stats, config) = (client.clone(), stats.clone(), config.clone());
        tasks.spawn(async move {
            stats.placed.fetch_add(1, Ordering::Relaxed);
            match run_order(&client, &config, n).await {
                Ok(Outcome::Delivered) => stats.delivered.fetch_add(1, Ordering::Relaxed),
                Ok(Outcome::Cancelled) => stats.cancelled.fetch_add(1, Ordering::Relaxed),
                Err(e) => {
                    tracing::warn!(error = %e, "simulated order failed");
                    stats.errors.fetch_add(1, Ordering::Relaxed)
                }
            };
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    stats
}
