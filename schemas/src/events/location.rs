//! `drivers.locations.v1`: GPS pings from driver apps, every 5 s while on a delivery.

use crate::model::{DriverId, EventId, GeoPoint, Timestamp};
use serde::{Deserialize, Serialize};

/// One GPS fix from a driver's phone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocationPing {
    /// Unique per ping (minted by the gateway if the app gives none).
    pub ping_id: EventId,
    /// Who.
    pub driver_id: DriverId,
    /// Where.
    pub location: GeoPoint,
    /// Horizontal accuracy in metres, when the phone reports it.
    pub accuracy_m: Option<f64>,
    /// Heading in degrees from north, when known.
    pub heading_deg: Option<f64>,
    /// Speed in m/s, when known.
    pub speed_mps: Option<f64>,
    /// When the phone took the fix.
    pub recorded_at: Timestamp,
    /// When the gateway received it.
    pub received_at: Timestamp,
}
