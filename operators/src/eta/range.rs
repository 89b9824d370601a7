//! The range shown to the customer ("arriving in 15–20 minutes"): the point estimate ± `z`
//! standard deviations of the whole trip, in whole minutes, at least `min_width_min` wide.
//! The components are independent, so their variances add.

/// How the range is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct RangePolicy {
    /// Standard deviations either side of the point estimate.
    pub z: f64,
    /// The narrowest range shown, minutes (≥ 1).
    pub min_width_min: u32,
}

impl Default for RangePolicy {
    /// ± 1.5 σ, at least 2 minutes wide.
    fn default() -> Self {
        Self {
            z: 1.5,
            min_width_min: 2,
        }
    }
}

/// The combined uncertainty of independent components (root of the summed variances).
pub fn combine_sigma(sigmas: &[f64]) -> f64 {
    sigmas
        .iter()
        .filter(|s| s.is_finite())
        .map(|s| s * s)
        .sum::<f64>()
        .sqrt()
}

/// The range `(low, high)` in minutes from now for a trip of `total_s` ± `sigma_s`. The low
/// end is rounded down and the high end up, so the range always contains the point estimate.
pub fn range_minutes(total_s: f64, sigma_s: f64, policy: &RangePolicy) -> (u32, u32) {
    let total = if total_s.is_finite() {
        total_s.max(0.0)
    } else {
        0.0
    };
    let spread = if sigma_s.is_finite() && policy.z.is_finite() {
        (sigma_s * policy.z).max(0.0)
    } else {
        0.0
    };
    let to_min = |s: f64| (s / 60.0).clamp(0.0, f64::from(u32::MAX / 2));
    // Truncating casts of values clamped to 0..=u32::MAX/2 above.
    let low = to_min(total - spread).floor() as u32;
    let mut high = to_min(total + spread).ceil() as u32;
    let width = policy.min_width_min.max(1);
    if high < low + width {
        high = low + width;
    }
    (low, high)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn typical_range() {
        let p = RangePolicy::default();
        // 17.5 min ± 2 min × 1.5 → 14.5..20.5 → 14–21.
        assert_eq!(range_minutes(1_050.0, 120.0, &p), (14, 21));
        // Tiny uncertainty still shows a 2-minute range.
        assert_eq!(range_minutes(600.0, 1.0, &p), (9, 11));
        assert_eq!(range_minutes(0.0, 0.0, &p), (0, 2));
        assert_eq!(range_minutes(f64::NAN, f64::INFINITY, &p), (0, 2));
        assert!((combine_sigma(&[3.0, 4.0]) - 5.0).abs() < 1e-12);
    }

    proptest! {
        #[test]
        fn the_range_contains_the_estimate_and_widens_with_uncertainty(
            total in 0.0f64..20_000.0,
            s1 in 0.0f64..3_000.0,
            s2 in 0.0f64..3_000.0,
        ) {
            let p = RangePolicy::default();
            let (lo, hi) = range_minutes(total, s1.min(s2), &p);
            prop_assert!(f64::from(lo) * 60.0 <= total + 1e-9);
            prop_assert!(f64::from(hi) * 60.0 >= total - 1e-9);
            prop_assert!(hi >= lo + p.min_width_min);
            let (lo2, hi2) = range_minutes(total, s1.max(s2), &p);
            prop_assert!(lo2 <= lo && hi2 >= hi);
        }
    }
}
