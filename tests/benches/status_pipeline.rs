//! Benchmark (not a test: nothing here asserts on timing): order transitions through the
//! status pipeline, run as its own process (`doorstep pipeline status`, every effect on), next
//! to the raw prepared-INSERT rate of the same CQL server measured in the same run; what each
//! transition costs in CQL requests (counted by the driver and, on Apache Cassandra, by the
//! server) and in CPU (from `/proc`).
//!
//! For each configuration (event layout × exactly-once on/off), in a fresh [`Scope`] (topics,
//! keyspace, Redis prefix, consumer groups of its own):
//!
//! 1. **Raw limit.** `RAW_INSERTS` prepared single-row INSERTs into a bench table of the
//!    scope's keyspace (a timeline-shaped row: `RawInserts`), `RAW_CONCURRENCY` in flight,
//!    over a session opened like the pipeline's (`scylla::connect`, same driver settings). A
//!    warm-up of 1,000 rows first. The CQL server's CPU per insert is sampled too.
//! 2. **Backlog.** `ORDERS` full order lives (`OrderScript::full_life`: 8 events, 8 timeline
//!    entries each) produced to the scope's `orders.events.v1` before the pipeline starts.
//!    `interleaved` (default: production-shaped, many orders in flight) produces event 1 of
//!    every order, then event 2 of every order, ..., so an order's events are thousands of
//!    records apart and every event is its own save; `sequential` produces each order's whole
//!    life in a row (its events mostly share a batch and a save: the best case).
//! 3. **Pipeline.** The release `doorstep pipeline status` binary, side effects on (refunds
//!    would go to the scope's fake Stripe, a full life has none; notifications are produced
//!    to `notifications.v1`, nobody pushes them; live frames and outcomes go to Redis),
//!    auto-confirm set to an hour so no timer fires (the timer rows are still written and
//!    cleared). Its `/metrics` is scraped twice: once when it answers (before it has joined
//!    the group), once at the end. In between the bench polls only the group's committed
//!    offsets, from outside, every 50 ms.
//!
//! Figures (human-readable lines, then one `BENCH` line each for `scripts/bench`):
//! - `transitions`: status changes per second from the first commit to the last (the steady
//!   drain), against the raw insert rate (goal: ratio ≥ 0.5);
//! - `cql_requests`: CQL requests per transition, the difference of the process's
//!   `doorstep_pipeline_cql_requests_total` (the driver's own request counters: every
//!   attempt, each page, a batch as one) between the two scrapes (goal: ≤ 1.5). On Apache
//!   Cassandra also the server's count: `system_views.coordinator_write_latency` and
//!   `coordinator_read_latency` of the scope's keyspace, read over CQL before the spawn and
//!   at the end (one per table and partition a request touched);
//! - `pipeline_cpu`: µs of user + system CPU of the pipeline process per transition over the
//!   steady drain; `cql_server_cpu`: the CQL server's, against its CPU per raw insert.
//!
//! Each configuration runs with the outputs in Kafka transactions (`exactly_once=on`, the
//! default) and without (`off`), and their ratio is printed as `.transactions`.
//!
//! Settings (environment): `DOORSTEP_BENCH_ORDERS` [10000: ~3,300 orders per partition, more
//! than a batch of the runtime holds (2,000), so with `interleaved` no batch holds two events
//! of one order and every event is its own save, as in live traffic], `DOORSTEP_BENCH_RAW_INSERTS`
//! [20000], `DOORSTEP_BENCH_RAW_CONCURRENCY` [64], `DOORSTEP_BENCH_LAYOUT` [interleaved; or
//! sequential, or both as a comma list], `DOORSTEP_BENCH_EXACTLY_ONCE` [on,off],
//! `DOORSTEP_BENCH_TIMEOUT_SECS` [300, per drain], `DOORSTEP_BENCH_LANES` [unset: the binary's
//! default `pipeline.lanes`], `DOORSTEP_TEST_BINARY` for a `doorstep`
//! binary other than the workspace's (built in release by the bench otherwise), plus the usual
//! `DOORSTEP_*` service addresses (`eval "$(scripts/services env)"`). The pipeline runs with
//! the runtime's default batching. Logs: `RUST_LOG`; the process logs to a file in the
//! temporary directory, removed when its drain succeeded.

use anyhow::{Context, bail, ensure};
use doorstep_connectors::kafka::Producer;
use doorstep_connectors::scylla::{self as cql, ScyllaConfig, Session};
use doorstep_pipelines::assemble;
use doorstep_schemas::events::{OrderEvent, topics};
use doorstep_schemas::model::Timestamp;
use doorstep_tests::bench_kit::{
    GroupProgress, RawInserts, bench_line, cpu, init_bench_tracing, scraped, scraped_by,
    service_processes, setting,
};
use doorstep_tests::drain_kit::BenchProcess;
use doorstep_tests::order_events::OrderScript;
use doorstep_tests::pipeline_harness::{Scope, TEST_PARTITIONS};
use doorstep_tests::process::doorstep_binary;
use futures::{StreamExt, TryStreamExt};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// Events (= timeline entries = status changes) in `OrderScript::full_life`.
const EVENTS_PER_ORDER: usize = 8;
/// Rows written before the timed raw inserts.
const RAW_WARMUP: usize = 1_000;
/// Produce requests in flight while loading the backlog.
const PRODUCE_CONCURRENCY: usize = 512;
/// The name the pipeline process has in the CPU samples.
const PIPELINE: &str = "doorstep";
/// The name of the CQL server in the CPU samples (see `service_processes`).
const CQL_SERVER: &str = "cql server";

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
    layouts: Vec<Layout>,
    exactly_once: Vec<bool>,
    timeout: Duration,
}

fn list<T: FromStr>(name: &str, default: &str) -> anyhow::Result<Vec<T>>
where
    T::Err: fmt::Display,
{
    setting::<String>(name, default)?
        .split(',')
        .map(|v| {
            v.trim()
                .parse::<T>()
                .map_err(|e| anyhow::anyhow!("{name}: {v:?}: {e}"))
        })
        .collect()
}

impl Settings {
    fn from_env() -> anyhow::Result<Self> {
        let exactly_once = setting::<String>("DOORSTEP_BENCH_EXACTLY_ONCE", "on,off")?
            .split(',')
            .map(|m| match m.trim() {
                "on" => Ok(true),
                "off" => Ok(false),
                other => bail!("DOORSTEP_BENCH_EXACTLY_ONCE: {other:?} is not on or off"),
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let s = Self {
            orders: setting("DOORSTEP_BENCH_ORDERS", "10000")?,
            raw_inserts: setting("DOORSTEP_BENCH_RAW_INSERTS", "20000")?,
            raw_concurrency: setting("DOORSTEP_BENCH_RAW_CONCURRENCY", "64")?,
            layouts: list("DOORSTEP_BENCH_LAYOUT", "interleaved")?,
            exactly_once,
            timeout: Duration::from_secs(setting("DOORSTEP_BENCH_TIMEOUT_SECS", "300")?),
        };
        ensure!(
            s.orders > 0 && s.raw_inserts > 0 && s.raw_concurrency > 0,
            "orders, raw inserts and raw concurrency must be positive"
        );
        Ok(s)
    }
}

/// Prepared single-row INSERTs per second, and the CQL server's CPU per insert.
struct Raw {
    per_second: f64,
    elapsed: Duration,
    /// µs of the CQL server's CPU per insert (`None` when the server is not visible here).
    server_cpu_us: Option<f64>,
}

async fn raw_inserts(scope: &Scope, n: usize, concurrency: usize) -> anyhow::Result<Raw> {
    let raw = RawInserts::prepare(&scope.config).await?;
    raw.run(0..RAW_WARMUP, concurrency)
        .await
        .context("raw insert warm-up")?;
    let server = service_processes();
    let before = cpu::sample(&server);
    let elapsed = raw.run(RAW_WARMUP..RAW_WARMUP + n, concurrency).await?;
    let after = cpu::sample(&server);
    Ok(Raw {
        per_second: n as f64 / elapsed.as_secs_f64(),
        elapsed,
        server_cpu_us: cpu_us(&before, &after, CQL_SERVER).map(|us| us / n as f64),
    })
}

/// µs of CPU of process `name` between two samples.
fn cpu_us(from: &cpu::Sample, to: &cpu::Sample, name: &str) -> Option<f64> {
    let ticks = to.processes.get(name)?.since(from.processes.get(name)?).0;
    Some(ticks as f64 * 1e6 / cpu::ticks_per_second())
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

/// Produces `events` in order (sends started in order, `buffered`; the producer is
/// idempotent, so each partition keeps the order) and returns the records/s of all but the
/// first (which waits for the topic's metadata and the connections).
async fn produce(scope: &Scope, events: &[OrderEvent]) -> anyhow::Result<f64> {
    let catalog = doorstep_tests::catalog().await?;
    let producer = Producer::new(&assemble::kafka_config(&scope.config, "doorstep-bench"))?;
    let topic = scope.topic(topics::ORDER_EVENTS);
    let encoded: Vec<(String, Vec<u8>)> = events
        .iter()
        .map(|e| Ok((e.order_id.as_str().to_owned(), catalog.encode(e)?)))
        .collect::<anyhow::Result<_>>()?;
    let producer = &producer;
    let topic = topic.as_str();
    let Some(((key, bytes), rest)) = encoded.split_first() else {
        bail!("nothing to produce");
    };
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

/// The server's own request counts for the tables of `keyspace` (Apache Cassandra's
/// `system_views.coordinator_{write,read}_latency`): `(kind, table) → count`, the raw-insert
/// table left out. `None` where the server has no such views (ScyllaDB).
async fn server_counts(
    session: &Session,
    keyspace: &str,
) -> Option<BTreeMap<(&'static str, String), i64>> {
    let mut counts = BTreeMap::new();
    for (kind, view) in [
        ("writes", "system_views.coordinator_write_latency"),
        ("reads", "system_views.coordinator_read_latency"),
    ] {
        let rows = session
            .query_unpaged(
                format!("SELECT keyspace_name, table_name, count FROM {view}"),
                &[],
            )
            .await
            .ok()?
            .into_rows_result()
            .ok()?;
        for row in rows.rows::<(String, String, i64)>().ok()? {
            let (ks, table, count) = row.ok()?;
            if ks == keyspace && table != "bench_inserts" {
                counts.insert((kind, table), count);
            }
        }
    }
    Some(counts)
}

/// What one drain measured.
struct Drain {
    /// Spawn → first commit, spawn → last commit.
    first_commit: Duration,
    done: Duration,
    /// Records committed by the first commit seen.
    at_first_commit: i64,
    /// CPU samples at the first commit and the end.
    cpu_from: cpu::Sample,
    cpu_to: cpu::Sample,
}

/// Watches the drain of `events` by the pipeline (see [`GroupProgress::drain`]).
async fn watch(
    offsets: &GroupProgress,
    pipeline: &mut BenchProcess,
    named: &[(String, u32)],
    events: usize,
    timeout: Duration,
) -> anyhow::Result<Drain> {
    let alive = || match pipeline.process.exited()? {
        Some(status) => bail!("the pipeline exited on its own: {status}"),
        None => Ok(()),
    };
    let d = offsets.drain(named, events, timeout, alive).await?;
    Ok(Drain {
        first_commit: d.first_commit - d.started,
        done: d.done - d.started,
        at_first_commit: d.at_first_commit,
        cpu_from: d.cpu_from,
        cpu_to: d.cpu_to,
    })
}

/// The counters read off the pipeline's `/metrics` at one scrape.
#[derive(Debug, Clone, Copy)]
struct Scrape {
    cql_requests: f64,
    cql_errors: f64,
    status_out: f64,
    accepted: f64,
    duplicate: f64,
    rejected: f64,
}

fn scrape(text: &str, status_topic: &str) -> Scrape {
    let events = |outcome| {
        scraped(
            text,
            "doorstep_status_events_total",
            Some(("outcome", outcome)),
        )
    };
    Scrape {
        cql_requests: scraped(text, "doorstep_pipeline_cql_requests_total", None),
        cql_errors: scraped(text, "doorstep_pipeline_cql_request_errors_total", None),
        status_out: scraped(
            text,
            "doorstep_pipeline_records_out_total",
            Some(("topic", status_topic)),
        ),
        accepted: events("accepted"),
        duplicate: events("duplicate"),
        rejected: events("rejected"),
    }
}

/// Figures of one configuration, for the 2-mode comparison.
struct Measured {
    transitions_per_second: f64,
}

async fn one_configuration(
    settings: &Settings,
    layout: Layout,
    exactly_once: bool,
) -> anyhow::Result<Measured> {
    let orders = settings.orders;
    let events = orders * EVENTS_PER_ORDER;
    let eo = if exactly_once { "on" } else { "off" };
    let tag = format!("{layout},exactly_once={eo}");
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
        "  raw CQL: {} prepared INSERTs, {} in flight, in {:.2} s: {:.0} inserts/s{}",
        settings.raw_inserts,
        settings.raw_concurrency,
        raw.elapsed.as_secs_f64(),
        raw.per_second,
        raw.server_cpu_us
            .map(|us| format!(", CQL server {us:.0} µs CPU per insert"))
            .unwrap_or_default()
    );

    let backlog = backlog(orders, layout);
    let produce_rate = produce(&scope, &backlog).await?;
    let status_topic = scope.topic(topics::ORDER_STATUS);
    let offsets = GroupProgress::new(
        &scope.config.endpoints.kafka_brokers,
        &scope.config.group_id("status"),
        &scope.topic(topics::ORDER_EVENTS),
        TEST_PARTITIONS,
    )?;
    let end = offsets.end().await?;
    ensure!(
        end == events as i64,
        "the topic holds {end} records, not the {events} produced"
    );
    println!(
        "  backlog: {orders} orders x {EVENTS_PER_ORDER} events = {events} events ({layout}), \
         produced at {produce_rate:.0} records/s over {TEST_PARTITIONS} partitions"
    );

    let session =
        cql::connect(&ScyllaConfig::new(scope.config.endpoints.cql_nodes.clone())).await?;
    let server_before = server_counts(&session, &scope.config.cql_keyspace).await;

    let mut pipeline = BenchProcess::spawn(&scope, "status", eo, &[])?;
    let result = async {
        let first = pipeline.metrics_when_up(Duration::from_secs(60)).await?;
        let mut named = service_processes();
        if let Some(pid) = pipeline.process.id() {
            named.push((PIPELINE.to_owned(), pid));
        }
        named.push(("bench".to_owned(), std::process::id()));
        let drain = watch(&offsets, &mut pipeline, &named, events, settings.timeout).await?;
        let last = pipeline.metrics().await?;
        anyhow::Ok((first, drain, last))
    }
    .await;
    let (first, drain, last) = match result {
        Ok(r) => r,
        Err(e) => {
            let tail = pipeline.tail(40);
            return Err(e.context(format!("{}:\n{tail}", pipeline.log.display())));
        }
    };
    let server_after = server_counts(&session, &scope.config.cql_keyspace).await;

    let (s0, s1) = (scrape(&first, &status_topic), scrape(&last, &status_topic));
    let transitions = s1.status_out - s0.status_out;
    if s1.accepted != events as f64 || transitions != events as f64 || s1.rejected > 0.0 {
        bail!(
            "the run did not process the backlog as expected: {} accepted, {} duplicate, {} \
             rejected of {events} events; {transitions} status changes",
            s1.accepted,
            s1.duplicate,
            s1.rejected
        );
    }
    let steady_events = events as f64 - drain.at_first_commit as f64;
    let steady_secs = (drain.done - drain.first_commit).as_secs_f64();
    let tps = steady_events / steady_secs;
    let from_spawn = transitions / drain.done.as_secs_f64();
    let requests = s1.cql_requests - s0.cql_requests;
    let per_transition = requests / transitions;
    println!(
        "  pipeline: {events} events -> {transitions} transitions; first commit {:.2} s after \
         the spawn ({} records), last {:.2} s; {tps:.0} transitions/s from the first commit to \
         the last ({from_spawn:.0} from the spawn)",
        drain.first_commit.as_secs_f64(),
        drain.at_first_commit,
        drain.done.as_secs_f64(),
    );
    println!(
        "  CQL, measured: {requests:.0} requests ({:.0} failed) by the driver's counters = \
         {per_transition:.3} per transition",
        s1.cql_errors - s0.cql_errors
    );
    let mut server_per_transition = None;
    match (server_before, server_after) {
        (Some(before), Some(after)) => {
            let mut line = String::from("  CQL, the server's count (per transition):");
            let mut total = 0;
            for (key, count) in &after {
                let n = count - before.get(key).copied().unwrap_or(0);
                total += n;
                line.push_str(&format!(
                    " {} {} {n} ({:.3}),",
                    key.1,
                    key.0,
                    n as f64 / transitions
                ));
            }
            println!(
                "{} total {total} ({:.3})",
                line.trim_end_matches(','),
                total as f64 / transitions
            );
            server_per_transition = Some(total as f64 / transitions);
        }
        _ => println!("  CQL, the server's count: not available (no system_views on this server)"),
    }
    let pipeline_us = cpu_us(&drain.cpu_from, &drain.cpu_to, PIPELINE).map(|us| us / steady_events);
    let server_us = cpu_us(&drain.cpu_from, &drain.cpu_to, CQL_SERVER).map(|us| us / steady_events);
    let mut cpu_line = format!("  CPU per transition over the steady drain ({steady_secs:.2} s):");
    for name in drain.cpu_to.processes.keys() {
        if let Some(us) = cpu_us(&drain.cpu_from, &drain.cpu_to, name) {
            cpu_line.push_str(&format!(" {name} {:.0} µs,", us / steady_events));
        }
    }
    println!("{}", cpu_line.trim_end_matches(','));
    let busy = scraped(&last, "doorstep_pipeline_stage_busy_seconds_total", None);
    let sinks = scraped_by(&last, "doorstep_sink_latency_seconds_sum", "sink");
    let in_sinks: f64 = sinks.iter().map(|(_, s)| s).sum();
    // Phase 1's sinks run concurrently, so their times overlap: the sum may exceed `busy`.
    println!(
        "  stage busy {busy:.2} s; time in each sink (phase 1's overlap): {}; in all of them \
         {in_sinks:.2} s",
        sinks
            .iter()
            .map(|(sink, s)| format!("{sink} {s:.2} s"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    pipeline.stop().await?;

    let name = format!("status_pipeline[{tag}]");
    let limit = Some(("cql_prepared_inserts/s", raw.per_second));
    bench_line(&format!("{name}.transitions"), tps, "transitions/s", limit);
    bench_line(
        &format!("{name}.transitions_from_spawn"),
        from_spawn,
        "transitions/s",
        limit,
    );
    bench_line(
        &format!("{name}.cql_requests"),
        per_transition,
        "requests/transition",
        None,
    );
    if let Some(server) = server_per_transition {
        bench_line(
            &format!("{name}.cql_server_requests"),
            server,
            "table-requests/transition",
            None,
        );
    }
    if let Some(us) = pipeline_us {
        bench_line(&format!("{name}.pipeline_cpu"), us, "µs/transition", None);
    }
    if let Some(us) = server_us {
        bench_line(
            &format!("{name}.cql_server_cpu"),
            us,
            "µs/transition",
            raw.server_cpu_us.map(|raw| ("µs/raw_insert", raw)),
        );
    }
    Ok(Measured {
        transitions_per_second: tps,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench` (and any filter); this binary has a single benchmark.
    init_bench_tracing();
    let settings = Settings::from_env()?;
    let binary = doorstep_binary()?;
    println!(
        "status_pipeline: {} orders, raw {} inserts x {} in flight, layouts {:?}, exactly-once \
         {:?}, {} CPUs, binary {}",
        settings.orders,
        settings.raw_inserts,
        settings.raw_concurrency,
        settings
            .layouts
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        settings.exactly_once,
        std::thread::available_parallelism().map_or(0, usize::from),
        binary
            .parent()
            .and_then(|p| p.file_name())
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    );
    for &layout in &settings.layouts {
        let mut rates = BTreeMap::new();
        for &on in &settings.exactly_once {
            let m = one_configuration(&settings, layout, on).await?;
            rates.insert(on, m.transitions_per_second);
        }
        if let (Some(on), Some(off)) = (rates.get(&true), rates.get(&false)) {
            println!(
                "  exactly-once (transactions) vs at-least-once: {:.3}",
                on / off
            );
            bench_line(
                &format!("status_pipeline[{layout}].transactions"),
                *on,
                "transitions/s",
                Some(("at_least_once_transitions/s", *off)),
            );
        }
    }
    Ok(())
}
