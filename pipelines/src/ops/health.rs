//! Readiness checks: one named async probe per dependency, and [`CachedHealth`], what
//! `/healthz` answers from: at most one round of probes per [`REFRESH`] whatever the request
//! rate, and a report that says `ok` or `unavailable` per dependency (the failure's text,
//! which can name hosts and ports, goes to the log, not to the caller).

use futures::future::{BoxFuture, join_all};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    /// Per dependency: `ok` or `unavailable` (the error itself is logged).
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
                let failure = match tokio::time::timeout(PROBE_TIMEOUT, fut).await {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(e),
                    Err(_) => Some(format!("no answer within {PROBE_TIMEOUT:?}")),
                };
                let r = match failure {
                    None => "ok",
                    Some(e) => {
                        tracing::warn!(dependency = %name, error = %e, "readiness probe failed");
                        "unavailable"
                    }
                };
                (name.clone(), r.to_owned())
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

/// How long a `/healthz` report is reused before the probes run again.
pub const REFRESH: Duration = Duration::from_secs(5);

/// A [`Health`] whose report is reused for [`REFRESH`]: the first request waits for one round
/// of probes; later ones get the last report at once, and a stale one starts a refresh in the
/// background (one at a time). Cheap to clone.
#[derive(Clone)]
pub struct CachedHealth {
    health: Health,
    last: Arc<Mutex<Option<(HealthReport, Instant)>>>,
    refreshing: Arc<AtomicBool>,
    refresh: Duration,
}

impl CachedHealth {
    /// Caches `health`'s reports for [`REFRESH`].
    pub fn new(health: Health) -> Self {
        Self::with_refresh(health, REFRESH)
    }

    /// Caches `health`'s reports for `refresh`.
    pub fn with_refresh(health: Health, refresh: Duration) -> Self {
        Self {
            health,
            last: Arc::new(Mutex::new(None)),
            refreshing: Arc::new(AtomicBool::new(false)),
            refresh,
        }
    }

    fn cached(&self) -> Option<(HealthReport, Instant)> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn store(&self, report: HealthReport) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some((report, Instant::now()));
    }

    /// The current report (see the type's docs).
    pub async fn report(&self) -> HealthReport {
        match self.cached() {
            None => {
                let report = self.health.check().await;
                self.store(report.clone());
                report
            }
            Some((report, at)) => {
                if at.elapsed() >= self.refresh && !self.refreshing.swap(true, Ordering::AcqRel) {
                    let this = self.clone();
                    tokio::spawn(async move {
                        let fresh = this.health.check().await;
                        this.store(fresh);
                        this.refreshing.store(false, Ordering::Release);
                    });
                }
                report
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_cached_report_runs_the_probes_at_most_once_per_refresh() {
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = calls.clone();
        let health = Health::new().with("kafka", move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async { Err("broker 10.0.0.7:9092 refused".to_owned()) }
        });
        let cached = CachedHealth::with_refresh(health, Duration::from_secs(3600));
        for _ in 0..50 {
            let r = cached.report().await;
            assert_eq!(
                r.checks["kafka"], "unavailable",
                "no addresses in the answer"
            );
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn one_failing_probe_makes_the_report_unavailable() {
        let h = Health::new()
            .with("a", || async { Ok(()) })
            .with("b", || async { Err("down".to_owned()) });
        let r = h.check().await;
        assert!(!r.is_ok());
        assert_eq!(r.checks["a"], "ok");
        assert_eq!(r.checks["b"], "unavailable");
        assert!(
            Health::new()
                .with("a", || async { Ok(()) })
                .check()
                .await
                .is_ok()
        );
    }
}
