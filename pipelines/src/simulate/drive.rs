//! A driver driving a path: a GPS ping through the gateway every `ping_interval` of
//! simulated time, the way a driver app reports while on the road.

use super::path::Path;
use super::{ApiClient, ApiError};
use doorstep_schemas::model::GeoPoint;
use std::time::Duration;

/// How a drive is paced.
#[derive(Debug, Clone, Copy)]
pub struct DrivePace {
    /// Simulated seconds between two pings (5 s, like the driver app).
    pub ping_interval_s: f64,
    /// Speed-up of driving (1: real time).
    pub speedup: f64,
    /// Cap on the speed the pings imply in real time, m/s: the speed-up of one drive is
    /// lowered so that `path speed × speed-up` stays below it (the location pipeline drops
    /// pings implying more than 70 m/s as impossible).
    pub max_apparent_mps: f64,
}

impl DrivePace {
    /// Default cap on the apparent speed: well below the location filter's 70 m/s, so HTTP
    /// jitter between two pings does not push one over.
    pub const DEFAULT_MAX_APPARENT_MPS: f64 = 45.0;

    /// The speed-up used for `path`.
    pub fn speedup_for(&self, path: &Path) -> f64 {
        let speed = path.speed_mps();
        let cap = if speed > 0.0 {
            self.max_apparent_mps / speed
        } else {
            self.speedup
        };
        self.speedup.min(cap).max(0.01)
    }
}

/// Drives `path` as `driver`, pinging its position, and returns where it ended. A refused
/// ping is logged and counted by the caller through the error count; driving goes on.
pub async fn drive(
    api: &ApiClient,
    driver: &str,
    path: &Path,
    pace: DrivePace,
) -> Result<GeoPoint, ApiError> {
    let step = pace.ping_interval_s.max(0.1);
    let real_step = Duration::from_secs_f64(step / pace.speedup_for(path));
    let speed = path.speed_mps();
    let mut t = 0.0;
    let mut prev = path.position_at(0.0);
    loop {
        let here = path.position_at(t);
        let heading = bearing_deg(prev, here);
        api.ping(driver, here, Some(speed), heading).await?;
        prev = here;
        if t >= path.duration_s() {
            return Ok(here);
        }
        tokio::time::sleep(real_step).await;
        t = (t + step).min(path.duration_s());
    }
}

/// Initial bearing from `a` to `b`, degrees from north in `0..360`; `None` when they coincide.
pub fn bearing_deg(a: GeoPoint, b: GeoPoint) -> Option<f64> {
    if a.distance_m(&b) < 0.5 {
        return None;
    }
    let (la1, la2) = (a.lat.to_radians(), b.lat.to_radians());
    let dl = (b.lng - a.lng).to_radians();
    let y = dl.sin() * la2.cos();
    let x = la1.cos() * la2.sin() - la1.sin() * la2.cos() * dl.cos();
    Some((y.atan2(x).to_degrees() + 360.0) % 360.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_speed_up_is_capped_by_the_apparent_speed() {
        let a = GeoPoint {
            lat: 60.17,
            lng: 24.94,
        };
        let b = GeoPoint {
            lat: 60.18,
            lng: 24.94,
        };
        let slow = Path::straight(a, b, 2.5);
        let fast = Path::straight(a, b, 15.0);
        let pace = DrivePace {
            ping_interval_s: 5.0,
            speedup: 10.0,
            max_apparent_mps: 45.0,
        };
        assert!((pace.speedup_for(&slow) - 10.0).abs() < 1e-9);
        assert!((pace.speedup_for(&fast) - 3.0).abs() < 1e-6);
        assert!(fast.speed_mps() * pace.speedup_for(&fast) <= 45.0 + 1e-6);
    }

    #[test]
    fn bearings_point_the_right_way() {
        let a = GeoPoint {
            lat: 60.17,
            lng: 24.94,
        };
        let north = GeoPoint {
            lat: 60.171,
            lng: 24.94,
        };
        let east = GeoPoint {
            lat: 60.17,
            lng: 24.942,
        };
        assert!(bearing_deg(a, north).unwrap().abs() < 0.01);
        assert!((bearing_deg(a, east).unwrap() - 90.0).abs() < 0.1);
        assert!((bearing_deg(north, a).unwrap() - 180.0).abs() < 0.01);
        assert_eq!(bearing_deg(a, a), None);
    }
}
