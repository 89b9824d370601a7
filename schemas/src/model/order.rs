//! Orders, their items, their audit trail and how they were cancelled.

use super::{
    Actor, CustomerId, DriverId, EventId, GeoPoint, OrderId, OrderStatus, RestaurantId, Timestamp,
};
use serde::{Deserialize, Serialize};

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItem {
    /// The restaurant's item id.
    pub item_id: String,
    /// Display name.
    pub name: String,
    /// How many (≥ 1).
    pub quantity: u32,
    /// Price of one, in cents (≥ 0).
    pub unit_price_cents: i64,
}

impl OrderItem {
    /// `quantity × unit_price_cents`, or `None` on overflow.
    pub fn line_total_cents(&self) -> Option<i64> {
        self.unit_price_cents.checked_mul(i64::from(self.quantity))
    }
}

/// Who cancelled an order, why and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancellation {
    /// The free-text reason given (required to cancel).
    pub reason: String,
    /// Who cancelled.
    pub cancelled_by: Actor,
    /// When.
    pub cancelled_at: Timestamp,
    /// What the customer got back, in cents.
    pub refund_cents: i64,
}

/// An order and its current state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// The order's id.
    pub order_id: OrderId,
    /// Who ordered.
    pub customer_id: CustomerId,
    /// Who cooks.
    pub restaurant_id: RestaurantId,
    /// Who delivers, once dispatch assigned someone.
    pub driver_id: Option<DriverId>,
    /// What was ordered.
    pub items: Vec<OrderItem>,
    /// What the customer paid, in cents (the sum of the item lines).
    pub total_cents: i64,
    /// Current status.
    pub status: OrderStatus,
    /// When the customer placed it.
    pub placed_at: Timestamp,
    /// The latest ETA's point estimate, when one has been computed.
    pub estimated_delivery_at: Option<Timestamp>,
    /// Where the food is picked up.
    pub restaurant_location: GeoPoint,
    /// Where the food goes.
    pub delivery_location: GeoPoint,
    /// Set once cancelled.
    pub cancellation: Option<Cancellation>,
    /// When the status last changed.
    pub updated_at: Timestamp,
    /// When the order entered `PREPARING` (for the prep-time model and ETA).
    pub preparing_since: Option<Timestamp>,
}

/// What a history entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HistoryEntryKind {
    /// The customer placed the order (`from` is `None`).
    Placed,
    /// A status transition.
    Transition,
    /// A cancellation (to `CANCELLED`).
    Cancelled,
    /// Dispatch assigned a driver (status unchanged).
    DriverAssigned,
    /// The driver gave the order back to dispatch (status unchanged).
    DriverUnassigned,
}

/// One entry of an order's audit trail and customer timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusHistoryEntry {
    /// The order.
    pub order_id: OrderId,
    /// Position in the order's history, from 0. With the event id, the key of the row.
    pub seq: u32,
    /// The event that caused it.
    pub event_id: EventId,
    /// What kind of entry.
    pub kind: HistoryEntryKind,
    /// Status before (`None` for the placement).
    pub from: Option<OrderStatus>,
    /// Status after.
    pub to: OrderStatus,
    /// Who caused it.
    pub actor: Actor,
    /// Why, when a reason was given (cancellations, auto-confirm).
    pub reason: Option<String>,
    /// Driver concerned (assignments).
    pub driver_id: Option<DriverId>,
    /// When (the event's time).
    pub at: Timestamp,
}
