//! A circuit breaker for the routing engine: after `failure_threshold` consecutive failures
//! it opens and every call fails fast (the ETA falls back to a straight-line estimate) for
//! `open_for`; then one probe call is let through (half-open): success closes it, failure
//! opens it again. Time is passed in, so a test with a controlled clock drives it exactly.

use doorstep_schemas::model::Timestamp;
use std::sync::Mutex;
use std::time::Duration;

/// Breaker settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker (≥ 1).
    pub failure_threshold: u32,
    /// How long it stays open before a probe.
    pub open_for: Duration,
}

impl Default for BreakerConfig {
    /// Opens after 5 consecutive failures, for 15 s.
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            open_for: Duration::from_secs(15),
        }
    }
}

impl BreakerConfig {
    /// A breaker opening after `failure_threshold` failures for `open_for`.
    pub fn new(failure_threshold: u32, open_for: Duration) -> Self {
        Self {
            failure_threshold: failure_threshold.max(1),
            open_for,
        }
    }
}

/// The breaker's state, as reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls fail fast.
    Open,
    /// One probe call is being tried.
    HalfOpen,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Closed { failures: u32 },
    Open { until: Timestamp },
    HalfOpen { probe_since: Timestamp },
}

/// A thread-safe circuit breaker.
#[derive(Debug)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    state: Mutex<State>,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    fn open_ms(&self) -> i64 {
        i64::try_from(self.config.open_for.as_millis()).unwrap_or(i64::MAX)
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        // A poisoned lock only means another thread panicked mid-update of a Copy value:
        // the value is still a valid state.
        let mut guard = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }

    /// Whether a call may go out at `now`. When the open period has passed, lets exactly one
    /// probe through (again after `open_for` if that probe never reports back).
    pub fn allow(&self, now: Timestamp) -> bool {
        let open_ms = self.open_ms();
        self.with(|s| match *s {
            State::Closed { .. } => true,
            State::Open { until } if now >= until => {
                *s = State::HalfOpen { probe_since: now };
                true
            }
            State::Open { .. } => false,
            State::HalfOpen { probe_since } if now.millis_since(probe_since) >= open_ms => {
                *s = State::HalfOpen { probe_since: now };
                true
            }
            State::HalfOpen { .. } => false,
        })
    }

    /// A call succeeded: close.
    pub fn on_success(&self) {
        self.with(|s| *s = State::Closed { failures: 0 });
    }

    /// A call failed at `now` (the service's fault, not a "no route" answer).
    pub fn on_failure(&self, now: Timestamp) {
        let threshold = self.config.failure_threshold.max(1);
        let until = now.plus_millis(self.open_ms());
        self.with(|s| match *s {
            State::Closed { failures } if failures + 1 >= threshold => {
                tracing::warn!(failures = failures + 1, "routing circuit breaker opens");
                *s = State::Open { until };
            }
            State::Closed { failures } => {
                *s = State::Closed {
                    failures: failures + 1,
                }
            }
            State::HalfOpen { .. } | State::Open { .. } => *s = State::Open { until },
        });
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        self.with(|s| match s {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_probes_once_and_closes_on_success() {
        let b = CircuitBreaker::new(BreakerConfig::new(3, Duration::from_secs(10)));
        let t = |s: i64| Timestamp::from_millis(s * 1_000);
        for _ in 0..2 {
            assert!(b.allow(t(0)));
            b.on_failure(t(0));
        }
        assert_eq!(b.state(), BreakerState::Closed);
        b.on_success();
        for _ in 0..3 {
            assert!(b.allow(t(1)));
            b.on_failure(t(1));
        }
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!b.allow(t(10)));
        // One probe after the open period, no second one while it is out.
        assert!(b.allow(t(11)));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(!b.allow(t(12)));
        b.on_failure(t(12));
        assert!(!b.allow(t(21)));
        assert!(b.allow(t(22)));
        b.on_success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.allow(t(22)));
    }

    #[test]
    fn a_lost_probe_does_not_keep_it_half_open_forever() {
        let b = CircuitBreaker::new(BreakerConfig::new(1, Duration::from_secs(5)));
        b.on_failure(Timestamp::from_millis(0));
        assert!(b.allow(Timestamp::from_millis(5_000)));
        assert!(!b.allow(Timestamp::from_millis(9_999)));
        assert!(b.allow(Timestamp::from_millis(10_000)));
    }
}
