//! Benchmark (not a test: nothing here asserts on timing): GPS pings per second through the
//! location pipeline, next to two raw limits measured in the same run, and the ratios.
//!
//! In a fresh [`Scope`] (topics, consumer groups, Redis key prefix of its own):
//!
//! 1. **Drivers.** `DRIVERS` drivers; `ON_DELIVERY` percent of them are put on a delivery
//!    (`DriverState::occupy`, one order each), so their pings are also published on the
//!    order's live channel and produced to `orders.tracking.v1`.
//! 2. **Raw limit: Redis.** `redis-benchmark -P 64 -n GEOADDS -r 100000 -q GEOADD <key> lng lat
//!    member:__rand_int__` against the same Redis (one key of the scope, deleted afterwards).
//! 3. **Backlog.** `PINGS_PER_DRIVER` pings per driver produced to the scope's
//!    `drivers.locations.v1` (keyed by driver, interleaved: ping 1 of every driver, then ping
//!    2 of every driver, ... as live traffic arrives), fixes a second apart and ~10 m apart.
//! 4. **Raw limit: Kafka.** A bare consumer of the same topic (the project's
//!    `ConsumerBuilder`, its own group, from the earliest offset) reading every record, no
//!    decoding, no processing.
//! 5. **Pipeline.** `assemble::location_pipeline` + `Runtime::run` in this process, timed
//!    until every ping is processed and its offsets committed (read off the runtime's
//!    metrics). The filter's maximum fix age is raised to an hour, so that the backlog's fixes
//!    (taken before the run) are not refused as stale; every other check runs as in
//!    production. The run must accept every ping (checked; the bench fails otherwise).
//!
//! Rates are from the first record read to the last one (bare consumer) or to the last
//! commit (pipeline), so the consumer group's join is not counted; the time from the start
//! is printed as well.
//!
//! Output: human-readable lines, then `BENCH name=... value=... unit=... limit_name=...
//! limit_value=... ratio=...` lines, which `scripts/bench` collects: pings/s against GEOADD/s
//! (pipelined) and against bare consumption records/s.
//!
//! The whole run is made twice, each in a fresh scope: with the pipeline's outputs in Kafka
//! transactions (`kafka.exactly_once=true`, the default) and without (at-least-once); the
//! ratio is printed as `location_pipeline.transactions`.
//!
//! Settings (environment): `DOORSTEP_BENCH_EXACTLY_ONCE` [on,off], `DOORSTEP_BENCH_DRIVERS` [2000], `DOORSTEP_BENCH_PINGS_PER_DRIVER`
//! [50], `DOORSTEP_BENCH_ON_DELIVERY` [50, percent of the drivers],
//! `DOORSTEP_BENCH_GEOADDS` [1000000], `DOORSTEP_BENCH_TIMEOUT_SECS` [300], plus the usual
//! `DOORSTEP_*` service addresses (`eval "$(scripts/services env)"`). Logs: `RUST_LOG`.

use anyhow::{Context, bail};
use doorstep_connectors::driver_state::DriverState;
use doorstep_connectors::kafka::{ConsumerBuilder, Producer};
use doorstep_connectors::live_feed::LiveFeed;
use doorstep_connectors::location_store::LocationStore;
use doorstep_operators::location::LocationPolicy;
use doorstep_pipelines::assemble::{self, LocationOptions};
use doorstep_pipelines::runtime::RuntimeConfig;
use doorstep_pipelines::shutdown;
use doorstep_schemas::events::{LocationPing, topics};
use doorstep_schemas::model::{DriverId, EventId, GeoPoint, OrderId, Timestamp};
use doorstep_tests::bench_kit::{
    bench_line, counter, counter_by, histogram, init_bench_tracing, pipeline_caught_up,
    redis_benchmark, setting,
};
use doorstep_tests::pipeline_harness::{Scope, TEST_PARTITIONS};
use futures::{StreamExt, TryStreamExt};
use prometheus::Registry;
use std::time::{Duration, Instant};

/// Produce requests in flight while loading the backlog.
const PRODUCE_CONCURRENCY: usize = 512;
/// `redis-benchmark`'s pipeline depth (`-P`).
const GEOADD_PIPELINE: usize = 64;
/// Distinct members `redis-benchmark` adds (`-r`).
const GEOADD_MEMBERS: usize = 100_000;
/// How often the runtime's metrics are read while the pipeline runs.
const POLL: Duration = Duration::from_millis(2);

#[derive(Clone)]
struct Settings {
    drivers: usize,
    pings_per_driver: usize,
    on_delivery_pct: usize,
    geoadds: usize,
    timeout: Duration,
}

impl Settings {
    fn from_env() -> anyhow::Result<Self> {
        let s = Self {
            drivers: setting("DOORSTEP_BENCH_DRIVERS", "2000")?,
            pings_per_driver: setting("DOORSTEP_BENCH_PINGS_PER_DRIVER", "50")?,
            on_delivery_pct: setting("DOORSTEP_BENCH_ON_DELIVERY", "50")?,
            geoadds: setting("DOORSTEP_BENCH_GEOADDS", "1000000")?,
            timeout: Duration::from_secs(setting("DOORSTEP_BENCH_TIMEOUT_SECS", "300")?),
        };
        if s.drivers == 0 || s.pings_per_driver == 0 || s.geoadds == 0 {
            bail!("drivers, pings per driver and GEOADDs must be positive");
        }
        if s.on_delivery_pct > 100 {
            bail!("DOORSTEP_BENCH_ON_DELIVERY is a percentage (0..=100)");
        }
        Ok(s)
    }

    fn pings(&self) -> usize {
        self.drivers * self.pings_per_driver
    }

    /// Whether driver `i` is on a delivery (spread evenly over the drivers).
    fn on_delivery(&self, i: usize) -> bool {
        (i * self.on_delivery_pct) / 100 != ((i + 1) * self.on_delivery_pct) / 100
    }
}

fn driver(i: usize) -> DriverId {
    DriverId::new(format!("bench-d{i:06}"))
}

/// The order driver `i` delivers, when on a delivery.
fn order(i: usize) -> OrderId {
    OrderId::new(format!("bench-o{i:06}"))
}

/// The backlog: ping `k` of every driver, then ping `k + 1`, ...; driver `i` starts at its own
/// spot within ~10 km of central Helsinki and drives north at 10 m/s, one fix a second, the
/// last fix taken when the backlog is made.
fn backlog(s: &Settings) -> Vec<LocationPing> {
    let now = Timestamp::now().as_millis();
    let n = s.pings_per_driver as i64;
    (0..s.pings_per_driver)
        .flat_map(|k| {
            (0..s.drivers).map(move |i| {
                let recorded_at = now - (n - 1 - k as i64) * 1_000;
                let lat = 60.10 + (i % 100) as f64 * 0.0015 + k as f64 * 0.00009;
                let lng = 24.80 + (i / 100 % 100) as f64 * 0.003;
                LocationPing {
                    ping_id: EventId::new(format!("bench-p{i}-{k}")),
                    driver_id: driver(i),
                    location: GeoPoint { lat, lng },
                    accuracy_m: Some(5.0),
                    heading_deg: Some(0.0),
                    speed_mps: Some(10.0),
                    recorded_at: Timestamp::from_millis(recorded_at),
                    received_at: Timestamp::from_millis(recorded_at + 50),
                }
            })
        })
        .collect()
}

/// Produces the pings keyed by driver, in order; returns the records/s of all but the first.
async fn produce(scope: &Scope, pings: &[LocationPing]) -> anyhow::Result<f64> {
    let catalog = doorstep_tests::catalog().await?;
    let producer = Producer::new(&assemble::kafka_config(&scope.config, "doorstep-bench"))?;
    let topic = scope.topic(topics::DRIVER_LOCATIONS);
    let encoded: Vec<(String, Vec<u8>)> = pings
        .iter()
        .map(|p| Ok((p.driver_id.as_str().to_owned(), catalog.encode(p)?)))
        .collect::<anyhow::Result<_>>()?;
    let (producer, topic) = (&producer, topic.as_str());
    let Some(((key, bytes), rest)) = encoded.split_first() else {
        bail!("nothing to produce");
    };
    // The first record alone, untimed: it waits for the topic's metadata and the connections.
    producer.send(topic, key.as_bytes(), bytes, &[]).await?;
    let started = Instant::now();
    futures::stream::iter(rest)
        .map(|(key, bytes)| async move {
            producer
                .send(topic, key.as_bytes(), bytes, &[])
                .await
                .map(|_| ())
        })
        .buffered(PRODUCE_CONCURRENCY)
        .try_collect::<()>()
        .await?;
    Ok(rest.len() as f64 / started.elapsed().as_secs_f64())
}

/// A timed read of the whole backlog.
struct Drained {
    /// From the start (subscription, group join) to the last record.
    total: Duration,
    /// From the first record to the last (the last commit for the pipeline).
    busy: Duration,
}

/// Reads every record of the topic with a plain consumer of its own group, nothing else.
async fn bare_consumption(scope: &Scope, records: usize) -> anyhow::Result<Drained> {
    let kafka = assemble::kafka_config(&scope.config, "doorstep-bench");
    let topic = scope.topic(topics::DRIVER_LOCATIONS);
    let started = Instant::now();
    let consumer = ConsumerBuilder::new(&kafka, scope.config.group_id("bench-bare"))
        .subscribe(&[topic.as_str()])?;
    let mut first = None;
    let mut bytes = 0usize;
    for n in 0..records {
        let r = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .with_context(|| format!("bare consumer: no record within 60 s after {n}"))??;
        first.get_or_insert_with(Instant::now);
        bytes += r.payload.as_ref().map_or(0, Vec::len);
    }
    let total = started.elapsed();
    println!(
        "  bare consumer: {records} records ({:.1} MB of values) in {:.2} s from subscribe",
        bytes as f64 / 1e6,
        total.as_secs_f64()
    );
    Ok(Drained {
        total,
        busy: first.map_or(total, |t| t.elapsed()),
    })
}

/// Runs the pipeline until it has processed and committed the backlog.
async fn pipeline(scope: &Scope, registry: &Registry, s: &Settings) -> anyhow::Result<Drained> {
    let options = LocationOptions {
        policy: LocationPolicy {
            max_age_ms: 3_600_000,
            ..LocationPolicy::default()
        },
        runtime: RuntimeConfig::default(),
        ..LocationOptions::default()
    };
    let (rt, stage) = assemble::location_pipeline(&scope.config, options, registry).await?;
    let (trigger, signal) = shutdown::channel();
    let started = Instant::now();
    let mut task = tokio::spawn(rt.run(stage, signal));
    let mut first = None;
    let records = s.pings();
    loop {
        if first.is_none() && counter(registry, "doorstep_pipeline_records_in_total", None) > 0.0 {
            first = Some(Instant::now());
        }
        if pipeline_caught_up(registry, records) {
            break;
        }
        if started.elapsed() > s.timeout {
            let _ = trigger.send(true);
            bail!(
                "the pipeline did not finish within {:?}: {} of {records} records in",
                s.timeout,
                counter(registry, "doorstep_pipeline_records_in_total", None)
            );
        }
        if task.is_finished() {
            let result = (&mut task).await?;
            bail!("the pipeline stopped early: {result:?}");
        }
        tokio::time::sleep(POLL).await;
    }
    let total = started.elapsed();
    let busy = first.map_or(total, |t| t.elapsed());
    let _ = trigger.send(true);
    task.await?.context("location pipeline")?;
    Ok(Drained { total, busy })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench` (and any filter); this binary has a single benchmark.
    init_bench_tracing();
    let s = Settings::from_env()?;
    let modes: String = setting("DOORSTEP_BENCH_EXACTLY_ONCE", "on,off")?;
    let mut rates = Vec::new();
    for mode in modes.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        let on = match mode {
            "on" => true,
            "off" => false,
            other => bail!("DOORSTEP_BENCH_EXACTLY_ONCE: {other:?} is not on or off"),
        };
        rates.push((mode.to_owned(), run(&s, on).await?));
    }
    if let (Some((_, on)), Some((_, off))) = (
        rates.iter().find(|(m, _)| m == "on"),
        rates.iter().find(|(m, _)| m == "off"),
    ) {
        println!(
            "  exactly-once (transactions) vs at-least-once: {:.3}",
            on / off
        );
        bench_line(
            "location_pipeline.transactions",
            *on,
            "pings/s",
            Some(("at_least_once_pings/s", *off)),
        );
    }
    Ok(())
}

/// One measured run in a fresh scope, outputs in transactions or not; returns pings/s.
async fn run(s: &Settings, exactly_once: bool) -> anyhow::Result<f64> {
    let s = s.clone();
    let on_delivery = (0..s.drivers).filter(|&i| s.on_delivery(i)).count();
    let pings = s.pings();
    let mode = if exactly_once { "on" } else { "off" };
    println!(
        "location_pipeline[exactly_once={mode}]: {} drivers ({on_delivery} on a delivery) x {} \
         pings = {pings} pings, {} CPUs",
        s.drivers,
        s.pings_per_driver,
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    let scope = Scope::new(
        "bench_location",
        &[(
            "DOORSTEP_KAFKA_EXACTLY_ONCE",
            if exactly_once { "true" } else { "false" },
        )],
    )
    .await?;
    let config = &scope.config;
    let redis = assemble::redis(config).await?;
    let state = DriverState::new(redis.clone(), config.redis_key_prefix.clone());
    futures::stream::iter((0..s.drivers).filter(|&i| s.on_delivery(i)))
        .map(|i| {
            let state = &state;
            async move { state.occupy(&driver(i), &order(i)).await }
        })
        .buffer_unordered(64)
        .try_collect::<()>()
        .await?;

    // Raw limit 1: pipelined GEOADDs on the same Redis.
    let geo_key = format!("{}bench-geoadd", config.redis_key_prefix);
    let url = &config.endpoints.redis_url;
    let geoadd = redis_benchmark(
        url,
        GEOADD_PIPELINE,
        s.geoadds,
        GEOADD_MEMBERS,
        &[
            "GEOADD",
            &geo_key,
            "24.9384",
            "60.1699",
            "member:__rand_int__",
        ],
    )
    .await?;
    redis_benchmark(url, 1, 1, 1, &["DEL", &geo_key]).await?;
    println!(
        "  raw Redis: redis-benchmark -P {GEOADD_PIPELINE} -n {} GEOADD ({} members) on {url}: \
         {geoadd:.0} GEOADD/s",
        s.geoadds, GEOADD_MEMBERS
    );

    let backlog = backlog(&s);
    let produce_rate = produce(&scope, &backlog).await?;
    drop(backlog);
    println!(
        "  backlog: {pings} pings produced over {TEST_PARTITIONS} partitions at {produce_rate:.0} \
         records/s ({PRODUCE_CONCURRENCY} in flight)"
    );

    // Raw limit 2: reading the same records, nothing else.
    let bare = bare_consumption(&scope, pings).await?;
    let bare_rate = pings as f64 / bare.busy.as_secs_f64();
    println!(
        "  bare consumer: {bare_rate:.0} records/s from the first record ({:.2} s), {:.0}/s \
         from subscribe",
        bare.busy.as_secs_f64(),
        pings as f64 / bare.total.as_secs_f64()
    );

    let registry = Registry::new();
    let run = pipeline(&scope, &registry, &s).await?;
    let accepted = counter(
        &registry,
        "doorstep_location_pings_total",
        Some(("result", "accepted")),
    );
    let results = counter_by(&registry, "doorstep_location_pings_total", "result");
    // Every on-delivery driver's pings were published on its order's channel: the order's
    // sequence number counts them.
    let live = LiveFeed::new(redis.clone(), config.redis_key_prefix.clone());
    let seqs: Vec<u64> = futures::stream::iter((0..s.drivers).filter(|&i| s.on_delivery(i)))
        .map(|i| {
            let live = &live;
            async move { live.current_seq(&order(i)).await }
        })
        .buffered(64)
        .try_collect()
        .await?;
    let published: u64 = seqs.iter().sum();
    let expected_published = (on_delivery * s.pings_per_driver) as u64;
    if accepted != pings as f64 || published != expected_published {
        bail!(
            "the run did not process the backlog as expected: results {results:?} of {pings} \
             pings; {published} live messages of {expected_published}"
        );
    }
    let tracking = published;
    let rate = pings as f64 / run.busy.as_secs_f64();
    let (batches, records_in_batches) =
        histogram(&registry, "doorstep_pipeline_batch_size_records", None);
    let (_, batch_seconds) = histogram(&registry, "doorstep_pipeline_batch_duration_seconds", None);
    let (_, redis_commands) = histogram(
        &registry,
        "doorstep_location_redis_batch_size_commands",
        None,
    );
    println!(
        "  pipeline: {pings} pings ({tracking} tracking updates and live messages) in {:.2} s \
         from the first record ({:.2} s from run): {rate:.0} pings/s; {batches} batches (avg \
         {:.0} records), {redis_commands} Redis commands written ({:.2} per ping, besides one \
         HMGET per driver per batch)",
        run.busy.as_secs_f64(),
        run.total.as_secs_f64(),
        records_in_batches / (batches.max(1) as f64),
        redis_commands / pings as f64,
    );
    let mut sinks = format!("  time in batches: {batch_seconds:.2} s;");
    let mut in_sinks = 0.0;
    for sink in ["kafka", "cql", "redis_publish", "redis"] {
        let (count, sum) = histogram(
            &registry,
            "doorstep_sink_latency_seconds",
            Some(("sink", sink)),
        );
        in_sinks += sum;
        sinks.push_str(&format!(" {sink} {sum:.2} s ({count} obs)"));
    }
    sinks.push_str(&format!(
        "; decode + HMGET snapshots + filter + other {:.2} s",
        (batch_seconds - in_sinks).max(0.0)
    ));
    println!("{sinks}");
    // What the per-batch driver snapshot read costs on its own (one HMGET per driver).
    let store = LocationStore::new(redis.clone(), config.redis_key_prefix.clone());
    let all: Vec<DriverId> = (0..s.drivers).map(driver).collect();
    let read = Instant::now();
    store.snapshots(&all).await?;
    println!(
        "  driver snapshots alone: {} HMGETs in {:.1} ms ({:.0}/s)",
        all.len(),
        read.elapsed().as_secs_f64() * 1e3,
        all.len() as f64 / read.elapsed().as_secs_f64()
    );
    println!(
        "  ratios: pipeline/GEOADD = {:.3}, pipeline/bare consumption = {:.3}",
        rate / geoadd,
        rate / bare_rate
    );

    bench_line(
        &format!("location_pipeline[exactly_once={mode}].pings"),
        rate,
        "pings/s",
        Some(("redis_geoadd_P64/s", geoadd)),
    );
    bench_line(
        &format!("location_pipeline[exactly_once={mode}].pings_vs_consume"),
        rate,
        "pings/s",
        Some(("kafka_bare_consume/s", bare_rate)),
    );
    Ok(rate)
}
