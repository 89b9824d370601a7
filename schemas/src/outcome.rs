//! What became of a command: the status pipeline's decision on one order event, as the app
//! that sent it reads it. JSON, not Avro: it is kept in Redis for a few minutes, announced on
//! the order's command channel, and answered by the gateway
//! (`GET /v1/orders/{order_id}/commands/{event_id}`, and a command `POST` with
//! `Prefer: wait=N`).
//!
//! ```json
//! {"order_id":"o-1","event_id":"…","command":"transition","actor":{"kind":"DRIVER","id":"d-7"},
//!  "at":1767…,"outcome":"accepted","status":"PICKED_UP","entries":[…StatusHistoryEntry]}
//! {"order_id":"o-1","event_id":"…","command":"cancel","actor":{"kind":"CUSTOMER","id":"c-1"},
//!  "at":1767…,"outcome":"rejected","reason":"cancellation_refused",
//!  "message":"a CUSTOMER cannot cancel an order that is PICKED_UP","status":"PICKED_UP"}
//! ```

use crate::model::{Actor, EventId, OrderId, OrderStatus, StatusHistoryEntry, Timestamp};
use serde::{Deserialize, Serialize};

/// The decision on one command (one order event), keyed by its event id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandOutcome {
    /// The order.
    pub order_id: OrderId,
    /// The command's event id.
    pub event_id: EventId,
    /// What was asked: `place`, `assign_driver`, `transition` or `cancel`.
    pub command: String,
    /// Who asked.
    pub actor: Actor,
    /// When it was asked (the event's `occurred_at`, the time it was decided with).
    pub at: Timestamp,
    /// The decision.
    #[serde(flatten)]
    pub decision: Decided,
}

/// Accepted, with what it changed, or rejected, with why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Decided {
    /// The command changed the order.
    Accepted {
        /// The order's status right after the command.
        status: OrderStatus,
        /// The timeline entries it appended (two for a pickup that also departs).
        entries: Vec<StatusHistoryEntry>,
    },
    /// The command was refused and changed nothing.
    Rejected {
        /// The stable reason code (`cancellation_refused`, `invalid_transition`, ...).
        reason: String,
        /// The sentence that explains it.
        message: String,
        /// The order's status when it was refused (none when the order does not exist).
        status: Option<OrderStatus>,
    },
}

impl CommandOutcome {
    /// Whether the command was refused.
    pub fn is_rejected(&self) -> bool {
        matches!(self.decision, Decided::Rejected { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ActorKind, HistoryEntryKind};

    #[test]
    fn outcomes_are_flat_json_tagged_by_outcome_and_read_back() {
        let rejected = CommandOutcome {
            order_id: OrderId::new("o-1"),
            event_id: EventId::new("e-1"),
            command: "cancel".into(),
            actor: Actor::customer("c-1"),
            at: Timestamp::from_millis(1_700_000_000_000),
            decision: Decided::Rejected {
                reason: "cancellation_refused".into(),
                message: "a CUSTOMER cannot cancel an order that is PICKED_UP".into(),
                status: Some(OrderStatus::PickedUp),
            },
        };
        let json: serde_json::Value = serde_json::to_value(&rejected).unwrap();
        assert_eq!(json["outcome"], "rejected");
        assert_eq!(json["reason"], "cancellation_refused");
        assert_eq!(json["status"], "PICKED_UP");
        assert_eq!(json["actor"]["kind"], "CUSTOMER");
        assert_eq!(json["event_id"], "e-1");
        let back: CommandOutcome = serde_json::from_value(json).unwrap();
        assert_eq!(back, rejected);
        assert!(back.is_rejected());

        let entry = StatusHistoryEntry {
            order_id: OrderId::new("o-1"),
            seq: 4,
            event_id: EventId::new("e-2"),
            kind: HistoryEntryKind::Transition,
            from: Some(OrderStatus::ReadyForPickup),
            to: OrderStatus::PickedUp,
            actor: Actor::new(ActorKind::Driver, "d-1"),
            reason: None,
            driver_id: None,
            at: Timestamp::from_millis(1_700_000_000_500),
        };
        let accepted = CommandOutcome {
            event_id: EventId::new("e-2"),
            command: "transition".into(),
            actor: Actor::driver("d-1"),
            decision: Decided::Accepted {
                status: OrderStatus::PickedUp,
                entries: vec![entry],
            },
            ..rejected
        };
        let text = serde_json::to_string(&accepted).unwrap();
        assert!(
            text.contains(r#""outcome":"accepted","status":"PICKED_UP""#),
            "{text}"
        );
        let back: CommandOutcome = serde_json::from_str(&text).unwrap();
        assert_eq!(back, accepted);
        assert!(!back.is_rejected());
    }
}
