//! Runtime metrics, named `doorstep_pipeline_*` with a `pipeline` label.

use crate::ops::MetricSet;
use prometheus::core::Collector;
use prometheus::{
    Counter, CounterVec, Histogram, HistogramOpts, IntCounter, IntGauge, IntGaugeVec, Opts,
    Registry,
};

/// The runtime's own metrics for one pipeline.
#[derive(Clone)]
pub struct RuntimeMetrics {
    /// Records read from the source.
    pub records_in: IntCounter,
    /// Batches processed.
    pub batches: IntCounter,
    /// Batch size.
    pub batch_size: Histogram,
    /// Time to process a batch (all sinks acknowledged).
    pub batch_seconds: Histogram,
    /// Retries of a failed batch.
    pub batch_retries: IntCounter,
    /// Records waiting between source and stage.
    pub queue_depth: IntGauge,
    /// Time the source spent blocked on a full queue (backpressure).
    pub source_blocked_seconds: Counter,
    /// Consumer errors (broker unavailable, ...).
    pub source_errors: IntCounter,
    /// Offset commits.
    pub commits: IntCounter,
    /// Failed offset commits (retried with the next batch).
    pub commit_errors: IntCounter,
    /// Records read but not yet committed (commit lag).
    pub uncommitted_records: IntGauge,
    /// Records in the owned partitions not yet read (high watermark − position).
    pub consumer_lag: IntGauge,
    /// 1 while the source cannot read (broker unreachable), else 0.
    pub source_unavailable: IntGauge,
    /// 1 while the source partitions are paused because a lane's queue stayed full.
    pub source_paused: IntGauge,
    /// Time the stage spent processing batches (busy, as opposed to waiting for input).
    pub stage_busy_seconds: Counter,
    /// Time batches waited for an unavailable sink (backoff between retries), by sink.
    pub sink_wait_seconds: CounterVec,
    /// 1 while the pipeline waits for that sink, else 0, by sink.
    pub sink_unavailable: IntGaugeVec,
    /// Records the stage failed on for good, written to the reject topic by the runtime.
    pub poison_records: IntCounter,
    /// Queued records read under an assignment of their partition that ended (the partition
    /// moved away, or was revoked and came back), left to be read again from the last commit.
    pub records_left_to_new_owner: IntCounter,
    /// Transactions aborted (a failed attempt whose records are discarded and redone).
    pub transaction_aborts: IntCounter,
    /// Transactional producer clients replaced after a fatal error (fenced).
    pub producer_renewals: IntCounter,
}

impl RuntimeMetrics {
    /// Registers the metrics for `pipeline` in `registry`.
    pub fn register(registry: &Registry, pipeline: &str) -> prometheus::Result<Self> {
        let opts = |name: &str, help: &str| Opts::new(name, help).const_label("pipeline", pipeline);
        let hopts = |name: &str, help: &str, buckets: Vec<f64>| {
            HistogramOpts::new(name, help)
                .const_label("pipeline", pipeline)
                .buckets(buckets)
        };
        let m = Self {
            records_in: IntCounter::with_opts(opts(
                "doorstep_pipeline_records_in_total",
                "Records read from the source topic",
            ))?,
            batches: IntCounter::with_opts(opts(
                "doorstep_pipeline_batches_total",
                "Batches processed",
            ))?,
            batch_size: Histogram::with_opts(hopts(
                "doorstep_pipeline_batch_size_records",
                "Records per batch",
                vec![1.0, 4.0, 16.0, 64.0, 256.0, 1024.0],
            ))?,
            batch_seconds: Histogram::with_opts(hopts(
                "doorstep_pipeline_batch_duration_seconds",
                "Time from batch start until every sink acknowledged it",
                prometheus::exponential_buckets(0.0005, 2.0, 14)?,
            ))?,
            batch_retries: IntCounter::with_opts(opts(
                "doorstep_pipeline_batch_retries_total",
                "Batches retried after a sink failure",
            ))?,
            queue_depth: IntGauge::with_opts(opts(
                "doorstep_pipeline_queue_depth_records",
                "Records queued between source and stage",
            ))?,
            source_blocked_seconds: Counter::with_opts(opts(
                "doorstep_pipeline_source_blocked_seconds_total",
                "Time the source waited on a full queue (backpressure)",
            ))?,
            source_errors: IntCounter::with_opts(opts(
                "doorstep_pipeline_source_errors_total",
                "Errors reading the source topic",
            ))?,
            commits: IntCounter::with_opts(opts(
                "doorstep_pipeline_commits_total",
                "Offset commits",
            ))?,
            commit_errors: IntCounter::with_opts(opts(
                "doorstep_pipeline_commit_errors_total",
                "Failed offset commits",
            ))?,
            uncommitted_records: IntGauge::with_opts(opts(
                "doorstep_pipeline_uncommitted_records",
                "Records processed or in flight but not yet committed",
            ))?,
            consumer_lag: IntGauge::with_opts(opts(
                "doorstep_kafka_consumer_lag_records",
                "Records in the owned partitions not yet read (high watermark minus position)",
            ))?,
            source_unavailable: IntGauge::with_opts(opts(
                "doorstep_pipeline_source_unavailable",
                "1 while the source topic cannot be read (broker unreachable)",
            ))?,
            source_paused: IntGauge::with_opts(opts(
                "doorstep_pipeline_source_paused",
                "1 while the source partitions are paused because a lane's queue stayed full (its sink is slow or down); the consumer is still read for the group's sake",
            ))?,
            stage_busy_seconds: Counter::with_opts(opts(
                "doorstep_pipeline_stage_busy_seconds_total",
                "Time the stage spent processing batches, retries included",
            ))?,
            sink_wait_seconds: CounterVec::new(
                opts(
                    "doorstep_pipeline_sink_wait_seconds_total",
                    "Time batches waited for an unavailable sink before a retry (backpressure)",
                ),
                &["sink"],
            )?,
            sink_unavailable: IntGaugeVec::new(
                opts(
                    "doorstep_pipeline_sink_unavailable",
                    "1 while the pipeline waits for this sink to come back",
                ),
                &["sink"],
            )?,
            poison_records: IntCounter::with_opts(opts(
                "doorstep_pipeline_poison_records_total",
                "Records the stage failed on for good, written to the reject topic by the runtime",
            ))?,
            records_left_to_new_owner: IntCounter::with_opts(opts(
                "doorstep_pipeline_records_left_to_new_owner_total",
                "Queued records read under an assignment that ended (their partition moved away or came back), read again from the last commit",
            ))?,
            transaction_aborts: IntCounter::with_opts(opts(
                "doorstep_pipeline_transaction_aborts_total",
                "Output transactions aborted (their records discarded; the work is redone in a new one)",
            ))?,
            producer_renewals: IntCounter::with_opts(opts(
                "doorstep_pipeline_producer_renewals_total",
                "Transactional producer clients replaced after a fatal error (fenced: a transaction aborted by the coordinator's timeout); the unit is redone",
            ))?,
        };
        m.register_in(registry)?;
        Ok(m)
    }
}

impl MetricSet for RuntimeMetrics {
    fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.source_unavailable.clone()),
            Box::new(self.source_paused.clone()),
            Box::new(self.stage_busy_seconds.clone()),
            Box::new(self.sink_wait_seconds.clone()),
            Box::new(self.sink_unavailable.clone()),
            Box::new(self.poison_records.clone()),
            Box::new(self.records_left_to_new_owner.clone()),
            Box::new(self.transaction_aborts.clone()),
            Box::new(self.producer_renewals.clone()),
            Box::new(self.consumer_lag.clone()),
            Box::new(self.records_in.clone()),
            Box::new(self.batches.clone()),
            Box::new(self.batch_size.clone()),
            Box::new(self.batch_seconds.clone()),
            Box::new(self.batch_retries.clone()),
            Box::new(self.queue_depth.clone()),
            Box::new(self.source_blocked_seconds.clone()),
            Box::new(self.source_errors.clone()),
            Box::new(self.commits.clone()),
            Box::new(self.commit_errors.clone()),
            Box::new(self.uncommitted_records.clone()),
        ]
    }
}

/// A gauge every lane of a pipeline contributes a part to (records held in memory, timers
/// running): each lane's stage holds its own copy and sets its own part; the gauge shows the
/// sum.
#[derive(Debug, Clone)]
pub struct LaneGauge {
    /// The registered gauge, shared by the copies.
    gauge: IntGauge,
    /// This copy's part of it.
    part: i64,
}

impl LaneGauge {
    /// A copy with no part yet of `gauge`.
    pub fn new(gauge: IntGauge) -> Self {
        Self { gauge, part: 0 }
    }

    /// Sets this copy's part to `value`.
    pub fn set(&mut self, value: i64) {
        self.gauge.add(value - self.part);
        self.part = value;
    }

    /// The registered gauge.
    pub fn gauge(&self) -> &IntGauge {
        &self.gauge
    }
}

#[cfg(test)]
mod lane_gauge_tests {
    use super::LaneGauge;
    use prometheus::IntGauge;

    #[test]
    fn the_gauge_shows_the_sum_of_the_lanes_parts() -> Result<(), prometheus::Error> {
        let gauge = IntGauge::new("doorstep_test_parts", "test")?;
        let mut a = LaneGauge::new(gauge.clone());
        let mut b = a.clone();
        a.set(5);
        b.set(3);
        assert_eq!(gauge.get(), 8);
        a.set(1);
        assert_eq!(gauge.get(), 4);
        b.set(0);
        assert_eq!(gauge.get(), 1);
        Ok(())
    }
}
