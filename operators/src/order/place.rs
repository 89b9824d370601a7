//! Placing an order: validation of the new order's contents.

use super::decide::{Accepted, Decision};
use super::validate;
use super::{Effect, OrderPolicy, OrderState, RejectReason};
use doorstep_schemas::events::{OrderEvent, PlaceOrder};
use doorstep_schemas::model::{
    ActorKind, HistoryEntryKind, Order, OrderStatus, StatusHistoryEntry,
};

/// Decides a `Place` for an order that does not exist yet.
pub(super) fn place(event: &OrderEvent, p: &PlaceOrder, policy: &OrderPolicy) -> Decision {
    if event.actor.kind != ActorKind::Customer {
        return Decision::Rejected(RejectReason::ActorNotAllowed {
            actor: event.actor.kind,
            from: OrderStatus::Placed,
            to: OrderStatus::Placed,
        });
    }
    if event.actor.id != p.customer_id.as_str() {
        return Decision::Rejected(RejectReason::NotOrderParty {
            actor: ActorKind::Customer,
        });
    }
    if let Err(why) = validate(event, p) {
        return Decision::Rejected(RejectReason::InvalidOrder(why));
    }
    let order = Order {
        order_id: event.order_id.clone(),
        customer_id: p.customer_id.clone(),
        restaurant_id: p.restaurant_id.clone(),
        driver_id: None,
        items: p.items.clone(),
        total_cents: p.total_cents,
        status: OrderStatus::Placed,
        placed_at: event.occurred_at,
        estimated_delivery_at: None,
        restaurant_location: p.restaurant_location,
        delivery_location: p.delivery_location,
        cancellation: None,
        updated_at: event.occurred_at,
        preparing_since: None,
    };
    let entry = StatusHistoryEntry {
        order_id: event.order_id.clone(),
        seq: 0,
        event_id: event.event_id.clone(),
        kind: HistoryEntryKind::Placed,
        from: None,
        to: OrderStatus::Placed,
        actor: event.actor.clone(),
        reason: None,
        driver_id: None,
        at: event.occurred_at,
    };
    let state = OrderState {
        order,
        history: vec![entry.clone()],
    };
    let at = event.occurred_at.plus_millis(policy.auto_confirm_after_ms);
    Decision::Accepted(Box::new(Accepted {
        state,
        entries: vec![entry],
        effects: vec![Effect::ScheduleAutoConfirm { at }],
    }))
}

fn validate(event: &OrderEvent, p: &PlaceOrder) -> Result<(), String> {
    validate::validate_place(event.order_id.as_str(), p).map_err(|e| e.to_string())
}
