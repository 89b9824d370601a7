//! The ETA pipeline's clock: ETAs, timers, cache freshness and prep-time elapsed are all
//! measured against it, so a test can run 30-second recomputations without waiting 30 s.

use doorstep_schemas::model::Timestamp;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// A source of "now".
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that moves only when told (tests, benchmarks, simulations). Clones share the time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: Timestamp) -> Self {
        Self(Arc::new(AtomicI64::new(start.as_millis())))
    }

    /// Sets the time.
    pub fn set(&self, at: Timestamp) {
        self.0.store(at.as_millis(), Ordering::SeqCst);
    }

    /// Moves the time forward by `millis`; returns the new time.
    pub fn advance(&self, millis: i64) -> Timestamp {
        Timestamp::from_millis(self.0.fetch_add(millis, Ordering::SeqCst) + millis)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told_and_clones_share_it() {
        let c = ManualClock::new(Timestamp::from_millis(1_000));
        let d = c.clone();
        assert_eq!(c.now(), Timestamp::from_millis(1_000));
        assert_eq!(d.advance(500), Timestamp::from_millis(1_500));
        assert_eq!(c.now(), Timestamp::from_millis(1_500));
        c.set(Timestamp::from_millis(7));
        assert_eq!(d.now(), Timestamp::from_millis(7));
    }
}
