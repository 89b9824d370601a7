//! Benchmark (not a test: nothing here asserts on timing): the ETA pipeline recomputing a
//! simulated fleet of active orders every 30 s for 10 simulated minutes, against the real
//! services (OSRM on central Helsinki, broker, Redis, CQL server).
//!
//! 1. **Raw limit.** `RAW_ROUTES` uncached OSRM route requests between random points of the
//!    area, `CONCURRENCY` in flight: what the routing engine answers per second in this run.
//! 2. **Fleet.** `ORDERS` orders at the simulator's restaurants (`simulate::RESTAURANTS`) for
//!    customers at random points; every order has a driver starting at a random point and
//!    driving its OSRM street path (15% slower than OSRM's free-flow speed). Half the orders
//!    are PREPARING (driver heading to the restaurant), half EN_ROUTE (driver heading to the
//!    customer). Their events go through the real status pipeline (side effects off) into
//!    `orders.status.v1`, which the ETA pipeline reads.
//! 3. **Run.** The ETA pipeline runs on a manual clock. Each of the `MINUTES × 2` steps writes
//!    every driver's position (as the location pipeline would; not timed), moves the clock 30
//!    s, and times the pipeline until every order's timer recomputation is published (Kafka,
//!    Redis, CQL acknowledged).
//!
//! Figures: routing calls made (HTTP requests, retries included) against the calls a
//! cache-less 30 s recompute would make (one per leg looked up), the cache hit ratio, the
//! fallbacks (points OSRM cannot route between: the extract has disconnected islands), and
//! ETA recomputations per second against the raw OSRM route rate divided by the legs per
//! recomputation (what uncached routing alone could carry).
//!
//! Output: human-readable lines, then `BENCH name=... value=... unit=... limit_name=...
//! limit_value=... ratio=...` lines that `scripts/bench` tabulates.
//!
//! Settings (environment): `DOORSTEP_BENCH_ORDERS` [2000], `DOORSTEP_BENCH_MINUTES` [10],
//! `DOORSTEP_BENCH_RAW_ROUTES` [3000], `DOORSTEP_BENCH_CONCURRENCY` [64],
//! `DOORSTEP_BENCH_TIMEOUT_SECS` [600], plus the usual `DOORSTEP_*` service addresses
//! (`eval "$(scripts/services env)"`). Logs: `RUST_LOG`.

use anyhow::{Context, bail};
use doorstep_connectors::kafka::Producer;
use doorstep_connectors::location_store::{LocationStore, PositionWrite, SourceOffset};
use doorstep_connectors::routing::{LngLat, OsrmClient, OsrmConfig};
use doorstep_pipelines::assemble::{self, EtaOptions, StatusOptions};
use doorstep_pipelines::eta::ManualClock;
use doorstep_pipelines::runtime::RuntimeConfig;
use doorstep_pipelines::shutdown;
use doorstep_pipelines::simulate::{Path, RESTAURANTS, Routes, SplitMix};
use doorstep_schemas::events::{OrderCommand, OrderEvent, PlaceOrder, topics};
use doorstep_schemas::model::{
    Actor, DriverId, EventId, GeoPoint, OrderId, OrderItem, OrderStatus, Timestamp,
};
use doorstep_tests::pipeline_harness::Scope;
use futures::{StreamExt, TryStreamExt};
use prometheus::Registry;
use prometheus::proto::MetricFamily;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One recomputation period.
const STEP_MS: i64 = 30_000;
/// Drivers are this much slower than OSRM's free-flow speeds.
const SLOWER: f64 = 1.0 / 0.85;
/// Produce requests in flight while loading the orders.
const PRODUCE_CONCURRENCY: usize = 512;

fn one<T: FromStr>(name: &str, default: &str) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    let raw = std::env::var(name).unwrap_or_else(|_| default.to_owned());
    raw.parse()
        .map_err(|e: T::Err| anyhow::anyhow!("{name}={raw:?}: {e}"))
}

struct Settings {
    orders: usize,
    minutes: usize,
    raw_routes: usize,
    concurrency: usize,
    timeout: Duration,
}

impl Settings {
    fn from_env() -> anyhow::Result<Self> {
        let s = Self {
            orders: one("DOORSTEP_BENCH_ORDERS", "2000")?,
            minutes: one("DOORSTEP_BENCH_MINUTES", "10")?,
            raw_routes: one("DOORSTEP_BENCH_RAW_ROUTES", "3000")?,
            concurrency: one("DOORSTEP_BENCH_CONCURRENCY", "64")?,
            timeout: Duration::from_secs(one("DOORSTEP_BENCH_TIMEOUT_SECS", "600")?),
        };
        if s.orders < 2 || s.minutes == 0 || s.concurrency == 0 {
            bail!("DOORSTEP_BENCH_ORDERS ≥ 2, DOORSTEP_BENCH_MINUTES ≥ 1, concurrency ≥ 1");
        }
        Ok(s)
    }
}

/// Street paths between the simulator's restaurants (the ones OSRM routes: the extract has
/// disconnected islands); random points along them are addresses on the road network.
async fn street_paths(routes: &Routes) -> anyhow::Result<Vec<Path>> {
    let mut paths = Vec::new();
    for (_, a) in RESTAURANTS {
        for (_, b) in RESTAURANTS {
            if a != b {
                let before = routes.routed.load(std::sync::atomic::Ordering::Relaxed);
                let path = routes.path(a, b).await;
                if routes.routed.load(std::sync::atomic::Ordering::Relaxed) > before {
                    paths.push(path);
                }
            }
        }
    }
    if paths.is_empty() {
        bail!("OSRM routes none of the restaurant pairs");
    }
    Ok(paths)
}

/// A random point on one of `paths`.
fn street_point(paths: &[Path], rng: &mut SplitMix) -> GeoPoint {
    let i = usize::try_from(rng.below(paths.len() as u64)).unwrap_or(0);
    let p = &paths[i.min(paths.len() - 1)];
    p.position_at(rng.unit() * p.duration_s())
}

/// Uncached OSRM routes per second between random street points (the raw limit).
async fn raw_routes(
    client: &OsrmClient,
    paths: &[Path],
    n: usize,
    concurrency: usize,
) -> anyhow::Result<(f64, usize)> {
    let mut rng = SplitMix(7);
    let pairs: Vec<(GeoPoint, GeoPoint)> = (0..n)
        .map(|_| (street_point(paths, &mut rng), street_point(paths, &mut rng)))
        .collect();
    let started = Instant::now();
    let ok: usize = futures::stream::iter(pairs)
        .map(|(a, b)| async move {
            client
                .route(LngLat::new(a.lng, a.lat), LngLat::new(b.lng, b.lat))
                .await
                .is_ok() as usize
        })
        .buffer_unordered(concurrency)
        .fold(0, |a, b| async move { a + b })
        .await;
    Ok((n as f64 / started.elapsed().as_secs_f64(), ok))
}

/// One simulated order and its driver.
struct Sim {
    id: String,
    restaurant: (&'static str, GeoPoint),
    customer: GeoPoint,
    driver: DriverId,
    path: Path,
    en_route: bool,
}

impl Sim {
    fn events(&self, at: Timestamp) -> Vec<OrderEvent> {
        let order = OrderId::new(self.id.clone());
        let mut n = 0;
        let mut ev = |actor: Actor, command: OrderCommand| {
            n += 1;
            OrderEvent {
                event_id: EventId::new(format!("{}-e{n}", self.id)),
                order_id: order.clone(),
                occurred_at: at,
                actor,
                command,
            }
        };
        let restaurant = || Actor::restaurant(self.restaurant.0);
        let driver = || Actor::driver(self.driver.as_str());
        let transition = |to| OrderCommand::Transition { to };
        let mut out = vec![
            ev(
                Actor::customer(format!("{}-c", self.id)),
                OrderCommand::Place(PlaceOrder {
                    customer_id: format!("{}-c", self.id).into(),
                    restaurant_id: self.restaurant.0.into(),
                    items: vec![OrderItem {
                        item_id: "soup".into(),
                        name: "Salmon soup".into(),
                        quantity: 1,
                        unit_price_cents: 1_450,
                    }],
                    total_cents: 1_450,
                    restaurant_location: self.restaurant.1,
                    delivery_location: self.customer,
                }),
            ),
            ev(restaurant(), transition(OrderStatus::Confirmed)),
            ev(
                Actor::system("dispatch"),
                OrderCommand::AssignDriver {
                    driver_id: self.driver.clone(),
                },
            ),
            ev(restaurant(), transition(OrderStatus::Preparing)),
        ];
        if self.en_route {
            out.push(ev(restaurant(), transition(OrderStatus::ReadyForPickup)));
            out.push(ev(driver(), transition(OrderStatus::PickedUp)));
            out.push(ev(driver(), transition(OrderStatus::EnRoute)));
        }
        out
    }

    fn position(&self, elapsed_s: f64, at: Timestamp) -> PositionWrite {
        let location = self.path.position_at(elapsed_s / SLOWER);
        PositionWrite {
            driver: self.driver.clone(),
            location,
            at,
            ping_id: EventId::new(format!("{}-{}", self.driver, at.as_millis())),
            region: doorstep_operators::location::region_of(location, 0.5),
            previous_region: None,
            outbox: String::new(),
            source: SourceOffset {
                partition: 0,
                offset: 0,
            },
        }
    }
}

async fn fleet(
    routes: &Arc<Routes>,
    paths: &[Path],
    n: usize,
    concurrency: usize,
) -> anyhow::Result<Vec<Sim>> {
    let mut rng = SplitMix(42);
    let plans: Vec<_> = (0..n)
        .map(|i| {
            let restaurant = RESTAURANTS[i % RESTAURANTS.len()];
            let customer = street_point(paths, &mut rng);
            let start = street_point(paths, &mut rng);
            (i, restaurant, customer, start, i % 2 == 1)
        })
        .collect();
    let sims = futures::stream::iter(plans)
        .map(|(i, restaurant, customer, start, en_route)| {
            let routes = routes.clone();
            async move {
                let (from, to) = if en_route {
                    (restaurant.1, customer)
                } else {
                    (start, restaurant.1)
                };
                Sim {
                    id: format!("o{i}"),
                    restaurant,
                    customer,
                    driver: DriverId::new(format!("d{i}")),
                    path: routes.path(from, to).await,
                    en_route,
                }
            }
        })
        .buffered(concurrency)
        .collect()
        .await;
    Ok(sims)
}

async fn write_positions(
    store: &LocationStore,
    sims: &[Sim],
    elapsed_s: f64,
    at: Timestamp,
) -> anyhow::Result<()> {
    let writes: Vec<PositionWrite> = sims.iter().map(|s| s.position(elapsed_s, at)).collect();
    futures::stream::iter(writes.chunks(500))
        .map(|chunk| store.write_positions(chunk))
        .buffer_unordered(4)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

fn counter(f: &[MetricFamily], name: &str, label: Option<(&str, &str)>) -> f64 {
    f.iter()
        .filter(|m| m.name() == name)
        .flat_map(|m| m.get_metric())
        .filter(|m| {
            label.is_none_or(|(k, v)| {
                m.get_label()
                    .iter()
                    .any(|l| l.name() == k && l.value() == v)
            })
        })
        .map(|m| m.get_counter().get_value() + m.get_gauge().get_value())
        .sum()
}

#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    recomputations: f64,
    hits: f64,
    misses: f64,
    calls: f64,
    fallbacks: f64,
}

fn counts(registry: &Registry) -> Counts {
    let f = registry.gather();
    Counts {
        recomputations: counter(
            &f,
            "doorstep_eta_recomputations_total",
            Some(("trigger", "timer")),
        ),
        hits: counter(&f, "doorstep_eta_routing_cache_hits_total", None),
        misses: counter(&f, "doorstep_eta_routing_cache_misses_total", None),
        calls: counter(&f, "doorstep_eta_routing_calls_total", None),
        fallbacks: counter(&f, "doorstep_eta_routing_fallbacks_total", None),
    }
}

async fn wait_for(
    timeout: Duration,
    what: &str,
    mut done: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let end = Instant::now() + timeout;
    while !done() {
        if Instant::now() > end {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

fn bench(name: &str, value: f64, unit: &str, limit: Option<(&str, f64)>) {
    match limit {
        Some((limit_name, limit)) => println!(
            "BENCH name={name} value={value:.3} unit={unit} limit_name={limit_name} limit_value={limit:.3} ratio={:.3}",
            value / limit
        ),
        None => println!(
            "BENCH name={name} value={value:.3} unit={unit} limit_name=- limit_value=- ratio=-"
        ),
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    let scope = Scope::new("bench_eta", &[]).await?;
    let config = &scope.config;
    let url = config.endpoints.osrm_url.clone();
    let n = settings.orders;

    let client = OsrmClient::new(&OsrmConfig::new(&url))?;
    let routes = Arc::new(Routes::new(Some(client.clone())));
    let paths = street_paths(&routes)
        .await
        .context("street paths (is OSRM up? scripts/services up)")?;
    let (raw_rate, raw_ok) =
        raw_routes(&client, &paths, settings.raw_routes, settings.concurrency).await?;
    eprintln!(
        "raw OSRM: {raw_rate:.0} routes/s ({raw_ok}/{} routable), {} in flight",
        settings.raw_routes, settings.concurrency
    );

    let sims = fleet(&routes, &paths, n, settings.concurrency).await?;
    let t0 = Timestamp::now();
    let redis = assemble::redis(config).await?;
    let locations = LocationStore::new(redis, config.redis_key_prefix.clone());
    write_positions(&locations, &sims, 0.0, t0).await?;

    let registry = Registry::new();
    let (trigger, signal) = shutdown::channel();
    let runtime = RuntimeConfig {
        tick: Duration::from_millis(20),
        ..RuntimeConfig::default()
    };
    let (status_rt, status) = assemble::status_pipeline(
        config,
        StatusOptions {
            side_effects: false,
            runtime,
        },
        &registry,
    )
    .await?;
    let clock = ManualClock::new(t0);
    let (eta_rt, eta) = assemble::eta_pipeline(
        config,
        EtaOptions {
            clock: Arc::new(clock.clone()),
            runtime,
        },
        &registry,
    )
    .await?;
    let s1 = signal.clone();
    let status_task = tokio::spawn(async move { status_rt.run(status, s1).await });
    let eta_task = tokio::spawn(async move { eta_rt.run(eta, signal).await });

    // The orders, through the status pipeline.
    let events: Vec<OrderEvent> = sims.iter().flat_map(|s| s.events(t0)).collect();
    let catalog = doorstep_tests::catalog().await?;
    let producer = Producer::new(&assemble::kafka_config(config, "doorstep-bench"))?;
    let topic = scope.topic(topics::ORDER_EVENTS);
    let encoded: Vec<(String, Vec<u8>)> = events
        .iter()
        .map(|e| Ok((e.order_id.as_str().to_owned(), catalog.encode(e)?)))
        .collect::<anyhow::Result<_>>()?;
    futures::stream::iter(encoded.iter())
        .map(|(k, v)| producer.send(&topic, k.as_bytes(), v, &[]))
        .buffer_unordered(PRODUCE_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    let status_records = events.len() as f64;
    let eta_in = |r: &Registry| {
        counter(
            &r.gather(),
            "doorstep_pipeline_records_in_total",
            Some(("pipeline", "eta")),
        )
    };
    let active = |r: &Registry| counter(&r.gather(), "doorstep_eta_active_orders", None);
    wait_for(
        settings.timeout,
        "the orders to reach the ETA pipeline",
        || eta_in(&registry) >= status_records && active(&registry) >= n as f64,
    )
    .await?;
    eprintln!(
        "{n} active orders ({} PREPARING, {} EN_ROUTE) from {} status changes",
        sims.iter().filter(|s| !s.en_route).count(),
        sims.iter().filter(|s| s.en_route).count(),
        events.len()
    );

    // 10 simulated minutes of 30 s recomputations.
    let before = counts(&registry);
    let steps = settings.minutes * 2;
    let mut busy = Duration::ZERO;
    for step in 1..=steps {
        let at = t0.plus_millis(step as i64 * STEP_MS);
        write_positions(
            &locations,
            &sims,
            (step as i64 * STEP_MS) as f64 / 1_000.0,
            at,
        )
        .await?;
        let target = counts(&registry).recomputations + n as f64;
        let started = Instant::now();
        clock.set(at);
        wait_for(settings.timeout, "a round of recomputations", || {
            counts(&registry).recomputations >= target
        })
        .await?;
        busy += started.elapsed();
    }
    let after = counts(&registry);
    let _ = trigger.send(true);
    status_task.await??;
    eta_task.await??;

    let recomputations = after.recomputations - before.recomputations;
    let hits = after.hits - before.hits;
    let misses = after.misses - before.misses;
    let lookups = hits + misses;
    let calls = after.calls - before.calls;
    let fallbacks = after.fallbacks - before.fallbacks;
    let rate = recomputations / busy.as_secs_f64();
    let legs_per = lookups / recomputations.max(1.0);
    eprintln!(
        "{recomputations:.0} recomputations in {steps} rounds of 30 simulated s, {:.2} s busy: {rate:.0}/s",
        busy.as_secs_f64()
    );
    eprintln!(
        "routing: {calls:.0} calls made vs {lookups:.0} a cache-less recompute would make ({:.1}%); \
         cache hit ratio {:.3}; {fallbacks:.0} legs fell back ({legs_per:.2} legs per recomputation)",
        100.0 * calls / lookups.max(1.0),
        hits / lookups.max(1.0)
    );
    bench(
        "eta_routing_calls",
        calls,
        "calls",
        Some(("cacheless_30s_recompute_calls", lookups)),
    );
    bench(
        "eta_routing_cache_hit_ratio",
        hits / lookups.max(1.0),
        "ratio",
        None,
    );
    bench(
        "eta_recomputations_per_s",
        rate,
        "recomputations/s",
        Some((
            "raw_osrm_routes_per_s_per_legs",
            raw_rate / legs_per.max(1.0),
        )),
    );
    bench("eta_raw_osrm_routes_per_s", raw_rate, "routes/s", None);
    Ok(())
}
