//! Notify pipeline metrics (`doorstep_notify_*`).

use crate::ops::MetricSet;
use prometheus::core::Collector;
use prometheus::{Histogram, HistogramOpts, IntCounterVec, Opts, Registry};

/// Counters of the notify pipeline.
#[derive(Clone)]
pub struct NotifyMetrics {
    /// Pushes by result: `sent`, `duplicate` (ledger), `retry`, `failed`; records refused
    /// before any push by reason (`undecodable`, `tombstone`, `key_mismatch`).
    pub pushes: IntCounterVec,
    /// Time to send one push (with retries).
    pub push_latency: Histogram,
}

impl NotifyMetrics {
    /// Registers the metrics in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let m = Self {
            pushes: IntCounterVec::new(
                Opts::new("doorstep_notify_pushes_total", "Pushes by result"),
                &["result"],
            )?,
            push_latency: Histogram::with_opts(
                HistogramOpts::new(
                    "doorstep_notify_push_duration_seconds",
                    "Time to send one push, retries included",
                )
                .buckets(prometheus::exponential_buckets(0.001, 2.0, 14)?),
            )?,
        };
        m.register_in(registry)?;
        Ok(m)
    }
}

impl MetricSet for NotifyMetrics {
    fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.pushes.clone()),
            Box::new(self.push_latency.clone()),
        ]
    }
}
