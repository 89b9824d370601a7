//! ETA pipeline metrics (`doorstep_eta_*`, `doorstep_sink_*`).

use crate::ops::MetricSet;
use doorstep_connectors::routing::{RouteAnswer, RouteSource};
use prometheus::core::Collector;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

/// Counters and histograms of the ETA pipeline.
#[derive(Clone)]
pub struct EtaMetrics {
    /// ETA updates published, by trigger (`status`, `timer`).
    pub recomputations: IntCounterVec,
    /// HTTP requests to the routing engine (retries included).
    pub routing_calls: IntCounter,
    /// Lookups answered from the route cache.
    pub cache_hits: IntCounter,
    /// Lookups the cache could not answer.
    pub cache_misses: IntCounter,
    /// Legs estimated by the straight-line fallback, by reason.
    pub fallbacks: IntCounterVec,
    /// Time of one lookup's requests to the routing engine.
    pub routing_latency: Histogram,
    /// Orders with a running ETA timer in this process.
    pub active_orders: crate::runtime::LaneGauge,
    /// Records sent to the reject topic, by reason.
    pub rejected: IntCounterVec,
    /// Sink latency per sink (`kafka`, `redis`, `cql`).
    pub sink_latency: HistogramVec,
}

impl EtaMetrics {
    /// Registers the metrics in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let m = Self {
            recomputations: IntCounterVec::new(
                Opts::new(
                    "doorstep_eta_recomputations_total",
                    "ETA updates published, by trigger (status change or 30 s timer)",
                ),
                &["trigger"],
            )?,
            routing_calls: IntCounter::new(
                "doorstep_eta_routing_calls_total",
                "HTTP requests to the routing engine (retries included)",
            )?,
            cache_hits: IntCounter::new(
                "doorstep_eta_routing_cache_hits_total",
                "Routing lookups answered from the cache",
            )?,
            cache_misses: IntCounter::new(
                "doorstep_eta_routing_cache_misses_total",
                "Routing lookups the cache could not answer",
            )?,
            fallbacks: IntCounterVec::new(
                Opts::new(
                    "doorstep_eta_routing_fallbacks_total",
                    "Legs estimated without the routing engine, by reason",
                ),
                &["reason"],
            )?,
            routing_latency: Histogram::with_opts(
                HistogramOpts::new(
                    "doorstep_eta_routing_latency_seconds",
                    "Time of one routing lookup's requests (retries included)",
                )
                .buckets(prometheus::exponential_buckets(0.0005, 2.0, 14)?),
            )?,
            active_orders: crate::runtime::LaneGauge::new(IntGauge::new(
                "doorstep_eta_active_orders",
                "Orders with a running ETA timer in this process",
            )?),
            rejected: IntCounterVec::new(
                Opts::new(
                    "doorstep_pipeline_records_rejected_total",
                    "Records sent to the reject topic, by reason",
                )
                .const_label("pipeline", "eta"),
                &["reason"],
            )?,
            sink_latency: HistogramVec::new(
                HistogramOpts::new(
                    "doorstep_sink_latency_seconds",
                    "Time for a sink to acknowledge a batch",
                )
                .const_label("pipeline", "eta")
                .buckets(prometheus::exponential_buckets(0.0005, 2.0, 14)?),
                &["sink"],
            )?,
        };
        m.register_in(registry)?;
        Ok(m)
    }

    /// Counts one routing lookup.
    pub fn observe_route(&self, answer: &RouteAnswer) {
        self.routing_calls.inc_by(u64::from(answer.calls));
        if let Some(latency) = answer.latency {
            self.routing_latency.observe(latency.as_secs_f64());
        }
        match answer.source {
            RouteSource::Cached => self.cache_hits.inc(),
            RouteSource::Routed => self.cache_misses.inc(),
            RouteSource::Fallback(reason) => {
                self.cache_misses.inc();
                self.fallbacks.with_label_values(&[reason.code()]).inc();
            }
        }
    }
}

impl MetricSet for EtaMetrics {
    fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.recomputations.clone()),
            Box::new(self.routing_calls.clone()),
            Box::new(self.cache_hits.clone()),
            Box::new(self.cache_misses.clone()),
            Box::new(self.fallbacks.clone()),
            Box::new(self.routing_latency.clone()),
            Box::new(self.active_orders.gauge().clone()),
            Box::new(self.rejected.clone()),
            Box::new(self.sink_latency.clone()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_next_to_the_other_pipelines() {
        let registry = Registry::new();
        crate::status::StatusMetrics::register(&registry).expect("status metrics");
        crate::location::LocationMetrics::register(&registry).expect("location metrics");
        let m = EtaMetrics::register(&registry).expect("eta metrics");
        m.sink_latency.with_label_values(&["cql"]).observe(0.001);
        m.recomputations.with_label_values(&["timer"]).inc();
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&registry.gather())
            .expect("encode");
        assert!(
            text.contains("doorstep_sink_latency_seconds_count{pipeline=\"eta\",sink=\"cql\"} 1")
        );
        assert!(text.contains("doorstep_eta_recomputations_total{trigger=\"timer\"} 1"));
    }
}
