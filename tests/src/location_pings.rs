//! Location pings as a driver app sends them, for tests that feed `drivers.locations.v1`.

use doorstep_schemas::events::LocationPing;
use doorstep_schemas::model::{DriverId, EventId, GeoPoint, Timestamp};

/// A good fix of `driver` at (`lat`, `lng`): 5 m accuracy, heading north at 10 m/s, recorded
/// at `recorded_at` and received at `received_at` (ms since the epoch).
pub fn ping(
    id: &str,
    driver: &str,
    lat: f64,
    lng: f64,
    recorded_at: i64,
    received_at: i64,
) -> LocationPing {
    LocationPing {
        ping_id: EventId::new(id),
        driver_id: DriverId::new(driver),
        location: GeoPoint { lat, lng },
        accuracy_m: Some(5.0),
        heading_deg: Some(0.0),
        speed_mps: Some(10.0),
        recorded_at: Timestamp::from_millis(recorded_at),
        received_at: Timestamp::from_millis(received_at),
    }
}
