//! Benchmark (not a test: nothing here asserts on timing): order transitions per second
//! through the status pipeline, next to the raw prepared-INSERT rate of the CQL server
//! measured in the same run, and their ratio.
//!
//! For each configuration (batch size × event layout), in a fresh [`Scope`] (topics, keyspace,
//! Redis prefix of its own):
//!
//! 1. **Raw limit.** `RAW_INSERTS` prepared single-row INSERTs into a bench table of the
//!    scope's keyspace (shaped like `order_status_history`), `RAW_CONCURRENCY` in flight, over
//!    one driver session configured like the order store's. A warm-up of 1,000 rows first.
//! 2. **Backlog.** `ORDERS` full order lives (`OrderScript::full_life`: 8 events, 8 history
//!    entries each) produced to the scope's `orders.events.v1` before the pipeline starts.
//!    `interleaved` (default) produces event 1 of every order, then event 2 of every order, ...
//!    (live traffic: an order's events are far apart, so every event is its own save);
//!    `sequential` produces each order's whole life in a row (its events mostly share a batch
//!    and a save: the best case).
//! 3. **Pipeline.** `assemble::status_pipeline` + `Runtime::run` in this process, status
//!    pipeline only, side effects on (refunds would go to the scope's fake Stripe; a full life
//!    has none; notifications are produced to `notifications.v1`, nobody pushes them). Timed
//!    from `run` until every event is processed and its offsets committed, read off the
//!    runtime's metrics (records in = backlog, batches started = batches finished, one commit
//!    per finished batch). Auto-confirm is set to one hour so no timer fires mid-run (the
//!    timer rows are still written and deleted).
//!
//! Output: human-readable lines (rates, the CQL requests and statements per transition
//! counted from the code, the time spent in each sink), then one machine-readable line per
//! figure, which `scripts/bench` collects into a table:
//! `BENCH name=... value=... unit=... limit_name=... limit_value=... ratio=...` (`-` where a
//! field does not apply). Figures: transitions/s and events/s against the raw insert rate;
//! Kafka records written per second against the rate the backlog was produced at (a rough
//! broker limit: 512 in flight, one producer); CQL statements per transition (raw rate /
//! statements per transition is roughly what CQL alone could carry).
//!
//! Each configuration runs twice, in fresh scopes: with the outputs in Kafka transactions
//! (`kafka.exactly_once=true`, the default) and without (at-least-once), and the ratio is
//! printed as `.transactions`.
//!
//! Settings (environment): `DOORSTEP_BENCH_EXACTLY_ONCE` [on,off], `DOORSTEP_BENCH_ORDERS` [3000], `DOORSTEP_BENCH_RAW_INSERTS`
//! [20000], `DOORSTEP_BENCH_RAW_CONCURRENCY` [64], `DOORSTEP_BENCH_BATCH_MAX` [the runtime's
//! default; a comma list runs one configuration each, e.g. `500,2000,8000`],
//! `DOORSTEP_BENCH_LAYOUT` [interleaved; or sequential, or both as a comma list],
//! `DOORSTEP_BENCH_SIDE_EFFECTS` [on], `DOORSTEP_BENCH_TIMEOUT_SECS` [600], plus the usual
//! `DOORSTEP_*` service addresses (`eval "$(scripts/services env)"`). Logs: `RUST_LOG`.

use anyhow::{Context, bail};
use doorstep_connectors::kafka::Producer;
use doorstep_pipelines::assemble::{self, StatusOptions};
use doorstep_pipelines::runtime::{Batcher, RuntimeConfig};
use doorstep_pipelines::shutdown;
use doorstep_schemas::events::{OrderEvent, topics};
use doorstep_schemas::model::Timestamp;
use doorstep_tests::bench_kit::{RawInserts, init_bench_tracing};
use doorstep_tests::order_events::OrderScript;
use doorstep_tests::pipeline_harness::{Scope, TEST_PARTITIONS};
use futures::{StreamExt, TryStreamExt};
use prometheus::Registry;
use prometheus::proto::MetricFamily;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// Events (= history entries) in `OrderScript::full_life`.
const EVENTS_PER_ORDER: usize = 8;
/// Rows written before the timed raw inserts.
const RAW_WARMUP: usize = 1_000;
/// Produce requests in flight while loading the backlog.
const PRODUCE_CONCURRENCY: usize = 512;
/// How often the runtime's metrics are read while the pipeline runs.
const POLL: Duration = Duration::from_millis(2);

/// CQL work of one full order life, from the code (`pipelines/src/status/`,
/// `connectors/src/order_store/`): one load of a new order (`SELECT` of the row only, since
/// there is none, so no history read), the auto-confirm timer row put at PLACED and deleted
/// at CONFIRMED (one request each), and one logged batch per save (order row + its new
/// history entries + the active-order index row).
const LOAD_REQUESTS_PER_ORDER: usize = 1;
const TIMER_REQUESTS_PER_ORDER: usize = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Interleaved,
    Sequential,
}

impl FromStr for Layout {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s.trim() {
            "interleaved" => Ok(Self::Interleaved),
            "sequential" => Ok(Self::Sequential),
            other => bail!("unknown layout {other:?}: expected interleaved or sequential"),
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Interleaved => "interleaved",
            Self::Sequential => "sequential",
        })
    }
}

#[derive(Debug, Clone)]
struct Settings {
    orders: usize,
    raw_inserts: usize,
    raw_concurrency: usize,
    batch_max: Vec<usize>,
    layouts: Vec<Layout>,
    side_effects: bool,
    timeout: Duration,
}

fn var(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

fn list<T: FromStr>(name: &str, default: &str) -> anyhow::Result<Vec<T>>
where
    T::Err: fmt::Display,
{
    var(name, default)
        .split(',')
        .map(|v| {
            v.trim()
                .parse::<T>()
                .map_err(|e| anyhow::anyhow!("{name}: {v:?}: {e}"))
        })
        .collect()
}

fn one<T: FromStr>(name: &str, default: &str) -> anyhow::Result<T>
where
    T::Err: fmt::Display,
{
    let v = var(name, default);
    v.trim()
        .parse::<T>()
        .map_err(|e| anyhow::anyhow!("{name}: {v:?}: {e}"))
}

impl Settings {
    fn from_env() -> anyhow::Result<Self> {
        let side_effects = match var("DOORSTEP_BENCH_SIDE_EFFECTS", "on").as_str() {
            "on" | "true" | "1" => true,
            "off" | "false" | "0" => false,
            other => bail!("DOORSTEP_BENCH_SIDE_EFFECTS: {other:?}: expected on or off"),
        };
        let s = Self {
            orders: one("DOORSTEP_BENCH_ORDERS", "3000")?,
            raw_inserts: one("DOORSTEP_BENCH_RAW_INSERTS", "20000")?,
            raw_concurrency: one("DOORSTEP_BENCH_RAW_CONCURRENCY", "64")?,
            batch_max: list(
                "DOORSTEP_BENCH_BATCH_MAX",
                &RuntimeConfig::default().batch.max.to_string(),
            )?,
            layouts: list("DOORSTEP_BENCH_LAYOUT", "interleaved")?,
            side_effects,
            timeout: Duration::from_secs(one("DOORSTEP_BENCH_TIMEOUT_SECS", "600")?),
        };
        if s.orders == 0 || s.raw_inserts == 0 || s.raw_concurrency == 0 {
            bail!("orders, raw inserts and raw concurrency must be positive");
        }
        if s.batch_max.contains(&0) {
            bail!("DOORSTEP_BENCH_BATCH_MAX: batch sizes must be positive");
        }
        Ok(s)
    }
}

/// Prepared single-row INSERTs per second.
struct Raw {
    per_second: f64,
    elapsed: Duration,
}

async fn raw_inserts(scope: &Scope, n: usize, concurrency: usize) -> anyhow::Result<Raw> {
    let raw = RawInserts::prepare(&scope.config).await?;
    raw.run(0..RAW_WARMUP, concurrency)
        .await
        .context("raw insert warm-up")?;
    let elapsed = raw.run(RAW_WARMUP..RAW_WARMUP + n, concurrency).await?;
    Ok(Raw {
        per_second: n as f64 / elapsed.as_secs_f64(),
        elapsed,
    })
}

fn backlog(orders: usize, layout: Layout) -> Vec<OrderEvent> {
    let start = Timestamp::now().as_millis();
    let lives: Vec<Vec<OrderEvent>> = (0..orders)
        .map(|i| OrderScript::new(&format!("bench-{i:06}"), start).full_life())
        .collect();
    match layout {
        Layout::Sequential => lives.into_iter().flatten().collect(),
        Layout::Interleaved => (0..EVENTS_PER_ORDER)
            .flat_map(|k| lives.iter().map(move |life| life[k].clone()))
            .collect(),
    }
}

/// What producing the backlog took and where it went.
struct Produced {
    /// Time for all records but the first.
    elapsed: Duration,
    /// Records per partition.
    per_partition: std::collections::BTreeMap<i32, usize>,
}

/// Produces `events` in order and returns how long all but the first took: the sends are started in order (`buffered` polls each new
/// future first in the order given, and the first poll enqueues the record in librdkafka),
/// and the producer is idempotent, so each partition keeps the order.
async fn produce(scope: &Scope, events: &[OrderEvent]) -> anyhow::Result<Produced> {
    let catalog = doorstep_tests::catalog().await?;
    let producer = Producer::new(&assemble::kafka_config(&scope.config, "doorstep-bench"))?;
    let topic = scope.topic(topics::ORDER_EVENTS);
    let encoded: Vec<(String, Vec<u8>)> = events
        .iter()
        .map(|e| Ok((e.order_id.as_str().to_owned(), catalog.encode(e)?)))
        .collect::<anyhow::Result<_>>()?;
    let producer = &producer;
    let topic = topic.as_str();
    // The first record alone, untimed: it waits for the topic's metadata and the connections.
    let Some(((key, bytes), rest)) = encoded.split_first() else {
        bail!("nothing to produce");
    };
    let first = producer.send(topic, key.as_bytes(), bytes, &[]).await?;
    let started = Instant::now();
    let mut per_partition = std::collections::BTreeMap::from([(first.partition, 1)]);
    futures::stream::iter(rest)
        .map(|(key, bytes)| async move {
            producer
                .send(topic, key.as_bytes(), bytes, &[])
                .await
                .map(|d| d.partition)
        })
        .buffered(PRODUCE_CONCURRENCY)
        .try_for_each(|p| {
            *per_partition.entry(p).or_default() += 1;
            futures::future::ready(Ok(()))
        })
        .await?;
    Ok(Produced {
        elapsed: started.elapsed(),
        per_partition,
    })
}

/// One read of the metrics the bench needs.
#[derive(Debug, Default, Clone)]
struct Snapshot {
    records_in: f64,
    batches_started: u64,
    batches_done: f64,
    commits: f64,
    retries: f64,
    accepted: f64,
    duplicate: f64,
    rejected: f64,
    status_out: f64,
    notifications_out: f64,
    batch_seconds: f64,
    sink_seconds: Vec<(String, u64, f64)>,
}

fn family<'a>(
    families: &'a [MetricFamily],
    name: &str,
) -> impl Iterator<Item = &'a prometheus::proto::Metric> {
    families
        .iter()
        .filter(move |f| f.name() == name)
        .flat_map(|f| f.get_metric())
}

fn label<'a>(m: &'a prometheus::proto::Metric, name: &str) -> Option<&'a str> {
    m.get_label()
        .iter()
        .find(|l| l.name() == name)
        .map(|l| l.value())
}

fn counter(families: &[MetricFamily], name: &str, with: Option<(&str, &str)>) -> f64 {
    family(families, name)
        .filter(|m| with.is_none_or(|(k, v)| label(m, k) == Some(v)))
        .map(|m| m.get_counter().get_value())
        .fold(0.0, |a, b| a + b)
}

fn snapshot(registry: &Registry, status_topic: &str, notifications_topic: &str) -> Snapshot {
    let f = registry.gather();
    let histogram = |name: &str| {
        family(&f, name)
            .map(|m| {
                (
                    m.get_histogram().get_sample_count(),
                    m.get_histogram().get_sample_sum(),
                )
            })
            .fold((0, 0.0), |(c, s), (c2, s2)| (c + c2, s + s2))
    };
    let mut sink_seconds: Vec<(String, u64, f64)> = family(&f, "doorstep_sink_latency_seconds")
        .map(|m| {
            let h = m.get_histogram();
            (
                label(m, "sink").unwrap_or("?").to_owned(),
                h.get_sample_count(),
                h.get_sample_sum(),
            )
        })
        .collect();
    sink_seconds.sort_by(|a, b| a.0.cmp(&b.0));
    Snapshot {
        records_in: counter(&f, "doorstep_pipeline_records_in_total", None),
        batches_started: histogram("doorstep_pipeline_batch_size_records").0,
        batches_done: counter(&f, "doorstep_pipeline_batches_total", None),
        commits: counter(&f, "doorstep_pipeline_commits_total", None)
            + counter(&f, "doorstep_pipeline_commit_errors_total", None),
        retries: counter(&f, "doorstep_pipeline_batch_retries_total", None),
        accepted: counter(
            &f,
            "doorstep_status_events_total",
            Some(("outcome", "accepted")),
        ),
        duplicate: counter(
            &f,
            "doorstep_status_events_total",
            Some(("outcome", "duplicate")),
        ),
        rejected: counter(
            &f,
            "doorstep_status_events_total",
            Some(("outcome", "rejected")),
        ),
        status_out: counter(
            &f,
            "doorstep_pipeline_records_out_total",
            Some(("topic", status_topic)),
        ),
        notifications_out: counter(
            &f,
            "doorstep_pipeline_records_out_total",
            Some(("topic", notifications_topic)),
        ),
        batch_seconds: histogram("doorstep_pipeline_batch_duration_seconds").1,
        sink_seconds,
    }
}

impl Snapshot {
    /// Every record of the backlog read, every started batch finished, each finished batch's
    /// offsets committed (or the commit attempted: a failed commit is retried with the next).
    fn finished(&self, events: usize) -> bool {
        self.records_in >= events as f64
            && self.batches_done >= self.batches_started as f64
            && self.commits >= self.batches_done
    }
}

struct PipelineRun {
    /// From `Runtime::run` to the last commit.
    elapsed: Duration,
    /// From the first record handed to the stage to the last commit.
    busy: Duration,
    end: Snapshot,
}

async fn pipeline(
    scope: &Scope,
    batch_max: usize,
    side_effects: bool,
    events: usize,
    timeout: Duration,
) -> anyhow::Result<PipelineRun> {
    let registry = Registry::new();
    let defaults = RuntimeConfig::default();
    let runtime = RuntimeConfig {
        batch: Batcher {
            max: batch_max,
            ..defaults.batch
        },
        // The queue must hold a whole batch, or the batch size is bounded by it instead.
        queue_capacity: defaults.queue_capacity.max(2 * batch_max),
        ..defaults
    };
    let options = StatusOptions {
        side_effects,
        runtime,
    };
    let (rt, stage) = assemble::status_pipeline(&scope.config, options, &registry).await?;
    let status_topic = scope.topic(topics::ORDER_STATUS);
    let notifications_topic = scope.topic(topics::NOTIFICATIONS);
    let (trigger, signal) = shutdown::channel();
    let started = Instant::now();
    let mut task = tokio::spawn(rt.run(stage, signal));
    let mut first_record: Option<Instant> = None;
    let end = loop {
        let s = snapshot(&registry, &status_topic, &notifications_topic);
        if first_record.is_none() && s.records_in > 0.0 {
            first_record = Some(Instant::now());
        }
        if s.finished(events) {
            break s;
        }
        if started.elapsed() > timeout {
            let _ = trigger.send(true);
            bail!(
                "the pipeline did not finish within {timeout:?}: {} of {events} records in, \
                 {} of {} batches done, {} retries",
                s.records_in,
                s.batches_done,
                s.batches_started,
                s.retries
            );
        }
        if task.is_finished() {
            let result = (&mut task).await?;
            bail!("the pipeline stopped early: {result:?}");
        }
        tokio::time::sleep(POLL).await;
    };
    let elapsed = started.elapsed();
    let busy = first_record.map_or(elapsed, |t| t.elapsed());
    let _ = trigger.send(true);
    task.await?.context("status pipeline")?;
    Ok(PipelineRun { elapsed, busy, end })
}

/// CQL requests and statements the pipeline issued for the backlog, from the code (see
/// [`LOAD_REQUESTS_PER_ORDER`]). `saves`: logged batches (one per order per runtime batch the
/// order has events in).
struct CqlWork {
    requests: usize,
    statements: usize,
}

fn cql_work(orders: usize, saves: usize) -> CqlWork {
    let entries = orders * EVENTS_PER_ORDER;
    let fixed = orders * (LOAD_REQUESTS_PER_ORDER + TIMER_REQUESTS_PER_ORDER);
    CqlWork {
        requests: fixed + saves,
        // Each save: the order row, its entries, the active-order index row.
        statements: fixed + saves * 2 + entries,
    }
}

/// Bounds on the number of saves (logged batches: one per order per runtime batch holding
/// events of it). Interleaved: in a partition holding `n` orders, an order's consecutive
/// events are `n` records apart, so a batch of at most `batch_max` records holds at most
/// `ceil(batch_max / n)` of them (exact, one save per event, when `batch_max <= n`).
/// Sequential: at least one per order; a batch boundary splits at most one order per
/// partition.
fn save_bounds(
    layout: Layout,
    orders: usize,
    batch_max: usize,
    batches: usize,
    per_partition: &std::collections::BTreeMap<i32, usize>,
) -> (usize, usize) {
    let events = orders * EVENTS_PER_ORDER;
    match layout {
        Layout::Interleaved => {
            let most_per_save = per_partition
                .values()
                .map(|records| batch_max.div_ceil((records / EVENTS_PER_ORDER).max(1)))
                .max()
                .unwrap_or(1)
                .clamp(1, EVENTS_PER_ORDER);
            (orders * EVENTS_PER_ORDER.div_ceil(most_per_save), events)
        }
        Layout::Sequential => {
            let splits = batches.saturating_sub(1) * per_partition.len().max(1);
            (orders, (orders + splits).min(events))
        }
    }
}

fn bench_line(name: &str, value: f64, unit: &str, limit: Option<(&str, f64)>) {
    let fmt = |v: f64| {
        if v >= 100.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.3}")
        }
    };
    match limit {
        Some((limit_name, limit_value)) => println!(
            "BENCH name={name} value={} unit={unit} limit_name={limit_name} limit_value={} ratio={:.3}",
            fmt(value),
            fmt(limit_value),
            value / limit_value
        ),
        None => println!(
            "BENCH name={name} value={} unit={unit} limit_name=- limit_value=- ratio=-",
            fmt(value)
        ),
    }
}

async fn one_configuration(
    settings: &Settings,
    batch_max: usize,
    layout: Layout,
    exactly_once: bool,
) -> anyhow::Result<f64> {
    let orders = settings.orders;
    let events = orders * EVENTS_PER_ORDER;
    let eo = if exactly_once { "on" } else { "off" };
    let tag = format!("{layout},batch={batch_max},exactly_once={eo}");
    println!("\n## status_pipeline [{tag}]");
    let scope = Scope::new(
        "bench_status",
        &[
            // No auto-confirm fires during the run (timer rows are still written).
            ("DOORSTEP_AUTO_CONFIRM_AFTER_MS", "3600000"),
            (
                "DOORSTEP_KAFKA_EXACTLY_ONCE",
                if exactly_once { "true" } else { "false" },
            ),
        ],
    )
    .await?;

    let raw = raw_inserts(&scope, settings.raw_inserts, settings.raw_concurrency).await?;
    println!(
        "  raw CQL: {} prepared INSERTs, {} in flight, in {:.2} s: {:.0} inserts/s",
        settings.raw_inserts,
        settings.raw_concurrency,
        raw.elapsed.as_secs_f64(),
        raw.per_second
    );

    let backlog = backlog(orders, layout);
    let produced = produce(&scope, &backlog).await?;
    let produce_rate = (events - 1) as f64 / produced.elapsed.as_secs_f64();
    println!(
        "  backlog: {orders} orders x {EVENTS_PER_ORDER} events = {events} events ({layout}) \
         produced in {:.2} s ({produce_rate:.0} records/s, {PRODUCE_CONCURRENCY} in flight) \
         over {TEST_PARTITIONS} partitions {:?}",
        produced.elapsed.as_secs_f64(),
        produced.per_partition.values().collect::<Vec<_>>(),
    );

    let run = pipeline(
        &scope,
        batch_max,
        settings.side_effects,
        events,
        settings.timeout,
    )
    .await?;
    let s = &run.end;
    let transitions = s.status_out;
    let expected = (orders * EVENTS_PER_ORDER) as f64;
    if s.accepted != events as f64 || transitions != expected || s.rejected > 0.0 {
        bail!(
            "the run did not process the backlog as expected: {} accepted, {} duplicate, {} \
             rejected of {events} events; {transitions} status changes of {expected}",
            s.accepted,
            s.duplicate,
            s.rejected
        );
    }
    let secs = run.elapsed.as_secs_f64();
    let tps = transitions / secs;
    let eps = events as f64 / secs;
    let batches = s.batches_done;
    let (saves_low, saves_high) = save_bounds(
        layout,
        orders,
        batch_max,
        batches as usize,
        &produced.per_partition,
    );
    let low = cql_work(orders, saves_low);
    let high = cql_work(orders, saves_high);
    let per = |n: usize| n as f64 / transitions;
    let range = |a: f64, b: f64| {
        if (a - b).abs() < 1e-9 {
            format!("{a:.3}")
        } else {
            format!("{a:.3}..{b:.3}")
        }
    };
    let range0 = |a: f64, b: f64| {
        if (a - b).abs() < 0.5 {
            format!("{a:.0}")
        } else {
            format!("{a:.0}..{b:.0}")
        }
    };
    println!(
        "  pipeline: {events} events -> {transitions} transitions in {secs:.2} s \
         ({:.2} s from the first record); {batches} batches (avg {:.0} records), {} retries",
        run.busy.as_secs_f64(),
        events as f64 / batches.max(1.0),
        s.retries
    );
    println!(
        "  rates: {tps:.0} transitions/s, {eps:.0} events/s ({:.0} transitions/s from the first record)",
        transitions / run.busy.as_secs_f64()
    );
    println!(
        "  CQL per transition (from the code): {} requests, {} statements \
         (per order: {LOAD_REQUESTS_PER_ORDER} load + {TIMER_REQUESTS_PER_ORDER} timer requests \
         + {} saves, each one logged batch of the order row, its new history entries and \
         the active-order index row)",
        range(per(low.requests), per(high.requests)),
        range(per(low.statements), per(high.statements)),
        range0(
            saves_low as f64 / orders as f64,
            saves_high as f64 / orders as f64
        ),
    );
    let (fewest, most) = (per(low.statements), per(high.statements));
    println!(
        "  ratio: pipeline/raw = {:.3} transitions per raw insert; at {} statements per \
         transition, CQL alone at the raw rate would carry {} transitions/s (the pipeline \
         reaches {}% of that)",
        tps / raw.per_second,
        range(fewest, most),
        range0(raw.per_second / most, raw.per_second / fewest),
        range0(
            100.0 * tps * fewest / raw.per_second,
            100.0 * tps * most / raw.per_second
        ),
    );
    println!(
        "  records out: {} status, {} notifications",
        s.status_out, s.notifications_out
    );
    let mut where_ = format!(
        "  time in batches: {:.2} s of {secs:.2} s;",
        s.batch_seconds
    );
    let mut sinks = 0.0;
    for (sink, count, sum) in &s.sink_seconds {
        sinks += sum;
        where_.push_str(&format!(" {sink} {sum:.2} s ({count} obs)"));
    }
    where_.push_str(&format!(
        "; decode+load+decide+other {:.2} s",
        (s.batch_seconds - sinks).max(0.0)
    ));
    println!("{where_}");

    let name = format!("status_pipeline[{tag}]");
    let limit = Some(("cql_prepared_inserts/s", raw.per_second));
    bench_line(&format!("{name}.transitions"), tps, "transitions/s", limit);
    bench_line(&format!("{name}.events"), eps, "events/s", limit);
    bench_line(
        &format!("{name}.kafka_records_out"),
        (s.status_out + s.notifications_out) / secs,
        "records/s",
        Some(("kafka_produce/s", produce_rate)),
    );
    // Exact when every save holds one event (interleaved, batches shorter than the gap
    // between an order's events); otherwise the upper bound.
    let bound = if saves_low == saves_high { "" } else { "(max)" };
    bench_line(
        &format!("{name}.cql_statements"),
        most,
        &format!("statements/transition{bound}"),
        None,
    );
    Ok(tps)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench` (and any filter); this binary has a single benchmark.
    init_bench_tracing();
    let settings = Settings::from_env()?;
    println!(
        "status_pipeline: {} orders, raw {} inserts x {} in flight, batch.max {:?}, layout {:?}, \
         side effects {}, {} CPUs",
        settings.orders,
        settings.raw_inserts,
        settings.raw_concurrency,
        settings.batch_max,
        settings
            .layouts
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        if settings.side_effects { "on" } else { "off" },
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    let modes: String =
        doorstep_tests::bench_kit::setting("DOORSTEP_BENCH_EXACTLY_ONCE", "on,off")?;
    for &layout in &settings.layouts {
        for &batch_max in &settings.batch_max {
            let mut rates = BTreeMap::new();
            for mode in modes.split(',').map(str::trim).filter(|m| !m.is_empty()) {
                let on = match mode {
                    "on" => true,
                    "off" => false,
                    other => bail!("DOORSTEP_BENCH_EXACTLY_ONCE: {other:?} is not on or off"),
                };
                rates.insert(
                    on,
                    one_configuration(&settings, batch_max, layout, on).await?,
                );
            }
            if let (Some(on), Some(off)) = (rates.get(&true), rates.get(&false)) {
                println!(
                    "  exactly-once (transactions) vs at-least-once: {:.3}",
                    on / off
                );
                bench_line(
                    &format!("status_pipeline[{layout},batch={batch_max}].transactions"),
                    *on,
                    "transitions/s",
                    Some(("at_least_once_transitions/s", *off)),
                );
            }
        }
    }
    Ok(())
}
