//! Travel legs: a routed duration or, when routing fails, a straight-line estimate (distance
//! × road factor ÷ average speed), each with the uncertainty the range is built from.

use doorstep_schemas::model::GeoPoint;

/// Where a leg's duration came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TravelSource {
    /// The routing engine (called now or answered from the cache).
    Routed,
    /// Straight line × road factor ÷ average speed, because routing failed.
    Fallback,
    /// No driver (or no position) yet: the configured typical pickup.
    Assumed,
}

/// One leg of the trip.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Travel {
    /// Duration, seconds.
    pub seconds: f64,
    /// Uncertainty, seconds (one standard deviation).
    pub sigma_s: f64,
    /// Where the duration came from.
    pub source: TravelSource,
}

impl Travel {
    /// A leg that takes no time (the pickup leg once the food is picked up).
    pub const NONE: Travel = Travel {
        seconds: 0.0,
        sigma_s: 0.0,
        source: TravelSource::Routed,
    };
}

/// How legs and their uncertainty are estimated.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct TravelModel {
    /// Road distance ÷ straight-line distance for the fallback (≥ 1).
    pub road_factor: f64,
    /// Average driving speed for the fallback, metres per second (> 0).
    pub fallback_speed_mps: f64,
    /// Uncertainty of a routed duration, as a share of it (traffic, parking, stairs).
    pub routed_relative_sigma: f64,
    /// Uncertainty added to every leg, seconds (handover at the door or the counter).
    pub fixed_sigma_s: f64,
    /// Uncertainty of a fallback estimate, as a share of it.
    pub fallback_relative_sigma: f64,
    /// Pickup leg assumed while no driver (or no driver position) is known, seconds.
    pub unassigned_pickup_s: f64,
}

impl Default for TravelModel {
    /// Road factor 1.4 at 25 km/h for the fallback; routed ± 20% + 45 s, fallback ± 35%;
    /// 5 minutes assumed for an unassigned pickup.
    fn default() -> Self {
        Self {
            road_factor: 1.4,
            fallback_speed_mps: 25.0 / 3.6,
            routed_relative_sigma: 0.2,
            fixed_sigma_s: 45.0,
            fallback_relative_sigma: 0.35,
            unassigned_pickup_s: 300.0,
        }
    }
}

impl TravelModel {
    /// A model with the fallback's road factor and speed (km/h); other values default.
    pub fn new(road_factor: f64, fallback_speed_kmh: f64) -> Self {
        Self {
            road_factor: if road_factor.is_finite() {
                road_factor.max(1.0)
            } else {
                1.0
            },
            fallback_speed_mps: if fallback_speed_kmh.is_finite() && fallback_speed_kmh > 0.0 {
                fallback_speed_kmh / 3.6
            } else {
                Self::default().fallback_speed_mps
            },
            ..Self::default()
        }
    }

    /// The fallback duration from `from` to `to`, seconds: great-circle distance × road
    /// factor ÷ average speed.
    pub fn straight_line_s(&self, from: GeoPoint, to: GeoPoint) -> f64 {
        let d = from.distance_m(&to);
        if d.is_finite() {
            d * self.road_factor / self.fallback_speed_mps
        } else {
            0.0
        }
    }

    /// A leg the routing engine timed at `duration_s`.
    pub fn routed(&self, duration_s: f64) -> Travel {
        let s = finite_non_negative(duration_s);
        Travel {
            seconds: s,
            sigma_s: s * self.routed_relative_sigma + self.fixed_sigma_s,
            source: TravelSource::Routed,
        }
    }

    /// A leg estimated without routing ([`straight_line_s`](Self::straight_line_s), or a
    /// duration computed that way).
    pub fn fallback(&self, duration_s: f64) -> Travel {
        let s = finite_non_negative(duration_s);
        Travel {
            seconds: s,
            sigma_s: s * self.fallback_relative_sigma + self.fixed_sigma_s,
            source: TravelSource::Fallback,
        }
    }

    /// The pickup leg while no driver position is known.
    pub fn unassigned(&self) -> Travel {
        Travel {
            seconds: self.unassigned_pickup_s,
            sigma_s: self.unassigned_pickup_s,
            source: TravelSource::Assumed,
        }
    }
}

fn finite_non_negative(v: f64) -> f64 {
    if v.is_finite() { v.max(0.0) } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn straight_line_uses_factor_and_speed() {
        let m = TravelModel::new(1.5, 36.0); // 10 m/s
        let a = GeoPoint {
            lat: 60.1719,
            lng: 24.9414,
        };
        let b = GeoPoint {
            lat: 60.1692,
            lng: 24.9334,
        };
        let expected = a.distance_m(&b) * 1.5 / 10.0;
        assert!((m.straight_line_s(a, b) - expected).abs() < 1e-9);
        assert!(m.fallback(100.0).sigma_s > m.routed(100.0).sigma_s);
        assert_eq!(m.routed(f64::NAN).seconds, 0.0);
        assert_eq!(TravelModel::new(0.2, -1.0).road_factor, 1.0);
    }
}
