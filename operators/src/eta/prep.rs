//! The prep-time model: how long a restaurant takes to prepare an order at an hour of day,
//! learned from the PREPARING → READY_FOR_PICKUP durations the status pipeline observed, and
//! how much of it remains for an order.
//!
//! With at least [`PrepModel::min_observations`] observations the expectation is their
//! average (over the latest [`PrepModel::window`]) and its uncertainty their standard
//! deviation; with fewer, the configured default. Remaining time is the expectation minus the
//! time elapsed since PREPARING (never below zero), and zero once the food is ready.

/// Where an order is in its preparation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PrepStage {
    /// Not started yet (PLACED, CONFIRMED): the whole preparation is ahead.
    NotStarted,
    /// PREPARING for `elapsed_s` seconds.
    Preparing {
        /// Seconds since the order entered PREPARING (negative values count as 0).
        elapsed_s: f64,
    },
    /// READY_FOR_PICKUP or later.
    Ready,
}

/// The model's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct PrepModel {
    /// Expected preparation time without enough history, seconds.
    pub default_s: f64,
    /// Its uncertainty (one standard deviation), seconds.
    pub default_sigma_s: f64,
    /// Observations needed before the history replaces the default.
    pub min_observations: usize,
    /// How many of the latest observations are averaged.
    pub window: usize,
    /// Smallest uncertainty used, seconds (a kitchen is never exactly on time).
    pub min_sigma_s: f64,
}

impl Default for PrepModel {
    /// 15 min ± 5 min by default; learned after 3 observations, over the latest 50.
    fn default() -> Self {
        Self {
            default_s: 900.0,
            default_sigma_s: 300.0,
            min_observations: 3,
            window: 50,
            min_sigma_s: 60.0,
        }
    }
}

/// What the model expects of a restaurant at an hour of day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrepExpectation {
    /// Expected preparation time, seconds.
    pub mean_s: f64,
    /// Uncertainty, seconds (one standard deviation).
    pub sigma_s: f64,
    /// Observations it is based on (0 for the default).
    pub observations: usize,
}

impl PrepExpectation {
    /// Whether it comes from history rather than the default.
    pub fn is_learned(&self) -> bool {
        self.observations > 0
    }
}

impl PrepModel {
    /// A model with `default_s` as the default and `min_observations` needed to learn.
    pub fn new(default_s: f64, min_observations: usize) -> Self {
        Self {
            default_s,
            default_sigma_s: (default_s / 3.0).max(60.0),
            min_observations: min_observations.max(1),
            ..Self::default()
        }
    }

    /// The expectation from `observed` preparation times in seconds, oldest first. Negative
    /// or non-finite values (clock errors) are ignored.
    pub fn expect(&self, observed: &[f64]) -> PrepExpectation {
        let valid: Vec<f64> = observed
            .iter()
            .copied()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .collect();
        let latest = &valid[valid.len().saturating_sub(self.window.max(1))..];
        if latest.is_empty() || latest.len() < self.min_observations.max(1) {
            return PrepExpectation {
                mean_s: self.default_s,
                sigma_s: self.default_sigma_s.max(self.min_sigma_s),
                observations: 0,
            };
        }
        let n = latest.len() as f64;
        let mean = latest.iter().sum::<f64>() / n;
        let variance = if latest.len() > 1 {
            latest.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        PrepExpectation {
            mean_s: mean,
            sigma_s: variance.sqrt().max(self.min_sigma_s),
            observations: latest.len(),
        }
    }

    /// Preparation time remaining and its uncertainty, seconds. While preparing, the
    /// uncertainty shrinks with the square root of the share of the expectation remaining
    /// (never below [`min_sigma_s`](Self::min_sigma_s)); once the food is ready both are 0.
    pub fn remaining(&self, expect: &PrepExpectation, stage: PrepStage) -> (f64, f64) {
        match stage {
            PrepStage::NotStarted => (expect.mean_s, expect.sigma_s),
            PrepStage::Preparing { elapsed_s } => {
                let elapsed = if elapsed_s.is_finite() {
                    elapsed_s.max(0.0)
                } else {
                    0.0
                };
                let remaining = (expect.mean_s - elapsed).max(0.0);
                let share = if expect.mean_s > 0.0 {
                    remaining / expect.mean_s
                } else {
                    0.0
                };
                (
                    remaining,
                    (expect.sigma_s * share.sqrt()).max(self.min_sigma_s),
                )
            }
            PrepStage::Ready => (0.0, 0.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn default_until_enough_history_then_the_average() {
        let m = PrepModel::new(900.0, 3);
        assert_eq!(m.expect(&[]).mean_s, 900.0);
        assert!(!m.expect(&[600.0, 660.0]).is_learned());
        assert_eq!(m.expect(&[600.0, 660.0]).mean_s, 900.0);
        let e = m.expect(&[600.0, 660.0, 720.0]);
        assert!(e.is_learned());
        assert_eq!(e.observations, 3);
        assert!((e.mean_s - 660.0).abs() < 1e-9);
        assert!((e.sigma_s - 60.0).abs() < 1e-9);
        // Garbage is ignored, not averaged.
        assert_eq!(
            m.expect(&[600.0, -5.0, f64::NAN, 660.0, 720.0]).mean_s,
            660.0
        );
    }

    #[test]
    fn only_the_latest_window_counts() {
        let m = PrepModel {
            window: 2,
            min_observations: 2,
            ..PrepModel::default()
        };
        assert_eq!(m.expect(&[10_000.0, 300.0, 500.0]).mean_s, 400.0);
    }

    #[test]
    fn remaining_counts_down_and_is_zero_when_ready() {
        let m = PrepModel::default();
        let e = m.expect(&[600.0, 600.0, 600.0]);
        assert_eq!(m.remaining(&e, PrepStage::NotStarted).0, 600.0);
        assert_eq!(
            m.remaining(&e, PrepStage::Preparing { elapsed_s: 240.0 }).0,
            360.0
        );
        assert_eq!(
            m.remaining(&e, PrepStage::Preparing { elapsed_s: 900.0 }).0,
            0.0
        );
        assert_eq!(m.remaining(&e, PrepStage::Ready), (0.0, 0.0));
    }

    proptest! {
        #[test]
        fn remaining_never_grows_with_time_and_stays_in_bounds(
            obs in proptest::collection::vec(0.0f64..7_200.0, 0..20),
            a in -100.0f64..10_000.0,
            b in -100.0f64..10_000.0,
        ) {
            let m = PrepModel::default();
            let e = m.expect(&obs);
            let (early, late) = (a.min(b), a.max(b));
            let (r1, s1) = m.remaining(&e, PrepStage::Preparing { elapsed_s: early });
            let (r2, s2) = m.remaining(&e, PrepStage::Preparing { elapsed_s: late });
            prop_assert!(r2 <= r1 + 1e-9);
            prop_assert!(s2 <= s1 + 1e-9);
            prop_assert!((0.0..=e.mean_s + 1e-9).contains(&r1));
            prop_assert!(s1 >= m.min_sigma_s);
        }
    }
}
