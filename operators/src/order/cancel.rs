//! The cancellation rules of the seed design, per actor and status.
//!
//! - Customer: full refund before `PREPARING`; from `PREPARING` until `PICKED_UP` the refund is
//!   the total minus the configured fee; refused from `PICKED_UP` on.
//! - Restaurant: allowed before `PICKED_UP`; full refund, the driver (if any) is released.
//! - Driver: allowed before `PICKED_UP`; the order is not cancelled for the customer: the
//!   driver is released and the order goes back to dispatch.
//! - System: not a cancelling party.

use super::decide::{Accepted, accept, check_party, entry, notify_customer};
use super::{Effect, OrderPolicy, OrderState, RejectReason};
use doorstep_schemas::events::{OrderEvent, RecipientKind};
use doorstep_schemas::model::{ActorKind, Cancellation, HistoryEntryKind, OrderStatus};

/// Decides a cancellation of a non-final order.
pub(super) fn cancel(
    state: &OrderState,
    event: &OrderEvent,
    reason: &str,
    policy: &OrderPolicy,
) -> Result<Accepted, RejectReason> {
    let status = state.order.status;
    let actor = event.actor.kind;
    let refused = RejectReason::CancellationRefused { actor, status };
    let refund = match actor {
        ActorKind::System => return Err(refused),
        _ if status.is_picked_up() => return Err(refused),
        ActorKind::Customer => match status {
            OrderStatus::Placed | OrderStatus::Confirmed => state.order.total_cents,
            _ => (state.order.total_cents - policy.customer_cancellation_fee_cents).max(0),
        },
        ActorKind::Restaurant => state.order.total_cents,
        ActorKind::Driver => 0,
    };
    check_party(state, event)?;
    let reason = match super::validate::validate_reason(reason) {
        Ok(r) => r.to_owned(),
        Err(super::validate::InvalidInput::MissingReason) => {
            return Err(RejectReason::MissingReason);
        }
        Err(other) => return Err(RejectReason::InvalidOrder(other.to_string())),
    };
    if actor == ActorKind::Driver {
        return Ok(driver_gives_back(state, event, reason));
    }

    let mut next = state.clone();
    next.order.cancellation = Some(Cancellation {
        reason: reason.clone(),
        cancelled_by: event.actor.clone(),
        cancelled_at: event.occurred_at,
        refund_cents: refund,
    });
    let e = entry(
        &next,
        event,
        0,
        HistoryEntryKind::Cancelled,
        OrderStatus::Cancelled,
        Some(reason),
    );
    let mut effects = Vec::new();
    if refund > 0 {
        effects.push(Effect::Refund {
            amount_cents: refund,
        });
    }
    if let Some(d) = &next.order.driver_id {
        effects.push(Effect::ReleaseDriver {
            driver_id: d.clone(),
        });
    }
    effects.push(Effect::CancelAutoConfirm);
    effects.extend(notify_customer(state, OrderStatus::Cancelled));
    if actor != ActorKind::Restaurant {
        effects.push(Effect::Notify {
            recipient_kind: RecipientKind::Restaurant,
            recipient_id: next.order.restaurant_id.to_string(),
            status: OrderStatus::Cancelled,
        });
    }
    if let Some(d) = &next.order.driver_id {
        effects.push(Effect::Notify {
            recipient_kind: RecipientKind::Driver,
            recipient_id: d.to_string(),
            status: OrderStatus::Cancelled,
        });
    }
    Ok(accept(next, vec![e], effects))
}

fn driver_gives_back(state: &OrderState, event: &OrderEvent, reason: String) -> Accepted {
    let mut next = state.clone();
    let driver = next.order.driver_id.take();
    let mut e = entry(
        state,
        event,
        0,
        HistoryEntryKind::DriverUnassigned,
        state.order.status,
        Some(reason),
    );
    e.driver_id = driver.clone();
    let mut effects = Vec::new();
    if let Some(driver_id) = driver {
        effects.push(Effect::ReleaseDriver { driver_id });
    }
    effects.push(Effect::ReturnToDispatch);
    accept(next, vec![e], effects)
}
