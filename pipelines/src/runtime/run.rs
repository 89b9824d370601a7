//! The runtime: one source, its lanes, shutdown.
//!
//! The source thread reads the consumer and deals each record to the lane of its partition
//! ([`Lane`]); each lane runs on a tokio task of its own, one batch after another. Every
//! call into a lane's stage is one unit of work. With a transactional producer
//! ([`Lane::with_transactions`]) a unit runs inside one Kafka transaction of the lane's
//! producer, together with the offsets of the records it consumed: its records and its
//! offsets are committed together or not at all. A failed attempt is aborted (its records
//! discarded) and redone in a new transaction after the backoff; the stage's other effects
//! are idempotent, so a redo changes nothing twice. Without one (replays, which write no
//! topic), the offsets are committed after the unit. When one lane fails for good, the
//! others are stopped as on shutdown.

use super::lane::Worker;
use super::source;
use super::{Batcher, Lane, RuntimeMetrics, SourceRecord, Stage, StageError, StopOffsets};
use crate::shutdown::{self, Signal};
use doorstep_connectors::kafka::{Consumer, Epoch};
use doorstep_connectors::retry::RetryPolicy;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Lanes of a pipeline unless configured (`pipeline.lanes`): two, so that one lane's batch is
/// decoded and decided while the other's effects and transaction are in flight.
pub const DEFAULT_LANES: usize = 2;

/// Tuning of the runtime loop.
#[derive(Debug, Clone, Copy)]
pub struct RuntimeConfig {
    /// Batching of source records.
    pub batch: Batcher,
    /// Capacity of each lane's queue between source and stage (backpressure bound).
    pub queue_capacity: usize,
    /// How many lanes the pipeline builders give a runtime (each a stage instance with its
    /// own producer and a share of the partitions; see [`Lane`]).
    pub lanes: usize,
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
            lanes: DEFAULT_LANES,
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
    /// A lane's task ended abnormally (it panicked).
    #[error("a lane's task failed: {0}")]
    Lane(#[source] tokio::task::JoinError),
    /// [`Runtime::run`] was given no lane.
    #[error("a runtime needs at least one lane")]
    NoLanes,
}

/// Runs a stage's lanes over one subscribed consumer.
pub struct Runtime {
    /// The consumer, shared with the source thread.
    pub(crate) consumer: Arc<Consumer>,
    /// The source topic.
    pub(crate) topic: String,
    /// Tuning.
    pub(crate) config: RuntimeConfig,
    /// Shared by every lane.
    pub(crate) metrics: RuntimeMetrics,
    /// Where a bounded runtime stops.
    stop: Option<StopOffsets>,
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
            stop: None,
        }
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

    /// Runs `lanes` (at least one; partition `p` goes to lane `p mod lanes`) until `shutdown`
    /// says stop (then each lane finishes the batch in hand and commits) or a lane's stage
    /// fails fatally (then the other lanes stop as on shutdown).
    pub async fn run<S: Stage + Sync + 'static>(
        self,
        lanes: impl IntoIterator<Item = Lane<S>>,
        mut shutdown: Signal,
    ) -> Result<(), RuntimeError> {
        let lanes: Vec<Lane<S>> = lanes.into_iter().collect();
        if lanes.is_empty() {
            return Err(RuntimeError::NoLanes);
        }
        let count = lanes.len();
        // Each lane gets the whole queue capacity: a lane whose queue is full stops the source
        // (and the consumer's polls) for every lane, so a lane's queue is as deep as one loop's was.
        let capacity = self.config.queue_capacity.max(1);
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..count).map(|_| mpsc::channel(capacity)).unzip();
        let source = source::spawn(
            self.consumer.clone(),
            txs,
            self.metrics.clone(),
            self.stop.clone(),
        )
        .map_err(RuntimeError::Source)?;
        // The lanes stop on `stop`: flipped on shutdown, and by a lane that failed for good.
        let (stop, stopping) = shutdown::channel();
        let stop = Arc::new(stop);
        let runtime = Arc::new(self);
        // Each lane is a task of its own, so lanes use as many cores as the tokio runtime
        // has; dropping the set (this future dropped) aborts them.
        let mut workers = tokio::task::JoinSet::new();
        for (i, (lane, rx)) in lanes.into_iter().zip(rxs).enumerate() {
            let worker = Worker::new(runtime.clone(), i, count, lane);
            let (stop, stopping) = (stop.clone(), stopping.clone());
            workers.spawn(async move {
                let result = worker.run(rx, stopping).await;
                if result.is_err() {
                    let _ = stop.send(true);
                }
                result
            });
        }
        let mut result = Ok(());
        loop {
            let done = tokio::select! {
                done = workers.join_next() => done,
                () = shutdown::stopped(&mut shutdown), if !*stop.borrow() => {
                    let _ = stop.send(true);
                    continue;
                }
            };
            let Some(done) = done else { break };
            let lane_result = done.map_err(RuntimeError::Lane).and_then(|r| r);
            if let Err(e) = lane_result {
                let _ = stop.send(true);
                if result.is_ok() {
                    result = Err(e);
                }
            }
        }
        drop(source);
        result
    }

    /// Drops the records of `batch` that `stale` says were read under an assignment that
    /// ended.
    pub(crate) fn leave_stale(
        &self,
        batch: &mut Vec<SourceRecord>,
        stale: impl Fn(&SourceRecord) -> bool,
    ) {
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

    /// Updates the consumer-lag gauge in the background (watermark requests block, so they
    /// run on the blocking pool and never stall the loop). The requests queue behind the
    /// consumer's fetch on the same connection, which the broker holds up to
    /// `fetch.wait.max.ms` (500 ms) when there is nothing new: the timeout leaves room.
    pub(crate) fn observe_lag(&self) {
        let consumer = self.consumer.clone();
        let gauge = self.metrics.consumer_lag.clone();
        tokio::task::spawn_blocking(move || {
            if let Some(lag) = consumer.lag_blocking(Duration::from_secs(2)) {
                gauge.set(lag);
            }
        });
    }
}

/// The partitions a lane's stage was last told it owns, with the epoch of each assignment.
pub(crate) type Owned = BTreeMap<i32, Epoch>;
