//! Tracking updates: what a customer's live view is made of.

use super::{DriverId, EventId, GeoPoint, OrderId, OrderStatus, Timestamp};
use serde::{Deserialize, Serialize};

/// The two kinds of tracking update of the seed design.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TrackingEventType {
    /// The driver moved.
    LocationUpdate,
    /// The order changed status.
    StatusChange,
}

/// One update of an order's live tracking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackingUpdate {
    /// Unique id of this update, made of its source's id so re-reads produce the same id: the
    /// ping id for `LOCATION_UPDATE`, `<event_id>.<status_seq>` for `STATUS_CHANGE`.
    pub update_id: EventId,
    /// The order tracked.
    pub order_id: OrderId,
    /// The driver, when one is assigned.
    pub driver_id: Option<DriverId>,
    /// The driver's position, for `LOCATION_UPDATE` (`None` for `STATUS_CHANGE`).
    pub driver_location: Option<GeoPoint>,
    /// When it happened (the source event's time).
    pub timestamp: Timestamp,
    /// Location or status.
    pub event_type: TrackingEventType,
    /// The new status, for `STATUS_CHANGE`.
    pub status: Option<OrderStatus>,
    /// For `STATUS_CHANGE`: the order's timeline entry it reports (`StatusChange::seq`),
    /// unique per order (schema version 2; `None` in version 1 records).
    pub status_seq: Option<u32>,
}
