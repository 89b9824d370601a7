//! Location pipeline metrics (`doorstep_location_*`, `doorstep_sink_*`).

use crate::ops::MetricSet;
use prometheus::core::Collector;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

/// Counters and histograms of the location pipeline.
#[derive(Clone)]
pub struct LocationMetrics {
    /// Pings by result: `accepted` or the reject reason.
    pub pings: IntCounterVec,
    /// Rejected pings by reason (the same records `orders.rejected.v1` receives).
    pub rejected: IntCounterVec,
    /// Redis commands per batch.
    pub redis_batch_size: Histogram,
    /// Sink latency per sink (`kafka`, `cql`, `redis`, `redis_publish`).
    pub sink_latency: HistogramVec,
    /// `doorstep_location_drivers_cached`: drivers whose last ping is held in memory.
    pub drivers_cached: crate::runtime::LaneGauge,
    /// `doorstep_location_drivers_evicted_total`: idle drivers dropped from memory (their
    /// last position stays in Redis and is read back on their next ping).
    pub drivers_evicted: IntCounter,
    /// `doorstep_location_driver_reads_total`: drivers whose hash was read from Redis because
    /// memory could not answer (first sight, an evicted driver, an order not cached).
    pub driver_reads: IntCounter,
    /// `doorstep_location_frames_conflated_total`: live frames not published because a later
    /// ping of the same order was in the same batch.
    pub frames_conflated: IntCounter,
}

impl LocationMetrics {
    /// Registers the metrics in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let m = Self {
            pings: IntCounterVec::new(
                Opts::new(
                    "doorstep_location_pings_total",
                    "GPS pings by result (accepted or the reject reason)",
                ),
                &["result"],
            )?,
            rejected: IntCounterVec::new(
                Opts::new(
                    "doorstep_pipeline_records_rejected_total",
                    "Records sent to the reject topic, by reason",
                )
                .const_label("pipeline", "location"),
                &["reason"],
            )?,
            redis_batch_size: Histogram::with_opts(
                HistogramOpts::new(
                    "doorstep_location_redis_batch_size_commands",
                    "Redis commands written per batch",
                )
                .buckets(prometheus::exponential_buckets(1.0, 2.0, 12)?),
            )?,
            sink_latency: HistogramVec::new(
                HistogramOpts::new(
                    "doorstep_sink_latency_seconds",
                    "Time for a sink to acknowledge a batch",
                )
                .const_label("pipeline", "location")
                .buckets(prometheus::exponential_buckets(0.0005, 2.0, 14)?),
                &["sink"],
            )?,
            drivers_cached: crate::runtime::LaneGauge::new(IntGauge::new(
                "doorstep_location_drivers_cached",
                "Drivers whose last accepted ping the location pipeline holds in memory",
            )?),
            drivers_evicted: IntCounter::new(
                "doorstep_location_drivers_evicted_total",
                "Idle drivers dropped from memory (read back from Redis on their next ping)",
            )?,
            driver_reads: IntCounter::new(
                "doorstep_location_driver_reads_total",
                "Drivers read from Redis because memory could not answer for them",
            )?,
            frames_conflated: IntCounter::new(
                "doorstep_location_frames_conflated_total",
                "Live frames left out because a later ping of the same order was in the batch",
            )?,
        };
        m.register_in(registry)?;
        Ok(m)
    }
}

impl MetricSet for LocationMetrics {
    fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.pings.clone()),
            Box::new(self.rejected.clone()),
            Box::new(self.drivers_cached.gauge().clone()),
            Box::new(self.drivers_evicted.clone()),
            Box::new(self.driver_reads.clone()),
            Box::new(self.frames_conflated.clone()),
            Box::new(self.redis_batch_size.clone()),
            Box::new(self.sink_latency.clone()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_next_to_the_status_pipeline() {
        // `doorstep pipeline all` registers both in one registry: the shared sink histogram
        // differs only by its `pipeline` const label.
        let registry = Registry::new();
        crate::status::StatusMetrics::register(&registry).expect("status metrics");
        let m = LocationMetrics::register(&registry).expect("location metrics");
        m.sink_latency.with_label_values(&["redis"]).observe(0.001);
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&registry.gather())
            .expect("encode");
        assert!(text.contains(
            "doorstep_sink_latency_seconds_count{pipeline=\"location\",sink=\"redis\"} 1"
        ));
    }
}
