//! `orders.rejected.v1`: the dead-letter topic. Nothing is dropped silently: every record a
//! pipeline cannot accept lands here with a machine-readable code and a human message.

use crate::model::{EventId, OrderId, Timestamp};
use serde::{Deserialize, Serialize};

/// A record that was refused, with why and the original bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RejectedRecord {
    /// Topic the record came from.
    pub source_topic: String,
    /// Partition it came from.
    pub source_partition: i32,
    /// Offset it had.
    pub source_offset: i64,
    /// The original key bytes, if any.
    pub original_key: Option<Vec<u8>>,
    /// The original value bytes, untouched.
    pub original_value: Vec<u8>,
    /// The event id, when the value could be decoded.
    pub event_id: Option<EventId>,
    /// The order, when known.
    pub order_id: Option<OrderId>,
    /// Which component refused it (`status`, `location`, ...).
    pub rejected_by: String,
    /// Machine-readable reason (`invalid_transition`, `undecodable`, ...).
    pub reason_code: String,
    /// Human sentence.
    pub message: String,
    /// When it was refused.
    pub rejected_at: Timestamp,
}
