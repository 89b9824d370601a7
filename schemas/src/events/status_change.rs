//! `orders.status.v1`: accepted changes, the canonical stream for analytics.

use crate::model::{
    Actor, CustomerId, DriverId, EventId, HistoryEntryKind, OrderId, OrderStatus, RestaurantId,
    Timestamp,
};
use serde::{Deserialize, Serialize};

/// One accepted change of an order (a history entry with the order's parties attached).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusChange {
    /// The source event's id (re-reads produce the same record).
    pub event_id: EventId,
    /// The order.
    pub order_id: OrderId,
    /// Position in the order's history.
    pub seq: u32,
    /// What kind of change.
    pub kind: HistoryEntryKind,
    /// Status before (`None` for the placement).
    pub from: Option<OrderStatus>,
    /// Status after.
    pub to: OrderStatus,
    /// Who caused it.
    pub actor: Actor,
    /// Why, when given.
    pub reason: Option<String>,
    /// The customer.
    pub customer_id: CustomerId,
    /// The restaurant.
    pub restaurant_id: RestaurantId,
    /// The driver, if assigned (after the change).
    pub driver_id: Option<DriverId>,
    /// Refund granted by this change, in cents (cancellations).
    pub refund_cents: Option<i64>,
    /// When.
    pub at: Timestamp,
}
