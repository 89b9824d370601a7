//! Benchmark (not a test: nothing here asserts on timing): GPS pings per second through the
//! location pipeline, running as its own process (`doorstep pipeline location`, release
//! build), and its CPU per ping, next to the bare consumption of the same topic with the same
//! client settings, measured in the same run.
//!
//! In a fresh [`Scope`] (topics, consumer groups, Redis key prefix of its own):
//!
//! 1. **Drivers.** `DRIVERS` drivers; `ON_DELIVERY` percent of them are put on a delivery
//!    (`DriverState::occupy`, one order each), so their pings are also published on the
//!    order's live channel, produced to `orders.tracking.v1` and written as trip points.
//! 2. **Backlog, production-shaped.** Every driver pings every 5 s: `ROUNDS` rounds, round k
//!    holding ping k of every driver (fixes 5 s apart, ~50 m apart), keyed by driver, so a
//!    batch of the pipeline holds about one ping per driver, as live traffic does (not bursts
//!    of a few drivers).
//! 3. **Raw limit: bare consumption.** A consumer built like the pipeline's (the project's
//!    `ConsumerBuilder`, the pipeline's client settings, a group of its own, subscribed)
//!    reads every record, no decoding, no processing: records/s from its first record to its
//!    last.
//! 4. **Pipeline.** The `doorstep` binary (`pipeline location`, default settings: outputs in
//!    Kafka transactions or not, see below) is spawned; its group's committed offsets are
//!    read from the broker every 50 ms (nothing is scraped from the process while it runs).
//!    Rate: records committed after the first commit seen, over the time from there to the
//!    last commit. CPU: user + system time of the process over the same span (`/proc`), per
//!    record committed in it; the same for Redis, the broker and the CQL server (where the
//!    rest of the work goes) and the machine.
//! 5. **Accounting.** The process's `/metrics`, read once at the end: every ping must have
//!    been accepted (the bench fails otherwise); Redis reads of drivers, frames conflated,
//!    time per sink.
//!
//! Output: human-readable lines, then `BENCH` lines for `scripts/bench`: pings/s against the
//! bare consumption rate (goal ≥ 0.8), µs CPU per ping in the pipeline process (goal ≤ 15),
//! and, when both modes run, exactly-once against at-least-once.
//!
//! Settings (environment): `DOORSTEP_BENCH_EXACTLY_ONCE` [on,off], `DOORSTEP_BENCH_DRIVERS`
//! [4000], `DOORSTEP_BENCH_ROUNDS` [25], `DOORSTEP_BENCH_ON_DELIVERY` [50, percent of the
//! drivers], `DOORSTEP_BENCH_TIMEOUT_SECS` [180], `DOORSTEP_BENCH_LANES` [unset: the
//! binary's default `pipeline.lanes`], plus the usual `DOORSTEP_*` service
//! addresses (`eval "$(scripts/services env)"`) and `DOORSTEP_TEST_BINARY` for a `doorstep`
//! binary other than the workspace's (built in release by the bench otherwise). Logs:
//! `RUST_LOG`; the pipeline logs to a file in the temporary directory, removed on success.

use anyhow::{Context, bail};
use doorstep_connectors::driver_state::DriverState;
use doorstep_connectors::kafka::{ConsumerBuilder, Producer};
use doorstep_pipelines::assemble;
use doorstep_schemas::events::{LocationPing, topics};
use doorstep_schemas::model::{DriverId, EventId, GeoPoint, OrderId, Timestamp};
use doorstep_tests::bench_kit::{
    GroupProgress, bench_line, cpu, cpu_report, free_port, init_bench_tracing, pipeline_settings,
    scraped, scraped_by, service_processes, setting,
};
use doorstep_tests::pipeline_harness::{Scope, TEST_PARTITIONS};
use doorstep_tests::process::{DoorstepProcess, log_tail};
use futures::{StreamExt, TryStreamExt};
use std::time::{Duration, Instant};

/// Produce requests in flight while loading the backlog.
const PRODUCE_CONCURRENCY: usize = 512;
/// A driver's ping period.
const PERIOD_MS: i64 = 5_000;

#[derive(Clone)]
struct Settings {
    drivers: usize,
    rounds: usize,
    on_delivery_pct: usize,
    timeout: Duration,
}

impl Settings {
    fn from_env() -> anyhow::Result<Self> {
        let s = Self {
            drivers: setting("DOORSTEP_BENCH_DRIVERS", "4000")?,
            rounds: setting("DOORSTEP_BENCH_ROUNDS", "25")?,
            on_delivery_pct: setting("DOORSTEP_BENCH_ON_DELIVERY", "50")?,
            timeout: Duration::from_secs(setting("DOORSTEP_BENCH_TIMEOUT_SECS", "180")?),
        };
        if s.drivers == 0 || s.rounds == 0 {
            bail!("drivers and rounds must be positive");
        }
        if s.on_delivery_pct > 100 {
            bail!("DOORSTEP_BENCH_ON_DELIVERY is a percentage (0..=100)");
        }
        Ok(s)
    }

    fn pings(&self) -> usize {
        self.drivers * self.rounds
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

/// The backlog: round k is ping k of every driver; driver `i` starts at its own spot within
/// ~10 km of central Helsinki and drives north at 10 m/s, one fix every 5 s, the last fix
/// taken when the backlog is made.
fn backlog(s: &Settings) -> Vec<LocationPing> {
    let now = Timestamp::now().as_millis();
    let n = s.rounds as i64;
    (0..s.rounds)
        .flat_map(|k| {
            (0..s.drivers).map(move |i| {
                let recorded_at = now - (n - 1 - k as i64) * PERIOD_MS;
                let lat = 60.10 + (i % 100) as f64 * 0.0015 + k as f64 * 0.00045;
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

/// Produces the pings keyed by driver, in order; returns records/s.
async fn produce(scope: &Scope, pings: &[LocationPing]) -> anyhow::Result<f64> {
    let catalog = doorstep_tests::catalog().await?;
    let producer = Producer::new(&assemble::kafka_config(&scope.config, "doorstep-bench"))?;
    let topic = scope.topic(topics::DRIVER_LOCATIONS);
    let encoded: Vec<(String, Vec<u8>)> = pings
        .iter()
        .map(|p| Ok((p.driver_id.as_str().to_owned(), catalog.encode(p)?)))
        .collect::<anyhow::Result<_>>()?;
    let (producer, topic) = (&producer, topic.as_str());
    let started = Instant::now();
    futures::stream::iter(&encoded)
        .map(|(key, bytes)| async move {
            producer
                .send(topic, key.as_bytes(), bytes, &[])
                .await
                .map(|_| ())
        })
        .buffered(PRODUCE_CONCURRENCY)
        .try_collect::<()>()
        .await?;
    Ok(encoded.len() as f64 / started.elapsed().as_secs_f64())
}

/// Reads every record of the topic with a consumer built like the pipeline's (same client
/// settings, its own group); records/s from the first record to the last.
async fn bare_consumption(scope: &Scope, records: usize) -> anyhow::Result<f64> {
    let kafka = assemble::kafka_config(&scope.config, "doorstep-location");
    let topic = scope.topic(topics::DRIVER_LOCATIONS);
    let consumer = ConsumerBuilder::new(&kafka, scope.config.group_id("bench-bare"))
        .subscribe(&[topic.as_str()])?;
    let mut first = None;
    for n in 0..records {
        tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .with_context(|| format!("bare consumer: no record within 60 s after {n}"))??;
        first.get_or_insert_with(Instant::now);
    }
    let busy = first.map_or(Duration::ZERO, |t| t.elapsed());
    Ok((records - 1) as f64 / busy.as_secs_f64().max(1e-9))
}

/// What the pipeline process did, watched from outside.
struct Drained {
    /// Records committed by the first commit seen.
    at_first: i64,
    /// From the first commit seen to the last.
    steady: Duration,
    cpu_from: cpu::Sample,
    cpu_to: cpu::Sample,
}

/// Watches the drain of `records` by the pipeline process (see [`GroupProgress::drain`]).
async fn watch(
    progress: &GroupProgress,
    process: &mut DoorstepProcess,
    named: &[(String, u32)],
    records: usize,
    timeout: Duration,
) -> anyhow::Result<Drained> {
    let alive = || match process.exited()? {
        Some(status) => bail!("the pipeline process exited on its own: {status}"),
        None => Ok(()),
    };
    let d = progress.drain(named, records, timeout, alive).await?;
    Ok(Drained {
        at_first: d.at_first_commit,
        steady: d.done - d.first_commit,
        cpu_from: d.cpu_from,
        cpu_to: d.cpu_to,
    })
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
    let on_delivery = (0..s.drivers).filter(|&i| s.on_delivery(i)).count();
    let pings = s.pings();
    let mode = if exactly_once { "on" } else { "off" };
    println!(
        "location_pipeline[exactly_once={mode}]: {} drivers ({on_delivery} on a delivery), one \
         ping each every 5 s, {} rounds = {pings} pings, {TEST_PARTITIONS} partitions, {} CPUs",
        s.drivers,
        s.rounds,
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

    let backlog = backlog(s);
    let produce_rate = produce(&scope, &backlog).await?;
    drop(backlog);
    let topic = scope.topic(topics::DRIVER_LOCATIONS);
    let progress = GroupProgress::new(
        &config.endpoints.kafka_brokers,
        &config.group_id("location"),
        &topic,
        TEST_PARTITIONS,
    )?;
    let end = progress.end().await?;
    if end != pings as i64 {
        bail!("the topic holds {end} records, not the {pings} produced");
    }
    println!("  backlog: {pings} pings produced at {produce_rate:.0} records/s");

    let bare_rate = bare_consumption(&scope, pings).await?;
    println!("  bare consumption (the pipeline's consumer settings): {bare_rate:.0} records/s");

    let ops = free_port()?;
    let log = std::env::temp_dir().join(format!(
        "{}-location.log",
        scope.env["DOORSTEP_GROUP_PREFIX"]
    ));
    let mut env = scope.env.clone();
    env.insert("DOORSTEP_OPS_LISTEN".into(), ops.to_string());
    env.insert("DOORSTEP_LOG".into(), "warn,scylla=off".into());
    pipeline_settings(&mut env)?;
    let mut process = DoorstepProcess::spawn(&["pipeline", "location"], &env, &log)?;
    let mut named = service_processes();
    if let Some(pid) = process.id() {
        named.push(("pipeline".to_owned(), pid));
    }
    named.push(("bench".to_owned(), std::process::id()));
    let drained = match watch(&progress, &mut process, &named, pings, s.timeout).await {
        Ok(d) => d,
        Err(e) => return Err(e.context(format!("{}:\n{}", log.display(), log_tail(&log, 30)))),
    };
    let steady_records = (pings as i64 - drained.at_first) as f64;
    let rate = steady_records / drained.steady.as_secs_f64().max(1e-9);
    println!(
        "  pipeline: {steady_records:.0} pings committed in {:.2} s after the first commit \
         ({} before it): {rate:.0} pings/s",
        drained.steady.as_secs_f64(),
        drained.at_first
    );
    let cpu = cpu_report(
        &drained.cpu_from,
        &drained.cpu_to,
        drained.steady,
        Some(steady_records),
    );

    let text = reqwest::get(format!("http://{ops}/metrics"))
        .await?
        .error_for_status()?
        .text()
        .await?;
    process.kill9().await?;
    let results = scraped_by(&text, "doorstep_location_pings_total", "result");
    let accepted = scraped(
        &text,
        "doorstep_location_pings_total",
        Some(("result", "accepted")),
    );
    if accepted != pings as f64 {
        bail!(
            "not every ping was accepted: {results:?} of {pings}; log {}",
            log.display()
        );
    }
    let _ = std::fs::remove_file(&log);
    let batches = scraped(&text, "doorstep_pipeline_batch_size_records_count", None);
    let reads = scraped(&text, "doorstep_location_driver_reads_total", None);
    let conflated = scraped(&text, "doorstep_location_frames_conflated_total", None);
    let redis_commands = scraped(
        &text,
        "doorstep_location_redis_batch_size_commands_sum",
        None,
    );
    let sinks: Vec<String> = scraped_by(&text, "doorstep_sink_latency_seconds_sum", "sink")
        .iter()
        .map(|(sink, secs)| format!("{sink} {secs:.2} s"))
        .collect();
    let busy = scraped(&text, "doorstep_pipeline_stage_busy_seconds_total", None);
    println!(
        "  {batches:.0} batches (avg {:.0} pings); {reads:.0} driver hashes read from Redis \
         ({:.3} per ping); {:.0} Redis commands per batch; {conflated:.0} frames conflated; \
         stage busy {busy:.2} s, sinks: {}",
        pings as f64 / batches.max(1.0),
        reads / pings as f64,
        redis_commands / batches.max(1.0),
        sinks.join(", ")
    );
    let cpu_per_ping = cpu.get("pipeline").copied().unwrap_or(f64::NAN);
    println!(
        "  ratios: pipeline/bare consumption = {:.3}; {cpu_per_ping:.1} µs CPU per ping in the \
         pipeline process",
        rate / bare_rate
    );
    bench_line(
        &format!("location_pipeline[exactly_once={mode}].pings_vs_consume"),
        rate,
        "pings/s",
        Some(("kafka_bare_consume/s", bare_rate)),
    );
    bench_line(
        &format!("location_pipeline[exactly_once={mode}].cpu_per_ping"),
        cpu_per_ping,
        "us/ping",
        Some(("goal_us/ping", 15.0)),
    );
    Ok(rate)
}
