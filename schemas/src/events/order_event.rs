//! `orders.events.v1`: what apps and dispatch ask of an order.

use crate::model::{
    Actor, CustomerId, DriverId, EventId, GeoPoint, OrderId, OrderItem, OrderStatus, RestaurantId,
    Timestamp,
};
use serde::{Deserialize, Serialize};

/// A request concerning one order. Whether it is accepted is the state machine's decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderEvent {
    /// Unique per request; effects are keyed by it.
    pub event_id: EventId,
    /// The order (the topic key).
    pub order_id: OrderId,
    /// When the actor asked (the time the state machine decides with).
    pub occurred_at: Timestamp,
    /// Who asks.
    pub actor: Actor,
    /// What is asked.
    pub command: OrderCommand,
}

/// The contents of a new order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaceOrder {
    /// Who orders (must be the actor).
    pub customer_id: CustomerId,
    /// From where.
    pub restaurant_id: RestaurantId,
    /// What.
    pub items: Vec<OrderItem>,
    /// Amount charged, in cents: must equal the sum of the item lines.
    pub total_cents: i64,
    /// Where the restaurant is.
    pub restaurant_location: GeoPoint,
    /// Where to deliver.
    pub delivery_location: GeoPoint,
}

/// What an [`OrderEvent`] asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OrderCommand {
    /// A customer places a new order.
    Place(PlaceOrder),
    /// Dispatch assigns a driver.
    AssignDriver {
        /// The driver.
        driver_id: DriverId,
    },
    /// A restaurant, driver or the system asks for the next status.
    Transition {
        /// The status asked for.
        to: OrderStatus,
    },
    /// A customer, restaurant or driver cancels.
    Cancel {
        /// Why (required, recorded for audit).
        reason: String,
    },
}

impl OrderCommand {
    /// A short name for logs and metrics labels.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Place(_) => "place",
            Self::AssignDriver { .. } => "assign_driver",
            Self::Transition { .. } => "transition",
            Self::Cancel { .. } => "cancel",
        }
    }
}
