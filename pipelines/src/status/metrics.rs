//! Status pipeline metrics (`doorstep_status_*`, `doorstep_sink_*`).

use crate::ops::{CqlRequests, MetricSet};
use prometheus::core::Collector;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// Counters and histograms of the status pipeline.
#[derive(Clone)]
pub struct StatusMetrics {
    /// Events by outcome (`accepted`, `duplicate`, `rejected`).
    pub events: IntCounterVec,
    /// Rejected records by reason code.
    pub rejected: IntCounterVec,
    /// Records written per output topic.
    pub records_out: IntCounterVec,
    /// Sink latency per sink (`kafka`, `cql`, `redis`, `payments`).
    pub sink_latency: HistogramVec,
    /// Refunds by result (`ok`, `failed`, `suppressed`).
    pub refunds: IntCounterVec,
    /// Auto-confirm timers fired.
    pub timers_fired: IntCounterVec,
    /// CQL requests of the order store's session (from the driver's counters).
    pub cql_requests: CqlRequests,
}

impl StatusMetrics {
    /// Registers the metrics in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let m = Self {
            events: IntCounterVec::new(
                Opts::new("doorstep_status_events_total", "Order events by outcome"),
                &["outcome"],
            )?,
            rejected: IntCounterVec::new(
                Opts::new(
                    "doorstep_pipeline_records_rejected_total",
                    "Records sent to the reject topic, by reason",
                )
                .const_label("pipeline", "status"),
                &["reason"],
            )?,
            records_out: IntCounterVec::new(
                Opts::new(
                    "doorstep_pipeline_records_out_total",
                    "Records written, by topic",
                )
                .const_label("pipeline", "status"),
                &["topic"],
            )?,
            sink_latency: HistogramVec::new(
                HistogramOpts::new(
                    "doorstep_sink_latency_seconds",
                    "Time for a sink to acknowledge a batch",
                )
                .const_label("pipeline", "status")
                .buckets(prometheus::exponential_buckets(0.0005, 2.0, 14)?),
                &["sink"],
            )?,
            refunds: IntCounterVec::new(
                Opts::new("doorstep_status_refunds_total", "Refunds by result"),
                &["result"],
            )?,
            timers_fired: IntCounterVec::new(
                Opts::new(
                    "doorstep_status_timers_fired_total",
                    "Durable timers fired, by kind",
                ),
                &["kind"],
            )?,
            cql_requests: CqlRequests::new("status")?,
        };
        m.register_in(registry)?;
        Ok(m)
    }
}

impl MetricSet for StatusMetrics {
    fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.events.clone()),
            Box::new(self.rejected.clone()),
            Box::new(self.records_out.clone()),
            Box::new(self.sink_latency.clone()),
            Box::new(self.refunds.clone()),
            Box::new(self.timers_fired.clone()),
            Box::new(self.cql_requests.clone()),
        ]
    }
}
