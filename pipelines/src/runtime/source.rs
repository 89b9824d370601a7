//! The source: reads the Kafka consumer on a thread of its own and feeds each lane's bounded
//! channel with the records of its partitions.
//!
//! The consumer's rebalance callback runs on the thread that reads it, and a revoke blocks
//! there until the batch in flight has committed or aborted (the rebalance fence). A thread
//! of its own keeps that wait off the threads the stage runs on, whatever the process's
//! tokio runtime.

use doorstep_connectors::kafka::{Consumer, Error as KafkaError, Record};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// One record as read from the source topic.
pub type SourceRecord = Record;

/// Where a bounded source stops: per partition, the first offset not to read. A partition
/// absent from the map is not read at all.
pub type StopOffsets = BTreeMap<i32, i64>;

/// The running source; dropping it stops the thread at its next record or wait.
#[derive(Debug)]
pub struct SourceThread {
    cancel: watch::Sender<bool>,
}

impl Drop for SourceThread {
    fn drop(&mut self) {
        let _ = self.cancel.send(true);
    }
}

/// Starts reading `consumer` into the lanes' channels `txs` on a thread of its own (see
/// [`pump`]).
///
/// # Errors
/// When the thread or its single-threaded tokio runtime cannot be created.
pub fn spawn(
    consumer: Arc<Consumer>,
    txs: Vec<mpsc::Sender<SourceRecord>>,
    metrics: super::RuntimeMetrics,
    stop: Option<StopOffsets>,
) -> std::io::Result<SourceThread> {
    let (cancel, cancelled) = watch::channel(false);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("doorstep-source".into())
        .spawn(move || runtime.block_on(pump(consumer, txs, metrics, stop, cancelled)))?;
    Ok(SourceThread { cancel })
}

/// Reads `consumer` into `txs` (record of partition `p` into `txs[p mod txs.len()]`, its
/// lane) until a receiver is gone or `cancelled` turns true, or, when `stop` is given, until
/// every partition reached its stop offset (then the channels close and the lanes drain and
/// return). A lane whose queue is full holds the others back: the consumer is shared.
/// Errors from the consumer are logged and retried after a pause (the broker may be
/// restarting); they are never fatal.
///
/// A queue that stays full for [`STALL_AFTER`] (its lane waits on a sink) does not stop the
/// consumer being read: the assigned partitions are paused and the consumer is read on, so
/// that it serves the group's heartbeats and rebalances. A consumer left unread while its
/// lanes wait is dropped from the group after a broker restart and can never commit again,
/// and holds a joining member back until the group's rebalance timeout. What it returns while
/// paused (records fetched before the pause, or of partitions assigned meanwhile) is held, in
/// order, behind the record waiting, up to [`HELD_MAX`] records; the partitions are resumed
/// when that record is handed over (and again every [`RETRY_AFTER`] until resuming succeeds).
async fn pump(
    consumer: Arc<Consumer>,
    txs: Vec<mpsc::Sender<SourceRecord>>,
    metrics: super::RuntimeMetrics,
    stop: Option<StopOffsets>,
    mut cancelled: watch::Receiver<bool>,
) {
    let mut pump = Pump {
        consumer,
        metrics,
        open: stop.map(|s| s.into_iter().filter(|(_, end)| *end > 0).collect()),
        failing_since: None,
        held: VecDeque::new(),
        resume_due: false,
    };
    loop {
        let record = match pump.held.pop_front() {
            Some(record) => record,
            None => {
                if pump.open.as_ref().is_some_and(BTreeMap::is_empty) {
                    return;
                }
                let next = tokio::select! {
                    _ = cancelled.wait_for(|c| *c) => return,
                    next = pump.consumer.recv() => next,
                    () = tokio::time::sleep(RETRY_AFTER), if pump.resume_due => {
                        pump.resume();
                        continue;
                    }
                };
                match pump.take(next).await {
                    Some(record) => record,
                    None => continue,
                }
            }
        };
        let Some(tx) = txs.get(super::lane::lane_of(record.partition, txs.len())) else {
            return;
        };
        let queued: usize = txs.iter().map(|t| t.max_capacity() - t.capacity()).sum();
        pump.metrics
            .queue_depth
            .set(i64::try_from(queued + pump.held.len()).unwrap_or(i64::MAX));
        if !pump.hand_over(tx, record, &mut cancelled).await {
            return;
        }
    }
}

/// How long a lane's queue may stay full before the source pauses its partitions and reads
/// the consumer on (see [`pump`]): longer than a batch takes, so a pipeline merely catching
/// up keeps the plain blocking hand-over.
pub const STALL_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// The most records the source holds while its partitions are paused. Pausing stops the
/// fetches, so only records fetched just before arrive; should pausing fail, the consumer is
/// not read past this many (the lane's wait is then the group's, as without a pause).
pub const HELD_MAX: usize = 10_000;

/// The pause before the source asks the broker again after an error, and before it tries
/// again to resume partitions whose resume failed.
const RETRY_AFTER: std::time::Duration = std::time::Duration::from_millis(500);

/// The source's state between records.
struct Pump {
    /// The consumer read.
    consumer: Arc<Consumer>,
    /// The runtime's metrics.
    metrics: super::RuntimeMetrics,
    /// Partitions still to be read up to their stop offset, when bounded.
    open: Option<StopOffsets>,
    /// Since when the broker has been failing, if it is.
    failing_since: Option<std::time::Instant>,
    /// Records read while the partitions were paused, in order, to hand over next.
    held: VecDeque<SourceRecord>,
    /// Whether paused partitions are still to be resumed (a resume failed).
    resume_due: bool,
}

impl Pump {
    /// The record `next` to hand over: `None` for an error (logged, waited on) or a record
    /// past a bounded source's stop offset.
    async fn take(&mut self, next: Result<SourceRecord, KafkaError>) -> Option<SourceRecord> {
        let record = match next {
            Ok(record) => record,
            Err(e) => {
                self.metrics.source_errors.inc();
                self.metrics.source_unavailable.set(1);
                let since = *self
                    .failing_since
                    .get_or_insert_with(std::time::Instant::now);
                tracing::warn!(error = %e, waiting = ?since.elapsed(), "waiting for the Kafka broker");
                tokio::time::sleep(RETRY_AFTER).await;
                return None;
            }
        };
        if let Some(since) = self.failing_since.take() {
            self.metrics.source_unavailable.set(0);
            tracing::info!(after = ?since.elapsed(), "Kafka broker reachable again");
        }
        if let Some(open) = self.open.as_mut() {
            let end = open.get(&record.partition).copied()?;
            if record.offset >= end {
                open.remove(&record.partition);
                return None;
            }
            if record.offset + 1 >= end {
                open.remove(&record.partition);
            }
        }
        Some(record)
    }

    /// Hands `record` to its lane's queue `tx`, waiting while it is full; after
    /// [`STALL_AFTER`] the partitions are paused and the consumer is read on meanwhile (its
    /// records held). `false` when the lane is gone or `cancelled` turned true.
    async fn hand_over(
        &mut self,
        tx: &mpsc::Sender<SourceRecord>,
        record: SourceRecord,
        cancelled: &mut watch::Receiver<bool>,
    ) -> bool {
        let waiting = std::time::Instant::now();
        let stalled = tokio::time::sleep(STALL_AFTER);
        tokio::pin!(stalled);
        let mut paused = false;
        let permit = loop {
            tokio::select! {
                biased;
                _ = cancelled.wait_for(|c| *c) => return false,
                permit = tx.reserve() => break permit,
                () = &mut stalled, if !paused => {
                    paused = true;
                    self.metrics.source_paused.set(1);
                    tracing::warn!(after = ?STALL_AFTER, "a lane's queue stays full: pausing the source partitions and reading the consumer on for the group's sake");
                    self.pause();
                }
                next = self.consumer.recv(), if paused && self.held.len() < HELD_MAX => {
                    if let Some(held) = self.take(next).await {
                        self.held.push_back(held);
                        // Fetched before the pause, or a partition assigned meanwhile.
                        self.pause();
                    }
                }
            }
        };
        let Ok(permit) = permit else {
            return false;
        };
        permit.send(record);
        if paused {
            tracing::info!(after = ?waiting.elapsed(), held = self.held.len(), "the lane's queue takes records again: resuming the source partitions");
            self.resume_due = true;
            self.resume();
        }
        self.metrics
            .source_blocked_seconds
            .inc_by(waiting.elapsed().as_secs_f64());
        true
    }

    /// Resumes the paused partitions; on failure `resume_due` stays set and [`pump`] tries
    /// again after [`RETRY_AFTER`] (the partitions stay paused meanwhile, nothing is lost).
    fn resume(&mut self) {
        match self.consumer.resume_paused() {
            Ok(()) => {
                self.resume_due = false;
                self.metrics.source_paused.set(0);
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_after = ?RETRY_AFTER, "resuming the source partitions failed");
            }
        }
    }

    /// Pauses the assigned partitions; a failure is logged (what still arrives is held, up to
    /// [`HELD_MAX`]).
    fn pause(&self) {
        if let Err(e) = self.consumer.pause_assigned() {
            tracing::warn!(error = %e, "pausing the source partitions failed");
        }
    }
}
