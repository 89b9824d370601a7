//! Benchmark (not a test: nothing here asserts on timing): scale-out of the status pipeline.
//! The same backlog is drained by 1, then by 2 processes of the real `doorstep pipeline
//! status` binary in one consumer group, each time in a fresh [`Scope`]; printed: events/s for
//! each, the ratio 2-vs-1, and, as the raw limit measured in the same run, the bare
//! consumption rate of the topic (one plain consumer reading the backlog, nothing else).
//!
//! For each process count, in a fresh scope (topics with `DOORSTEP_BENCH_PARTITIONS`
//! partitions, keyspace, Redis prefix and consumer groups of its own):
//!
//! 1. **Backlog.** `DOORSTEP_BENCH_ORDERS` full order lives (`OrderScript::full_life`, 8
//!    events each) produced to `orders.events.v1` with the crash harness's producer (round k
//!    is event k of every order: live traffic's layout, every event its own save), before any
//!    pipeline starts. The same orders every time.
//! 2. **Raw limit.** One consumer assigned every partition (no group, no decoding) reads the
//!    backlog once: records/s from its assignment to its last record.
//! 3. **Drain.** The processes are started at once (side effects on; auto-confirm set to an
//!    hour so no timer fires; notifications go to `notifications.v1`, nobody pushes them).
//!    The group's committed offsets are read every 50 ms until they reach the end offsets.
//!    Two rates: from the spawn (start-up, CQL schema check and group join included: what an
//!    operator sees) and from the first commit to the last (the steady drain; the headline).
//! 4. **Where the time goes.** CPU time over the steady drain of each pipeline process, the
//!    CQL server, the broker and Redis (found by their listening ports, when local), the bench
//!    itself and the whole machine (`/proc`; Linux only; the rest is other load on the
//!    machine). At the end, each process's own `/metrics` (records read, batches, time in the
//!    stage and per sink) and how often its partition assignment changed (its log).
//!
//! Output: human-readable lines (every drain), then the `BENCH` lines `scripts/bench`
//! collects (each process count's best round): events/s with 1 and with 2 processes against
//! the bare consumption rate of the same drain, events per CPU second of the pipeline
//! processes (their user + system time over the steady drain, from `/proc`), CQL requests per
//! transition (the processes' `doorstep_pipeline_cql_requests_total`, the driver's counters,
//! scraped once at the end), and 2-vs-1 (the 2-process figure with the 1-process one as its
//! limit): the wall-clock speed-up, and events per pipeline-CPU-second (the goal: within
//! 10 % of 1, i.e. splitting the work costs no extra CPU per record). On a machine whose cores
//! the services share, a wall-clock speed-up near or below 1 is a finding, not a failure; the
//! CPU figure is the steadier one.
//!
//! Settings (environment): `DOORSTEP_BENCH_ORDERS` [5000], `DOORSTEP_BENCH_PARTITIONS` [12],
//! `DOORSTEP_BENCH_PROCESSES` [1,2; a comma list, one drain each per round],
//! `DOORSTEP_BENCH_ROUNDS` [2; the process counts alternate, 1, 2, 1, 2, ..., and each
//! count's best round is reported: other load on the machine only ever slows a drain down],
//! `DOORSTEP_BENCH_TIMEOUT_SECS` [300, per drain], `DOORSTEP_BENCH_LANES` [unset: the binary's
//! default `pipeline.lanes`, for every process], the usual `DOORSTEP_*` service addresses
//! (`eval "$(scripts/services env)"`), and `DOORSTEP_TEST_BINARY` for a `doorstep` binary other
//! than the workspace's (built in release by the bench otherwise). Logs: `RUST_LOG`; each
//! process logs to a file in the temporary directory, removed when its drain succeeded.

use anyhow::{Context, bail, ensure};
use doorstep_connectors::kafka::{Admin, ConsumerBuilder, KafkaConfig};
use doorstep_pipelines::assemble;
use doorstep_schemas::events::{OrderEvent, topics};
use doorstep_schemas::model::Timestamp;
use doorstep_tests::bench_kit::{
    GroupProgress, bench_line, cpu, cpu_report, init_bench_tracing, scraped, scraped_by,
    service_processes, setting,
};
use doorstep_tests::crash_kit;
use doorstep_tests::drain_kit::{BenchProcess, log_mentions};
use doorstep_tests::order_events::OrderScript;
use doorstep_tests::pipeline_harness::Scope;
use doorstep_tests::process::doorstep_binary;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

struct Settings {
    orders: usize,
    partitions: i32,
    processes: Vec<usize>,
    rounds: usize,
    timeout: Duration,
}

impl Settings {
    fn from_env() -> anyhow::Result<Self> {
        let processes = setting::<String>("DOORSTEP_BENCH_PROCESSES", "1,2")?
            .split(',')
            .map(|n| {
                n.trim()
                    .parse::<usize>()
                    .map_err(|e| anyhow::anyhow!("DOORSTEP_BENCH_PROCESSES: {n:?}: {e}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let s = Self {
            orders: setting("DOORSTEP_BENCH_ORDERS", "5000")?,
            partitions: setting("DOORSTEP_BENCH_PARTITIONS", "12")?,
            processes,
            rounds: setting("DOORSTEP_BENCH_ROUNDS", "2")?,
            timeout: Duration::from_secs(setting("DOORSTEP_BENCH_TIMEOUT_SECS", "300")?),
        };
        ensure!(s.orders > 0, "DOORSTEP_BENCH_ORDERS must be positive");
        ensure!(s.rounds > 0, "DOORSTEP_BENCH_ROUNDS must be positive");
        ensure!(
            s.partitions > 0,
            "DOORSTEP_BENCH_PARTITIONS must be positive"
        );
        ensure!(
            !s.processes.contains(&0),
            "DOORSTEP_BENCH_PROCESSES: process counts must be positive"
        );
        Ok(s)
    }
}

/// The backlog: every order's whole life.
fn lives(orders: usize) -> Vec<Vec<OrderEvent>> {
    let start = Timestamp::now().as_millis();
    (0..orders)
        .map(|i| OrderScript::new(&format!("scale-{i:06}"), start).full_life())
        .collect()
}

/// A fresh scope whose topics all have `partitions` partitions (a [`Scope`] creates its own
/// with the test count, and leaves existing ones alone: so they are created first, under a
/// topic prefix of the bench's choosing).
async fn scope(partitions: i32) -> anyhow::Result<Scope> {
    let prefix = format!("{}.", doorstep_tests::unique("bench-scale"));
    let endpoints = doorstep_tests::endpoints();
    let admin = Admin::new(&KafkaConfig::new(
        &endpoints.kafka_brokers,
        "doorstep-bench",
    ))?;
    let names: Vec<String> = topics::ALL.iter().map(|t| format!("{prefix}{t}")).collect();
    let wanted: Vec<(&str, i32)> = names.iter().map(|n| (n.as_str(), partitions)).collect();
    admin.ensure_topics(&wanted).await?;
    let partitions = partitions.to_string();
    Scope::new(
        "bench_scale",
        &[
            ("DOORSTEP_TOPIC_PREFIX", prefix.as_str()),
            ("DOORSTEP_TOPIC_PARTITIONS", partitions.as_str()),
            // No auto-confirm fires during the run (timer rows are still written).
            ("DOORSTEP_AUTO_CONFIRM_AFTER_MS", "3600000"),
        ],
    )
    .await
}

/// The bare consumption rate: one consumer assigned every partition from the start reads
/// `records` records; records/s from the assignment to the last record.
async fn consume_rate(scope: &Scope, partitions: i32, records: usize) -> anyhow::Result<f64> {
    let topic = scope.topic(topics::ORDER_EVENTS);
    let positions: Vec<(&str, i32, i64)> =
        (0..partitions).map(|p| (topic.as_str(), p, 0)).collect();
    let consumer = ConsumerBuilder::new(
        &assemble::kafka_config(&scope.config, "doorstep-bench"),
        doorstep_tests::unique("bench-scale-raw"),
    )
    .assign(&positions)?;
    // Timed from the assignment: the client prefetches, so by its first record most of the
    // backlog may already be in its buffers.
    let started = Instant::now();
    let read = async {
        for _ in 0..records {
            consumer.recv().await?;
        }
        anyhow::Ok(started.elapsed())
    };
    let elapsed = tokio::time::timeout(Duration::from_secs(120), read)
        .await
        .context("the bare consumer did not read the backlog within 120 s")??;
    Ok(records as f64 / elapsed.as_secs_f64())
}

/// What one drain measured.
struct Drain {
    processes: usize,
    events: usize,
    consume_rate: f64,
    /// Spawn → the first commit.
    first_commit: Duration,
    /// Records committed by the first commit seen.
    at_first_commit: i64,
    /// Spawn → every record committed.
    done: Duration,
    /// CPU seconds of the pipeline processes over the steady drain (first commit → last).
    pipeline_cpu: f64,
    /// CQL requests of the pipeline processes (the driver's counters, whole run) per status
    /// change written.
    cql_per_transition: f64,
}

impl Drain {
    /// Events/s from the spawn.
    fn wall_rate(&self) -> f64 {
        self.events as f64 / self.done.as_secs_f64()
    }

    /// Events/s from the first commit to the last.
    fn steady_rate(&self) -> f64 {
        self.steady_events() / (self.done - self.first_commit).as_secs_f64()
    }

    /// Events committed from the first commit to the last.
    fn steady_events(&self) -> f64 {
        self.events as f64 - self.at_first_commit as f64
    }

    /// Events per CPU second of the pipeline processes over the steady drain.
    fn per_cpu_second(&self) -> f64 {
        self.steady_events() / self.pipeline_cpu.max(f64::EPSILON)
    }
}

async fn drain(
    settings: &Settings,
    processes: usize,
    round: usize,
    lives: &[Vec<OrderEvent>],
) -> anyhow::Result<Drain> {
    let events: usize = lives.iter().map(Vec::len).sum();
    println!(
        "\n## status_scale_out [processes={processes}, round {round}]: {} orders, {events} \
         events, {} partitions",
        lives.len(),
        settings.partitions
    );
    let scope = scope(settings.partitions).await?;
    let offsets = GroupProgress::new(
        &scope.config.endpoints.kafka_brokers,
        &scope.config.group_id("status"),
        &scope.topic(topics::ORDER_EVENTS),
        settings.partitions,
    )?;

    let started = Instant::now();
    crash_kit::produce(scope.config.clone(), lives.to_vec()).await?;
    let produce_rate = events as f64 / started.elapsed().as_secs_f64();
    let end = offsets.end().await?;
    ensure!(
        end == events as i64,
        "the topic holds {end} records, not the {events} produced"
    );
    let consume_rate = consume_rate(&scope, settings.partitions, events).await?;
    println!(
        "  backlog produced in {:.2} s ({produce_rate:.0} records/s, in 8 rounds with the crash \
         harness's pauses); bare consumption: {consume_rate:.0} records/s",
        started.elapsed().as_secs_f64()
    );

    let mut members = Vec::new();
    for i in 0..processes {
        members.push(BenchProcess::spawn(&scope, "status", &i.to_string(), &[])?);
    }
    let spawned = Instant::now();
    let mut named = service_processes();
    for (i, m) in members.iter().enumerate() {
        if let Some(pid) = m.process.id() {
            named.push((format!("doorstep {i}"), pid));
        }
    }
    named.push(("bench".to_owned(), std::process::id()));

    let result = watch(&offsets, &mut members, &named, events, settings.timeout).await;
    let watched = match result {
        Ok(w) => w,
        Err(e) => {
            let tails: Vec<String> = members
                .iter()
                .map(|m| format!("{}:\n{}", m.log.display(), m.tail(30)))
                .collect();
            return Err(e.context(tails.join("\n")));
        }
    };
    let first_commit = watched.first_commit.0 - spawned;
    let done = watched.done - spawned;
    let ticks: u64 = (0..processes)
        .filter_map(|i| {
            let name = format!("doorstep {i}");
            Some(
                watched
                    .cpu_to
                    .processes
                    .get(&name)?
                    .since(watched.cpu_from.processes.get(&name)?)
                    .0,
            )
        })
        .sum();
    let pipeline_cpu = ticks as f64 / cpu::ticks_per_second();
    let mut cql_requests = 0.0;
    let mut transitions = 0.0;
    for m in &members {
        let text = m.metrics().await?;
        cql_requests += scraped(&text, "doorstep_pipeline_cql_requests_total", None);
        transitions += scraped(
            &text,
            "doorstep_pipeline_records_out_total",
            Some(("topic", scope.topic(topics::ORDER_STATUS).as_str())),
        );
    }
    let run = Drain {
        processes,
        events,
        consume_rate,
        first_commit,
        at_first_commit: watched.first_commit.1,
        done,
        pipeline_cpu,
        cql_per_transition: cql_requests / transitions.max(1.0),
    };
    println!(
        "  drained in {:.2} s from the spawn ({:.0} events/s); first commit after {:.2} s \
         ({} records); from there {:.0} events/s",
        done.as_secs_f64(),
        run.wall_rate(),
        first_commit.as_secs_f64(),
        run.at_first_commit,
        run.steady_rate()
    );
    cpu_report(
        &watched.cpu_from,
        &watched.cpu_to,
        done - first_commit,
        None,
    );
    println!(
        "  pipeline processes: {:.2} CPU s over the steady drain, {:.0} events per CPU second \
         ({:.0} µs per event); {:.3} CQL requests per transition (driver counters, whole run)",
        run.pipeline_cpu,
        run.per_cpu_second(),
        1e6 / run.per_cpu_second(),
        run.cql_per_transition
    );
    let mut records = 0.0;
    for (i, m) in members.iter().enumerate() {
        records += member_report(i, m).await?;
    }
    if records > events as f64 {
        println!(
            "  {:.0} records read twice (re-delivered after a partition moved)",
            records - events as f64
        );
    }
    for m in members {
        m.stop().await?;
    }
    Ok(run)
}

struct Watched {
    /// When the first commit was seen, and how many records it covered.
    first_commit: (Instant, i64),
    done: Instant,
    /// CPU at the first commit and at the end.
    cpu_from: cpu::Sample,
    cpu_to: cpu::Sample,
}

/// Watches the drain of `events` by the group's processes (see [`GroupProgress::drain`]).
async fn watch(
    offsets: &GroupProgress,
    members: &mut [BenchProcess],
    named: &[(String, u32)],
    events: usize,
    timeout: Duration,
) -> anyhow::Result<Watched> {
    let alive = || {
        for (i, m) in members.iter_mut().enumerate() {
            if let Some(status) = m.process.exited()? {
                bail!("doorstep process {i} exited on its own: {status}");
            }
        }
        Ok(())
    };
    let d = offsets.drain(named, events, timeout, alive).await?;
    Ok(Watched {
        first_commit: (d.first_commit, d.at_first_commit),
        done: d.done,
        cpu_from: d.cpu_from,
        cpu_to: d.cpu_to,
    })
}

/// Prints what process `i` reports about itself; returns the records it read.
async fn member_report(i: usize, m: &BenchProcess) -> anyhow::Result<f64> {
    let text = m.metrics().await?;
    let records = scraped(&text, "doorstep_pipeline_records_in_total", None);
    let batches = scraped(&text, "doorstep_pipeline_batches_total", None);
    let busy = scraped(&text, "doorstep_pipeline_stage_busy_seconds_total", None);
    let blocked = scraped(
        &text,
        "doorstep_pipeline_source_blocked_seconds_total",
        None,
    );
    // Time in each sink; phase 1's sinks run concurrently, so their times overlap.
    let by_sink = scraped_by(&text, "doorstep_sink_latency_seconds_sum", "sink");
    let sinks: Vec<String> = by_sink
        .iter()
        .map(|(sink, s)| format!("{sink} {s:.2} s"))
        .collect();
    let moves = log_mentions(&m.log, "partition assignment changed");
    println!(
        "  doorstep {i}: {records:.0} records in {batches:.0} batches; stage busy {busy:.2} s \
         (time in each sink, phase 1's overlapping: {}); source blocked on a full queue \
         {blocked:.2} s; assignment changed {moves} times",
        sinks.join(", "),
    );
    Ok(records)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench` (and any filter); this binary has a single benchmark.
    init_bench_tracing();
    let settings = Settings::from_env()?;
    let binary = doorstep_binary()?;
    println!(
        "status_scale_out: {} orders, {} partitions, processes {:?}, {} rounds, {} CPUs, binary {}",
        settings.orders,
        settings.partitions,
        settings.processes,
        settings.rounds,
        std::thread::available_parallelism().map_or(0, usize::from),
        binary
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    );
    let lives = lives(settings.orders);
    // Each process count's best drain.
    let mut runs: BTreeMap<usize, Drain> = BTreeMap::new();
    for round in 1..=settings.rounds {
        for &n in &settings.processes {
            let run = drain(&settings, n, round, &lives).await?;
            if runs
                .get(&n)
                .is_none_or(|best| run.steady_rate() > best.steady_rate())
            {
                runs.insert(n, run);
            }
        }
    }
    println!();
    for run in runs.values() {
        println!(
            "best of {} with {} process(es): {:.0} events/s ({:.0} from the spawn)",
            settings.rounds,
            run.processes,
            run.steady_rate(),
            run.wall_rate()
        );
    }
    for run in runs.values() {
        let name = format!("status_scale_out[processes={}]", run.processes);
        bench_line(
            &format!("{name}.events"),
            run.steady_rate(),
            "events/s",
            Some(("bare_consume/s", run.consume_rate)),
        );
        bench_line(
            &format!("{name}.events_from_spawn"),
            run.wall_rate(),
            "events/s",
            Some(("bare_consume/s", run.consume_rate)),
        );
        bench_line(
            &format!("{name}.events_per_cpu_second"),
            run.per_cpu_second(),
            "events/CPU-s",
            None,
        );
        bench_line(
            &format!("{name}.cql_requests"),
            run.cql_per_transition,
            "requests/transition",
            None,
        );
    }
    if let (Some(one), Some(two)) = (runs.get(&1), runs.get(&2)) {
        bench_line(
            "status_scale_out.2_vs_1",
            two.steady_rate(),
            "events/s",
            Some(("1_process_events/s", one.steady_rate())),
        );
        // The goal: records per pipeline-CPU-second with 2 processes within 10 % of 1.
        bench_line(
            "status_scale_out.2_vs_1_per_cpu_second",
            two.per_cpu_second(),
            "events/CPU-s",
            Some(("1_process_events/CPU-s", one.per_cpu_second())),
        );
        bench_line(
            "status_scale_out.2_vs_1_from_spawn",
            two.wall_rate(),
            "events/s",
            Some(("1_process_events/s", one.wall_rate())),
        );
    }
    Ok(())
}
