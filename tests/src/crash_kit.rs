//! The crash and fault harness: a deterministic stream of order events, its expected
//! outcome computed with the pure state machine (the run without a fault), observers of the
//! output topics and of consumer groups, and the checks that compare a faulted run's end
//! state (ScyllaDB, topics, pushes, refunds, drivers in Redis) with the expected one.
//!
//! Shared by the kill -9 tests (`status_crash`, `faults`), the scale-out test and the soak
//! script. [`CrashRun`] drives one run: pipelines as real `doorstep` processes, the stream
//! produced in the background, faults injected at points of the stream, then every check.

use crate::eta_watch::{EtaReport, EtaWatch};
use crate::order_events::OrderScript;
use crate::pipeline_harness::{Scope, TEST_PARTITIONS};
use crate::process::DoorstepProcess;
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
use doorstep_schemas::avro::TopicRecord;
use doorstep_schemas::events::{
    Notification, OrderCommand, OrderEvent, RejectedRecord, StatusChange, topics,
};
use doorstep_schemas::model::{
    Actor, DriverId, DriverStatus, EventId, OrderId, OrderStatus, Timestamp, TrackingUpdate,
};
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Pause between production rounds (round k = the k-th event of every order).
const ROUND_PAUSE: Duration = Duration::from_millis(50);
/// Sends in flight while producing a round.
const PRODUCE_CONCURRENCY: usize = 256;
/// How long a wait for progress may take before the run fails.
pub const DEADLINE: Duration = Duration::from_secs(90);
/// The variable that fixes the seed of the fault points.
pub const SEED_VAR: &str = "CRASH_TEST_SEED";

/// What one run measured.
#[derive(Debug, Default)]
pub struct Report {
    pub orders: usize,
    pub kills: Vec<KillReport>,
    pub total: Duration,
    pub changes: usize,
    pub status_records: usize,
    pub rejects_expected: usize,
    pub reject_records: usize,
    pub outbox_records: usize,
    pub pushes: usize,
    pub push_requests: usize,
    /// Notifications pushed twice because a kill cut them between FCM and the ledger.
    pub pushes_repeated: Vec<String>,
    pub refunds: usize,
    pub refund_requests: usize,
    pub refund_replays: usize,
    /// The ETA pipeline's end state, when the run had one.
    pub eta: Option<EtaReport>,
}

#[derive(Debug, Default)]
pub struct KillReport {
    /// What was killed (`status`, `notify`, `all`) and the fault's name.
    pub what: String,
    /// Distinct accepted changes on the topic when the process was killed.
    pub at_changes: usize,
    /// Events on `orders.events.v1` not committed when the process was killed.
    pub backlog: i64,
    /// Restart → the first offset commit of the status group.
    pub first_commit: Option<Duration>,
    /// Restart → the first record the restarted process wrote to `orders.status.v1` (or
    /// `orders.eta.v1` for the ETA pipeline), by producer timestamp: a replayed duplicate
    /// counts, it is the first sign of work.
    pub first_output: Option<Duration>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs =
            |d: Option<Duration>| d.map_or("-".to_owned(), |d| format!("{:.2}s", d.as_secs_f64()));
        writeln!(
            f,
            "{} orders, {} accepted changes, done in {:.1}s",
            self.orders,
            self.changes,
            self.total.as_secs_f64()
        )?;
        for (i, k) in self.kills.iter().enumerate() {
            writeln!(
                f,
                "  {} {} at {}/{} changes ({:.0}%), {} events uncommitted: restart → first output record {}, → first commit {}",
                k.what,
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
            "  orders.status.v1 (read_committed): {} records, {} duplicates; orders.rejected.v1: {} records for {} rejects, {} duplicates",
            self.status_records,
            self.status_records - self.changes,
            self.reject_records,
            self.rejects_expected,
            self.reject_records - self.rejects_expected,
        )?;
        writeln!(
            f,
            "  notifications.v1 (read_committed): {} records, no duplicate, for {} pushes",
            self.outbox_records, self.pushes,
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
        )?;
        if let Some(eta) = &self.eta {
            write!(
                f,
                "\n  ETAs: {} records; {} active orders recomputed after the last restart, each with its timer; {} finished without timer or current ETA",
                eta.records, eta.active, eta.finished
            )?;
        }
        Ok(())
    }
}

/// The expected notifications whose sent-ledger entry is a claim, not a `sent` mark.
pub async fn pending_claims(ledger: &Ledger, expected: &Expected) -> anyhow::Result<Vec<String>> {
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
pub struct Ledger {
    pub redis: doorstep_connectors::redis::Redis,
    pub keys: SentLedger,
}

pub fn append_marker(log: &Path, line: &str) {
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
pub fn order_events(i: usize, start_ms: i64) -> Vec<OrderEvent> {
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
pub async fn produce(
    config: doorstep_pipelines::config::Config,
    orders: Vec<Vec<OrderEvent>>,
) -> anyhow::Result<()> {
    produce_paced(config, orders, Duration::ZERO).await
}

/// [`produce`], spread over about `span`: the orders are produced in 20 groups, one after
/// another, with a pause between groups (a long stream for many fault points).
///
/// # Errors
/// When a record cannot be produced.
pub async fn produce_paced(
    config: doorstep_pipelines::config::Config,
    orders: Vec<Vec<OrderEvent>>,
    span: Duration,
) -> anyhow::Result<()> {
    let groups = if span.is_zero() { 1 } else { 20 };
    let size = orders.len().div_ceil(groups).max(1);
    for group in orders.chunks(size) {
        let started = Instant::now();
        produce_rounds(&config, group).await?;
        tokio::time::sleep((span / 20).saturating_sub(started.elapsed())).await;
    }
    Ok(())
}

async fn produce_rounds(
    config: &doorstep_pipelines::config::Config,
    orders: &[Vec<OrderEvent>],
) -> anyhow::Result<()> {
    let producer = Arc::new(Producer::new(&KafkaConfig::new(
        &config.endpoints.kafka_brokers,
        "status-crash-producer",
    ))?);
    let catalog = crate::catalog().await?;
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
pub struct Expected {
    pub states: BTreeMap<OrderId, OrderState>,
    pub changes: BTreeMap<(OrderId, u32), StatusChange>,
    pub notifications: BTreeMap<String, Notification>,
    /// Payment intent → amount.
    pub refunds: BTreeMap<String, i64>,
    /// Rejected event → reason code.
    pub rejects: BTreeMap<EventId, String>,
    /// Driver → (status, current order).
    pub drivers: BTreeMap<DriverId, (DriverStatus, Option<OrderId>)>,
}

impl Expected {
    pub fn of(orders: &[Vec<OrderEvent>], policy: &OrderPolicy) -> Self {
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
pub struct TopicLog<T> {
    pub records: Arc<Mutex<Vec<(String, T)>>>,
    /// Producer timestamps of the records, in milliseconds.
    pub stamps: Arc<Mutex<Vec<i64>>>,
    pub distinct: Arc<Mutex<BTreeSet<(String, u32)>>>,
    pub errors: Arc<Mutex<Vec<String>>>,
    pub task: tokio::task::JoinHandle<()>,
}

/// The identity of a record for counting progress.
pub trait Identity {
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

impl Identity for TrackingUpdate {
    fn identity(&self) -> (String, u32) {
        (self.update_id.to_string(), 0)
    }
}

impl Identity for RejectedRecord {
    fn identity(&self) -> (String, u32) {
        let id = self.event_id.as_ref().map_or("", |e| e.as_str());
        (id.to_owned(), 0)
    }
}

pub async fn follow<T: TopicRecord + Identity + Send + 'static>(
    brokers: &str,
    topic: &str,
) -> anyhow::Result<TopicLog<T>> {
    let config = KafkaConfig::new(brokers, "status-crash-follower");
    let consumer = ConsumerBuilder::new(&config, crate::unique("follower")).subscribe(&[topic])?;
    let catalog = crate::catalog().await?;
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
        // The follower commits nothing: when the broker restarts and its group rejoins, it
        // reads the topic again from the start. A record at a position already read is that
        // same record, not a duplicate; only another position with the same identity is.
        let mut positions: BTreeSet<(i32, i64)> = BTreeSet::new();
        loop {
            match consumer.recv().await {
                Ok(rec) if !positions.insert((rec.partition, rec.offset)) => {}
                Ok(rec) => {
                    let key = String::from_utf8_lossy(rec.key.as_deref().unwrap_or_default())
                        .into_owned();
                    match catalog
                        .decode::<T>(rec.payload.as_deref().unwrap_or_default())
                        .await
                    {
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
    pub fn distinct(&self) -> usize {
        lock(&self.distinct).len()
    }

    /// Records read more than once (by identity): what exactly-once output forbids.
    pub fn duplicates(&self) -> usize {
        lock(&self.records).len().saturating_sub(self.distinct())
    }

    /// The earliest producer timestamp at or after `ms`, if a record that new was read.
    pub fn first_stamp_since(&self, ms: i64) -> Option<i64> {
        lock(&self.stamps)
            .iter()
            .copied()
            .filter(|t| *t >= ms)
            .min()
    }

    /// Stops following and returns what was read (fails on undecodable records).
    pub fn take(self) -> anyhow::Result<Vec<(String, T)>> {
        self.task.abort();
        let errors = lock(&self.errors).clone();
        ensure!(errors.is_empty(), "undecodable records: {errors:?}");
        Ok(std::mem::take(&mut *lock(&self.records)))
    }
}

pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reads a consumer group's committed offsets without joining it, and how far the data of
/// its topic goes.
///
/// A topic written in Kafka transactions holds a commit marker after each transaction's
/// records: the high watermark is one past it, while a consumer that read everything commits
/// the offset after its last data record. So the end of a partition is where its data ends,
/// which a `read_committed` follower learns (it counts only once it has read up to the
/// high watermark; before that the high watermark is used).
pub struct GroupProbe {
    pub consumer: Arc<BaseConsumer>,
    pub topic: String,
    /// Per partition: (offset after the last data record, the follower's position).
    tail: Arc<Mutex<BTreeMap<i32, (i64, i64)>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for GroupProbe {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl GroupProbe {
    pub fn new(brokers: &str, group: &str, topic: &str) -> anyhow::Result<Self> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("log_level", "3")
            .create()?;
        let follower: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", crate::unique("probe-tail"))
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .set("log_level", "3")
            .create()?;
        let mut all = TopicPartitionList::new();
        for p in 0..TEST_PARTITIONS {
            all.add_partition_offset(
                topic,
                p,
                doorstep_connectors::kafka::rdkafka::Offset::Beginning,
            )?;
        }
        follower.assign(&all)?;
        let tail = Arc::new(Mutex::new(BTreeMap::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (t, s) = (tail.clone(), stop.clone());
        std::thread::spawn(move || {
            use doorstep_connectors::kafka::rdkafka::Message as _;
            while !s.load(std::sync::atomic::Ordering::SeqCst) {
                if let Some(Ok(m)) = follower.poll(Duration::from_millis(100)) {
                    let mut tail = lock(&t);
                    let e = tail.entry(m.partition()).or_insert((0, 0));
                    e.0 = e.0.max(m.offset() + 1);
                }
                if let Ok(positions) = follower.position() {
                    let mut tail = lock(&t);
                    for e in positions.elements() {
                        if let Some(o) = e.offset().to_raw().filter(|o| *o >= 0) {
                            let entry = tail.entry(e.partition()).or_insert((0, 0));
                            entry.1 = entry.1.max(o);
                        }
                    }
                }
            }
        });
        Ok(Self {
            consumer: Arc::new(consumer),
            topic: topic.to_owned(),
            tail,
            stop,
        })
    }

    /// Committed offsets and end offsets per partition.
    pub async fn positions(&self) -> anyhow::Result<Vec<(i64, i64)>> {
        let consumer = self.consumer.clone();
        let topic = self.topic.clone();
        let tail = self.tail.clone();
        tokio::task::spawn_blocking(move || {
            // Generous: a busy 2-core machine running the whole suite answers slowly.
            let timeout = Duration::from_secs(20);
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
                let (_, high) = consumer.fetch_watermarks(&topic, p, timeout)?;
                let end = match lock(&tail).get(&p) {
                    Some((data_end, position)) if *position >= high => *data_end,
                    _ => high,
                };
                out.push((done, end));
            }
            anyhow::Ok(out)
        })
        .await?
    }

    /// Sum of the committed offsets.
    pub async fn committed(&self) -> anyhow::Result<i64> {
        Ok(self.positions().await?.iter().map(|(c, _)| c).sum())
    }

    /// Records not yet committed.
    pub async fn lag(&self) -> anyhow::Result<i64> {
        Ok(self
            .positions()
            .await?
            .iter()
            .map(|(c, e)| (e - c).max(0))
            .sum())
    }
}

// ---------------------------------------------------------------------------------------
// The checks.

/// Whether the processes of a run write their outputs exactly once (`kafka.exactly_once`,
/// on unless the run's environment turns it off): then a duplicate on an output topic fails
/// the run; at-least-once runs report duplicates instead.
pub fn exactly_once(env: &BTreeMap<String, String>) -> bool {
    env.get("DOORSTEP_KAFKA_EXACTLY_ONCE")
        .is_none_or(|v| v.trim() != "false")
}

pub fn check_status_topic(
    expected: &Expected,
    records: &[(String, StatusChange)],
    report: &mut Report,
    strict: bool,
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
        if !seen.insert(id.clone()) && strict {
            wrong.push(format!("duplicate {}#{} (exactly-once broken)", id.0, id.1));
        }
    }
    ensure!(
        wrong.is_empty(),
        "{} wrong or duplicate records on orders.status.v1, e.g.\n{}",
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

pub fn check_rejects(
    expected: &Expected,
    records: &[(String, RejectedRecord)],
    report: &mut Report,
    strict: bool,
) -> anyhow::Result<()> {
    report.reject_records = records.len();
    let mut got: BTreeMap<EventId, String> = BTreeMap::new();
    for (_, r) in records {
        let id = r.event_id.clone().context("a reject without an event id")?;
        ensure!(
            !strict || !got.contains_key(&id),
            "{id} rejected twice on orders.rejected.v1 (exactly-once broken)"
        );
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

pub fn diff_keys<K: Ord + Clone, V: PartialEq>(a: &BTreeMap<K, V>, b: &BTreeMap<K, V>) -> Vec<K> {
    a.iter()
        .filter(|(k, v)| b.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .take(10)
        .collect()
}

pub async fn check_store(scope: &Scope, expected: &Expected) -> anyhow::Result<()> {
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
            // The ETA belongs to the ETA pipeline (`doorstep pipeline all` runs it too),
            // which the oracle does not model.
            Some(mut got) => {
                got.order.estimated_delivery_at = want.order.estimated_delivery_at;
                if &got != want {
                    wrong.push(describe_difference(&id, &got, want));
                }
            }
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

pub fn describe_difference(id: &OrderId, got: &OrderState, want: &OrderState) -> String {
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

/// Every expected push sent, to the right recipient with the right text, exactly once; one
/// more copy is tolerated per fault that cut the push in flight (claimed in the sent-ledger,
/// not yet marked sent: FCM has no idempotency key, so whether it had accepted the copy
/// being sent is unknowable — the window the ledger documents). A push whose takeover is
/// killed mid-send again was cut twice and may arrive three times.
pub fn check_pushes(
    scope: &Scope,
    expected: &Expected,
    in_flight: &BTreeMap<String, u32>,
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
        .filter(|(k, v)| v.len() > 1 + in_flight.get(*k).copied().unwrap_or(0) as usize)
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

pub fn check_refunds(
    scope: &Scope,
    expected: &Expected,
    report: &mut Report,
) -> anyhow::Result<()> {
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

pub async fn check_drivers(scope: &Scope, expected: &Expected) -> anyhow::Result<()> {
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

// ---------------------------------------------------------------------------------------
// Driving a run.

/// One run of the stream against pipelines running as real `doorstep` processes, with faults
/// injected by the caller between [`start`](Self::start) and [`finish`](Self::finish).
pub struct CrashRun<'a> {
    scope: &'a Scope,
    env: BTreeMap<String, String>,
    log: std::path::PathBuf,
    /// The outcome of the run without a fault.
    pub expected: Expected,
    status_log: TopicLog<StatusChange>,
    reject_log: TopicLog<RejectedRecord>,
    outbox_log: TopicLog<Notification>,
    status_group: GroupProbe,
    notify_group: GroupProbe,
    /// The ETA pipeline, when the run has one.
    eta: Option<EtaWatch>,
    ledger: Ledger,
    processes: Vec<(String, Option<DoorstepProcess>)>,
    spawned: usize,
    producer: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    /// Pushes a fault may have cut between FCM and the ledger, with the number of such faults.
    in_flight: BTreeMap<String, u32>,
    /// What was measured so far.
    pub report: Report,
    started: Instant,
    /// The run's seeded generator (fault points, pauses).
    pub rng: doorstep_pipelines::simulate::SplitMix,
}

impl<'a> CrashRun<'a> {
    /// Starts `processes` (`doorstep pipeline <name>` each) and the producer of `orders`
    /// orders; the processes log to `log`.
    ///
    /// # Errors
    /// When a process or an observer cannot be started.
    pub async fn start(
        scope: &'a Scope,
        processes: &[&str],
        orders: usize,
        seed: u64,
        log: &Path,
    ) -> anyhow::Result<Self> {
        Self::start_paced(scope, processes, orders, seed, log, Duration::ZERO).await
    }

    /// [`start`](Self::start) with the stream spread over about `span`.
    ///
    /// # Errors
    /// When a process or an observer cannot be started.
    pub async fn start_paced(
        scope: &'a Scope,
        processes: &[&str],
        orders: usize,
        seed: u64,
        log: &Path,
        span: Duration,
    ) -> anyhow::Result<Self> {
        let started = Instant::now();
        let start_ms = Timestamp::now().as_millis();
        let stream: Vec<Vec<OrderEvent>> = (0..orders)
            .map(|i| order_events(i, start_ms + i64::try_from(i).unwrap_or_default()))
            .collect();
        let expected = Expected::of(&stream, &scope.config.policy);
        let brokers = scope.config.endpoints.kafka_brokers.clone();
        let redis = doorstep_pipelines::assemble::redis(&scope.config).await?;
        let mut env = scope.env.clone();
        env.insert("DOORSTEP_OPS_LISTEN".into(), "127.0.0.1:0".into());
        env.insert("DOORSTEP_LOG".into(), "info,scylla=off".into());
        let mut run = Self {
            scope,
            env,
            log: log.to_owned(),
            report: Report {
                orders,
                changes: expected.changes.len(),
                rejects_expected: expected.rejects.len(),
                ..Report::default()
            },
            expected,
            status_log: follow(&brokers, &scope.topic(topics::ORDER_STATUS)).await?,
            reject_log: follow(&brokers, &scope.topic(topics::ORDER_REJECTED)).await?,
            outbox_log: follow(&brokers, &scope.topic(topics::NOTIFICATIONS)).await?,
            status_group: GroupProbe::new(
                &brokers,
                &scope.config.group_id("status"),
                &scope.topic(topics::ORDER_EVENTS),
            )?,
            notify_group: GroupProbe::new(
                &brokers,
                &scope.config.group_id("notify"),
                &scope.topic(topics::NOTIFICATIONS),
            )?,
            eta: if processes.contains(&"eta") {
                Some(EtaWatch::new(scope, eta_interval(&scope.env)).await?)
            } else {
                None
            },
            ledger: Ledger {
                keys: SentLedger::new(redis.clone(), scope.config.redis_key_prefix.clone()),
                redis,
            },
            processes: Vec::new(),
            spawned: 0,
            producer: None,
            in_flight: BTreeMap::new(),
            started,
            rng: doorstep_pipelines::simulate::SplitMix(seed),
        };
        for what in processes {
            run.add_process(what)?;
        }
        run.producer = Some(tokio::spawn(produce_paced(
            scope.config.clone(),
            stream,
            span,
        )));
        Ok(run)
    }

    /// Accepted changes expected in all.
    pub fn total(&self) -> usize {
        self.report.changes
    }

    /// Distinct accepted changes seen on `orders.status.v1` so far.
    pub fn changes(&self) -> usize {
        self.status_log.distinct()
    }

    /// Starts another `doorstep pipeline <what>` process; returns its index.
    ///
    /// # Errors
    /// When it cannot be started.
    pub fn add_process(&mut self, what: &str) -> anyhow::Result<usize> {
        self.spawned += 1;
        let p = self.spawn(what)?;
        self.processes.push((what.to_owned(), Some(p)));
        Ok(self.processes.len() - 1)
    }

    fn spawn(&mut self, what: &str) -> anyhow::Result<DoorstepProcess> {
        if what == "eta"
            && let Some(eta) = &mut self.eta
        {
            eta.started_ms = Timestamp::now().as_millis();
        }
        append_marker(
            &self.log,
            &format!("=== doorstep pipeline {what}, process {} ===", self.spawned),
        );
        DoorstepProcess::spawn(&["pipeline", what], &self.env, &self.log)
    }

    /// Fails if a running process exited on its own.
    ///
    /// # Errors
    /// When one did.
    pub fn alive(&mut self) -> anyhow::Result<()> {
        for (what, p) in &mut self.processes {
            if let Some(p) = p
                && let Some(status) = p.exited()?
            {
                bail!("doorstep pipeline {what} exited on its own: {status}");
            }
        }
        Ok(())
    }

    /// Waits until `fraction` of the expected changes are out; returns how many are.
    ///
    /// # Errors
    /// When it takes longer than [`DEADLINE`] or a process dies.
    pub async fn reach(&mut self, fraction: f64) -> anyhow::Result<usize> {
        let target = (self.total() as f64 * fraction) as usize;
        let end = Instant::now() + DEADLINE;
        while self.changes() < target {
            ensure!(
                Instant::now() < end,
                "the pipelines did not reach {target} of {} changes; they have {}",
                self.total(),
                self.changes()
            );
            self.alive()?;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(self.changes())
    }

    /// Notes the pushes in flight (claimed, not marked sent) before a process that sends
    /// pushes is cut off: a second copy of those is the ledger's documented window.
    async fn note_in_flight(&mut self) -> anyhow::Result<()> {
        let pending = pending_claims(&self.ledger, &self.expected).await?;
        self.note_cut(pending.into_iter().collect());
        Ok(())
    }

    /// Notes the pushes one fault may have cut between FCM and the ledger: each may be pushed
    /// once more than before. A push cut by two faults (a takeover killed mid-send again) may
    /// have three copies; one copy more than its faults allow still fails.
    pub fn note_cut(&mut self, pushes: BTreeSet<String>) {
        for id in pushes {
            *self.in_flight.entry(id).or_default() += 1;
        }
    }

    /// Kills process `index` with SIGKILL; with `restart`, starts the same pipeline again
    /// after a random pause (0–500 ms) and measures restart → first commit.
    ///
    /// # Errors
    /// When the kill came after the end of the stream, or no progress follows the restart.
    pub async fn kill(&mut self, index: usize, restart: bool) -> anyhow::Result<()> {
        let (what, process) = &mut self.processes[index];
        let what = what.clone();
        let process = process.take().context("that process is not running")?;
        process.kill9().await?;
        let at_changes = self.changes();
        // The status pipeline's changes are what this counts; another pipeline's kill is
        // mid-stream by the paced input (its outputs lag the status changes).
        ensure!(
            what != "status" || at_changes < self.total(),
            "the kill came after the whole stream was processed: not a mid-stream crash"
        );
        if what != "status" {
            self.note_in_flight().await?;
        }
        let committed_at_kill = self.group(&what).committed().await?;
        let backlog = self.group(&what).lag().await?;
        let mut kill = KillReport {
            what: format!("kill -9 {what}"),
            at_changes,
            backlog,
            ..KillReport::default()
        };
        if restart {
            tokio::time::sleep(Duration::from_millis(self.rng.below(500))).await;
            let restarted_ms = Timestamp::now().as_millis();
            self.spawned += 1;
            let p = self.spawn(&what)?;
            self.processes[index].1 = Some(p);
            let restarted = Instant::now();
            // Notify may have nothing left to commit; status always has (the kill was
            // mid-stream).
            let wait_commit = what != "notify" || backlog > 0;
            while (wait_commit && kill.first_commit.is_none())
                || (what != "notify" && kill.first_output.is_none())
            {
                ensure!(
                    restarted.elapsed() < DEADLINE,
                    "no progress within {DEADLINE:?} of restarting {what}"
                );
                self.alive()?;
                let output = match &self.eta {
                    Some(eta) if what == "eta" => eta.log.first_stamp_since(restarted_ms),
                    _ => self.status_log.first_stamp_since(restarted_ms),
                };
                if kill.first_output.is_none()
                    && let Some(at) = output
                {
                    let ms = u64::try_from(at - restarted_ms).unwrap_or_default();
                    kill.first_output = Some(Duration::from_millis(ms));
                }
                if kill.first_commit.is_none()
                    && self.group(&what).committed().await? > committed_at_kill
                {
                    kill.first_commit = Some(restarted.elapsed());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        self.report.kills.push(kill);
        Ok(())
    }

    /// The consumer group of pipeline `what`.
    fn group(&self, what: &str) -> &GroupProbe {
        match (what, &self.eta) {
            ("notify", _) => &self.notify_group,
            ("eta", Some(eta)) => &eta.group,
            _ => &self.status_group,
        }
    }

    /// Records a fault other than a kill (a service restart, an outage) in the report.
    pub fn note_fault(&mut self, what: &str) {
        let at_changes = self.changes();
        self.report.kills.push(KillReport {
            what: what.to_owned(),
            at_changes,
            ..KillReport::default()
        });
    }

    /// The notification ids the push provider has received so far.
    pub fn pushed(&self) -> BTreeSet<String> {
        self.scope
            .fcm
            .messages()
            .iter()
            .filter_map(|m| m.data.get("notification_id").cloned())
            .collect()
    }

    /// The pushes claimed in the sent-ledger and not marked sent, i.e. in flight (for a
    /// fault that may cut a push mid-send, such as a Redis restart: pass what it cut to
    /// [`note_cut`](Self::note_cut) once).
    ///
    /// # Errors
    /// When Redis cannot be read within 30 s.
    pub async fn pending_pushes(&self) -> anyhow::Result<BTreeSet<String>> {
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            match pending_claims(&self.ledger, &self.expected).await {
                Ok(pending) => return Ok(pending.into_iter().collect()),
                // Right after a Redis restart the first commands may fail.
                Err(e) if Instant::now() < end => {
                    tracing::warn!(error = %e, "reading the push ledger; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Says where the expected changes the follower never read are: whether a second reader
    /// of `orders.status.v1` from the beginning finds them (a reader's fault, not the
    /// pipeline's), what the order rows hold, whether any change read so far differs from
    /// the expected one (a sequence number given to another change), and the rejects the run
    /// without a fault does not have (an event refused as poison).
    async fn explain_missing(&self) -> String {
        let seen = lock(&self.status_log.distinct).clone();
        let missing: Vec<&StatusChange> = self
            .expected
            .changes
            .iter()
            .filter(|((o, s), _)| !seen.contains(&(o.to_string(), *s)))
            .map(|(_, c)| c)
            .take(5)
            .collect();
        let mut said = String::new();
        let brokers = &self.scope.config.endpoints.kafka_brokers;
        let topic = self.scope.topic(topics::ORDER_STATUS);
        let reread = match follow::<StatusChange>(brokers, &topic).await {
            Ok(fresh) => {
                let end = Instant::now() + Duration::from_secs(30);
                while fresh.distinct() < seen.len() + missing.len() && Instant::now() < end {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                // Whatever else is there arrives within this.
                tokio::time::sleep(Duration::from_secs(2)).await;
                fresh.task.abort();
                Some(lock(&fresh.distinct).clone())
            }
            Err(e) => {
                said.push_str(&format!("\n  a second reader could not start: {e:#}"));
                None
            }
        };
        let store = self.scope.store().await;
        for c in missing {
            let id = (c.order_id.to_string(), c.seq);
            let on_topic = match &reread {
                Some(r) if r.contains(&id) => "a second reader finds it on the topic",
                Some(_) => "a second reader does not find it either",
                None => "not re-read",
            };
            let stored = match &store {
                Ok(store) => match store.load(&c.order_id).await {
                    Ok(Some(state)) => {
                        describe_difference(&c.order_id, &state, &self.expected.states[&c.order_id])
                    }
                    Ok(None) => "order not stored".to_owned(),
                    Err(e) => format!("order row unreadable: {e}"),
                },
                Err(e) => format!("store unreachable: {e:#}"),
            };
            said.push_str(&format!(
                "\n  missing {}#{} {:?}→{:?} (event {}): {on_topic}; {stored}",
                c.order_id, c.seq, c.from, c.to, c.event_id
            ));
        }
        let wrong: Vec<String> = lock(&self.status_log.records)
            .iter()
            .filter(|(_, c)| {
                self.expected
                    .changes
                    .get(&(c.order_id.clone(), c.seq))
                    .is_some_and(|want| want != c)
            })
            .take(5)
            .map(|(_, c)| format!("\n  read {c:?}, which differs from the expected change"))
            .collect();
        said.extend(wrong);
        let unexpected: Vec<String> = lock(&self.reject_log.records)
            .iter()
            .filter(|(_, r)| {
                r.event_id
                    .as_ref()
                    .is_none_or(|id| self.expected.rejects.get(id) != Some(&r.reason_code))
            })
            .take(5)
            .map(|(_, r)| {
                format!(
                    "\n  unexpected reject of {:?} ({}) by {}: {}",
                    r.event_id, r.reason_code, r.rejected_by, r.message
                )
            })
            .collect();
        said.extend(unexpected);
        said
    }

    /// The lag of the status, notify and ETA (0 when not run) groups.
    async fn lags(&self) -> anyhow::Result<(i64, i64, i64)> {
        let status = self.status_group.lag().await?;
        let notify = self.notify_group.lag().await?;
        let eta = match &self.eta {
            Some(eta) => eta.group.lag().await?,
            None => 0,
        };
        Ok((status, notify, eta))
    }

    /// Waits for the end of the stream (every event and notification committed, every
    /// change out), stops the processes and runs every check against the expected outcome.
    ///
    /// # Errors
    /// When anything differs from the run without a fault.
    pub async fn finish(mut self) -> anyhow::Result<Report> {
        if let Some(p) = self.producer.take() {
            p.await??;
        }
        let end = Instant::now() + DEADLINE * 2;
        loop {
            // A broker that was just restarted answers metadata before its group coordinator
            // has loaded the committed offsets: asking again is all there is to do.
            let (status, notify, eta) = match self.lags().await {
                Ok(lags) => lags,
                Err(e) if Instant::now() < end => {
                    tracing::warn!(error = %e, "cannot read the groups' lag yet");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
                Err(e) => return Err(e.context("reading the groups' lag")),
            };
            let distinct = self.changes();
            if status == 0 && notify == 0 && eta == 0 && distinct == self.total() {
                break;
            }
            self.alive()?;
            if Instant::now() >= end {
                let pending = pending_claims(&self.ledger, &self.expected).await?;
                let missing = if distinct < self.total() {
                    self.explain_missing().await
                } else {
                    String::new()
                };
                bail!(
                    "not done within {:?}: status lag {status}, notify lag {notify}, ETA lag {eta}, {distinct}/{} changes; {} pushes claimed but never marked sent: {:?}{missing}",
                    DEADLINE * 2,
                    self.total(),
                    pending.len(),
                    pending.iter().take(5).collect::<Vec<_>>()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Stragglers (a duplicate push, a late record) would arrive within this.
        tokio::time::sleep(Duration::from_secs(1)).await;
        // While the processes still run: the ETA timers must fire after the last restart.
        if let Some(eta) = &self.eta {
            self.report.eta = Some(eta.check(self.scope, &self.expected).await?);
        }
        self.report.total = self.started.elapsed();
        for (_, p) in &mut self.processes {
            if let Some(p) = p.take() {
                p.kill9().await?;
            }
        }
        let scope = self.scope;
        let mut report = self.report;
        let strict = exactly_once(&self.env);
        check_status_topic(
            &self.expected,
            &self.status_log.take()?,
            &mut report,
            strict,
        )?;
        check_rejects(
            &self.expected,
            &self.reject_log.take()?,
            &mut report,
            strict,
        )?;
        let outbox = self.outbox_log.take()?;
        report.outbox_records = outbox.len();
        let mut notified = BTreeSet::new();
        for (_, n) in &outbox {
            ensure!(
                notified.insert(n.notification_id.clone()) || !strict,
                "notification {} twice on notifications.v1 (exactly-once broken)",
                n.notification_id
            );
        }
        check_store(scope, &self.expected).await?;
        check_pushes(scope, &self.expected, &self.in_flight, &mut report)?;
        check_refunds(scope, &self.expected, &mut report)?;
        check_drivers(scope, &self.expected).await?;
        Ok(report)
    }
}

/// The ETA recomputation period the processes of a run use (`DOORSTEP_ETA_RECOMPUTE_INTERVAL_S`
/// in `env`, else the default 30 s).
fn eta_interval(env: &BTreeMap<String, String>) -> Duration {
    let secs = env
        .get("DOORSTEP_ETA_RECOMPUTE_INTERVAL_S")
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    Duration::from_secs(secs)
}

/// The seed of a run: `CRASH_TEST_SEED` when set, else drawn from the clock (printed, so a
/// failing run's fault points can be drawn again).
pub fn seed(name: &str) -> u64 {
    let seed = std::env::var(SEED_VAR)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            u64::try_from(Timestamp::now().as_millis()).unwrap_or_default()
                ^ u64::from(std::process::id())
        });
    eprintln!("{name}: seed {seed} ({SEED_VAR}={seed} draws the same fault points)");
    seed
}

/// The number of kills of a kill-trial test: `var` when it holds a number (at least 1),
/// else `default` (`scripts/soak` raises them).
pub fn kills_from_env(var: &str, default: u32) -> u32 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
        .max(1)
}

/// `kills` increasing points in 5–75 % of a stream, one drawn in each of as many slices.
/// Not later: outputs become visible a whole batch (one transaction) at a time, and the last
/// batches of a run can cover its last fifth at once.
pub fn fault_points(rng: &mut doorstep_pipelines::simulate::SplitMix, kills: u32) -> Vec<f64> {
    let slice = 0.70 / f64::from(kills);
    (0..kills)
        .map(|i| {
            let lo = 0.05 + slice * f64::from(i);
            rng.fraction(lo, lo + slice * 0.9)
        })
        .collect()
}

/// Where the processes of `scope` log.
pub fn log_path(scope: &Scope) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "{}-doorstep.log",
        scope.env["DOORSTEP_GROUP_PREFIX"]
    ))
}

/// Runs `body`; on failure adds the seed and the log's tail to the error, on success prints
/// the report and removes the log.
///
/// # Errors
/// `body`'s, with context.
pub async fn reported<F, R>(name: &str, seed: u64, log: &Path, body: F) -> anyhow::Result<()>
where
    F: std::future::Future<Output = anyhow::Result<R>>,
    R: std::fmt::Display,
{
    match body.await {
        Ok(report) => {
            eprintln!("{name}: {report}");
            let _ = std::fs::remove_file(log);
            Ok(())
        }
        Err(e) => bail!(
            "{e:#}\n\nseed {seed} ({SEED_VAR}={seed}); pipeline log {}; its tail:\n{}",
            log.display(),
            crate::process::log_tail(log, 60)
        ),
    }
}
