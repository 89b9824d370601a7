//! Placing an order: validation of the new order's contents.

use super::decide::{Accepted, Decision};
use super::{Effect, OrderPolicy, OrderState, RejectReason};
use doorstep_schemas::events::{OrderEvent, PlaceOrder};
use doorstep_schemas::model::{
    ActorKind, HistoryEntryKind, Order, OrderStatus, StatusHistoryEntry,
};

/// Most lines an order may have.
pub const MAX_ITEMS: usize = 200;

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
    if event.order_id.as_str().trim().is_empty() {
        return Err("order id is empty".into());
    }
    if p.restaurant_id.as_str().trim().is_empty() {
        return Err("restaurant id is empty".into());
    }
    if p.items.is_empty() {
        return Err("an order needs at least one item".into());
    }
    if p.items.len() > MAX_ITEMS {
        return Err(format!(
            "an order has at most {MAX_ITEMS} items, got {}",
            p.items.len()
        ));
    }
    let mut sum: i64 = 0;
    for (i, item) in p.items.iter().enumerate() {
        if item.quantity == 0 {
            return Err(format!("item {i} ({}) has quantity 0", item.item_id));
        }
        if item.unit_price_cents < 0 {
            return Err(format!("item {i} ({}) has a negative price", item.item_id));
        }
        sum = item
            .line_total_cents()
            .and_then(|line| sum.checked_add(line))
            .ok_or_else(|| "the order total overflows".to_owned())?;
    }
    if p.total_cents != sum {
        return Err(format!(
            "total_cents is {} but the items add up to {sum}",
            p.total_cents
        ));
    }
    p.restaurant_location
        .validate()
        .map_err(|e| format!("restaurant location: {e}"))?;
    p.delivery_location
        .validate()
        .map_err(|e| format!("delivery location: {e}"))?;
    Ok(())
}
