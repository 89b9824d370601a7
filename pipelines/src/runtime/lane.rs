//! A lane: one stage instance, its own output producer and its share of the source
//! partitions, worked batch after batch.
//!
//! The runtime deals each source partition to one lane (`partition mod lanes`), so a
//! partition's records stay in order, and runs each lane on a task of its own: while one lane's
//! batch waits on its sinks and its transaction, another lane decodes and decides its next
//! batch. Each lane commits its own units: in a transaction of its own producer together
//! with its partitions' offsets, or (without transactions) through the consumer.

use super::run::{Owned, Runtime, RuntimeError};
use super::{OffsetTracker, PoisonRejects, SourceRecord, Stage, StageError};
use crate::shutdown::{self, Signal};
use doorstep_connectors::kafka::Error as KafkaError;
use doorstep_connectors::kafka::{Epoch, Producer, TopicPartition};
use doorstep_connectors::retry::{Retries, RetryClass, Stopped, retry_until, retry_with};
use doorstep_schemas::model::Timestamp;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// One lane of a [`Runtime`]: a stage and where its outputs go.
pub struct Lane<S> {
    /// The stage instance; it sees only this lane's partitions.
    stage: S,
    /// The transactional producer its units run in (the stage and the poison rejects send
    /// through clones of it); `None`: offsets are committed through the consumer.
    transactions: Option<Producer>,
    /// Where records the stage fails on for good go; `None`: such a failure stops the
    /// runtime.
    poison: Option<PoisonRejects>,
}

impl<S: Stage> Lane<S> {
    /// A lane running `stage`, committing through the consumer, without poison rejects.
    pub fn new(stage: S) -> Self {
        Self {
            stage,
            transactions: None,
            poison: None,
        }
    }

    /// Writes records the stage fails on for good to the reject topic instead of stopping
    /// (see the runtime's module docs).
    pub fn with_poison_rejects(mut self, rejects: PoisonRejects) -> Self {
        self.poison = Some(rejects);
        self
    }

    /// Runs every unit of work in a transaction of `producer` (a transactional producer,
    /// [`Producer::transactional`]) and commits the consumed offsets inside it. The stage and
    /// the poison rejects must send through clones of the same producer, and no other lane
    /// may use it.
    pub fn with_transactions(mut self, producer: Producer) -> Self {
        self.transactions = Some(producer);
        self
    }

    /// `producer` as this lane's transactions when it is transactional (see
    /// [`with_transactions`](Self::with_transactions)); else unchanged.
    pub fn with_outputs(self, producer: Producer) -> Self {
        if producer.transactional_id().is_some() {
            self.with_transactions(producer)
        } else {
            self
        }
    }
}

/// The lane that works `partition` among `lanes`.
pub(crate) fn lane_of(partition: i32, lanes: usize) -> usize {
    let lanes = i32::try_from(lanes.max(1)).unwrap_or(i32::MAX);
    usize::try_from(partition.rem_euclid(lanes)).unwrap_or(0)
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
    Reject(&'a SourceRecord, &'a StageError),
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
            Work::Reject(record, _) => done.done(record.partition, record.offset),
            Work::Tick(_) | Work::Assignment { .. } => {}
        }
        done.take()
    }
}

/// How one attempt at a unit of work ended.
enum Attempt {
    /// Done: its records and offsets are committed.
    Done,
    /// A batch holds records of partitions this lane no longer owns (they moved while it
    /// waited to retry): it must be filtered again before another attempt.
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

/// A lane at work: its place among the lanes and what it owns and has not committed yet.
pub(crate) struct Worker<S> {
    /// The runtime: consumer, topic, tuning, metrics.
    rt: Arc<Runtime>,
    /// This lane's index among `lanes`.
    index: usize,
    /// How many lanes the runtime runs.
    lanes: usize,
    /// The stage and its outputs.
    lane: Lane<S>,
    /// The partitions the stage was last told it owns.
    owned: Owned,
    /// Offsets processed and not committed yet (without transactions).
    offsets: OffsetTracker,
    /// Records counted in `doorstep_pipeline_uncommitted_records` by this lane.
    uncommitted: i64,
}

impl<S: Stage> Worker<S> {
    /// Lane `index` of `lanes` of `rt`.
    pub(crate) fn new(rt: Arc<Runtime>, index: usize, lanes: usize, lane: Lane<S>) -> Self {
        Self {
            rt,
            index,
            lanes,
            lane,
            owned: Owned::new(),
            offsets: OffsetTracker::default(),
            uncommitted: 0,
        }
    }

    /// Works the records of `rx` until `shutdown` says stop (then commits what is done) or
    /// the channel closes (a bounded source reached its end) or the stage fails fatally.
    pub(crate) async fn run(
        mut self,
        mut rx: mpsc::Receiver<SourceRecord>,
        mut shutdown: Signal,
    ) -> Result<(), RuntimeError> {
        let mut ticker = tokio::time::interval(self.rt.config.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The batch being gathered lives out here: the select! below drops the gathering
        // future whenever a tick comes first, and records already taken from the queue must
        // not go with it (later offsets would be committed past them).
        let mut gathering: Vec<SourceRecord> = Vec::new();
        let result = loop {
            tokio::select! {
                biased;
                _ = shutdown::stopped(&mut shutdown) => break Ok(()),
                _ = ticker.tick() => {
                    if let Err(e) = self.check_assignment(&mut shutdown).await {
                        break Err(e);
                    }
                    if self.index == 0 {
                        self.rt.observe_lag();
                    }
                    match self.unit(Work::Tick(Timestamp::now()), &mut shutdown).await {
                        Ok(Unit::Done | Unit::Moved) => {}
                        Ok(Unit::Stopped) => break Ok(()),
                        Err(e) => break Err(e),
                    }
                }
                () = self.rt.config.batch.fill(&mut rx, &mut gathering) => {
                    if gathering.is_empty() {
                        break Ok(());
                    }
                    let batch = std::mem::take(&mut gathering);
                    match self.process(batch, &mut shutdown).await {
                        Ok(true) => {}
                        // Shutdown during retries: the batch is not committed; it is read
                        // again by whoever owns the partition next.
                        Ok(false) => break Ok(()),
                        Err(e) => break Err(e),
                    }
                }
            }
        };
        self.commit_consumer().await;
        result
    }

    /// The partitions of the source assigned to this process now that are this lane's, with
    /// their epochs.
    fn assigned(&self) -> Owned {
        self.rt
            .consumer
            .assigned(&self.rt.topic)
            .into_iter()
            .filter(|(p, _)| lane_of(*p, self.lanes) == self.index)
            .collect()
    }

    /// Processes one gathered batch: leaves out the stale records (of partitions this process
    /// no longer owns, is handing over, or owns again under a newer assignment), holds the
    /// fence over the rest while they are in flight, isolates poison records. `Ok(false)`
    /// when shutdown interrupted it.
    async fn process(
        &mut self,
        mut batch: Vec<SourceRecord>,
        shutdown: &mut Signal,
    ) -> Result<bool, RuntimeError> {
        loop {
            // Partitions move whenever a process joins or leaves. Take note now, not at the
            // next tick, and drop the records read under an assignment that ended: their
            // partition is read again from the last commit (by its new owner, or by this
            // process when the partition came back to it).
            if self.check_assignment(shutdown).await? {
                let owned = &self.owned;
                self.rt
                    .leave_stale(&mut batch, |r| owned.get(&r.partition) != Some(&r.epoch));
            }
            match self.process_owned(&batch, shutdown).await? {
                Unit::Done => return Ok(true),
                Unit::Stopped => return Ok(false),
                Unit::Moved => {}
            }
        }
    }

    /// [`process`](Self::process) of a batch of owned partitions.
    async fn process_owned(
        &mut self,
        batch: &[SourceRecord],
        shutdown: &mut Signal,
    ) -> Result<Unit, RuntimeError> {
        let rt = self.rt.clone();
        let mut batch = batch.to_vec();
        // The fence: records of an assignment that ended meanwhile are left out, and the
        // other partitions cannot leave this process until the guard is dropped, after the
        // batch's transaction.
        let _guard = loop {
            let partitions: BTreeMap<TopicPartition, Epoch> = batch
                .iter()
                .map(|r| (TopicPartition::new(rt.topic.as_str(), r.partition), r.epoch))
                .collect();
            match rt.consumer.fence().enter(partitions) {
                Ok(guard) => break guard,
                Err(stale) => {
                    let stale: BTreeSet<i32> = stale.iter().map(|p| p.partition).collect();
                    rt.leave_stale(&mut batch, |r| stale.contains(&r.partition));
                }
            }
        };
        if batch.is_empty() {
            return Ok(Unit::Done);
        }
        let records = i64::try_from(batch.len()).unwrap_or(i64::MAX);
        rt.metrics.records_in.inc_by(batch.len() as u64);
        rt.metrics.uncommitted_records.add(records);
        self.uncommitted = self.uncommitted.saturating_add(records);
        rt.metrics.batch_size.observe(batch.len() as f64);
        let timer = rt.metrics.batch_seconds.start_timer();
        let started = std::time::Instant::now();
        let mut done = self.unit(Work::Batch(&batch), shutdown).await;
        if let Err(RuntimeError::Stage(e)) = &done
            && self.lane.poison.is_some()
        {
            tracing::warn!(error = %e, records = batch.len(), "batch failed for good; retrying its records one by one to isolate the poison");
            done = self.isolate(&batch, shutdown).await;
        }
        rt.metrics
            .stage_busy_seconds
            .inc_by(started.elapsed().as_secs_f64());
        if matches!(done, Ok(Unit::Done)) {
            timer.observe_duration();
            rt.metrics.batches.inc();
        }
        done
    }

    /// Runs `work` until it is done: each attempt in its own transaction (when
    /// transactional), retriable failures retried after the shared policy's backoff (the
    /// connector's retry loop, [`Retries`], until shutdown; its attempt limit does not
    /// apply). `Err` when it failed for good.
    async fn unit(&mut self, work: Work<'_>, shutdown: &mut Signal) -> Result<Unit, RuntimeError> {
        let rt = self.rt.clone();
        let mut retries = Retries::until(&rt.config.retry, shutdown::stopped(shutdown));
        loop {
            let retried = retries.attempt() - 1;
            let error = match self.attempt(work, retried).await? {
                Attempt::Moved => return Ok(Unit::Moved),
                Attempt::Failed(e) => return Err(RuntimeError::Stage(e)),
                Attempt::Retry(e) => e,
                Attempt::Done => {
                    if retried > 0 {
                        rt.metrics.sink_unavailable.reset();
                        tracing::info!(
                            attempts = retried,
                            "{} succeeded again; sinks available",
                            work.name()
                        );
                    }
                    if self.lane.transactions.is_none() {
                        for (p, o) in work.consumed() {
                            self.offsets.done(p, o);
                        }
                        self.commit_consumer().await;
                    } else if !work.consumed().is_empty() {
                        rt.metrics.commits.inc();
                        self.committed();
                    }
                    return Ok(Unit::Done);
                }
            };
            let lane = self.index;
            let waiting = |attempt: u32, pause: Duration, e: &StageError| {
                let sink = e.sink().unwrap_or("stage");
                rt.metrics.batch_retries.inc();
                rt.metrics
                    .sink_unavailable
                    .with_label_values(&[sink])
                    .set(1);
                rt.metrics
                    .sink_wait_seconds
                    .with_label_values(&[sink])
                    .inc_by(pause.as_secs_f64());
                tracing::warn!(sink, lane, attempt, error = %e, retry_in = ?pause, "{} waiting for {sink}", work.name());
            };
            match retries
                .after(error, RetryClass::of(true, None), waiting)
                .await
            {
                Ok(()) => {}
                Err(Stopped::Interrupted(_)) => return Ok(Unit::Stopped),
                Err(stopped) => return Err(RuntimeError::Stage(stopped.into_error())),
            }
        }
    }

    /// Everything this lane had processed is committed: its records leave the uncommitted
    /// gauge.
    fn committed(&mut self) {
        self.rt
            .metrics
            .uncommitted_records
            .sub(std::mem::take(&mut self.uncommitted));
    }

    /// One attempt at `work`: begin, call the stage, commit with the consumed offsets; on
    /// any failure abort, so that nothing of the attempt is visible. A retried batch is
    /// first checked against the assignment: its partitions may have moved meanwhile.
    async fn attempt(&mut self, work: Work<'_>, retry: u32) -> Result<Attempt, RuntimeError> {
        if let Work::Batch(records) = work
            && retry > 0
        {
            let now = self.assigned();
            if records
                .iter()
                .any(|r| now.get(&r.partition) != Some(&r.epoch))
            {
                return Ok(Attempt::Moved);
            }
        }
        let Some(producer) = self.lane.transactions.clone() else {
            return Ok(match self.call(work).await {
                Ok(()) => Attempt::Done,
                Err(e) if e.is_retriable() => Attempt::Retry(e),
                Err(e) => Attempt::Failed(e),
            });
        };
        let outcome = self.transaction(&producer, work).await;
        // A client that raised a fatal error (fenced: the coordinator aborted its transaction
        // for running past the transaction timeout, e.g. across a broker restart) sends
        // nothing more, whatever failed first. Its transaction is gone: renew the client and
        // redo the unit, as after any abort.
        if let Some(fatal) = producer.fatal_error() {
            self.lane.stage.on_abort();
            self.renew(&producer, &fatal).await?;
            return Ok(Attempt::Retry(StageError::unavailable("kafka", fatal)));
        }
        outcome
    }

    /// [`attempt`](Self::attempt) in a transaction of `producer`.
    async fn transaction(
        &mut self,
        producer: &Producer,
        work: Work<'_>,
    ) -> Result<Attempt, RuntimeError> {
        producer.begin().map_err(RuntimeError::Transactions)?;
        let outcome = match self.call(work).await {
            Ok(()) => {
                let committed = self.commit(producer, &work).await;
                if !matches!(committed, Ok(Attempt::Done)) {
                    self.lane.stage.on_abort();
                }
                return committed;
            }
            Err(e) if e.is_retriable() => Attempt::Retry(e),
            Err(e) => Attempt::Failed(e),
        };
        self.abort(producer).await?;
        self.lane.stage.on_abort();
        Ok(outcome)
    }

    /// Replaces `producer`'s failed client (see [`Producer::renew`]), asking again while the
    /// coordinator cannot be reached.
    async fn renew(&self, producer: &Producer, fatal: &str) -> Result<(), RuntimeError> {
        tracing::warn!(
            error = fatal,
            "the transactional producer failed for good; renewing it and redoing the unit"
        );
        self.rt.metrics.producer_renewals.inc();
        retry_until(
            &self.rt.config.retry,
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
            .map(|(p, o)| (self.rt.topic.as_str(), *p, *o))
            .collect();
        let group = self.rt.consumer.group_metadata();
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
        let retry = &self.rt.config.retry;
        let policy = retry.with_max_attempts(retry.max_attempts.max(3));
        let again = retry_with(
            &policy,
            |e: &KafkaError| {
                RetryClass::of(
                    e.is_retriable() && !e.requires_abort() && !e.is_fatal(),
                    None,
                )
            },
            |_| async {
                let group = self.rt.consumer.group_metadata();
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
            &self.rt.config.retry,
            |e: &KafkaError| RetryClass::of(e.is_retriable() && !e.is_fatal(), None),
            |_| producer.abort(),
            |attempt, pause, e| tracing::warn!(attempt, error = %e, retry_in = ?pause, "aborting the transaction failed; trying again"),
            std::future::pending(),
        )
        .await
        .map_err(|stopped| RuntimeError::Transactions(stopped.into_error()))?;
        self.rt.metrics.transaction_aborts.inc();
        Ok(())
    }

    /// The stage call (or the reject write) of `work`.
    async fn call(&mut self, work: Work<'_>) -> Result<(), StageError> {
        let stage = &mut self.lane.stage;
        match work {
            Work::Batch(records) => stage.process_batch(records).await,
            Work::Tick(now) => stage.on_tick(now).await,
            Work::Assignment { assigned, revoked } => stage.on_assignment(assigned, revoked).await,
            Work::Reject(record, error) => match &self.lane.poison {
                Some(poison) => poison.write(record, error).await,
                None => Err(StageError::invalid(
                    "writing a poison record",
                    "this lane has no reject topic",
                )),
            },
        }
    }

    /// Offers `batch` again record by record after it failed for good; a record that still
    /// fails for good goes to the reject topic. Each record (or its reject) is its own unit,
    /// so a record's partial output never reaches the topics beside its reject.
    async fn isolate(
        &mut self,
        batch: &[SourceRecord],
        shutdown: &mut Signal,
    ) -> Result<Unit, RuntimeError> {
        for record in batch {
            let one = std::slice::from_ref(record);
            match self.unit(Work::Batch(one), shutdown).await {
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
                    match self.unit(Work::Reject(record, &e), shutdown).await? {
                        Unit::Done => self.rt.metrics.poison_records.inc(),
                        other => return Ok(other),
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Unit::Done)
    }

    /// Commits the offsets processed so far through the consumer (a lane without
    /// transactions).
    async fn commit_consumer(&mut self) {
        if self.offsets.is_empty() {
            return;
        }
        let positions = self.offsets.take();
        let list: Vec<(&str, i32, i64)> = positions
            .iter()
            .map(|(p, o)| (self.rt.topic.as_str(), *p, *o))
            .collect();
        match self.rt.consumer.commit_all(&list).await {
            Ok(()) => {
                self.rt.metrics.commits.inc();
                self.committed();
            }
            Err(e) => {
                // Not fatal: the next commit carries higher offsets; at worst the records
                // are read again after a restart, and every effect is idempotent.
                self.rt.metrics.commit_errors.inc();
                tracing::warn!(error = %e, "offset commit failed; will be retried with the next batch");
                for (p, o) in positions {
                    self.offsets.done(p, o);
                }
            }
        }
    }

    /// Brings `owned` up to this lane's share of the consumer's assignment, telling the stage
    /// what moved: a partition assigned again under a new epoch (it may have been worked on
    /// elsewhere meanwhile) is both revoked and assigned, so the stage reloads its state.
    /// `Ok(true)` when `owned` is the current assignment, `Ok(false)` when the stage's
    /// hand-over was cut by shutdown.
    async fn check_assignment(&mut self, shutdown: &mut Signal) -> Result<bool, RuntimeError> {
        let now = self.assigned();
        if now == self.owned {
            return Ok(true);
        }
        let assigned: Vec<i32> = now
            .iter()
            .filter(|(p, e)| self.owned.get(*p) != Some(*e))
            .map(|(p, _)| *p)
            .collect();
        let revoked: Vec<i32> = self
            .owned
            .iter()
            .filter(|(p, e)| now.get(*p) != Some(*e))
            .map(|(p, _)| *p)
            .collect();
        tracing::info!(
            lane = self.index,
            ?assigned,
            ?revoked,
            "partition assignment changed"
        );
        self.offsets.forget(&revoked);
        let work = Work::Assignment {
            assigned: &assigned,
            revoked: &revoked,
        };
        let ok = self.unit(work, shutdown).await? == Unit::Done;
        if ok {
            self.owned = now;
        }
        Ok(ok)
    }
}

#[cfg(test)]
mod tests {
    use super::lane_of;

    #[test]
    fn every_partition_has_one_lane_and_the_lanes_share_them_evenly() {
        for lanes in 1..=4 {
            let mut per_lane = vec![0; lanes];
            for p in 0..12 {
                let lane = lane_of(p, lanes);
                assert!(lane < lanes);
                per_lane[lane] += 1;
            }
            assert!(
                per_lane
                    .iter()
                    .all(|n| *n == 12 / lanes || *n == 12 / lanes + 1)
            );
        }
        assert_eq!(lane_of(5, 0), 0, "no lanes counts as one");
    }
}
