//! The runtime's loop: batches in, stage, commit; ticks; assignment changes; shutdown.
//!
//! Every call into the stage is one unit of work ([`Work`]). With a transactional producer
//! ([`Runtime::with_transactions`]) a unit runs inside one Kafka transaction, together with
//! the offsets of the records it consumed: its records and its offsets are committed
//! together or not at all. A failed attempt is aborted (its records discarded) and redone in
//! a new transaction after the backoff; the stage's other effects are idempotent, so a redo
//! changes nothing twice. Without one (replays, which write no topic), the offsets are
//! committed after the unit.

use super::source;
use super::{
    Batcher, OffsetTracker, PoisonRejects, RuntimeMetrics, SourceRecord, Stage, StageError,
    StopOffsets,
};
use crate::shutdown::{self, Signal};
use doorstep_connectors::kafka::Error as KafkaError;
use doorstep_connectors::kafka::{Consumer, Epoch, Producer, TopicPartition};
use doorstep_connectors::retry::{RetryClass, RetryPolicy, retry_until, retry_with};
use doorstep_schemas::model::Timestamp;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Tuning of the runtime loop.
#[derive(Debug, Clone, Copy)]
pub struct RuntimeConfig {
    /// Batching of source records.
    pub batch: Batcher,
    /// Capacity of the queue between source and stage (backpressure bound).
    pub queue_capacity: usize,
    /// Period of [`Stage::on_tick`] and of assignment checks.
    pub tick: Duration,
    /// Backoff between retries of a failed batch (the shared [`RetryPolicy`]; its attempt
    /// limit does not apply: a batch is retried until it succeeds or shutdown).
    pub retry: RetryPolicy,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            batch: Batcher {
                // 2000: +25–40% over 500 when catching up a backlog (bench), no effect on
                // live latency.
                max: 2_000,
                linger: Duration::from_millis(5),
            },
            queue_capacity: 5_000,
            tick: Duration::from_secs(1),
            retry: RetryPolicy::default()
                .with_backoff(Duration::from_millis(100), Duration::from_secs(5)),
        }
    }
}

/// Why the runtime stopped other than by shutdown.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The stage reported a fatal error.
    #[error("stage failed: {0}")]
    Stage(StageError),
    /// The transactional producer can no longer be used (a newer producer with the same
    /// transactional id fenced it, or librdkafka raised a fatal error): this process must
    /// stop and be restarted.
    #[error("Kafka transactions unusable: {0}")]
    Transactions(#[source] doorstep_connectors::kafka::Error),
    /// The source thread could not be started.
    #[error("cannot start the source thread: {0}")]
    Source(#[source] std::io::Error),
}

/// One call into the stage, run as one unit (one transaction, when transactional).
#[derive(Debug, Clone, Copy)]
enum Work<'a> {
    /// Process these records.
    Batch(&'a [SourceRecord]),
    /// Timers and periodic work.
    Tick(Timestamp),
    /// The owned partitions changed.
    Assignment {
        assigned: &'a [i32],
        revoked: &'a [i32],
    },
    /// Write this record, which the stage failed on for good, to the reject topic.
    Reject(&'a PoisonRejects, &'a SourceRecord, &'a StageError),
}

impl Work<'_> {
    /// What the logs call it.
    fn name(&self) -> &'static str {
        match self {
            Work::Batch(b) if b.len() == 1 => "record",
            Work::Batch(_) => "batch",
            Work::Tick(_) => "tick",
            Work::Assignment { .. } => "assignment",
            Work::Reject(..) => "reject",
        }
    }

    /// The (partition, last offset) positions this unit consumes.
    fn consumed(&self) -> Vec<(i32, i64)> {
        let mut done = OffsetTracker::default();
        match self {
            Work::Batch(records) => {
                for r in *records {
                    done.done(r.partition, r.offset);
                }
            }
            Work::Reject(_, record, _) => done.done(record.partition, record.offset),
            Work::Tick(_) | Work::Assignment { .. } => {}
        }
        done.take()
    }
}

/// How one attempt at a unit of work ended.
enum Attempt {
    /// Done: its records and offsets are committed.
    Done,
    /// A batch holds records of partitions this process no longer owns (they moved while
    /// it waited to retry): it must be filtered again before another attempt.
    Moved,
    /// It failed and was undone; try again after the backoff.
    Retry(StageError),
    /// It failed for good (the stage's error; the transaction was aborted).
    Failed(StageError),
}

/// How a unit of work ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    /// Done: committed.
    Done,
    /// Shutdown came first; nothing of it is committed.
    Stopped,
    /// Some of its partitions moved to another process (see [`Attempt::Moved`]).
    Moved,
}

/// Runs one stage over one subscribed consumer.
pub struct Runtime {
    consumer: Arc<Consumer>,
    topic: String,
    config: RuntimeConfig,
    metrics: RuntimeMetrics,
    poison: Option<PoisonRejects>,
    stop: Option<StopOffsets>,
    transactions: Option<Producer>,
}

impl Runtime {
    /// A runtime reading `topic` through `consumer` (already subscribed).
    pub fn new(
        consumer: Consumer,
        topic: impl Into<String>,
        config: RuntimeConfig,
        metrics: RuntimeMetrics,
    ) -> Self {
        Self {
            consumer: Arc::new(consumer),
            topic: topic.into(),
            config,
            metrics,
            poison: None,
            stop: None,
            transactions: None,
        }
    }

    /// Writes records the stage fails on for good to the reject topic instead of stopping
    /// (see the module docs).
    pub fn with_poison_rejects(mut self, rejects: PoisonRejects) -> Self {
        self.poison = Some(rejects);
        self
    }

    /// Runs every unit of work in a transaction of `producer` (a transactional producer,
    /// [`Producer::transactional`]) and commits the consumed offsets inside it. The stage and
    /// the poison rejects must send through clones of the same producer.
    pub fn with_transactions(mut self, producer: Producer) -> Self {
        self.transactions = Some(producer);
        self
    }

    /// Stops by itself once every partition in `stop` reached its stop offset (exclusive);
    /// partitions not in `stop` are not read.
    pub fn bounded(mut self, stop: StopOffsets) -> Self {
        self.stop = Some(stop);
        self
    }

    /// The runtime's metrics (shared with the running loop).
    pub fn metrics(&self) -> &RuntimeMetrics {
        &self.metrics
    }

    /// Runs until `shutdown` says stop (then finishes the batch in hand and commits) or the
    /// stage fails fatally.
    pub async fn run<S: Stage>(
        self,
        mut stage: S,
        mut shutdown: Signal,
    ) -> Result<(), RuntimeError> {
        let (tx, mut rx) = mpsc::channel(self.config.queue_capacity);
        let source = source::spawn(
            self.consumer.clone(),
            tx,
            self.metrics.clone(),
            self.stop.clone(),
        )
        .map_err(RuntimeError::Source)?;
        let mut ticker = tokio::time::interval(self.config.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut owned: Owned = Owned::new();
        let mut offsets = OffsetTracker::default();
        // The batch being gathered lives out here: the select! below drops the gathering
        // future whenever a tick comes first, and records already taken from the queue must
        // not go with it (later offsets would be committed past them).
        let mut gathering: Vec<SourceRecord> = Vec::new();
        let result = loop {
            tokio::select! {
                biased;
                _ = shutdown::stopped(&mut shutdown) => break Ok(()),
                _ = ticker.tick() => {
                    if let Err(e) = self.check_assignment(&mut stage, &mut owned, &mut offsets, &mut shutdown).await {
                        break Err(e);
                    }
                    self.observe_lag();
                    match self.unit(&mut stage, Work::Tick(Timestamp::now()), &mut offsets, &mut shutdown).await {
                        Ok(Unit::Done | Unit::Moved) => {}
                        Ok(Unit::Stopped) => break Ok(()),
                        Err(e) => break Err(e),
                    }
                }
                () = self.config.batch.fill(&mut rx, &mut gathering) => {
                    if gathering.is_empty() {
                        break Ok(());
                    }
                    let batch = std::mem::take(&mut gathering);
                    match self.process(&mut stage, batch, &mut owned, &mut offsets, &mut shutdown).await {
                        Ok(true) => {}
                        // Shutdown during retries: the batch is not committed; it is read
                        // again by whoever owns the partition next.
                        Ok(false) => break Ok(()),
                        Err(e) => break Err(e),
                    }
                }
            }
        };
        drop(source);
        self.commit_consumer(&mut offsets).await;
        result
    }

    /// Processes one gathered batch: leaves out the stale records (of partitions this process
    /// no longer owns, is handing over, or owns again under a newer assignment), holds the
    /// fence over the rest while they are in flight, isolates poison records. `Ok(false)`
    /// when shutdown interrupted it.
    async fn process<S: Stage>(
        &self,
        stage: &mut S,
        mut batch: Vec<SourceRecord>,
        owned: &mut Owned,
        offsets: &mut OffsetTracker,
        shutdown: &mut Signal,
    ) -> Result<bool, RuntimeError> {
        loop {
            // Partitions move whenever a process joins or leaves. Take note now, not at the
            // next tick, and drop the records read under an assignment that ended: their
            // partition is read again from the last commit (by its new owner, or by this
            // process when the partition came back to it).
            if self
                .check_assignment(stage, owned, offsets, shutdown)
                .await?
            {
                self.leave_stale(&mut batch, |r| owned.get(&r.partition) != Some(&r.epoch));
            }
            match self.process_owned(stage, &batch, offsets, shutdown).await? {
                Unit::Done => return Ok(true),
                Unit::Stopped => return Ok(false),
                Unit::Moved => {}
            }
        }
    }

    /// [`process`](Self::process) of a batch of owned partitions.
    async fn process_owned<S: Stage>(
        &self,
        stage: &mut S,
        batch: &[SourceRecord],
        offsets: &mut OffsetTracker,
        shutdown: &mut Signal,
    ) -> Result<Unit, RuntimeError> {
        let mut batch = batch.to_vec();
        // The fence: records of an assignment that ended meanwhile are left out, and the
        // other partitions cannot leave this process until the guard is dropped, after the
        // batch's transaction.
        let _guard = loop {
            let partitions: BTreeMap<TopicPartition, Epoch> = batch
                .iter()
                .map(|r| {
                    (
                        TopicPartition::new(self.topic.as_str(), r.partition),
                        r.epoch,
                    )
                })
                .collect();
            match self.consumer.fence().enter(partitions) {
                Ok(guard) => break guard,
                Err(stale) => {
                    let stale: BTreeSet<i32> = stale.iter().map(|p| p.partition).collect();
                    self.leave_stale(&mut batch, |r| stale.contains(&r.partition));
                }
            }
        };
        if batch.is_empty() {
            return Ok(Unit::Done);
        }
        self.metrics.records_in.inc_by(batch.len() as u64);
        self.metrics
            .uncommitted_records
            .add(i64::try_from(batch.len()).unwrap_or(i64::MAX));
        self.metrics.batch_size.observe(batch.len() as f64);
        let timer = self.metrics.batch_seconds.start_timer();
        let started = std::time::Instant::now();
        let mut done = self
            .unit(stage, Work::Batch(&batch), offsets, shutdown)
            .await;
        if let Err(RuntimeError::Stage(e)) = &done
            && let Some(poison) = &self.poison
        {
            tracing::warn!(error = %e, records = batch.len(), "batch failed for good; retrying its records one by one to isolate the poison");
            done = self.isolate(stage, &batch, offsets, shutdown, poison).await;
        }
        self.metrics
            .stage_busy_seconds
            .inc_by(started.elapsed().as_secs_f64());
        if matches!(done, Ok(Unit::Done)) {
            timer.observe_duration();
            self.metrics.batches.inc();
        }
        done
    }

    /// Drops the records of `batch` that `stale` says were read under an assignment that
    /// ended.
    fn leave_stale(&self, batch: &mut Vec<SourceRecord>, stale: impl Fn(&SourceRecord) -> bool) {
        let before = batch.len();
        batch.retain(|r| !stale(r));
        let dropped = before - batch.len();
        if dropped > 0 {
            self.metrics
                .records_left_to_new_owner
                .inc_by(dropped as u64);
            tracing::info!(
                dropped,
                "records read under an assignment that ended left out; their partitions are read again from the last commit"
            );
        }
    }

    /// Runs `work` until it is done: each attempt in its own transaction (when
    /// transactional), retriable failures retried after the backoff. `Err` when it failed
    /// for good.
    async fn unit<S: Stage>(
        &self,
        stage: &mut S,
        work: Work<'_>,
        offsets: &mut OffsetTracker,
        shutdown: &mut Signal,
    ) -> Result<Unit, RuntimeError> {
        let mut attempt = 0u32;
        loop {
            match self.attempt(stage, work, attempt).await? {
                Attempt::Moved => return Ok(Unit::Moved),
                Attempt::Done => {
                    if attempt > 0 {
                        self.metrics.sink_unavailable.reset();
                        tracing::info!(
                            attempts = attempt,
                            "{} succeeded again; sinks available",
                            work.name()
                        );
                    }
                    if self.transactions.is_none() {
                        for (p, o) in work.consumed() {
                            offsets.done(p, o);
                        }
                        self.commit_consumer(offsets).await;
                    } else if !work.consumed().is_empty() {
                        self.metrics.commits.inc();
                        self.metrics.uncommitted_records.set(0);
                    }
                    return Ok(Unit::Done);
                }
                Attempt::Failed(e) => return Err(RuntimeError::Stage(e)),
                Attempt::Retry(e) => {
                    if !self
                        .after_failure(work.name(), &e, &mut attempt, shutdown)
                        .await
                    {
                        return Ok(Unit::Stopped);
                    }
                }
            }
        }
    }

    /// One attempt at `work`: begin, call the stage, commit with the consumed offsets; on
    /// any failure abort, so that nothing of the attempt is visible. A retried batch is
    /// first checked against the assignment: its partitions may have moved meanwhile.
    async fn attempt<S: Stage>(
        &self,
        stage: &mut S,
        work: Work<'_>,
        retry: u32,
    ) -> Result<Attempt, RuntimeError> {
        if let Work::Batch(records) = work
            && retry > 0
        {
            let now = self.consumer.assigned(&self.topic);
            if records
                .iter()
                .any(|r| now.get(&r.partition) != Some(&r.epoch))
            {
                return Ok(Attempt::Moved);
            }
        }
        let Some(producer) = &self.transactions else {
            return Ok(match self.call(stage, work).await {
                Ok(()) => Attempt::Done,
                Err(e) if e.is_retriable() => Attempt::Retry(e),
                Err(e) => Attempt::Failed(e),
            });
        };
        let outcome = self.transaction(producer, stage, work).await;
        // A client that raised a fatal error (fenced: the coordinator aborted its transaction
        // for running past the transaction timeout, e.g. across a broker restart) sends
        // nothing more, whatever failed first. Its transaction is gone: renew the client and
        // redo the unit, as after any abort.
        if let Some(fatal) = producer.fatal_error() {
            stage.on_abort();
            self.renew(producer, &fatal).await?;
            return Ok(Attempt::Retry(StageError::unavailable("kafka", fatal)));
        }
        outcome
    }

    /// [`attempt`](Self::attempt) in a transaction of `producer`.
    async fn transaction<S: Stage>(
        &self,
        producer: &Producer,
        stage: &mut S,
        work: Work<'_>,
    ) -> Result<Attempt, RuntimeError> {
        producer.begin().map_err(RuntimeError::Transactions)?;
        let outcome = match self.call(stage, work).await {
            Ok(()) => {
                let committed = self.commit(producer, &work).await;
                if !matches!(committed, Ok(Attempt::Done)) {
                    stage.on_abort();
                }
                return committed;
            }
            Err(e) if e.is_retriable() => Attempt::Retry(e),
            Err(e) => Attempt::Failed(e),
        };
        self.abort(producer).await?;
        stage.on_abort();
        Ok(outcome)
    }

    /// Replaces `producer`'s failed client (see [`Producer::renew`]), asking again while the
    /// coordinator cannot be reached.
    async fn renew(&self, producer: &Producer, fatal: &str) -> Result<(), RuntimeError> {
        tracing::warn!(
            error = fatal,
            "the transactional producer failed for good; renewing it and redoing the unit"
        );
        self.metrics.producer_renewals.inc();
        retry_until(
            &self.config.retry,
            |e: &KafkaError| RetryClass::of(e.is_retriable(), None),
            |_| producer.renew(),
            |attempt, pause, e| tracing::warn!(attempt, error = %e, retry_in = ?pause, "renewing the transactional producer failed; trying again"),
            std::future::pending(),
        )
        .await
        .map_err(|stopped| RuntimeError::Transactions(stopped.into_error()))
    }

    /// Commits the unit's transaction with its consumed offsets (aborting it when that
    /// fails).
    async fn commit(&self, producer: &Producer, work: &Work<'_>) -> Result<Attempt, RuntimeError> {
        let consumed = work.consumed();
        let positions: Vec<(&str, i32, i64)> = consumed
            .iter()
            .map(|(p, o)| (self.topic.as_str(), *p, *o))
            .collect();
        let group = self.consumer.group_metadata();
        let outcome = match producer.commit(&positions, group.as_ref()).await {
            Ok(()) => return Ok(Attempt::Done),
            Err(e) if e.is_fatal() => return Err(RuntimeError::Transactions(e)),
            // A commit that may have gone through cannot be aborted: ask again.
            Err(e) if e.is_retriable() && !e.requires_abort() => {
                return self.finish_commit(producer, &positions, e).await;
            }
            Err(e) => Attempt::Retry(StageError::unavailable("kafka", e)),
        };
        self.abort(producer).await?;
        Ok(outcome)
    }

    /// Retries a commit that failed in a retriable way (its outcome unknown) until it is
    /// known: committed, or to be aborted and redone.
    async fn finish_commit(
        &self,
        producer: &Producer,
        positions: &[(&str, i32, i64)],
        first: KafkaError,
    ) -> Result<Attempt, RuntimeError> {
        tracing::warn!(error = %first, "transaction commit outcome unknown; committing again");
        let policy = self
            .config
            .retry
            .with_max_attempts(self.config.retry.max_attempts.max(3));
        let again = retry_with(
            &policy,
            |e: &KafkaError| {
                RetryClass::of(
                    e.is_retriable() && !e.requires_abort() && !e.is_fatal(),
                    None,
                )
            },
            |_| async {
                let group = self.consumer.group_metadata();
                producer.commit(positions, group.as_ref()).await
            },
        )
        .await;
        match again {
            Ok(()) => Ok(Attempt::Done),
            Err(e) if e.is_fatal() => Err(RuntimeError::Transactions(e)),
            Err(e) => {
                self.abort(producer).await?;
                Ok(Attempt::Retry(StageError::unavailable("kafka", e)))
            }
        }
    }

    /// Aborts the open transaction, asking again while the broker cannot be reached.
    async fn abort(&self, producer: &Producer) -> Result<(), RuntimeError> {
        retry_until(
            &self.config.retry,
            |e: &KafkaError| RetryClass::of(e.is_retriable() && !e.is_fatal(), None),
            |_| producer.abort(),
            |attempt, pause, e| tracing::warn!(attempt, error = %e, retry_in = ?pause, "aborting the transaction failed; trying again"),
            std::future::pending(),
        )
        .await
        .map_err(|stopped| RuntimeError::Transactions(stopped.into_error()))?;
        self.metrics.transaction_aborts.inc();
        Ok(())
    }

    /// The backoff before retry `attempt` (the shared policy's; its attempt limit does not
    /// apply here).
    fn pause(&self, attempt: u32) -> Duration {
        self.config
            .retry
            .delay(attempt, None)
            .unwrap_or(self.config.retry.max_backoff)
    }

    /// The stage call (or the reject write) of `work`.
    async fn call<S: Stage>(&self, stage: &mut S, work: Work<'_>) -> Result<(), StageError> {
        match work {
            Work::Batch(records) => stage.process_batch(records).await,
            Work::Tick(now) => stage.on_tick(now).await,
            Work::Assignment { assigned, revoked } => stage.on_assignment(assigned, revoked).await,
            Work::Reject(poison, record, error) => poison.write(record, error).await,
        }
    }

    /// After a retriable `e`, waits the policy's backoff for this attempt: `true` to try
    /// again, `false` when shutdown came first.
    async fn after_failure(
        &self,
        what: &str,
        e: &StageError,
        attempt: &mut u32,
        shutdown: &mut Signal,
    ) -> bool {
        self.metrics.batch_retries.inc();
        *attempt = attempt.saturating_add(1);
        let pause = self.pause(*attempt);
        let sink = e.sink().unwrap_or("stage");
        self.metrics
            .sink_unavailable
            .with_label_values(&[sink])
            .set(1);
        tracing::warn!(sink, attempt = *attempt, error = %e, retry_in = ?pause, "{what} waiting for {sink}");
        tokio::select! {
            _ = shutdown::stopped(shutdown) => return false,
            _ = tokio::time::sleep(pause) => {}
        }
        self.metrics
            .sink_wait_seconds
            .with_label_values(&[sink])
            .inc_by(pause.as_secs_f64());
        true
    }

    /// Offers `batch` again record by record after it failed for good; a record that still
    /// fails for good goes to the reject topic. Each record (or its reject) is its own unit,
    /// so a record's partial output never reaches the topics beside its reject.
    async fn isolate<S: Stage>(
        &self,
        stage: &mut S,
        batch: &[SourceRecord],
        offsets: &mut OffsetTracker,
        shutdown: &mut Signal,
        poison: &PoisonRejects,
    ) -> Result<Unit, RuntimeError> {
        for record in batch {
            let one = std::slice::from_ref(record);
            match self.unit(stage, Work::Batch(one), offsets, shutdown).await {
                Ok(Unit::Done) => {}
                Ok(other) => return Ok(other),
                Err(RuntimeError::Stage(e)) => {
                    tracing::error!(
                        topic = %record.topic,
                        partition = record.partition,
                        offset = record.offset,
                        error = %e,
                        "poison record: written to the reject topic"
                    );
                    match self
                        .unit(stage, Work::Reject(poison, record, &e), offsets, shutdown)
                        .await?
                    {
                        Unit::Done => self.metrics.poison_records.inc(),
                        other => return Ok(other),
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Unit::Done)
    }

    /// Commits the offsets in `offsets` through the consumer (the runtime without
    /// transactions).
    async fn commit_consumer(&self, offsets: &mut OffsetTracker) {
        if offsets.is_empty() {
            return;
        }
        let positions = offsets.take();
        let list: Vec<(&str, i32, i64)> = positions
            .iter()
            .map(|(p, o)| (self.topic.as_str(), *p, *o))
            .collect();
        match self.consumer.commit_all(&list).await {
            Ok(()) => {
                self.metrics.commits.inc();
                self.metrics.uncommitted_records.set(0);
            }
            Err(e) => {
                // Not fatal: the next commit carries higher offsets; at worst the records
                // are read again after a restart, and every effect is idempotent.
                self.metrics.commit_errors.inc();
                tracing::warn!(error = %e, "offset commit failed; will be retried with the next batch");
                for (p, o) in positions {
                    offsets.done(p, o);
                }
            }
        }
    }

    /// Updates the consumer-lag gauge in the background (watermark requests block, so they
    /// run on the blocking pool and never stall the loop). The requests queue behind the
    /// consumer's fetch on the same connection, which the broker holds up to
    /// `fetch.wait.max.ms` (500 ms) when there is nothing new: the timeout leaves room.
    fn observe_lag(&self) {
        let consumer = self.consumer.clone();
        let gauge = self.metrics.consumer_lag.clone();
        tokio::task::spawn_blocking(move || {
            if let Some(lag) = consumer.lag_blocking(Duration::from_secs(2)) {
                gauge.set(lag);
            }
        });
    }

    /// Brings `owned` up to the consumer's assignment, telling the stage what moved: a
    /// partition assigned again under a new epoch (it may have been worked on elsewhere
    /// meanwhile) is both revoked and assigned, so the stage reloads its state. `Ok(true)`
    /// when `owned` is the current assignment, `Ok(false)` when the stage's hand-over was
    /// cut by shutdown.
    async fn check_assignment<S: Stage>(
        &self,
        stage: &mut S,
        owned: &mut Owned,
        offsets: &mut OffsetTracker,
        shutdown: &mut Signal,
    ) -> Result<bool, RuntimeError> {
        let now = self.consumer.assigned(&self.topic);
        if now == *owned {
            return Ok(true);
        }
        let assigned: Vec<i32> = now
            .iter()
            .filter(|(p, e)| owned.get(*p) != Some(*e))
            .map(|(p, _)| *p)
            .collect();
        let revoked: Vec<i32> = owned
            .iter()
            .filter(|(p, e)| now.get(*p) != Some(*e))
            .map(|(p, _)| *p)
            .collect();
        tracing::info!(?assigned, ?revoked, "partition assignment changed");
        offsets.forget(&revoked);
        let work = Work::Assignment {
            assigned: &assigned,
            revoked: &revoked,
        };
        let ok = self.unit(stage, work, offsets, shutdown).await? == Unit::Done;
        if ok {
            *owned = now;
        }
        Ok(ok)
    }
}

/// The partitions the stage was last told it owns, with the epoch of each assignment.
type Owned = BTreeMap<i32, Epoch>;
