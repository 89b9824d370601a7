//! The one way a component registers its metrics: a [`MetricSet`] lists its collectors once,
//! and that list is both what gets registered and what the metrics catalogue test
//! (`tests/tests/metrics_catalogue.rs`) compares with `deploy/METRICS.md`.

use prometheus::Registry;
use prometheus::core::Collector;

/// A component's metrics, registered together.
pub trait MetricSet {
    /// Every collector of the set (clones share their values with the originals).
    fn collectors(&self) -> Vec<Box<dyn Collector>>;

    /// Registers every collector of the set in `registry`.
    fn register_in(&self, registry: &Registry) -> prometheus::Result<()> {
        for collector in self.collectors() {
            registry.register(collector)?;
        }
        Ok(())
    }
}
