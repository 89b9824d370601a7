//! The runtime's loop: batches in, stage, commit; ticks; assignment changes; shutdown.

use super::source::pump;
use super::{
    Batcher, OffsetTracker, PoisonRejects, RuntimeMetrics, SourceRecord, Stage, StageError,
    StopOffsets,
};
use crate::shutdown::{self, Signal};
use doorstep_connectors::kafka::Consumer;
use doorstep_connectors::retry::RetryPolicy;
use doorstep_schemas::model::Timestamp;
use rdkafka::consumer::Consumer as _;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Runs `$op` until it succeeds, retrying retriable errors with backoff; evaluates to
/// `Ok(true)` on success, `Ok(false)` when shutdown interrupted the retries.
macro_rules! retry {
    ($rt:expr, $what:expr, $shutdown:expr, $op:expr) => {{
        let mut attempt = 0u32;
        loop {
            match $op.await {
                Ok(()) => {
                    if attempt > 0 {
                        $rt.recovered($what, attempt);
                    }
                    break Ok(true);
                }
                Err(e) => match $rt.after_failure($what, e, &mut attempt, $shutdown).await {
                    Ok(true) => continue,
                    Ok(false) => break Ok(false),
                    Err(e) => break Err(e),
                },
            }
        }
    }};
}

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
}

/// Runs one stage over one subscribed consumer.
pub struct Runtime {
    consumer: Arc<Consumer>,
    topic: String,
    config: RuntimeConfig,
    metrics: RuntimeMetrics,
    poison: Option<PoisonRejects>,
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
            poison: None,
            stop: None,
        }
    }

    /// Writes records the stage fails on for good to the reject topic instead of stopping
    /// (see the module docs).
    pub fn with_poison_rejects(mut self, rejects: PoisonRejects) -> Self {
        self.poison = Some(rejects);
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
        let source = tokio::spawn(pump(
            self.consumer.clone(),
            tx,
            self.metrics.clone(),
            self.stop.clone(),
        ));
        let mut ticker = tokio::time::interval(self.config.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut owned: BTreeSet<i32> = BTreeSet::new();
        let mut offsets = OffsetTracker::default();
        // The batch being gathered lives out here: the select! below drops the gathering
        // future whenever a tick comes first, and records already taken from the queue must
        // not go with it (later offsets would be committed past them).
        let mut gathering: Vec<super::SourceRecord> = Vec::new();
        let result = loop {
            tokio::select! {
                biased;
                _ = shutdown::stopped(&mut shutdown) => break Ok(()),
                _ = ticker.tick() => {
                    if let Err(e) = self.check_assignment(&mut stage, &mut owned, &mut offsets, &mut shutdown).await {
                        break Err(e);
                    }
                    self.observe_lag();
                    let tick = retry!(self, "tick", &mut shutdown, stage.on_tick(Timestamp::now()));
                    if let Err(e) = tick {
                        break Err(e);
                    }
                }
                () = self.config.batch.fill(&mut rx, &mut gathering) => {
                    if gathering.is_empty() {
                        break Ok(());
                    }
                    let mut batch = std::mem::take(&mut gathering);
                    // Partitions move whenever a process joins or leaves. Take note now, not
                    // at the next tick, and drop the records of partitions this process no
                    // longer owns: their new owner reads them again from the last commit,
                    // and processing them here too would race it (a late write of ours
                    // landing after its newer one).
                    match self.check_assignment(&mut stage, &mut owned, &mut offsets, &mut shutdown).await {
                        Ok(true) => {
                            let before = batch.len();
                            batch.retain(|r| owned.contains(&r.partition));
                            let dropped = before - batch.len();
                            if dropped > 0 {
                                self.metrics.records_left_to_new_owner.inc_by(dropped as u64);
                                tracing::info!(dropped, "records of partitions now owned elsewhere left to their new owner");
                            }
                            if batch.is_empty() {
                                continue;
                            }
                        }
                        // The assignment could not be read: process as before.
                        Ok(false) => {}
                        Err(e) => break Err(e),
                    }
                    self.metrics.queue_depth.set(i64::try_from(rx.len()).unwrap_or(i64::MAX));
                    self.metrics.records_in.inc_by(batch.len() as u64);
                    self.metrics.uncommitted_records.add(i64::try_from(batch.len()).unwrap_or(i64::MAX));
                    self.metrics.batch_size.observe(batch.len() as f64);
                    let timer = self.metrics.batch_seconds.start_timer();
                    let started = std::time::Instant::now();
                    let mut done = retry!(self, "batch", &mut shutdown, stage.process_batch(&batch));
                    if let Err(RuntimeError::Stage(e)) = &done
                        && self.poison.is_some()
                    {
                        tracing::warn!(error = %e, records = batch.len(), "batch failed for good; retrying its records one by one to isolate the poison");
                        done = self.isolate(&mut stage, &batch, &mut shutdown).await;
                    }
                    self.metrics.stage_busy_seconds.inc_by(started.elapsed().as_secs_f64());
                    match done {
                        Ok(true) => {
                            timer.observe_duration();
                            self.metrics.batches.inc();
                            for r in &batch {
                                offsets.done(r.partition, r.offset);
                            }
                            self.commit(&mut offsets).await;
                        }
                        // Shutdown during retries: the batch is not committed; it is read
                        // again by whoever owns the partition next.
                        Ok(false) => break Ok(()),
                        Err(e) => break Err(e),
                    }
                }
            }
        };
        source.abort();
        self.commit(&mut offsets).await;
        result
    }

    /// After `e`, decides whether to retry: waits the policy's backoff for this attempt and returns
    /// `Ok(true)`; `Ok(false)` when shutdown came first; `Err` when `e` is not retriable.
    async fn after_failure(
        &self,
        what: &str,
        e: StageError,
        attempt: &mut u32,
        shutdown: &mut Signal,
    ) -> Result<bool, RuntimeError> {
        if !e.is_retriable() {
            return Err(RuntimeError::Stage(e));
        }
        self.metrics.batch_retries.inc();
        *attempt = attempt.saturating_add(1);
        let pause = self
            .config
            .retry
            .delay(*attempt, None)
            .unwrap_or(self.config.retry.max_backoff);
        let sink = match &e {
            StageError::Unavailable { sink, .. } => *sink,
            _ => "unknown",
        };
        self.metrics
            .sink_unavailable
            .with_label_values(&[sink])
            .set(1);
        tracing::warn!(sink, attempt = *attempt, error = %e, retry_in = ?pause, "{what} waiting for {sink}");
        tokio::select! {
            _ = shutdown::stopped(shutdown) => return Ok(false),
            _ = tokio::time::sleep(pause) => {}
        }
        self.metrics
            .sink_wait_seconds
            .with_label_values(&[sink])
            .inc_by(pause.as_secs_f64());
        Ok(true)
    }

    /// A retried operation succeeded after `attempts` failures: the sinks are back.
    fn recovered(&self, what: &str, attempts: u32) {
        self.metrics.sink_unavailable.reset();
        tracing::info!(attempts, "{what} succeeded again; sinks available");
    }

    /// Offers `batch` again record by record after it failed for good; a record that still
    /// fails for good goes to the reject topic. `Ok(true)` when every record is processed or
    /// rejected.
    async fn isolate<S: Stage>(
        &self,
        stage: &mut S,
        batch: &[SourceRecord],
        shutdown: &mut Signal,
    ) -> Result<bool, RuntimeError> {
        let Some(poison) = &self.poison else {
            return Err(RuntimeError::Stage(StageError::Fatal(
                "no reject topic for poison records".into(),
            )));
        };
        for record in batch {
            let one = std::slice::from_ref(record);
            match retry!(self, "record", shutdown, stage.process_batch(one)) {
                Ok(true) => {}
                Ok(false) => return Ok(false),
                Err(RuntimeError::Stage(e)) => {
                    tracing::error!(
                        topic = %record.topic,
                        partition = record.partition,
                        offset = record.offset,
                        error = %e,
                        "poison record: written to the reject topic"
                    );
                    if !retry!(self, "reject", shutdown, poison.write(record, &e))? {
                        return Ok(false);
                    }
                    self.metrics.poison_records.inc();
                }
            }
        }
        Ok(true)
    }

    async fn commit(&self, offsets: &mut OffsetTracker) {
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
    /// run on the blocking pool and never stall the loop).
    fn observe_lag(&self) {
        let consumer = self.consumer.clone();
        let gauge = self.metrics.consumer_lag.clone();
        tokio::task::spawn_blocking(move || {
            let consumer = consumer.inner();
            let Ok(positions) = consumer.position() else {
                return;
            };
            let mut lag = 0i64;
            for e in positions.elements() {
                let rdkafka::Offset::Offset(pos) = e.offset() else {
                    continue;
                };
                let timeout = Duration::from_millis(500);
                if let Ok((_, high)) = consumer.fetch_watermarks(e.topic(), e.partition(), timeout)
                {
                    lag += (high - pos).max(0);
                }
            }
            gauge.set(lag);
        });
    }

    /// Brings `owned` up to the consumer's assignment, telling the stage what moved.
    /// `Ok(true)` when `owned` is the current assignment, `Ok(false)` when the assignment
    /// could not be read (or the stage's hand-over was cut by shutdown).
    async fn check_assignment<S: Stage>(
        &self,
        stage: &mut S,
        owned: &mut BTreeSet<i32>,
        offsets: &mut OffsetTracker,
        shutdown: &mut Signal,
    ) -> Result<bool, RuntimeError> {
        let Ok(list) = self.consumer.inner().assignment() else {
            return Ok(false);
        };
        let now: BTreeSet<i32> = list
            .elements()
            .iter()
            .filter(|e| e.topic() == self.topic)
            .map(|e| e.partition())
            .collect();
        if now == *owned {
            return Ok(true);
        }
        let assigned: Vec<i32> = now.difference(owned).copied().collect();
        let revoked: Vec<i32> = owned.difference(&now).copied().collect();
        tracing::info!(?assigned, ?revoked, "partition assignment changed");
        offsets.forget(&revoked);
        let ok = retry!(
            self,
            "assignment",
            shutdown,
            stage.on_assignment(&assigned, &revoked)
        )?;
        if ok {
            *owned = now;
        }
        Ok(ok)
    }
}
