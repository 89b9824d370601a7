//! The keyed state of one order: the order row and its history.

use doorstep_schemas::model::{EventId, Order, StatusHistoryEntry};
use serde::{Deserialize, Serialize};

/// One order's state as the state machine sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderState {
    /// The current order row.
    pub order: Order,
    /// The audit trail, oldest first; `history[i].seq == i`.
    pub history: Vec<StatusHistoryEntry>,
}

impl OrderState {
    /// Whether `event_id` already changed this order (a re-read after a crash or a replay).
    pub fn has_applied(&self, event_id: &EventId) -> bool {
        self.history.iter().any(|h| &h.event_id == event_id)
    }

    /// The sequence number the next history entry gets.
    pub fn next_seq(&self) -> u32 {
        u32::try_from(self.history.len()).unwrap_or(u32::MAX)
    }
}
