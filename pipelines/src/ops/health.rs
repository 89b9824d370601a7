//! Readiness checks: one named async probe per dependency.

use futures::future::{BoxFuture, join_all};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

type Probe = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// The set of readiness probes of a process.
#[derive(Clone, Default)]
pub struct Health {
    probes: Vec<(String, Probe)>,
}

/// The outcome of running every probe.
#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    /// `ok` when every probe passed, else `unavailable`.
    pub status: &'static str,
    /// Per dependency: `ok` or the error.
    pub checks: BTreeMap<String, String>,
}

impl HealthReport {
    /// Whether every probe passed.
    pub fn is_ok(&self) -> bool {
        self.status == "ok"
    }
}

/// How long one probe may take before it counts as failed.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

impl Health {
    /// No probes (always healthy).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a named probe.
    pub fn with<F, Fut>(mut self, name: impl Into<String>, probe: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
    {
        self.probes
            .push((name.into(), Arc::new(move || Box::pin(probe()))));
        self
    }

    /// Runs every probe concurrently, each bounded by a timeout.
    pub async fn check(&self) -> HealthReport {
        let results = join_all(self.probes.iter().map(|(name, probe)| {
            let fut = probe();
            async move {
                let r = match tokio::time::timeout(PROBE_TIMEOUT, fut).await {
                    Ok(Ok(())) => "ok".to_owned(),
                    Ok(Err(e)) => e,
                    Err(_) => format!("no answer within {PROBE_TIMEOUT:?}"),
                };
                (name.clone(), r)
            }
        }))
        .await;
        let ok = results.iter().all(|(_, r)| r == "ok");
        HealthReport {
            status: if ok { "ok" } else { "unavailable" },
            checks: results.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_failing_probe_makes_the_report_unavailable() {
        let h = Health::new()
            .with("a", || async { Ok(()) })
            .with("b", || async { Err("down".to_owned()) });
        let r = h.check().await;
        assert!(!r.is_ok());
        assert_eq!(r.checks["a"], "ok");
        assert_eq!(r.checks["b"], "down");
        assert!(
            Health::new()
                .with("a", || async { Ok(()) })
                .check()
                .await
                .is_ok()
        );
    }
}
