//! Drivers: where they are and whether they are on a delivery.

use super::{DriverId, GeoPoint, OrderId};
use serde::{Deserialize, Serialize};

/// Whether a driver can take an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DriverStatus {
    /// Free for dispatch.
    Available,
    /// Assigned to `current_order_id`.
    OnDelivery,
}

/// A driver's current state, as kept in Redis for the location pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Driver {
    /// Who.
    pub driver_id: DriverId,
    /// Last accepted GPS position, if any.
    pub current_location: Option<GeoPoint>,
    /// Available or on a delivery.
    pub status: DriverStatus,
    /// The order being delivered while `ON_DELIVERY`.
    pub current_order_id: Option<OrderId>,
}
