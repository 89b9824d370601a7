//! Benchmark (not a test: nothing here asserts on a figure): how good the ETA range shown to
//! the customer is, measured on the simulator's orders driven on real OSRM street routes.
//!
//! **Orders.** `ORDERS` orders of the simulator (`doorstep simulate`): each one's plan is the
//! simulator's own draw (`simulate::Lifecycle::draw`: restaurant, confirmation delay,
//! preparation time with its long tail of busy kitchens, hand-over time, cancellations), its
//! customer a simulator address, its driver the nearest of `DRIVERS_NEAR` free drivers at
//! simulator addresses, and both drives the simulator's street paths from the routing engine
//! (`simulate::Routes`, OSRM with full geometry; drivers take OSRM's duration, as the
//! simulator's drivers do). Orders are placed every `SPACING_S` seconds of simulated time.
//! The timeline of each order follows the simulator's script (`simulate::script`): assigned
//! 0.3 min after placement, confirmed after the planned delay (a silent kitchen waits for the
//! 2-minute auto-confirm), PREPARING 0.5 min later, READY after the planned preparation,
//! PICKED_UP after the hand-over once both the food and the driver are there, EN_ROUTE 0.2 min
//! later, DELIVERED when the drive ends. Cancelled orders and orders handed back by their
//! first driver are left out (they are not delivered on a plan).
//!
//! **Why a simulated clock.** The running simulator compresses time (its `--speedup`), while
//! routing durations and the ETA are in real minutes, so measuring the ETAs of a live run
//! against the compressed deliveries would compare different units. Here every order lives
//! in simulated time, at the real pace, without waiting for it.
//!
//! **ETAs.** At each checkpoint the ETA is computed exactly as the ETA pipeline computes it
//! at that moment, with the deployment's settings (`assemble::eta_policy`, `eta_router`): the
//! seed's formula (preparation remaining + pickup travel + delivery travel) from
//! `operators::eta` (`plan`, `prep_stage`, `PrepModel`, `estimate`), travel from the real
//! router (OSRM behind the routing cache, on the simulated clock), the preparation model
//! learned from the preparation times of the orders that were READY before (restaurant ×
//! hour of day), and the driver where the simulated driver is then. Checkpoints: the move to
//! PREPARING, the move to PICKED_UP, and 5 minutes before the delivery (the ETA pipeline
//! recomputes every 30 s: the range shown then is at most 30 s older).
//!
//! **Figures**, per checkpoint: the share of deliveries inside the range shown
//! (`computed_at + range_low_min .. computed_at + range_high_min`), the median range width,
//! the mean absolute error of the point estimate (`estimated_delivery_at`), and its mean
//! signed error (late deliveries are negative). Then the same with other range policies
//! (standard deviations either side), to show what widening or narrowing buys; and the
//! routing fallbacks (the simulator's straight lines, the ETA router's fallbacks).
//! Goal of issue 17: ≥ 80 % inside at each checkpoint with a median width ≤ 6 minutes.
//!
//! Output: human-readable lines, then `BENCH name=... value=... unit=... limit_name=...
//! limit_value=... ratio=...` lines that `scripts/bench` tabulates.
//!
//! Settings (environment): `DOORSTEP_BENCH_ORDERS` [360], `DOORSTEP_BENCH_SPACING_S` [20],
//! `DOORSTEP_BENCH_DRIVERS_NEAR` [5], `DOORSTEP_BENCH_SEED` [42], plus the usual
//! `DOORSTEP_*` service addresses (`eval "$(scripts/services env)"`). Logs: `RUST_LOG`.

use anyhow::{Context, bail, ensure};
use doorstep_connectors::routing::{OsrmClient, OsrmConfig, RouteAnswer, Router};
use doorstep_operators::eta::{
    Components, PickupLeg, Travel, estimate, hour_of_day, plan, prep_stage,
};
use doorstep_pipelines::assemble;
use doorstep_pipelines::config::{Config, Source};
use doorstep_pipelines::eta::EtaPolicy;
use doorstep_pipelines::simulate::{
    Lifecycle, Path, RESTAURANTS, Routes, SplitMix, random_delivery_point,
};
use doorstep_schemas::events::EtaUpdate;
use doorstep_schemas::model::{GeoPoint, OrderId, OrderStatus, Timestamp};
use doorstep_tests::bench_kit::{bench_line, init_bench_tracing, quantile, setting};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

/// Simulated start: 11:00 UTC, so that the orders fall in two or three hours of the day.
const START_MS: i64 = 1_767_265_200_000;
/// The simulator's auto-confirm comes 2 minutes after placement; a silent kitchen waits 2.5.
const SILENT_WAIT_MIN: f64 = 2.5;
/// Checkpoint "5 minutes before delivery", seconds.
const BEFORE_DELIVERY_S: f64 = 300.0;
/// Range policies compared (standard deviations either side; 1.5 is the default).
const Z_VARIANTS: [f64; 5] = [1.0, 1.28, 1.5, 2.0, 2.5];

struct Settings {
    orders: u64,
    spacing_s: f64,
    drivers_near: usize,
    seed: u64,
}

/// One delivered order's simulated life, seconds from the start.
struct Order {
    id: OrderId,
    restaurant: &'static str,
    restaurant_at: GeoPoint,
    customer: GeoPoint,
    /// Driver assigned and starting to drive to the restaurant.
    assigned: f64,
    pickup: Path,
    preparing: f64,
    ready: f64,
    picked_up: f64,
    en_route: f64,
    delivery: Path,
    delivered: f64,
}

impl Order {
    /// Status, PREPARING time and driver position at `t`.
    fn at(&self, t: f64) -> (OrderStatus, Option<f64>, GeoPoint) {
        let driver_to_restaurant = self.pickup.position_at(t - self.assigned);
        if t >= self.en_route {
            let pos = self.delivery.position_at(t - self.en_route);
            (OrderStatus::EnRoute, Some(self.preparing), pos)
        } else if t >= self.picked_up {
            (
                OrderStatus::PickedUp,
                Some(self.preparing),
                self.restaurant_at,
            )
        } else if t >= self.ready {
            (
                OrderStatus::ReadyForPickup,
                Some(self.preparing),
                driver_to_restaurant,
            )
        } else if t >= self.preparing {
            (
                OrderStatus::Preparing,
                Some(self.preparing),
                driver_to_restaurant,
            )
        } else {
            (OrderStatus::Confirmed, None, driver_to_restaurant)
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Checkpoint {
    Preparing,
    PickedUp,
    FiveMinutesBefore,
}

impl Checkpoint {
    fn label(self) -> &'static str {
        match self {
            Self::Preparing => "preparing",
            Self::PickedUp => "picked_up",
            Self::FiveMinutesBefore => "5min_before",
        }
    }
}

fn ms(t: f64) -> Timestamp {
    Timestamp::from_millis(START_MS + (t * 1_000.0).round() as i64)
}

/// The simulator's orders with `s.seed`, as delivered on its plans (cancelled and handed-back
/// ones left out).
async fn orders(s: &Settings, routes: &Routes) -> anyhow::Result<Vec<Order>> {
    let mut out = Vec::new();
    let mut drivers = SplitMix(s.seed ^ 0xD71E_5EED);
    for n in 1..=s.orders {
        let plan = Lifecycle::draw(s.seed, n);
        let placed = n as f64 * s.spacing_s;
        // The driver: the nearest of a few free drivers at simulator addresses.
        let (restaurant, restaurant_at) = RESTAURANTS[plan.restaurant];
        let start = (0..s.drivers_near.max(1))
            .map(|_| random_delivery_point(drivers.unit()))
            .min_by(|a, b| {
                a.distance_m(&restaurant_at)
                    .total_cmp(&b.distance_m(&restaurant_at))
            })
            .context("a driver")?;
        let mut r = SplitMix(s.seed ^ n);
        let customer = random_delivery_point(r.unit());
        if plan.customer_cancels || plan.restaurant_cancels || plan.driver_gives_back {
            continue;
        }
        let assigned = placed + 0.3 * 60.0;
        let confirmed = if plan.restaurant_silent {
            assigned + SILENT_WAIT_MIN * 60.0
        } else {
            assigned + plan.confirm_minutes * 60.0
        };
        let preparing = confirmed + 0.5 * 60.0;
        let ready = preparing + plan.prep_minutes * 60.0;
        let pickup = routes.path(start, restaurant_at).await;
        let arrived = assigned + pickup.duration_s();
        let picked_up = ready.max(arrived) + plan.handover_minutes * 60.0;
        let en_route = picked_up + 0.2 * 60.0;
        let delivery = routes.path(restaurant_at, customer).await;
        let delivered = en_route + delivery.duration_s();
        out.push(Order {
            id: OrderId::new(format!("q{n}")),
            restaurant,
            restaurant_at,
            customer,
            assigned,
            pickup,
            preparing,
            ready,
            picked_up,
            en_route,
            delivery,
            delivered,
        });
    }
    Ok(out)
}

/// Preparation times (seconds) observed before `now` for `restaurant` at `hour`, oldest first.
fn observed(orders: &[Order], restaurant: &str, hour: u8, now: f64) -> Vec<f64> {
    let mut seen: Vec<(f64, f64)> = orders
        .iter()
        .filter(|o| {
            o.restaurant == restaurant && o.ready < now && hour_of_day(ms(o.preparing)) == hour
        })
        .map(|o| (o.ready, o.ready - o.preparing))
        .collect();
    seen.sort_by(|a, b| a.0.total_cmp(&b.0));
    seen.into_iter().map(|(_, d)| d).collect()
}

/// What the ETA pipeline computes for `o` at `t` (the components, then `estimate`).
async fn components(
    o: &Order,
    t: f64,
    all: &[Order],
    policy: &EtaPolicy,
    router: &Router,
    routing: &mut Vec<RouteAnswer>,
) -> anyhow::Result<Components> {
    let now = ms(t);
    let (status, preparing, driver) = o.at(t);
    let p = plan(status, Some(driver), o.restaurant_at, o.customer).context("a live order")?;
    let mut travel = |a: RouteAnswer| {
        routing.push(a);
        if a.is_fallback() {
            policy.travel.fallback(a.duration_s)
        } else {
            policy.travel.routed(a.duration_s)
        }
    };
    let pickup = match p.pickup {
        PickupLeg::Done => Travel::NONE,
        PickupLeg::Assumed => policy.travel.unassigned(),
        PickupLeg::Route { from, to } => travel(router.travel(from, to, now).await),
    };
    let delivery = travel(router.travel(p.delivery.0, p.delivery.1, now).await);
    let since = preparing.map(ms);
    let hour = hour_of_day(since.unwrap_or(now));
    let expectation = policy.prep.expect(&observed(all, o.restaurant, hour, t));
    let prep_s = policy
        .prep
        .remaining(&expectation, prep_stage(status, since, now));
    Ok(Components {
        prep_s,
        pickup,
        delivery,
    })
}

/// One checkpoint's figures under one range policy.
#[derive(Default)]
struct Quality {
    inside: usize,
    widths: Vec<f64>,
    abs_err_min: Vec<f64>,
    signed_err_min: Vec<f64>,
}

impl Quality {
    fn add(&mut self, eta: &EtaUpdate, delivered: Timestamp) {
        let at = eta.computed_at.as_millis();
        let low = at + i64::from(eta.range_low_min) * 60_000;
        let high = at + i64::from(eta.range_high_min) * 60_000;
        let d = delivered.as_millis();
        if (low..=high).contains(&d) {
            self.inside += 1;
        }
        self.widths
            .push(f64::from(eta.range_high_min - eta.range_low_min));
        let err = (eta.estimated_delivery_at.as_millis() - d) as f64 / 60_000.0;
        self.abs_err_min.push(err.abs());
        self.signed_err_min.push(err);
    }

    fn n(&self) -> usize {
        self.widths.len()
    }

    fn inside_pct(&self) -> f64 {
        100.0 * self.inside as f64 / self.n().max(1) as f64
    }

    fn median_width(&self) -> f64 {
        let mut w = self.widths.clone();
        w.sort_by(f64::total_cmp);
        quantile(&w, 0.5)
    }

    fn mean(v: &[f64]) -> f64 {
        v.iter().sum::<f64>() / v.len().max(1) as f64
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_bench_tracing();
    let s = Settings {
        orders: setting("DOORSTEP_BENCH_ORDERS", "360")?,
        spacing_s: setting("DOORSTEP_BENCH_SPACING_S", "20")?,
        drivers_near: setting("DOORSTEP_BENCH_DRIVERS_NEAR", "5")?,
        seed: setting("DOORSTEP_BENCH_SEED", "42")?,
    };
    ensure!(
        s.orders >= 1 && s.spacing_s > 0.0,
        "DOORSTEP_BENCH_ORDERS ≥ 1 and DOORSTEP_BENCH_SPACING_S > 0"
    );
    let config = Config::from_source(&Source::load(None)?)?;
    let policy = assemble::eta_policy(&config);
    let router = assemble::eta_router(&config)?;
    // The simulator's routes, as `doorstep simulate` makes them.
    let routes = Routes::new(Some(OsrmClient::new(
        &OsrmConfig::new(&config.endpoints.osrm_url).with_max_snap_distance(500.0),
    )?));

    let started = std::time::Instant::now();
    let orders = orders(&s, &routes).await?;
    let sim_fallbacks = routes.fallbacks.load(Ordering::Relaxed);
    let sim_routed = routes.routed.load(Ordering::Relaxed);
    if sim_routed == 0 {
        bail!(
            "no route from OSRM at {} (start the services: scripts/services up)",
            config.endpoints.osrm_url
        );
    }
    eprintln!(
        "{} orders delivered on their plans of {} placed; simulator routes {sim_routed} (straight-line fallbacks {sim_fallbacks}); {:.1} s",
        orders.len(),
        s.orders,
        started.elapsed().as_secs_f64()
    );

    // Every checkpoint, in simulated time order (the router's cache runs on that clock).
    let mut checkpoints: Vec<(f64, usize, Checkpoint)> = Vec::new();
    for (i, o) in orders.iter().enumerate() {
        checkpoints.push((o.preparing, i, Checkpoint::Preparing));
        checkpoints.push((o.picked_up, i, Checkpoint::PickedUp));
        checkpoints.push((
            o.delivered - BEFORE_DELIVERY_S,
            i,
            Checkpoint::FiveMinutesBefore,
        ));
    }
    checkpoints.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut quality: BTreeMap<(Checkpoint, u64), Quality> = BTreeMap::new();
    let mut routing = Vec::new();
    for (t, i, checkpoint) in checkpoints {
        let o = &orders[i];
        let c = components(o, t, &orders, &policy, &router, &mut routing).await?;
        for z in Z_VARIANTS {
            let mut range = policy.range;
            range.z = z;
            let eta = estimate(o.id.clone(), ms(t), &c, &range);
            quality
                .entry((checkpoint, (z * 100.0).round() as u64))
                .or_default()
                .add(&eta, ms(o.delivered));
        }
    }
    let eta_fallbacks = routing.iter().filter(|a| a.is_fallback()).count();
    let calls: u32 = routing.iter().map(|a| a.calls).sum();
    eprintln!(
        "ETA routing: {} lookups, {calls} OSRM calls, {eta_fallbacks} fallbacks",
        routing.len()
    );

    let default_z = (policy.range.z * 100.0).round() as u64;
    eprintln!(
        "\ncheckpoint     z     inside  median width  MAE      mean error (estimate − delivery)"
    );
    for ((checkpoint, z), q) in &quality {
        eprintln!(
            "{:<13} {:>4.2}  {:>5.1} %  {:>5.1} min     {:>4.2} min {:>+5.2} min{}",
            checkpoint.label(),
            *z as f64 / 100.0,
            q.inside_pct(),
            q.median_width(),
            Quality::mean(&q.abs_err_min),
            Quality::mean(&q.signed_err_min),
            if *z == default_z {
                "   (deployed range policy)"
            } else {
                ""
            }
        );
    }
    eprintln!();

    bench_line(
        "eta_quality.delivered_orders",
        orders.len() as f64,
        "orders",
        None,
    );
    bench_line(
        "eta_quality.simulator_route_fallbacks",
        sim_fallbacks as f64,
        "routes",
        Some(("simulator_routes", sim_routed as f64)),
    );
    bench_line(
        "eta_quality.eta_routing_fallbacks",
        eta_fallbacks as f64,
        "lookups",
        Some(("eta_routing_lookups", routing.len() as f64)),
    );
    for ((checkpoint, z), q) in &quality {
        if *z != default_z {
            continue;
        }
        let name = format!("eta_quality[{}]", checkpoint.label());
        bench_line(
            &format!("{name}.inside"),
            q.inside_pct(),
            "%",
            Some(("goal_%", 80.0)),
        );
        bench_line(
            &format!("{name}.median_width"),
            q.median_width(),
            "min",
            Some(("goal_max_min", 6.0)),
        );
        bench_line(
            &format!("{name}.mae"),
            Quality::mean(&q.abs_err_min),
            "min",
            None,
        );
    }
    Ok(())
}
