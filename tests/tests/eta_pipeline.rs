//! The ETA pipeline against the real services (broker, Redis, CQL server, OSRM on central
//! Helsinki), with its clock under the test's control: 30-second recomputations happen when
//! the test moves the clock, not after 30 real seconds.
//!
//! - A driver drives a real OSRM route (to the restaurant, then to the customer, slower than
//!   OSRM's free-flow speeds): successive ETAs shrink, and the delivery happens inside the
//!   range shown 5 minutes before it. Every output is checked: the live channel, the current
//!   ETA in Redis, `orders.eta.v1`, the order row, and the end (timer gone, ETA cleared).
//! - Prep-time learning: after N preparations observed at a restaurant in an hour of day (by
//!   the status pipeline, persisted), a restarted ETA pipeline uses their average.
//! - A private `osrm-routed` is stopped mid-run: ETAs keep coming, flagged fallback, and are
//!   routed again once it is back.

use doorstep_connectors::live_feed::LiveFeed;
use doorstep_connectors::location_store::{LocationStore, PositionWrite, SourceOffset};
use doorstep_connectors::routing::{LngLat, OsrmClient, OsrmConfig};
use doorstep_pipelines::assemble::{self, EtaOptions};
use doorstep_pipelines::eta::{ManualClock, TIMER_KIND};
use doorstep_pipelines::runtime::RuntimeConfig;
use doorstep_pipelines::shutdown;
use doorstep_pipelines::simulate::{Path, decode_polyline};
use doorstep_schemas::events::{EtaUpdate, OrderCommand, OrderEvent, PlaceOrder, topics};
use doorstep_schemas::live::LiveEvent;
use doorstep_schemas::model::{
    Actor, DriverId, EventId, GeoPoint, OrderId, OrderItem, OrderStatus, Timestamp,
};
use doorstep_tests::pipeline_harness::Scope;
use doorstep_tests::topic_reader::read_all;
use futures::StreamExt;
use std::time::Duration;

/// The restaurant, in Kaartinkaupunki's south-west.
const RESTAURANT: GeoPoint = GeoPoint {
    lat: 60.1650,
    lng: 24.9400,
};
/// The customer, by Kaisaniemi park: 435 s from the restaurant by OSRM.
const CUSTOMER: GeoPoint = GeoPoint {
    lat: 60.1748,
    lng: 24.9470,
};
/// The driver's start, in Kruununhaka: 286 s from the restaurant by OSRM. (Both routes are
/// ones along which OSRM's time to the end only decreases: from some street positions, such
/// as Kaivokatu's, OSRM's route starts with a loop that a few metres further on it skips.)
const DRIVER_START: GeoPoint = GeoPoint {
    lat: 60.1760,
    lng: 24.9500,
};
/// One recomputation period.
const STEP_MS: i64 = 30_000;

/// Events of one order with explicit (simulated) times.
struct Order {
    id: String,
    restaurant: String,
    driver: String,
    n: u32,
}

impl Order {
    fn new(id: &str, restaurant: &str) -> Self {
        Self {
            id: id.to_owned(),
            restaurant: restaurant.to_owned(),
            driver: format!("{id}-driver"),
            n: 0,
        }
    }

    fn order_id(&self) -> OrderId {
        OrderId::new(self.id.clone())
    }

    fn event(&mut self, actor: Actor, command: OrderCommand, at: Timestamp) -> OrderEvent {
        self.n += 1;
        OrderEvent {
            event_id: EventId::new(format!("{}-e{}", self.id, self.n)),
            order_id: self.order_id(),
            occurred_at: at,
            actor,
            command,
        }
    }

    fn place(&mut self, at: Timestamp) -> OrderEvent {
        let cmd = OrderCommand::Place(PlaceOrder {
            customer_id: format!("{}-customer", self.id).into(),
            restaurant_id: self.restaurant.clone().into(),
            items: vec![OrderItem {
                item_id: "soup".into(),
                name: "Salmon soup".into(),
                quantity: 1,
                unit_price_cents: 1_450,
            }],
            total_cents: 1_450,
            restaurant_location: RESTAURANT,
            delivery_location: CUSTOMER,
        });
        self.event(Actor::customer(format!("{}-customer", self.id)), cmd, at)
    }

    fn assign(&mut self, at: Timestamp) -> OrderEvent {
        let cmd = OrderCommand::AssignDriver {
            driver_id: self.driver.clone().into(),
        };
        self.event(Actor::system("dispatch"), cmd, at)
    }

    fn restaurant(&mut self, to: OrderStatus, at: Timestamp) -> OrderEvent {
        let actor = Actor::restaurant(self.restaurant.clone());
        self.event(actor, OrderCommand::Transition { to }, at)
    }

    fn driver(&mut self, to: OrderStatus, at: Timestamp) -> OrderEvent {
        let actor = Actor::driver(self.driver.clone());
        self.event(actor, OrderCommand::Transition { to }, at)
    }
}

/// An ETA pipeline running in this process on `clock`.
struct EtaRun {
    trigger: shutdown::Trigger,
    task: tokio::task::JoinHandle<Result<(), String>>,
    registry: prometheus::Registry,
}

impl EtaRun {
    async fn start(scope: &Scope, clock: &ManualClock) -> anyhow::Result<Self> {
        let registry = prometheus::Registry::new();
        let (trigger, signal) = shutdown::channel();
        let options = EtaOptions {
            clock: std::sync::Arc::new(clock.clone()),
            runtime: RuntimeConfig {
                tick: Duration::from_millis(100),
                ..RuntimeConfig::default()
            },
        };
        let (rt, stage) = assemble::eta_pipeline(&scope.config, options, &registry).await?;
        let task =
            tokio::spawn(async move { rt.run(stage, signal).await.map_err(|e| e.to_string()) });
        Ok(Self {
            trigger,
            task,
            registry,
        })
    }

    fn metric(&self, name: &str) -> f64 {
        self.registry
            .gather()
            .iter()
            .filter(|f| f.name() == name)
            .flat_map(|f| f.get_metric().iter().map(|m| m.get_counter().get_value()))
            .sum()
    }

    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.trigger.send(true);
        self.task.await?.map_err(|e| anyhow::anyhow!(e))
    }
}

/// The current ETA of `order` in Redis once one computed at or after `at` is there.
async fn eta_at(live: &LiveFeed, order: &OrderId, at: Timestamp) -> anyhow::Result<EtaUpdate> {
    eta_where(live, order, at, |_| true).await
}

/// Like [`eta_at`], for an ETA that also satisfies `reflects` (one computed after a status
/// change reached the pipeline: the timer may fire first, with the previous status).
async fn eta_where(
    live: &LiveFeed,
    order: &OrderId,
    at: Timestamp,
    reflects: impl Fn(&EtaUpdate) -> bool,
) -> anyhow::Result<EtaUpdate> {
    let reflects = &reflects;
    Scope::eventually(Duration::from_secs(60), || async move {
        live.eta(order)
            .await
            .ok()
            .flatten()
            .filter(|e| e.computed_at >= at && reflects(e))
    })
    .await
    .ok_or_else(|| anyhow::anyhow!("no ETA for {order} computed at or after {at}"))
}

/// Stores where `driver` is, as the location pipeline does.
async fn put_driver(
    store: &LocationStore,
    driver: &str,
    at: GeoPoint,
    when: Timestamp,
) -> anyhow::Result<()> {
    store
        .write_positions(&[PositionWrite {
            driver: DriverId::new(driver),
            location: at,
            at: when,
            ping_id: EventId::new(format!("{driver}-{}", when.as_millis())),
            region: doorstep_operators::location::region_of(at, 0.5),
            previous_region: None,
            outbox: String::new(),
            source: SourceOffset {
                partition: 0,
                offset: 0,
            },
        }])
        .await?;
    Ok(())
}

/// The street path OSRM drives from `from` to `to`.
async fn osrm_path(url: &str, from: GeoPoint, to: GeoPoint) -> anyhow::Result<Path> {
    let client = OsrmClient::new(&OsrmConfig::new(url))?;
    let route = client
        .route_with_geometry(LngLat::new(from.lng, from.lat), LngLat::new(to.lng, to.lat))
        .await?;
    let points = decode_polyline(route.geometry.as_deref().unwrap_or_default(), 6)?;
    Path::new(points, route.duration_s).ok_or_else(|| anyhow::anyhow!("empty route"))
}

fn remaining_s(e: &EtaUpdate) -> f64 {
    e.estimated_delivery_at.millis_since(e.computed_at) as f64 / 1_000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etas_shrink_along_a_real_route_and_the_delivery_falls_in_the_range_shown_5_minutes_before()
-> anyhow::Result<()> {
    // 5 minutes expected preparation (the kitchen takes 5.5).
    let scope = Scope::new("eta_route", &[("DOORSTEP_ETA_DEFAULT_PREP_S", "300")]).await?;
    let osrm = scope.config.endpoints.osrm_url.clone();
    let to_restaurant = osrm_path(&osrm, DRIVER_START, RESTAURANT).await?;
    let to_customer = osrm_path(&osrm, RESTAURANT, CUSTOMER).await?;
    // The driver is 15% slower than OSRM's free-flow speeds.
    let slow = 1.0 / 0.85;
    let t0 = Timestamp::now();
    let at = |s: f64| t0.plus_millis((s * 1_000.0) as i64);
    let arrive_restaurant = to_restaurant.duration_s() * slow;
    let ready = 330.0;
    let picked_up = arrive_restaurant.max(ready) + 30.0;
    let arrive_customer = picked_up + to_customer.duration_s() * slow;
    let delivered = arrive_customer + 30.0;

    let clock = ManualClock::new(t0);
    let redis = assemble::redis(&scope.config).await?;
    let live = LiveFeed::new(redis.clone(), scope.config.redis_key_prefix.clone());
    let locations = LocationStore::new(redis.clone(), scope.config.redis_key_prefix.clone());
    let mut o = Order::new("route-1", "r-kaartinkaupunki");
    let order = o.order_id();
    let mut channel = redis.subscribe(&live.channel(&order)).await?;
    let pipelines = scope.start().await?;
    let eta = EtaRun::start(&scope, &clock).await?;

    put_driver(&locations, &o.driver, DRIVER_START, t0).await?;
    let events = vec![
        o.place(t0),
        o.restaurant(OrderStatus::Confirmed, t0),
        o.assign(t0),
        o.restaurant(OrderStatus::Preparing, t0),
    ];
    scope.produce(&events).await?;
    let first = Scope::eventually(Duration::from_secs(60), || async {
        live.eta(&order)
            .await
            .ok()
            .flatten()
            .filter(|e| e.prep_remaining_s > 0.0 && e.pickup_travel_s > 0.0)
    })
    .await
    .ok_or_else(|| anyhow::anyhow!("no first ETA"))?;
    let mut etas = vec![first];

    // Every 30 s: the driver moves, the kitchen and the driver act when their time comes,
    // and the clock moves on (which fires the order's recomputation).
    let mut s = 0.0;
    let mut sent_ready = false;
    let mut sent_pickup = false;
    while s + 30.0 < delivered {
        s += 30.0;
        let now = at(s);
        let position = if s < picked_up {
            to_restaurant.position_at(s / slow)
        } else {
            to_customer.position_at((s - picked_up) / slow)
        };
        put_driver(&locations, &o.driver, position, now).await?;
        let mut changes = Vec::new();
        // What the ETA must show once the pipeline has seen this step's changes.
        let mut reflects: fn(&EtaUpdate) -> bool = |_| true;
        if !sent_ready && s >= ready {
            changes.push(o.restaurant(OrderStatus::ReadyForPickup, at(ready)));
            sent_ready = true;
            reflects = |e| e.prep_remaining_s == 0.0;
        }
        if !sent_pickup && s >= picked_up {
            changes.push(o.driver(OrderStatus::PickedUp, at(picked_up)));
            changes.push(o.driver(OrderStatus::EnRoute, at(picked_up)));
            sent_pickup = true;
            reflects = |e| e.pickup_travel_s == 0.0;
        }
        clock.set(now);
        scope.produce(&changes).await?;
        etas.push(eta_where(&live, &order, now, reflects).await?);
    }
    clock.set(at(delivered));
    scope
        .produce(&[o.driver(OrderStatus::Delivered, at(delivered))])
        .await?;
    let store = scope.store().await?;
    let cleared = Scope::eventually(Duration::from_secs(60), || async {
        live.eta(&order).await.ok().filter(Option::is_none)
    })
    .await;

    // Successive ETAs shrink: never up by more than a rounding of the route cells, and the
    // last is a fraction of the first.
    let remaining: Vec<f64> = etas.iter().map(remaining_s).collect();
    for pair in remaining.windows(2) {
        assert!(pair[1] <= pair[0] + 30.0, "ETA grew: {remaining:?}");
    }
    let last = *remaining.last().unwrap_or(&f64::MAX);
    assert!(last < remaining[0] / 3.0, "{remaining:?}");
    assert!(
        etas.iter().all(|e| !e.fallback),
        "routed all along: {etas:?}"
    );

    // The range shown 5 minutes before the delivery holds the delivery.
    let five_before = at(delivered - 300.0);
    let shown = etas
        .iter()
        .rfind(|e| e.computed_at <= five_before)
        .ok_or_else(|| anyhow::anyhow!("no ETA 5 minutes before"))?;
    let actual_min = at(delivered).millis_since(shown.computed_at) as f64 / 60_000.0;
    assert!(
        f64::from(shown.range_low_min) <= actual_min
            && actual_min <= f64::from(shown.range_high_min),
        "delivered {actual_min:.1} min after {shown:?}"
    );

    // The outputs: the order row, the live channel, the topic, and the end.
    let row = store
        .load(&order)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no row"))?;
    assert_eq!(row.order.status, OrderStatus::Delivered);
    assert_eq!(
        row.order.estimated_delivery_at,
        etas.last().map(|e| e.estimated_delivery_at)
    );
    assert!(
        cleared.is_some(),
        "the current ETA is cleared once delivered"
    );
    let mut frames = 0;
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(500), channel.next()).await {
        if let Ok(LiveEvent::Eta(e)) = serde_json::from_slice::<LiveEvent>(&m.payload) {
            assert_eq!(e.order_id, order);
            frames += 1;
        }
    }
    assert!(
        frames >= etas.len(),
        "{frames} ETA frames for {} ETAs",
        etas.len()
    );
    let topic: Vec<_> = read_all::<EtaUpdate>(
        &scope.config.endpoints.kafka_brokers,
        &scope.topic(topics::ORDER_ETA),
        Duration::from_secs(2),
    )
    .await?;
    for e in &etas {
        assert!(
            topic
                .iter()
                .any(|r| r.value == *e && r.key == order.as_str()),
            "{e:?} not on the topic"
        );
    }
    let timers = futures::future::try_join_all((0..3).map(|p| store.timers(p))).await?;
    assert!(
        !timers.iter().flatten().any(|t| t.kind == TIMER_KIND),
        "the ETA timer is gone"
    );
    // Time passes: no ETA for a delivered order.
    let published = eta.metric("doorstep_eta_recomputations_total");
    clock.advance(5 * STEP_MS);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(eta.metric("doorstep_eta_recomputations_total"), published);
    eprintln!(
        "ETA route test: {} ETAs, remaining {:.0} s → {:.0} s; 5 min before: {}–{} min, delivered after {actual_min:.1} min",
        etas.len(),
        remaining[0],
        last,
        shown.range_low_min,
        shown.range_high_min
    );
    eta.stop().await?;
    pipelines.stop().await
}

/// A time at which the next 30 minutes stay in one hour of day (the prep model's key).
fn start_of_a_quiet_half_hour() -> Timestamp {
    let now = Timestamp::now().as_millis();
    let into_hour = now.rem_euclid(3_600_000);
    if into_hour < 1_800_000 {
        Timestamp::from_millis(now)
    } else {
        Timestamp::from_millis(now - into_hour + 3_600_000 + 60_000)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_n_observed_preparations_the_prep_component_is_their_average() -> anyhow::Result<()> {
    let scope = Scope::new(
        "eta_prep",
        &[
            ("DOORSTEP_ETA_DEFAULT_PREP_S", "900"),
            ("DOORSTEP_ETA_PREP_MIN_OBSERVATIONS", "3"),
        ],
    )
    .await?;
    let t0 = start_of_a_quiet_half_hour();
    let at = |s: i64| t0.plus_millis(s * 1_000);
    let clock = ManualClock::new(t0);
    let redis = assemble::redis(&scope.config).await?;
    let live = LiveFeed::new(redis, scope.config.redis_key_prefix.clone());
    let pipelines = scope.start().await?;

    // Three preparations at r-learn: 400, 500 and 600 s, all started at t0.
    let mut events = Vec::new();
    for (i, seconds) in [400, 500, 600].into_iter().enumerate() {
        let mut o = Order::new(&format!("learn-{i}"), "r-learn");
        events.push(o.place(t0));
        events.push(o.restaurant(OrderStatus::Confirmed, t0));
        events.push(o.restaurant(OrderStatus::Preparing, t0));
        events.push(o.restaurant(OrderStatus::ReadyForPickup, at(seconds)));
    }
    scope.produce(&events).await?;
    // The status pipeline records them in the order store.
    let store = scope.store().await?;
    let hour = doorstep_operators::eta::hour_of_day(t0);
    let restaurant = doorstep_schemas::model::RestaurantId::new("r-learn");
    let recorded = Scope::eventually(Duration::from_secs(60), || async {
        let n = store.prep_times(&restaurant, hour).await.ok()?.len();
        (n == 3).then_some(n)
    })
    .await;
    assert!(
        recorded.is_some(),
        "the status pipeline recorded the 3 preparations"
    );

    // A fresh ETA pipeline (nothing in memory): an order at r-learn preparing for 60 s gets
    // 500 − 60 s; one at a restaurant without history gets the default 900 − 60 s.
    clock.set(at(760));
    let eta = EtaRun::start(&scope, &clock).await?;
    let mut learned = Order::new("learned", "r-learn");
    let mut fresh = Order::new("fresh", "r-unknown");
    let mut events = Vec::new();
    for o in [&mut learned, &mut fresh] {
        events.push(o.place(at(650)));
        events.push(o.restaurant(OrderStatus::Confirmed, at(650)));
        events.push(o.restaurant(OrderStatus::Preparing, at(700)));
    }
    scope.produce(&events).await?;
    // The CONFIRMED event may be recomputed on its own first (a whole preparation left):
    // wait for the ETA of the PREPARING one, which counts the 60 s already spent.
    let with_history = eta_where(&live, &learned.order_id(), at(760), |e| {
        e.prep_remaining_s < 500.0
    })
    .await?;
    let without = eta_where(&live, &fresh.order_id(), at(760), |e| {
        e.prep_remaining_s < 900.0
    })
    .await?;
    assert!(
        (with_history.prep_remaining_s - 440.0).abs() < 1.0,
        "{with_history:?}"
    );
    assert!(
        (without.prep_remaining_s - 840.0).abs() < 1.0,
        "{without:?}"
    );
    // 30 s later the timer recomputes: 30 s less preparation left.
    clock.set(at(790));
    let later = eta_at(&live, &learned.order_id(), at(790)).await?;
    assert!((later.prep_remaining_s - 410.0).abs() < 1.0, "{later:?}");
    eta.stop().await?;
    pipelines.stop().await
}

/// A private `osrm-routed` on the cached Helsinki graph (the one `scripts/services` prepared):
/// the shared one is never stopped.
struct PrivateOsrm {
    child: tokio::process::Child,
    port: u16,
}

impl PrivateOsrm {
    fn files() -> anyhow::Result<(std::path::PathBuf, std::path::PathBuf)> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let cache = var("DOORSTEP_CACHE_DIR")
            .map(std::path::PathBuf::from)
            .or_else(|| var("XDG_CACHE_HOME").map(|x| std::path::Path::new(&x).join("doorstep")))
            .or_else(|| var("HOME").map(|h| std::path::Path::new(&h).join(".cache/doorstep")))
            .ok_or_else(|| anyhow::anyhow!("no cache directory (set DOORSTEP_CACHE_DIR)"))?;
        let version = var("DOORSTEP_OSRM_VERSION").unwrap_or_else(|| "26.10.0".to_owned());
        let bin = cache.join(format!("osrm-{version}/osrm/bin/osrm-routed"));
        let data = cache.join(format!("osrm-data/helsinki-car-{version}/Helsinki.osrm"));
        anyhow::ensure!(
            bin.exists() && data.with_extension("osrm.hsgr").exists(),
            "osrm-routed or the Helsinki graph is missing under {} (run `scripts/services up`)",
            cache.display()
        );
        Ok((bin, data))
    }

    async fn start(port: Option<u16>) -> anyhow::Result<Self> {
        let (bin, data) = Self::files()?;
        let port = match port {
            Some(p) => p,
            None => std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port(),
        };
        let child = tokio::process::Command::new(bin)
            .args([
                "--ip",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--algorithm",
                "ch",
            ])
            .arg(data)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let me = Self { child, port };
        let client = OsrmClient::new(&OsrmConfig::new(me.url()))?;
        let up = Scope::eventually(Duration::from_secs(30), || async {
            client
                .route(
                    LngLat::new(RESTAURANT.lng, RESTAURANT.lat),
                    LngLat::new(CUSTOMER.lng, CUSTOMER.lat),
                )
                .await
                .ok()
        })
        .await;
        anyhow::ensure!(
            up.is_some(),
            "private osrm-routed did not route on port {port}"
        );
        Ok(me)
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn stop(mut self) -> anyhow::Result<u16> {
        self.child.kill().await?;
        Ok(self.port)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_osrm_stopped_etas_keep_coming_flagged_fallback_and_recover() -> anyhow::Result<()> {
    let osrm = PrivateOsrm::start(None).await?;
    let url = osrm.url();
    // A cached route is used for 1 s only and the breaker probes after 10 s, so every 30 s
    // step asks the routing engine.
    let scope = Scope::new(
        "eta_outage",
        &[
            ("DOORSTEP_OSRM_URL", url.as_str()),
            ("DOORSTEP_ETA_CACHE_TTL_S", "1"),
            ("DOORSTEP_ETA_BREAKER_OPEN_S", "10"),
            ("DOORSTEP_ETA_BREAKER_FAILURES", "2"),
        ],
    )
    .await?;
    let t0 = Timestamp::now();
    let clock = ManualClock::new(t0);
    let redis = assemble::redis(&scope.config).await?;
    let live = LiveFeed::new(redis.clone(), scope.config.redis_key_prefix.clone());
    let locations = LocationStore::new(redis, scope.config.redis_key_prefix.clone());
    let pipelines = scope.start().await?;
    let eta = EtaRun::start(&scope, &clock).await?;
    let mut o = Order::new("outage-1", "r-kaartinkaupunki");
    let order = o.order_id();
    put_driver(&locations, &o.driver, DRIVER_START, t0).await?;
    scope
        .produce(&[
            o.place(t0),
            o.restaurant(OrderStatus::Confirmed, t0),
            o.assign(t0),
            o.restaurant(OrderStatus::Preparing, t0),
        ])
        .await?;
    let mut flags = Vec::new();
    let step = |n: i64| t0.plus_millis(n * STEP_MS);
    clock.set(step(1));
    flags.push(eta_at(&live, &order, step(1)).await?.fallback);
    let port = osrm.stop().await?;
    for n in 2..=4 {
        clock.set(step(n));
        flags.push(eta_at(&live, &order, step(n)).await?.fallback);
    }
    let osrm = PrivateOsrm::start(Some(port)).await?;
    for n in 5..=6 {
        clock.set(step(n));
        flags.push(eta_at(&live, &order, step(n)).await?.fallback);
    }
    // Routed, then flagged for as long as OSRM is down, then routed again (the first step
    // after the restart may still have one leg waiting behind the breaker's single probe).
    assert!(!flags[0], "{flags:?}");
    assert!(flags[1..4].iter().all(|f| *f), "{flags:?}");
    assert!(!flags[5], "{flags:?}");
    assert!(eta.metric("doorstep_eta_routing_fallbacks_total") >= 6.0);
    eta.stop().await?;
    pipelines.stop().await?;
    osrm.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_30_s_timers_survive_a_restart() -> anyhow::Result<()> {
    let scope = Scope::new("eta_restart", &[]).await?;
    let t0 = Timestamp::now();
    let clock = ManualClock::new(t0);
    let redis = assemble::redis(&scope.config).await?;
    let live = LiveFeed::new(redis.clone(), scope.config.redis_key_prefix.clone());
    let locations = LocationStore::new(redis, scope.config.redis_key_prefix.clone());
    let pipelines = scope.start().await?;
    let first = EtaRun::start(&scope, &clock).await?;
    let mut o = Order::new("restart-1", "r-kaartinkaupunki");
    let order = o.order_id();
    put_driver(&locations, &o.driver, DRIVER_START, t0).await?;
    scope
        .produce(&[
            o.place(t0),
            o.restaurant(OrderStatus::Confirmed, t0),
            o.assign(t0),
            o.restaurant(OrderStatus::Preparing, t0),
        ])
        .await?;
    eta_where(&live, &order, t0, |e| {
        e.prep_remaining_s > 0.0 && e.pickup_travel_s > 0.0
    })
    .await?;
    // That ETA may come before PREPARING was read: stop only once all four status records
    // (PLACED, CONFIRMED, DRIVER_ASSIGNED, PREPARING) were, so none is left for the new
    // process (stopping finishes and commits the batch in hand).
    let read = Scope::eventually(Duration::from_secs(60), || async {
        (first.metric("doorstep_pipeline_records_in_total") >= 4.0).then_some(())
    })
    .await;
    assert!(
        read.is_some(),
        "the first process read the four status records"
    );
    first.stop().await?;

    // A new process with nothing in memory: the order's next ETA comes from its durable
    // timer (no status change arrives), 30 s later on the clock.
    let second = EtaRun::start(&scope, &clock).await?;
    clock.set(t0.plus_millis(STEP_MS));
    let next = eta_at(&live, &order, t0.plus_millis(STEP_MS)).await?;
    assert!(next.prep_remaining_s > 0.0, "{next:?}");
    let by = |trigger: &str| {
        second
            .registry
            .gather()
            .iter()
            .filter(|f| f.name() == "doorstep_eta_recomputations_total")
            .flat_map(|f| f.get_metric())
            .filter(|m| m.get_label().iter().any(|l| l.value() == trigger))
            .map(|m| m.get_counter().get_value())
            .sum::<f64>()
    };
    assert!(
        by("timer") >= 1.0 && by("status") == 0.0,
        "timer {} status {}",
        by("timer"),
        by("status")
    );
    // And it keeps going every 30 s.
    clock.set(t0.plus_millis(2 * STEP_MS));
    eta_at(&live, &order, t0.plus_millis(2 * STEP_MS)).await?;
    second.stop().await?;
    pipelines.stop().await
}
