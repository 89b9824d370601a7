//! `notifications.v1`: the outbox of push notifications.

use crate::model::{OrderId, OrderStatus, Timestamp};
use serde::{Deserialize, Serialize};

/// Who a notification is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RecipientKind {
    /// The customer's app.
    Customer,
    /// The restaurant's tablet.
    Restaurant,
    /// The driver's app.
    Driver,
}

/// A push notification to send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Idempotency key: order id + status + recipient, so a replay never sends twice.
    pub notification_id: String,
    /// Recipient kind.
    pub recipient_kind: RecipientKind,
    /// Recipient id (customer, restaurant or driver id).
    pub recipient_id: String,
    /// The order.
    pub order_id: OrderId,
    /// The status that caused it.
    pub status: OrderStatus,
    /// The message text (the seed's table).
    pub message: String,
    /// When the status changed.
    pub created_at: Timestamp,
}
