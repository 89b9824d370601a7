//! Crash test of the status pipeline: the real `doorstep` binary is killed with SIGKILL twice
//! in the middle of a stream of 2,400 orders and restarted each time. Afterwards every
//! order's state in ScyllaDB, the accepted changes on `orders.status.v1`, the rejects, the
//! pushes at the fake FCM, the refunds at the fake Stripe and the drivers in Redis must be
//! exactly what a run without a crash produces.
//!
//! The run without a crash is computed in the test: the same events folded through the pure
//! state machine (`operators::order::decide`) and the pipeline's pure mapping of decisions
//! to effects (`status::Outputs`). That is deterministic, because the state machine's clock
//! is each event's `occurred_at`.
//!
//! What may differ after a crash, and is measured rather than forbidden: records on the
//! output topics may repeat (at-least-once); a repeat must be identical to the first copy.
//! What must not: a history that differs, a missing or extra change, a push sent twice or
//! not at all, a second refund. The test also prints how long a restarted process takes
//! to write its first record and to commit its first offsets.
//!
//! Two variants: `doorstep pipeline status` killed while `doorstep pipeline notify` runs on
//! in its own process (the status pipeline's replays reach the notify pipeline as duplicate
//! outbox records), and `doorstep pipeline all` killed, which also cuts pushes mid-send
//! (ignored for now: see its comment).
//!
//! The kill points are drawn from a seed printed at the start (`CRASH_TEST_SEED=<n>` draws
//! the same ones again; timing still varies). The processes log to one file in the
//! temporary directory, named when the test fails.

use anyhow::{Context, bail, ensure};
use doorstep_connectors::driver_state::DriverState;
use doorstep_connectors::kafka::rdkafka::ClientConfig;
use doorstep_connectors::kafka::rdkafka::TopicPartitionList;
use doorstep_connectors::kafka::rdkafka::consumer::{BaseConsumer, Consumer as _};
use doorstep_connectors::kafka::{ConsumerBuilder, KafkaConfig, Producer};
use doorstep_connectors::payments::PaymentsClient;
use doorstep_connectors::push::SentLedger;
use doorstep_connectors::redis::driver as redis_driver;
use doorstep_operators::order::{Decision, OrderPolicy, OrderState, decide};
use doorstep_pipelines::status::{DriverOp, Outputs};
use doorstep_schemas::avro::{Catalog, TopicRecord};
use doorstep_schemas::events::{
    Notification, OrderCommand, OrderEvent, RejectedRecord, StatusChange, topics,
};
use doorstep_schemas::model::{
    Actor, DriverId, DriverStatus, EventId, OrderId, OrderStatus, Timestamp,
};
use doorstep_tests::order_events::OrderScript;
use doorstep_tests::pipeline_harness::{Scope, TEST_PARTITIONS};
use doorstep_tests::process::{DoorstepProcess, log_tail};
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Orders in the stream.
const ORDERS: usize = 2_400;
/// Pause between production rounds (round k = the k-th event of every order).
const ROUND_PAUSE: Duration = Duration::from_millis(50);
/// Sends in flight while producing a round.
const PRODUCE_CONCURRENCY: usize = 256;
/// How long the whole stream may take to be processed, kills and restarts included.
const DEADLINE: Duration = Duration::from_secs(90);
/// The variable that fixes the seed of the kill points.
const SEED_VAR: &str = "CRASH_TEST_SEED";

/// What the test kills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Crash {
    /// `doorstep pipeline status` is killed and restarted; `doorstep pipeline notify` runs
    /// on in its own process and sees the status pipeline's replayed outbox records.
    StatusPipeline,
    /// `doorstep pipeline all` is killed and restarted: pushes are cut mid-send too.
    EveryPipeline,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_status_pipeline_mid_stream_changes_no_history_and_sends_nothing_twice()
-> anyhow::Result<()> {
    crash_test("status_crash", Crash::StatusPipeline).await
}

/// Ignored until the sent-ledger recovers claims of a killed process: a kill during a push
/// leaves its claim `pending` for the whole claim lease (5 minutes), and the notify pipeline
/// retries that batch (holding back every later push) until it expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "notify stalls for the 5-minute claim lease after a kill -9 mid-push"]
async fn kill_9_of_every_pipeline_mid_stream_loses_nothing_and_sends_nothing_twice()
-> anyhow::Result<()> {
    crash_test("all_crash", Crash::EveryPipeline).await
}

async fn crash_test(name: &str, crash: Crash) -> anyhow::Result<()> {
    let seed = std::env::var(SEED_VAR)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            u64::try_from(Timestamp::now().as_millis()).unwrap_or_default()
                ^ u64::from(std::process::id())
        });
    eprintln!("{name}: seed {seed} ({SEED_VAR}={seed} draws the same kill points)");
    let scope = Scope::new(
        name,
        &[
            // Timers must not fire mid-test: the oracle has no wall clock.
            ("DOORSTEP_AUTO_CONFIRM_AFTER_MS", "600000"),
            ("DOORSTEP_CANCELLATION_FEE_CENTS", "500"),
        ],
    )
    .await?;
    let log = std::env::temp_dir().join(format!(
        "{}-doorstep.log",
        scope.env["DOORSTEP_GROUP_PREFIX"]
    ));
    match run(&scope, crash, seed, &log).await {
        Ok(report) => {
            eprintln!("{name}: {report}");
            let _ = std::fs::remove_file(&log);
            Ok(())
        }
        Err(e) => bail!(
            "{e:#}\n\nseed {seed} ({SEED_VAR}={seed}); pipeline log {}; its tail:\n{}",
            log.display(),
            log_tail(&log, 60)
        ),
    }
}

/// What one run measured.
#[derive(Debug, Default)]
struct Report {
    kills: Vec<KillReport>,
    total: Duration,
    changes: usize,
    status_records: usize,
    rejects_expected: usize,
    reject_records: usize,
    outbox_records: usize,
    pushes: usize,
    push_requests: usize,
    /// Notifications pushed twice because a kill cut them between FCM and the ledger.
    pushes_repeated: Vec<String>,
    refunds: usize,
    refund_requests: usize,
    refund_replays: usize,
}

#[derive(Debug, Default)]
struct KillReport {
    /// Distinct accepted changes on the topic when the process was killed.
    at_changes: usize,
    /// Events on `orders.events.v1` not committed when the process was killed.
    backlog: i64,
    /// Restart → the first offset commit of the status group.
    first_commit: Option<Duration>,
    /// Restart → the first record the restarted process wrote to `orders.status.v1` (by
    /// producer timestamp: a replayed duplicate counts, it is the first sign of work).
    first_output: Option<Duration>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs =
            |d: Option<Duration>| d.map_or("-".to_owned(), |d| format!("{:.2}s", d.as_secs_f64()));
        writeln!(
            f,
            "{ORDERS} orders, {} accepted changes, done in {:.1}s",
            self.changes,
            self.total.as_secs_f64()
        )?;
        for (i, k) in self.kills.iter().enumerate() {
            writeln!(
                f,
                "  kill {} at {}/{} changes ({:.0}%), {} events uncommitted: restart → first status record {}, → first commit {}",
                i + 1,
                k.at_changes,
                self.changes,
                100.0 * k.at_changes as f64 / self.changes.max(1) as f64,
                k.backlog,
                secs(k.first_output),
                secs(k.first_commit),
            )?;
        }
        writeln!(
            f,
            "  orders.status.v1: {} records, {} duplicates; orders.rejected.v1: {} records for {} rejects, {} duplicates",
            self.status_records,
            self.status_records - self.changes,
            self.reject_records,
            self.rejects_expected,
            self.reject_records - self.rejects_expected,
        )?;
        writeln!(
            f,
            "  notifications.v1: {} records for {} pushes, {} duplicates absorbed by the sent-ledger",
            self.outbox_records,
            self.pushes,
            self.outbox_records.saturating_sub(self.pushes),
        )?;
        writeln!(
            f,
            "  pushes: {} sent, {} FCM requests, sent twice (cut mid-send by a kill): {:?}",
            self.pushes, self.push_requests, self.pushes_repeated
        )?;
        write!(
            f,
            "  refunds: {} created once each ({} requests, {} idempotent replays)",
            self.refunds, self.refund_requests, self.refund_replays
        )
    }
}

async fn run(scope: &Scope, crash: Crash, seed: u64, log: &Path) -> anyhow::Result<Report> {
    let started = Instant::now();
    let mut rng = doorstep_pipelines::simulate::SplitMix(seed);
    let start_ms = Timestamp::now().as_millis();
    let orders: Vec<Vec<OrderEvent>> = (0..ORDERS)
        .map(|i| order_events(i, start_ms + i64::try_from(i).unwrap_or_default()))
        .collect();
    let expected = Expected::of(&orders, &scope.config.policy);
    let total = expected.changes.len();
    let brokers = scope.config.endpoints.kafka_brokers.clone();
    let status_log = follow::<StatusChange>(&brokers, &scope.topic(topics::ORDER_STATUS))?;
    let reject_log = follow::<RejectedRecord>(&brokers, &scope.topic(topics::ORDER_REJECTED))?;
    let outbox_log = follow::<Notification>(&brokers, &scope.topic(topics::NOTIFICATIONS))?;
    let status_group = GroupProbe::new(
        &brokers,
        &scope.config.group_id("status"),
        &scope.topic(topics::ORDER_EVENTS),
    )?;
    let notify_group = GroupProbe::new(
        &brokers,
        &scope.config.group_id("notify"),
        &scope.topic(topics::NOTIFICATIONS),
    )?;
    let redis = doorstep_pipelines::assemble::redis(&scope.config).await?;
    let ledger = Ledger {
        keys: SentLedger::new(redis.clone(), scope.config.redis_key_prefix.clone()),
        redis,
    };

    let mut env = scope.env.clone();
    env.insert("DOORSTEP_OPS_LISTEN".into(), "127.0.0.1:0".into());
    env.insert("DOORSTEP_LOG".into(), "info,scylla=off".into());
    let (victim, survivor) = match crash {
        Crash::StatusPipeline => ("status", Some("notify")),
        Crash::EveryPipeline => ("all", None),
    };
    let spawn = |what: &str, n: usize| {
        append_marker(
            log,
            &format!("=== doorstep pipeline {what}, process {n} ==="),
        );
        DoorstepProcess::spawn(&["pipeline", what], &env, log)
    };
    let mut survivor = survivor.map(|what| spawn(what, 0)).transpose()?;
    let mut process = spawn(victim, 1)?;
    let producer = tokio::spawn(produce(scope.config.clone(), orders));

    let mut report = Report {
        changes: total,
        rejects_expected: expected.rejects.len(),
        ..Report::default()
    };
    // Pushes in flight (claimed, not marked sent) when a process was killed.
    let mut in_flight = BTreeSet::new();
    // Kill points: the first in 20–60 % of the stream, the second in 65–90 %.
    let points = [rng.fraction(0.20, 0.60), rng.fraction(0.65, 0.90)];
    for (n, point) in points.into_iter().enumerate() {
        let target = (total as f64 * point) as usize;
        let end = Instant::now() + DEADLINE;
        while status_log.distinct() < target {
            ensure!(
                Instant::now() < end,
                "the pipeline did not reach {target} of {total} changes (kill point {}); it has {}",
                n + 1,
                status_log.distinct()
            );
            still_running(&mut process, survivor.as_mut())?;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        process.kill9().await?;
        let at_changes = status_log.distinct();
        ensure!(
            at_changes < total,
            "kill {} came after the whole stream was processed: not a mid-stream crash",
            n + 1
        );
        let committed_at_kill = status_group.committed().await?;
        let backlog = status_group.lag().await?;
        if crash == Crash::EveryPipeline {
            in_flight.extend(pending_claims(&ledger, &expected).await?);
        }
        // Sometimes restart at once, sometimes after a pause (a supervisor's backoff).
        tokio::time::sleep(Duration::from_millis(rng.below(500))).await;
        let restarted_ms = Timestamp::now().as_millis();
        process = spawn(victim, n + 2)?;
        let restarted = Instant::now();
        let mut kill = KillReport {
            at_changes,
            backlog,
            ..KillReport::default()
        };
        while kill.first_commit.is_none() || kill.first_output.is_none() {
            ensure!(
                restarted.elapsed() < DEADLINE,
                "no progress within {DEADLINE:?} of restart {}",
                n + 1
            );
            still_running(&mut process, survivor.as_mut())?;
            if kill.first_output.is_none()
                && let Some(at) = status_log.first_stamp_since(restarted_ms)
            {
                let ms = u64::try_from(at - restarted_ms).unwrap_or_default();
                kill.first_output = Some(Duration::from_millis(ms));
            }
            if kill.first_commit.is_none() && status_group.committed().await? > committed_at_kill {
                kill.first_commit = Some(restarted.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        report.kills.push(kill);
    }

    producer.await??;
    // Everything processed: every event and every notification committed, every change out.
    let end = Instant::now() + DEADLINE;
    loop {
        let status = status_group.lag().await?;
        let notify = notify_group.lag().await?;
        let distinct = status_log.distinct();
        if status == 0 && notify == 0 && distinct == total {
            break;
        }
        still_running(&mut process, survivor.as_mut())?;
        if Instant::now() >= end {
            let pending = pending_claims(&ledger, &expected).await?;
            let pushed: BTreeSet<String> = scope
                .fcm
                .messages()
                .iter()
                .filter_map(|m| m.data.get("notification_id").cloned())
                .collect();
            let reached_fcm = pending.iter().filter(|p| pushed.contains(*p)).count();
            bail!(
                "not done within {DEADLINE:?}: status lag {status}, notify lag {notify}, {distinct}/{total} changes; {} pushes claimed but never marked sent, {reached_fcm} of them accepted by FCM before the kill (a killed process's claims hold back the notify pipeline for the claim lease): {:?}",
                pending.len(),
                pending.iter().take(5).collect::<Vec<_>>()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Stragglers (a duplicate push, a late record) would arrive within this.
    tokio::time::sleep(Duration::from_secs(1)).await;
    report.total = started.elapsed();
    process.kill9().await?;
    if let Some(p) = survivor {
        p.kill9().await?;
    }

    check_status_topic(&expected, &status_log.take()?, &mut report)?;
    check_rejects(&expected, &reject_log.take()?, &mut report)?;
    let outbox = outbox_log.take()?;
    report.outbox_records = outbox.len();
    check_store(scope, &expected).await?;
    check_pushes(scope, &expected, &in_flight, &mut report)?;
    check_refunds(scope, &expected, &mut report)?;
    check_drivers(scope, &expected).await?;
    Ok(report)
}

/// Fails if a pipeline process exited on its own.
fn still_running(
    process: &mut DoorstepProcess,
    survivor: Option<&mut DoorstepProcess>,
) -> anyhow::Result<()> {
    if let Some(status) = process.exited()? {
        bail!("doorstep exited on its own: {status}");
    }
    if let Some(status) = survivor.map(DoorstepProcess::exited).transpose()?.flatten() {
        bail!("the notify pipeline exited on its own: {status}");
    }
    Ok(())
}

/// The expected notifications whose sent-ledger entry is a claim, not a `sent` mark.
async fn pending_claims(ledger: &Ledger, expected: &Expected) -> anyhow::Result<Vec<String>> {
    let found: Vec<anyhow::Result<Option<String>>> =
        futures::stream::iter(expected.notifications.keys())
            .map(|id| {
                let mut conn = ledger.redis.clone();
                let key = ledger.keys.key(id);
                async move {
                    let value: Option<String> = redis_driver::cmd("GET")
                        .arg(key)
                        .query_async(&mut conn)
                        .await?;
                    let pending = value.is_some_and(|v| v.starts_with("pending:"));
                    anyhow::Ok(pending.then(|| id.clone()))
                }
            })
            .buffer_unordered(64)
            .collect()
            .await;
    let mut pending = Vec::new();
    for f in found {
        pending.extend(f?);
    }
    pending.sort();
    Ok(pending)
}

/// Reading the notify pipeline's sent-ledger.
struct Ledger {
    redis: doorstep_connectors::redis::Redis,
    keys: SentLedger,
}

fn append_marker(log: &Path, line: &str) {
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        let _ = writeln!(f, "{line}");
    }
}

// ---------------------------------------------------------------------------------------
// The stream.

/// The events of order `i`: a deterministic mix of whole lives, cancellations, hand-backs,
/// invalid requests and orders still in progress at the end.
fn order_events(i: usize, start_ms: i64) -> Vec<OrderEvent> {
    use OrderStatus::*;
    let mut s = OrderScript::new(&format!("o{i:05}"), start_ms);
    let customer = Actor::customer(s.customer.clone());
    let restaurant = Actor::restaurant(s.restaurant.clone());
    let driver = Actor::driver(s.driver.clone());
    match i % 20 {
        // The driver picks up and leaves in one request.
        7 if i % 40 == 7 => vec![
            s.place(),
            s.assign(),
            s.restaurant(Confirmed),
            s.restaurant(Preparing),
            s.restaurant(ReadyForPickup),
            s.driver(EnRoute),
            s.driver(Delivered),
        ],
        0..=12 => s.full_life(),
        // Customer cancels while the food is prepared: refund minus the fee.
        13 | 14 => vec![
            s.place(),
            s.assign(),
            s.restaurant(Confirmed),
            s.restaurant(Preparing),
            s.cancel(customer, "taking too long"),
        ],
        // Restaurant cancels: full refund, driver released.
        15 => vec![
            s.place(),
            s.assign(),
            s.restaurant(Confirmed),
            s.cancel(restaurant, "out of salmon"),
        ],
        16 => vec![s.place(), s.cancel(restaurant, "closing early")],
        // The driver hands the order back; dispatch assigns again; delivered.
        17 => vec![
            s.place(),
            s.assign(),
            s.restaurant(Confirmed),
            s.cancel(driver, "flat tyre"),
            s.assign(),
            s.restaurant(Preparing),
            s.restaurant(ReadyForPickup),
            s.driver(PickedUp),
            s.driver(EnRoute),
            s.driver(Delivered),
        ],
        // Invalid requests among a whole life, and one request sent twice.
        18 => {
            let mut ev = vec![s.place(), s.driver(Delivered), s.assign()];
            ev.push(s.restaurant(Confirmed));
            ev.push(s.event(
                Actor::restaurant("r-elsewhere"),
                OrderCommand::Transition { to: Preparing },
            ));
            ev.extend([s.restaurant(Preparing), s.restaurant(ReadyForPickup)]);
            let picked_up = s.driver(PickedUp);
            ev.push(picked_up.clone());
            ev.push(s.cancel(customer.clone(), "changed my mind"));
            ev.push(picked_up);
            ev.extend([s.driver(EnRoute), s.driver(Delivered)]);
            ev.push(s.cancel(customer, "too late"));
            ev
        }
        // Customer cancels right away: full refund.
        _ if i % 40 == 19 => vec![s.place(), s.cancel(customer, "ordered by mistake")],
        // Still being prepared when the test ends.
        _ => vec![
            s.place(),
            s.assign(),
            s.restaurant(Confirmed),
            s.restaurant(Preparing),
        ],
    }
}

/// Produces the stream in rounds: round k is the k-th event of every order, sent
/// concurrently; the next round starts once the broker acknowledged the whole round, so each
/// order's events are in order on its partition.
async fn produce(
    config: doorstep_pipelines::config::Config,
    orders: Vec<Vec<OrderEvent>>,
) -> anyhow::Result<()> {
    let producer = Arc::new(Producer::new(&KafkaConfig::new(
        &config.endpoints.kafka_brokers,
        "status-crash-producer",
    ))?);
    let catalog = Catalog::embedded()?;
    let topic: Arc<str> = config.topic(topics::ORDER_EVENTS).into();
    let rounds = orders.iter().map(Vec::len).max().unwrap_or_default();
    for round in 0..rounds {
        let mut sends = Vec::new();
        for e in orders.iter().filter_map(|o| o.get(round)) {
            let (producer, topic) = (producer.clone(), topic.clone());
            let key = e.order_id.to_string();
            let bytes = catalog.encode(e)?;
            sends.push(async move {
                producer.send(&topic, key.as_bytes(), &bytes, &[]).await?;
                anyhow::Ok(())
            });
        }
        let results: Vec<anyhow::Result<()>> = futures::stream::iter(sends)
            .buffer_unordered(PRODUCE_CONCURRENCY)
            .collect()
            .await;
        for r in results {
            r.context("producing the stream")?;
        }
        tokio::time::sleep(ROUND_PAUSE).await;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The run without a crash.

#[derive(Debug, Default)]
struct Expected {
    states: BTreeMap<OrderId, OrderState>,
    changes: BTreeMap<(OrderId, u32), StatusChange>,
    notifications: BTreeMap<String, Notification>,
    /// Payment intent → amount.
    refunds: BTreeMap<String, i64>,
    /// Rejected event → reason code.
    rejects: BTreeMap<EventId, String>,
    /// Driver → (status, current order).
    drivers: BTreeMap<DriverId, (DriverStatus, Option<OrderId>)>,
}

impl Expected {
    fn of(orders: &[Vec<OrderEvent>], policy: &OrderPolicy) -> Self {
        let mut x = Self::default();
        for events in orders {
            let mut state: Option<OrderState> = None;
            for e in events {
                match decide(state.as_ref(), e, policy) {
                    Decision::Accepted(a) => {
                        let mut out = Outputs::default();
                        out.accepted(e, &a, 0);
                        for c in out.status_changes {
                            let key = (c.order_id.clone(), c.seq);
                            assert!(x.changes.insert(key, c).is_none(), "seq reused");
                        }
                        for n in out.notifications {
                            let id = n.notification_id.clone();
                            assert!(x.notifications.insert(id, n).is_none(), "push reused");
                        }
                        for r in out.refunds {
                            let pi = PaymentsClient::payment_intent_id(&r.order_id);
                            assert!(x.refunds.insert(pi, r.amount_cents).is_none());
                        }
                        for op in out.driver_ops {
                            match op {
                                DriverOp::Occupy(d, o) => {
                                    x.drivers.insert(d, (DriverStatus::OnDelivery, Some(o)));
                                }
                                DriverOp::Release(d, o) => {
                                    let entry = x
                                        .drivers
                                        .entry(d)
                                        .or_insert((DriverStatus::Available, None));
                                    if entry.1.as_ref() == Some(&o) {
                                        *entry = (DriverStatus::Available, None);
                                    }
                                }
                            }
                        }
                        state = Some(a.state);
                    }
                    Decision::Duplicate => {}
                    Decision::Rejected(r) => {
                        x.rejects.insert(e.event_id.clone(), r.code().to_owned());
                    }
                }
            }
            if let Some(s) = state {
                x.states.insert(s.order.order_id.clone(), s);
            }
        }
        x
    }
}

// ---------------------------------------------------------------------------------------
// Observing the pipeline.

/// Every record of a topic, read by a background consumer from the beginning.
struct TopicLog<T> {
    records: Arc<Mutex<Vec<(String, T)>>>,
    /// Producer timestamps of the records, in milliseconds.
    stamps: Arc<Mutex<Vec<i64>>>,
    distinct: Arc<Mutex<BTreeSet<(String, u32)>>>,
    errors: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

/// The identity of a record for counting progress.
trait Identity {
    fn identity(&self) -> (String, u32);
}

impl Identity for StatusChange {
    fn identity(&self) -> (String, u32) {
        (self.order_id.to_string(), self.seq)
    }
}

impl Identity for Notification {
    fn identity(&self) -> (String, u32) {
        (self.notification_id.clone(), 0)
    }
}

impl Identity for RejectedRecord {
    fn identity(&self) -> (String, u32) {
        let id = self.event_id.as_ref().map_or("", |e| e.as_str());
        (id.to_owned(), 0)
    }
}

fn follow<T: TopicRecord + Identity + Send + 'static>(
    brokers: &str,
    topic: &str,
) -> anyhow::Result<TopicLog<T>> {
    let config = KafkaConfig::new(brokers, "status-crash-follower");
    let consumer =
        ConsumerBuilder::new(&config, doorstep_tests::unique("follower")).subscribe(&[topic])?;
    let catalog = Catalog::embedded()?;
    let records = Arc::new(Mutex::new(Vec::new()));
    let stamps = Arc::new(Mutex::new(Vec::new()));
    let distinct = Arc::new(Mutex::new(BTreeSet::new()));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let (r, t, d, e) = (
        records.clone(),
        stamps.clone(),
        distinct.clone(),
        errors.clone(),
    );
    let topic = topic.to_owned();
    let task = tokio::spawn(async move {
        loop {
            match consumer.recv().await {
                Ok(rec) => {
                    let key = String::from_utf8_lossy(rec.key.as_deref().unwrap_or_default())
                        .into_owned();
                    match catalog.decode::<T>(rec.payload.as_deref().unwrap_or_default()) {
                        Ok(v) => {
                            lock(&d).insert(v.identity());
                            lock(&r).push((key, v));
                            lock(&t).extend(rec.timestamp_ms);
                        }
                        Err(err) => lock(&e).push(format!(
                            "{topic}[{}]@{} undecodable: {err}",
                            rec.partition, rec.offset
                        )),
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "follower waiting for the broker");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    });
    Ok(TopicLog {
        records,
        stamps,
        distinct,
        errors,
        task,
    })
}

impl<T> TopicLog<T> {
    fn distinct(&self) -> usize {
        lock(&self.distinct).len()
    }

    /// The earliest producer timestamp at or after `ms`, if a record that new was read.
    fn first_stamp_since(&self, ms: i64) -> Option<i64> {
        lock(&self.stamps)
            .iter()
            .copied()
            .filter(|t| *t >= ms)
            .min()
    }

    /// Stops following and returns what was read (fails on undecodable records).
    fn take(self) -> anyhow::Result<Vec<(String, T)>> {
        self.task.abort();
        let errors = lock(&self.errors).clone();
        ensure!(errors.is_empty(), "undecodable records: {errors:?}");
        Ok(std::mem::take(&mut *lock(&self.records)))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reads a consumer group's committed offsets without joining it.
struct GroupProbe {
    consumer: Arc<BaseConsumer>,
    topic: String,
}

impl GroupProbe {
    fn new(brokers: &str, group: &str, topic: &str) -> anyhow::Result<Self> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("log_level", "3")
            .create()?;
        Ok(Self {
            consumer: Arc::new(consumer),
            topic: topic.to_owned(),
        })
    }

    /// Committed offsets and end offsets per partition.
    async fn positions(&self) -> anyhow::Result<Vec<(i64, i64)>> {
        let consumer = self.consumer.clone();
        let topic = self.topic.clone();
        tokio::task::spawn_blocking(move || {
            let timeout = Duration::from_secs(5);
            let mut tpl = TopicPartitionList::new();
            for p in 0..TEST_PARTITIONS {
                tpl.add_partition(&topic, p);
            }
            let committed = consumer.committed_offsets(tpl, timeout)?;
            let mut out = Vec::new();
            for p in 0..TEST_PARTITIONS {
                let done = committed
                    .find_partition(&topic, p)
                    .and_then(|e| e.offset().to_raw())
                    .filter(|o| *o >= 0)
                    .unwrap_or(0);
                let (_, end) = consumer.fetch_watermarks(&topic, p, timeout)?;
                out.push((done, end));
            }
            anyhow::Ok(out)
        })
        .await?
    }

    /// Sum of the committed offsets.
    async fn committed(&self) -> anyhow::Result<i64> {
        Ok(self.positions().await?.iter().map(|(c, _)| c).sum())
    }

    /// Records not yet committed.
    async fn lag(&self) -> anyhow::Result<i64> {
        Ok(self.positions().await?.iter().map(|(c, e)| e - c).sum())
    }
}

// ---------------------------------------------------------------------------------------
// The checks.

fn check_status_topic(
    expected: &Expected,
    records: &[(String, StatusChange)],
    report: &mut Report,
) -> anyhow::Result<()> {
    report.status_records = records.len();
    let mut seen = BTreeSet::new();
    let mut wrong = Vec::new();
    for (key, c) in records {
        let id = (c.order_id.clone(), c.seq);
        match expected.changes.get(&id) {
            Some(want) if want == c && key == c.order_id.as_str() => {}
            Some(want) => wrong.push(format!("got {c:?} (key {key})\n want {want:?}")),
            None => wrong.push(format!("unexpected {c:?}")),
        }
        seen.insert(id);
    }
    ensure!(
        wrong.is_empty(),
        "{} wrong records on orders.status.v1, e.g.\n{}",
        wrong.len(),
        wrong.iter().take(5).cloned().collect::<Vec<_>>().join("\n")
    );
    let missing: Vec<_> = expected
        .changes
        .keys()
        .filter(|k| !seen.contains(*k))
        .take(10)
        .collect();
    ensure!(
        missing.is_empty(),
        "changes missing on orders.status.v1: {missing:?}"
    );
    Ok(())
}

fn check_rejects(
    expected: &Expected,
    records: &[(String, RejectedRecord)],
    report: &mut Report,
) -> anyhow::Result<()> {
    report.reject_records = records.len();
    let mut got: BTreeMap<EventId, String> = BTreeMap::new();
    for (_, r) in records {
        let id = r.event_id.clone().context("a reject without an event id")?;
        if let Some(before) = got.insert(id.clone(), r.reason_code.clone()) {
            ensure!(
                before == r.reason_code,
                "{id} rejected as {before} and as {}",
                r.reason_code
            );
        }
    }
    ensure!(
        got == expected.rejects,
        "rejects differ: {} got, {} expected; extra {:?}; missing {:?}",
        got.len(),
        expected.rejects.len(),
        diff_keys(&got, &expected.rejects),
        diff_keys(&expected.rejects, &got)
    );
    Ok(())
}

fn diff_keys<K: Ord + Clone, V: PartialEq>(a: &BTreeMap<K, V>, b: &BTreeMap<K, V>) -> Vec<K> {
    a.iter()
        .filter(|(k, v)| b.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .take(10)
        .collect()
}

async fn check_store(scope: &Scope, expected: &Expected) -> anyhow::Result<()> {
    let store = scope.store().await?;
    let store = &store;
    let results: Vec<(OrderId, anyhow::Result<Option<OrderState>>)> =
        futures::stream::iter(expected.states.keys().cloned())
            .map(|id| async move {
                let r = store.load(&id).await.map_err(anyhow::Error::from);
                (id, r)
            })
            .buffer_unordered(32)
            .collect()
            .await;
    let mut wrong = Vec::new();
    for (id, r) in results {
        let want = &expected.states[&id];
        match r? {
            Some(got) if &got == want => {}
            Some(got) => wrong.push(describe_difference(&id, &got, want)),
            None => wrong.push(format!("{id}: not stored")),
        }
    }
    ensure!(
        wrong.is_empty(),
        "{} of {} orders differ from the run without a crash, e.g.\n{}",
        wrong.len(),
        expected.states.len(),
        wrong.iter().take(5).cloned().collect::<Vec<_>>().join("\n")
    );
    Ok(())
}

fn describe_difference(id: &OrderId, got: &OrderState, want: &OrderState) -> String {
    let line = |h: &doorstep_schemas::model::StatusHistoryEntry| {
        format!(
            "#{} {:?} {:?}→{:?} by {:?} ({}) {:?}",
            h.seq, h.kind, h.from, h.to, h.actor, h.event_id, h.reason
        )
    };
    let history = |s: &OrderState| s.history.iter().map(line).collect::<Vec<_>>().join("; ");
    format!(
        "{id}: status {:?} (want {:?}), driver {:?} (want {:?}), cancellation {:?} (want {:?})\n  history {}\n  want    {}",
        got.order.status,
        want.order.status,
        got.order.driver_id,
        want.order.driver_id,
        got.order.cancellation,
        want.order.cancellation,
        history(got),
        history(want),
    )
}

/// Every expected push sent, to the right recipient with the right text, exactly once; a
/// second copy is tolerated only for a push that was in flight when a process was killed
/// (claimed in the sent-ledger, not yet marked sent: FCM has no idempotency key, so whether
/// it had accepted the first copy is unknowable — the window the ledger documents).
fn check_pushes(
    scope: &Scope,
    expected: &Expected,
    in_flight: &BTreeSet<String>,
    report: &mut Report,
) -> anyhow::Result<()> {
    let messages = scope.fcm.messages();
    report.push_requests = scope.fcm.requests().len();
    let mut by_id: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for m in &messages {
        let id = m
            .data
            .get("notification_id")
            .cloned()
            .context("a push without data.notification_id")?;
        by_id.entry(id).or_default().push(m);
    }
    let twice: Vec<_> = by_id
        .iter()
        .filter(|(k, v)| v.len() > 2 || (v.len() == 2 && !in_flight.contains(*k)))
        .map(|(k, v)| format!("{k} ×{}", v.len()))
        .collect();
    ensure!(
        twice.is_empty(),
        "{} notifications pushed more than once: {:?}",
        twice.len(),
        &twice[..twice.len().min(10)]
    );
    report.pushes_repeated = by_id
        .iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(k, _)| k.clone())
        .collect();
    let extra: Vec<_> = by_id
        .keys()
        .filter(|k| !expected.notifications.contains_key(*k))
        .take(10)
        .collect();
    let missing: Vec<_> = expected
        .notifications
        .keys()
        .filter(|k| !by_id.contains_key(*k))
        .take(10)
        .collect();
    ensure!(
        extra.is_empty() && missing.is_empty(),
        "pushes differ ({} sent, {} expected): extra {extra:?}, missing {missing:?}",
        by_id.len(),
        expected.notifications.len()
    );
    for (id, sent) in &by_id {
        let (m, n) = (sent[0], &expected.notifications[id]);
        ensure!(
            m.target == n.recipient_id && m.body.as_deref() == Some(n.message.as_str()),
            "push {id} went to {} saying {:?}; expected {} saying {:?}",
            m.target,
            m.body,
            n.recipient_id,
            n.message
        );
    }
    report.pushes = by_id.len();
    Ok(())
}

fn check_refunds(scope: &Scope, expected: &Expected, report: &mut Report) -> anyhow::Result<()> {
    let requests = scope.stripe.requests();
    report.refund_requests = requests.len();
    report.refund_replays = requests.iter().filter(|r| r.replayed).count();
    let mut got: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for r in scope.stripe.refunds() {
        got.entry(r.payment_intent.clone())
            .or_default()
            .push(r.amount);
    }
    let twice: Vec<_> = got.iter().filter(|(_, v)| v.len() > 1).take(10).collect();
    ensure!(
        twice.is_empty(),
        "orders refunded more than once: {twice:?}"
    );
    let got: BTreeMap<String, i64> = got.into_iter().map(|(k, v)| (k, v[0])).collect();
    ensure!(
        got == expected.refunds,
        "refunds differ ({} created, {} expected): extra or wrong {:?}; missing or wrong {:?}",
        got.len(),
        expected.refunds.len(),
        diff_keys(&got, &expected.refunds),
        diff_keys(&expected.refunds, &got)
    );
    report.refunds = got.len();
    Ok(())
}

async fn check_drivers(scope: &Scope, expected: &Expected) -> anyhow::Result<()> {
    let redis = doorstep_pipelines::assemble::redis(&scope.config).await?;
    let drivers = DriverState::new(redis, scope.config.redis_key_prefix.clone());
    let drivers = &drivers;
    let got: Vec<(DriverId, anyhow::Result<_>)> =
        futures::stream::iter(expected.drivers.keys().cloned())
            .map(|d| async move {
                let r = drivers.get(&d).await.map_err(anyhow::Error::from);
                (d, r)
            })
            .buffer_unordered(32)
            .collect()
            .await;
    let mut wrong = Vec::new();
    for (d, r) in got {
        let want = &expected.drivers[&d];
        let have = r?.map(|a| (a.status, a.current_order_id));
        if have.as_ref() != Some(want) {
            wrong.push(format!("{d}: {have:?}, want {want:?}"));
        }
    }
    ensure!(
        wrong.is_empty(),
        "{} drivers differ in Redis, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    Ok(())
}
