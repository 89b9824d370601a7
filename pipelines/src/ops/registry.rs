//! A process's metric registry: Doorstep's own metric sets are registered into it by their
//! components; it starts with the standard `process_*` metrics (CPU seconds, resident memory,
//! open file descriptors, start time) that dashboards expect of every target.

use prometheus::Registry;

/// A registry holding the standard process metrics of this process.
pub fn process_registry() -> prometheus::Result<Registry> {
    let registry = Registry::new();
    #[cfg(target_os = "linux")]
    registry.register(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    ))?;
    Ok(registry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn serves_the_resident_memory_of_this_process() {
        let registry = process_registry().expect("registry");
        let rss = registry
            .gather()
            .into_iter()
            .find(|f| f.name() == "process_resident_memory_bytes")
            .expect("process_resident_memory_bytes is registered");
        assert!(rss.get_metric()[0].get_gauge().get_value() > 1_000_000.0);
    }
}
