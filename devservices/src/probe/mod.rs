//! Readiness probes that speak each service's own protocol, for `doorstep-wait`.
//!
//! A TCP connect only proves that something listens; these probes prove the service answers:
//! - [`kafka`]: `ApiVersions`, then `Metadata` (which also shows the advertised listener);
//! - [`cql`]: `OPTIONS` answered by `SUPPORTED`, `STARTUP` answered by `READY`;
//! - [`http`]: a `GET` answered with 200 (optionally containing a string).

pub mod cql;
pub mod http;
pub mod kafka;
mod wire;

use std::future::Future;
use std::time::{Duration, Instant};

/// Runs `probe` every `interval` until it succeeds or `timeout` has passed; returns the
/// probe's success value or its last error.
pub async fn until_ready<T, F, Fut>(
    timeout: Duration,
    interval: Duration,
    mut probe: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        // Each attempt gets at most the remaining time (and at least a little).
        let attempt =
            tokio::time::timeout(remaining.max(Duration::from_millis(200)), probe()).await;
        let err = match attempt {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(err)) => err,
            Err(_) => anyhow::anyhow!("probe timed out"),
        };
        if Instant::now() + interval >= deadline {
            return Err(err.context(format!("not ready after {timeout:?}")));
        }
        tracing::debug!(err = format!("{err:#}"), "not ready yet");
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn retries_until_success_and_gives_up_after_the_timeout() {
        let calls = AtomicU32::new(0);
        let out = until_ready(Duration::from_secs(5), Duration::from_millis(1), || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                anyhow::bail!("not yet")
            }
            Ok(7)
        })
        .await;
        assert_eq!(out.ok(), Some(7));
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        let out: anyhow::Result<()> = until_ready(
            Duration::from_millis(30),
            Duration::from_millis(5),
            || async { anyhow::bail!("never") },
        )
        .await;
        let msg = format!("{:#}", out.err().unwrap_or_else(|| anyhow::anyhow!("ok?")));
        assert!(msg.contains("never") && msg.contains("not ready"), "{msg}");
    }
}
