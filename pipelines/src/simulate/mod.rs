//! `doorstep simulate`: a fleet of customers, restaurants, drivers and a dispatcher on the
//! real Helsinki street network, using the public producer API exactly like real apps:
//! orders are placed at a configurable rate, dispatch sends the nearest free driver, drivers
//! drive the routing engine's street routes with a GPS ping every 5 s of simulated time,
//! restaurants confirm and prepare with realistic variation, and some orders are cancelled
//! by each kind of actor. Every command waits for its outcome (`Prefer: wait`) and carries an
//! idempotency key, so each actor learns at once what became of it and acts on it.
//!
//! Owns: the simulated world (places, fleet, routes, paths, driving) and one order's script.

mod client;
mod drive;
mod fleet;
mod path;
mod places;
mod rng;
mod routes;
mod script;

pub use client::{Answer, ApiClient, ApiError, TokenFn};
pub use drive::{DrivePace, bearing_deg, drive};
pub use fleet::{Driver, Fleet};
pub use path::{Path, PolylineError, decode_polyline};
pub use places::{RESTAURANTS, random_delivery_point};
pub use rng::SplitMix;
pub use routes::{FALLBACK_SPEED_MPS, Routes};
pub use script::{Lifecycle, Outcome, SimulationConfig, World, run_order};

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
    /// Orders whose script failed (an API call was refused or the gateway was unreachable).
    pub errors: AtomicU64,
}

/// Places `world.config.orders` orders (0 = until shutdown) at `orders_per_second`, each
/// driven through its lifecycle concurrently. On shutdown no new order is placed and the
/// orders in flight are abandoned.
pub async fn run(world: Arc<World>, mut stop: Signal) -> Arc<SimulationStats> {
    let stats = Arc::new(SimulationStats::default());
    let config = &world.config;
    let period = Duration::from_secs_f64(1.0 / config.orders_per_second.max(0.001));
    let mut ticker = tokio::time::interval(period);
    let mut tasks = tokio::task::JoinSet::new();
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            _ = shutdown::stopped(&mut stop) => return stats,
            _ = ticker.tick() => {}
        }
        if config.orders > 0 && n >= config.orders {
            break;
        }
        n += 1;
        let (world, stats) = (world.clone(), stats.clone());
        tasks.spawn(async move {
            stats.placed.fetch_add(1, Ordering::Relaxed);
            match run_order(&world, n).await {
                Ok(Outcome::Delivered) => stats.delivered.fetch_add(1, Ordering::Relaxed),
                Ok(Outcome::Cancelled) => stats.cancelled.fetch_add(1, Ordering::Relaxed),
                Err(e) => {
                    tracing::warn!(error = %e, order = n, "simulated order failed");
                    stats.errors.fetch_add(1, Ordering::Relaxed)
                }
            };
        });
        while tasks.try_join_next().is_some() {}
    }
    loop {
        tokio::select! {
            _ = shutdown::stopped(&mut stop) => return stats,
            next = tasks.join_next() => if next.is_none() { return stats },
        }
    }
}
