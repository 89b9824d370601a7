//! The location pipeline end to end on the real broker and Redis (single node and cluster):
//! accepted pings move the driver in its region's GEO set, reach the order's tracking
//! channel and `orders.tracking.v1`; refused pings land on `orders.rejected.v1` with their
//! reason and never reach Redis.

use doorstep_connectors::driver_state::DriverState;
use doorstep_connectors::kafka::Producer;
use doorstep_connectors::live_feed::LiveFeed;
use doorstep_connectors::location_store::LocationStore;
use doorstep_operators::location::region_of;
use doorstep_pipelines::assemble::{self, LocationOptions};
use doorstep_pipelines::config::Config;
use doorstep_pipelines::runtime::{RuntimeConfig, RuntimeError};
use doorstep_pipelines::shutdown;
use doorstep_schemas::events::{LocationPing, RejectedRecord, topics};
use doorstep_schemas::live::{FrameHeader, LiveEvent};
use doorstep_schemas::model::{
    DriverId, DriverStatus, EventId, OrderId, Timestamp, TrackingEventType, TrackingUpdate,
};
use doorstep_tests::location_pings::ping;
use doorstep_tests::pipeline_harness::Scope;
use doorstep_tests::topic_reader::read_topic;
use futures::StreamExt;
use std::collections::BTreeSet;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);
/// How long to watch for records that must not come.
const QUIET: Duration = Duration::from_secs(3);
/// Grid cell small enough (~110 m) that the test's driver changes region.
const CELL_DEG: f64 = 0.001;

/// A location pipeline running in this process.
struct Running {
    registry: prometheus::Registry,
    trigger: shutdown::Trigger,
    task: tokio::task::JoinHandle<Result<(), RuntimeError>>,
}

impl Running {
    async fn start(config: &Config, options: LocationOptions) -> anyhow::Result<Self> {
        let registry = prometheus::Registry::new();
        let (trigger, signal) = shutdown::channel();
        let (rt, stage) = assemble::location_pipeline(config, options, &registry).await?;
        let task = tokio::spawn(async move { rt.run(stage, signal).await });
        Ok(Self {
            registry,
            trigger,
            task,
        })
    }

    /// Asks it to stop (finish the batch, commit) and waits.
    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.trigger.send(true);
        self.task.await??;
        Ok(())
    }
}

/// Produces `pings` to the scope's `drivers.locations.v1` in order, each keyed by its driver.
async fn produce<'a>(
    scope: &Scope,
    pings: impl IntoIterator<Item = &'a LocationPing>,
) -> anyhow::Result<()> {
    let catalog = doorstep_tests::catalog().await?;
    let producer = Producer::new(&assemble::kafka_config(&scope.config, "doorstep-tests"))?;
    let source = scope.topic(topics::DRIVER_LOCATIONS);
    for p in pings {
        let key = p.driver_id.as_str().as_bytes();
        producer
            .send(&source, key, &catalog.encode(p)?, &[])
            .await?;
    }
    Ok(())
}

async fn pings_are_filtered_stored_published_and_tracked(
    name: &str,
    extra: &[(&str, &str)],
) -> anyhow::Result<()> {
    let scope = Scope::new(name, extra).await?;
    let config = &scope.config;
    let redis = assemble::redis(config).await?;
    let drivers = DriverState::new(redis.clone(), config.redis_key_prefix.clone());
    let store = LocationStore::new(redis.clone(), config.redis_key_prefix.clone());
    let (driver, order) = (DriverId::new("drv-1"), OrderId::new("ord-1"));
    drivers.occupy(&driver, &order).await?;
    let live = LiveFeed::new(redis.clone(), config.redis_key_prefix.clone());
    let mut channel = redis.subscribe(&live.channel(&order)).await?;

    let options = LocationOptions {
        cell_deg: CELL_DEG,
        // Every accepted ping's frame, numbered: the three are in one batch, which conflation
        // (the default) would reduce to the last.
        conflate_frames: false,
        runtime: RuntimeConfig {
            tick: Duration::from_millis(200),
            ..RuntimeConfig::default()
        },
        ..LocationOptions::default()
    };
    let running = Running::start(config, options).await?;

    let t = Timestamp::now().as_millis();
    let (lat, lng) = (60.1699, 24.9384);
    // ~22 m north every 5 s (4.4 m/s), ending ~220 m from the start: another 0.001° cell.
    let good = [
        ping("p1", "drv-1", lat, lng, t, t + 50),
        ping("p2", "drv-1", lat + 0.001, lng, t + 5_000, t + 5_050),
        ping("p3", "drv-1", lat + 0.002, lng, t + 10_000, t + 10_050),
    ];
    let bad = [
        // Same id as p3 (a resend).
        (
            ping("p3", "drv-1", lat + 0.002, lng, t + 10_000, t + 10_100),
            "duplicate",
        ),
        // Older than p3.
        (
            ping("p0", "drv-1", lat, lng, t - 5_000, t + 10_200),
            "out_of_order",
        ),
        // 5 s after p3 but 11 km away.
        (
            ping("p4", "drv-1", lat + 0.1, lng, t + 15_000, t + 15_050),
            "impossible_speed",
        ),
        // Another driver's fix taken 5 minutes before the gateway got it.
        (ping("s1", "drv-2", lat, lng, t - 300_000, t), "stale"),
    ];
    produce(&scope, good.iter().chain(bad.iter().map(|(p, _)| p))).await?;
    Producer::new(&assemble::kafka_config(config, "doorstep-tests"))?
        .send(
            &scope.topic(topics::DRIVER_LOCATIONS),
            b"drv-1",
            b"\x00\x00\x00\x00\x01not a ping",
            &[],
        )
        .await?;

    let brokers = &config.endpoints.kafka_brokers;
    let tracking =
        read_topic::<TrackingUpdate>(brokers, &scope.topic(topics::ORDER_TRACKING), 3, WAIT)
            .await?;
    let ids: Vec<_> = tracking
        .iter()
        .map(|r| r.value.update_id.as_str())
        .collect();
    assert_eq!(ids, ["p1", "p2", "p3"]);
    assert!(tracking.iter().all(|r| r.key == "ord-1"
        && r.value.event_type == TrackingEventType::LocationUpdate
        && r.value.driver_id.as_ref() == Some(&driver)));
    assert_eq!(tracking[2].value.driver_location, Some(good[2].location));

    let rejects =
        read_topic::<RejectedRecord>(brokers, &scope.topic(topics::ORDER_REJECTED), 5, WAIT)
            .await?;
    let codes: BTreeSet<_> = rejects
        .iter()
        .map(|r| r.value.reason_code.as_str())
        .collect();
    let expected: BTreeSet<_> = bad.iter().map(|(_, c)| *c).chain(["undecodable"]).collect();
    assert_eq!(codes, expected, "{rejects:?}");
    assert_eq!(rejects.len(), 5);
    assert!(rejects.iter().all(|r| r.value.rejected_by == "location"));

    // The customer's channel got the three accepted positions, in order, numbered 1, 2, 3.
    let mut got = Vec::new();
    while got.len() < 3 {
        let m = tokio::time::timeout(WAIT, channel.next())
            .await?
            .expect("subscription open");
        let header: FrameHeader = serde_json::from_slice(&m.payload)?;
        let LiveEvent::Location(l) = serde_json::from_slice::<LiveEvent>(&m.payload)? else {
            panic!(
                "not a location frame: {}",
                String::from_utf8_lossy(&m.payload)
            );
        };
        got.push((header.seq, l));
    }
    let ids: Vec<_> = got.iter().map(|(_, l)| l.update_id.as_str()).collect();
    assert_eq!(ids, ["p1", "p2", "p3"]);
    let seqs: Vec<_> = got.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert_eq!(live.current_seq(&order).await?, 3);
    assert_eq!(got[2].1.location, good[2].location);

    // GEOPOS: the driver is where p3 says, in p3's region only; the refused pings changed
    // nothing (the impossible one would be in yet another region).
    let at = |p: &LocationPing| region_of(p.location, CELL_DEG);
    let (glng, glat) = Scope::eventually(WAIT, || async {
        store.position(&at(&good[2]), &driver).await.ok().flatten()
    })
    .await
    .expect("driver in p3's region");
    assert!((glat - good[2].location.lat).abs() < 1e-4, "{glat}");
    assert!((glng - good[2].location.lng).abs() < 1e-4, "{glng}");
    assert_ne!(at(&good[0]), at(&good[2]));
    assert_eq!(store.position(&at(&good[0]), &driver).await?, None);
    assert_eq!(store.position(&at(&bad[2].0), &driver).await?, None);
    assert_eq!(
        store
            .position(&at(&bad[3].0), &DriverId::new("drv-2"))
            .await?,
        None
    );

    // The driver hash kept the status pipeline's fields and gained the position.
    let d = drivers.get(&driver).await?.expect("driver state");
    assert_eq!(d.status, DriverStatus::OnDelivery);
    assert_eq!(d.current_order_id, Some(order.clone()));
    let snap = store.snapshots(std::slice::from_ref(&driver)).await?;
    let last = snap[&driver].last.clone().expect("last position");
    assert_eq!(last.ping_id, EventId::new("p3"));
    assert_eq!(last.region.as_deref(), Some(at(&good[2]).as_str()));

    let metrics = prometheus::TextEncoder::new().encode_to_string(&running.registry.gather())?;
    assert!(
        metrics.contains("doorstep_location_pings_total{result=\"accepted\"} 3"),
        "{metrics}"
    );
    assert!(metrics.contains("doorstep_location_pings_total{result=\"stale\"} 1"));
    running.stop().await?;

    // A new process knows nothing in memory: the last accepted ping comes from Redis, so a
    // resend of p3 is still a duplicate and the next plausible ping is accepted.
    let running = Running::start(config, options).await?;
    let after = [
        ping("p3", "drv-1", lat + 0.002, lng, t + 10_000, t + 20_000),
        ping("p5", "drv-1", lat + 0.0025, lng, t + 20_000, t + 20_050),
    ];
    produce(&scope, &after).await?;
    let rejects =
        read_topic::<RejectedRecord>(brokers, &scope.topic(topics::ORDER_REJECTED), 6, WAIT)
            .await?;
    assert_eq!(rejects.len(), 6);
    // Records of different partitions and transactions come in any order: find the resend.
    assert!(
        rejects
            .iter()
            .any(|r| r.value.reason_code == "duplicate"
                && r.value.event_id == Some(EventId::new("p3"))),
        "the resend of p3 was not refused as a duplicate: {rejects:?}"
    );
    let tracking =
        read_topic::<TrackingUpdate>(brokers, &scope.topic(topics::ORDER_TRACKING), 4, WAIT)
            .await?;
    assert_eq!(tracking.len(), 4);
    assert_eq!(tracking[3].value.update_id, EventId::new("p5"));
    let moved = Scope::eventually(WAIT, || async {
        store.position(&at(&after[1]), &driver).await.ok().flatten()
    })
    .await;
    assert!(moved.is_some(), "p5 stored");
    running.stop().await
}

#[tokio::test]
async fn location_pipeline_on_a_single_redis() -> anyhow::Result<()> {
    pings_are_filtered_stored_published_and_tracked("location_single", &[]).await
}

#[tokio::test]
async fn location_pipeline_on_a_redis_cluster() -> anyhow::Result<()> {
    let urls = doorstep_tests::endpoints().redis_cluster_urls.join(",");
    pings_are_filtered_stored_published_and_tracked(
        "location_cluster",
        &[
            ("DOORSTEP_REDIS_MODE", "cluster"),
            ("DOORSTEP_REDIS_CLUSTER_URLS", urls.as_str()),
        ],
    )
    .await
}

/// The value of an unlabelled sample in `registry`.
fn sample(registry: &prometheus::Registry, name: &str) -> f64 {
    registry
        .gather()
        .iter()
        .find(|f| f.name() == name)
        .and_then(|f| {
            let m = f.get_metric().first()?;
            Some(match f.get_field_type() {
                prometheus::proto::MetricType::COUNTER => m.get_counter().get_value(),
                _ => m.get_gauge().get_value(),
            })
        })
        .unwrap_or(0.0)
}

#[tokio::test]
async fn idle_drivers_leave_memory_and_are_judged_from_redis_on_their_next_ping()
-> anyhow::Result<()> {
    let scope = Scope::new("location_idle", &[]).await?;
    let config = &scope.config;
    let redis = assemble::redis(config).await?;
    let store = LocationStore::new(redis.clone(), config.redis_key_prefix.clone());
    // Fixes up to an hour old are believable here, so a fix older than the 15-minute idle
    // limit is accepted and its driver is idle at the very next tick.
    let options = LocationOptions {
        policy: doorstep_operators::location::LocationPolicy {
            max_age_ms: 3_600_000,
            ..Default::default()
        },
        cell_deg: CELL_DEG,
        runtime: RuntimeConfig {
            tick: Duration::from_millis(200),
            ..RuntimeConfig::default()
        },
        ..LocationOptions::default()
    };
    let running = Running::start(config, options).await?;
    let registry = &running.registry;

    let now = Timestamp::now().as_millis();
    let old = now - 20 * 60 * 1000;
    let (lat, lng) = (60.1699, 24.9384);
    let fresh = ping("f1", "drv-fresh", lat, lng, now, now + 10);
    let idle = ping("i1", "drv-idle", lat, lng, old, now);
    produce(&scope, [&fresh, &idle]).await?;
    let at = region_of(idle.location, CELL_DEG);
    let stored = Scope::eventually(WAIT, || async {
        store.position(&at, &idle.driver_id).await.ok().flatten()
    })
    .await;
    assert!(stored.is_some(), "the idle driver's fix reached Redis");
    // The idle driver leaves memory at a tick; the fresh one stays.
    let evicted = Scope::eventually(WAIT, || async {
        (sample(registry, "doorstep_location_drivers_evicted_total") >= 1.0).then_some(())
    })
    .await;
    assert!(evicted.is_some(), "no idle driver was evicted");
    assert_eq!(
        sample(registry, "doorstep_location_drivers_evicted_total"),
        1.0
    );
    assert_eq!(sample(registry, "doorstep_location_drivers_cached"), 1.0);

    // Its next pings are judged against the last fix read back from Redis: a resend of i1 is
    // a duplicate, a fix older than i1 is out of order, and a fix 5 s after i1 but 11 km
    // away is impossible; a plausible one is accepted.
    let after = [
        ping("i1", "drv-idle", lat, lng, old, now + 100),
        ping("i0", "drv-idle", lat, lng, old - 5_000, now + 200),
        ping("i9", "drv-idle", lat + 0.1, lng, old + 5_000, now + 300),
        ping("i2", "drv-idle", lat + 0.0002, lng, old + 10_000, now + 400),
    ];
    produce(&scope, &after).await?;
    let brokers = &config.endpoints.kafka_brokers;
    let rejects =
        read_topic::<RejectedRecord>(brokers, &scope.topic(topics::ORDER_REJECTED), 3, WAIT)
            .await?;
    let codes: Vec<_> = rejects
        .iter()
        .map(|r| r.value.reason_code.as_str())
        .collect();
    assert_eq!(codes, ["duplicate", "out_of_order", "impossible_speed"]);
    let moved = Scope::eventually(WAIT, || async {
        let last = store
            .snapshots(std::slice::from_ref(&idle.driver_id))
            .await
            .ok()?
            .remove(&idle.driver_id)?
            .last?;
        (last.ping_id == EventId::new("i2")).then_some(())
    })
    .await;
    assert!(moved.is_some(), "i2 accepted after the read-back");
    running.stop().await?;
    Ok(())
}

#[tokio::test]
async fn pings_reread_after_their_positions_were_stored_are_skipped_not_refused()
-> anyhow::Result<()> {
    let scope = Scope::new("location_reread", &[]).await?;
    let config = &scope.config;
    let redis = assemble::redis(config).await?;
    let drivers = DriverState::new(redis.clone(), config.redis_key_prefix.clone());
    let (driver, order) = (DriverId::new("drv-r"), OrderId::new("ord-r"));
    drivers.occupy(&driver, &order).await?;
    let options = LocationOptions {
        runtime: RuntimeConfig {
            tick: Duration::from_millis(200),
            ..RuntimeConfig::default()
        },
        ..LocationOptions::default()
    };

    let t = Timestamp::now().as_millis();
    let (lat, lng) = (60.1699, 24.9384);
    let pings = [
        ping("r1", "drv-r", lat, lng, t, t + 50),
        ping("r2", "drv-r", lat + 0.0002, lng, t + 5_000, t + 5_050),
        ping("r2", "drv-r", lat + 0.0002, lng, t + 5_000, t + 5_090), // resend
        ping("r3", "drv-r", lat + 0.0004, lng, t + 10_000, t + 10_050),
    ];
    produce(&scope, &pings).await?;
    let brokers = &config.endpoints.kafka_brokers;

    // The first process handles the stream: three accepted, the resend refused.
    let running = Running::start(config, options).await?;
    let tracking =
        read_topic::<TrackingUpdate>(brokers, &scope.topic(topics::ORDER_TRACKING), 3, WAIT)
            .await?;
    assert_eq!(tracking.len(), 3);
    let store = LocationStore::new(redis.clone(), config.redis_key_prefix.clone());
    let stored = Scope::eventually(WAIT, || async {
        let snap = store.snapshots(std::slice::from_ref(&driver)).await.ok()?;
        snap[&driver]
            .last
            .clone()
            .filter(|l| l.ping_id == EventId::new("r3"))
    })
    .await
    .expect("r3 stored");
    assert_eq!(stored.source.map(|s| s.offset), Some(3), "{stored:?}");
    running.stop().await?;

    // A crash after the positions were written and before the transaction committed makes a
    // new process read the same records again: a process in another consumer group does
    // exactly that. They are skipped as processed (nothing is judged again, so nothing is
    // refused anew), and the position's outbox — what the aborted transaction held — is
    // produced once more: here, where the first transaction did commit, each record twice.
    let mut again = config.clone();
    again.group_prefix = format!("{}-after-crash", again.group_prefix);
    let running = Running::start(&again, options).await?;
    let skipped = Scope::eventually(WAIT, || async {
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&running.registry.gather())
            .ok()?;
        text.contains("doorstep_location_pings_total{result=\"redelivered\"} 4")
            .then_some(text)
    })
    .await;
    assert!(skipped.is_some(), "the four records were not skipped");
    running.stop().await?;
    let rejects =
        read_topic::<RejectedRecord>(brokers, &scope.topic(topics::ORDER_REJECTED), 2, QUIET)
            .await?;
    assert_eq!(
        rejects.len(),
        2,
        "the resend's reject, from the outbox again: {rejects:?}"
    );
    assert_eq!(rejects[0].value, rejects[1].value, "the same record twice");
    let tracking =
        read_topic::<TrackingUpdate>(brokers, &scope.topic(topics::ORDER_TRACKING), 7, QUIET)
            .await?;
    assert_eq!(
        tracking.len(),
        6,
        "the three updates, from the outbox again"
    );
    Ok(())
}
