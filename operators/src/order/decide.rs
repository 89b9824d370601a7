//! The state machine's entry point: [`decide`].

use super::{
    Effect, OrderPolicy, OrderState, RejectReason, TransitionRule, cancel, place, transition_rule,
};
use doorstep_schemas::events::{OrderCommand, OrderEvent, RecipientKind};
use doorstep_schemas::model::{
    ActorKind, DriverId, HistoryEntryKind, OrderStatus, StatusHistoryEntry,
};

/// An accepted event: the new state, the history entries it appended and its effects.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    /// The order after the event.
    pub state: OrderState,
    /// The entries appended to the history (also at the end of `state.history`).
    pub entries: Vec<StatusHistoryEntry>,
    /// What the outside world must do.
    pub effects: Vec<Effect>,
}

/// What the state machine makes of an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// The event changes the order.
    Accepted(Box<Accepted>),
    /// The event already changed this order (its id is in the history): nothing to do.
    Duplicate,
    /// The event is refused and changes nothing.
    Rejected(RejectReason),
}

impl Decision {
    /// The accepted change, if any.
    pub fn accepted(&self) -> Option<&Accepted> {
        match self {
            Self::Accepted(a) => Some(a),
            _ => None,
        }
    }

    /// The rejection, if any.
    pub fn rejection(&self) -> Option<&RejectReason> {
        match self {
            Self::Rejected(r) => Some(r),
            _ => None,
        }
    }
}

/// Decides what `event` does to the order whose current state is `state` (`None` when the
/// order has never been placed). Pure and deterministic: the event's `occurred_at` is the
/// time, `policy` the configurable rules.
pub fn decide(state: Option<&OrderState>, event: &OrderEvent, policy: &OrderPolicy) -> Decision {
    let Some(state) = state else {
        return match &event.command {
            OrderCommand::Place(p) => place::place(event, p, policy),
            _ => Decision::Rejected(RejectReason::UnknownOrder),
        };
    };
    if state.has_applied(&event.event_id) {
        return Decision::Duplicate;
    }
    let result = match &event.command {
        OrderCommand::Place(_) => Err(RejectReason::OrderAlreadyExists),
        _ if state.order.status.is_final() => Err(RejectReason::FinalState {
            status: state.order.status,
        }),
        OrderCommand::AssignDriver { driver_id } => assign_driver(state, event, driver_id),
        OrderCommand::Transition { to } => transition(state, event, *to, policy),
        OrderCommand::Cancel { reason } => cancel::cancel(state, event, reason, policy),
    };
    match result {
        Ok(accepted) => Decision::Accepted(Box::new(accepted)),
        Err(reason) => Decision::Rejected(reason),
    }
}

/// Builds the next history entry of `state` for `event`.
pub(super) fn entry(
    state: &OrderState,
    event: &OrderEvent,
    seq_offset: u32,
    kind: HistoryEntryKind,
    to: OrderStatus,
    reason: Option<String>,
) -> StatusHistoryEntry {
    let from = state.history.last().map_or(state.order.status, |h| h.to);
    StatusHistoryEntry {
        order_id: state.order.order_id.clone(),
        seq: state.next_seq().saturating_add(seq_offset),
        event_id: event.event_id.clone(),
        kind,
        from: Some(from),
        to,
        actor: event.actor.clone(),
        reason,
        driver_id: state.order.driver_id.clone(),
        at: event.occurred_at,
    }
}

/// Appends `entries` to a copy of `state`, sets the status to the last entry's and returns
/// the accepted change.
pub(super) fn accept(
    mut state: OrderState,
    entries: Vec<StatusHistoryEntry>,
    effects: Vec<Effect>,
) -> Accepted {
    if let Some(last) = entries.last()
        && last.to != state.order.status
    {
        state.order.status = last.to;
        state.order.updated_at = last.at;
    }
    state.history.extend(entries.iter().cloned());
    Accepted {
        state,
        entries,
        effects,
    }
}

/// The customer push for `status`, if the message table has one.
pub(super) fn notify_customer(state: &OrderState, status: OrderStatus) -> Option<Effect> {
    crate::notify::customer_message(status).map(|_| Effect::Notify {
        recipient_kind: RecipientKind::Customer,
        recipient_id: state.order.customer_id.to_string(),
        status,
    })
}

/// Checks that the actor is this order's party of its kind.
pub(super) fn check_party(state: &OrderState, event: &OrderEvent) -> Result<(), RejectReason> {
    let order = &state.order;
    let id = event.actor.id.as_str();
    let ok = match event.actor.kind {
        ActorKind::Customer => order.customer_id.as_str() == id,
        ActorKind::Restaurant => order.restaurant_id.as_str() == id,
        ActorKind::Driver => match &order.driver_id {
            None => return Err(RejectReason::NoDriverAssigned),
            Some(d) => d.as_str() == id,
        },
        ActorKind::System => true,
    };
    if ok {
        Ok(())
    } else {
        Err(RejectReason::NotOrderParty {
            actor: event.actor.kind,
        })
    }
}

fn assign_driver(
    state: &OrderState,
    event: &OrderEvent,
    driver_id: &DriverId,
) -> Result<Accepted, RejectReason> {
    let status = state.order.status;
    if event.actor.kind != ActorKind::System {
        return Err(RejectReason::NotOrderParty {
            actor: event.actor.kind,
        });
    }
    if status.is_picked_up() {
        return Err(RejectReason::AssignmentNotAllowed { status });
    }
    if state.order.driver_id.is_some() {
        return Err(RejectReason::DriverAlreadyAssigned);
    }
    if driver_id.as_str().trim().is_empty() {
        return Err(RejectReason::InvalidOrder("driver id is empty".into()));
    }
    let mut next = state.clone();
    next.order.driver_id = Some(driver_id.clone());
    let e = entry(
        &next,
        event,
        0,
        HistoryEntryKind::DriverAssigned,
        status,
        None,
    );
    Ok(accept(
        next,
        vec![e],
        vec![Effect::OccupyDriver {
            driver_id: driver_id.clone(),
        }],
    ))
}

fn transition(
    state: &OrderState,
    event: &OrderEvent,
    to: OrderStatus,
    policy: &OrderPolicy,
) -> Result<Accepted, RejectReason> {
    let from = state.order.status;
    let rule = transition_rule(from, to).ok_or(RejectReason::InvalidTransition { from, to })?;
    if !rule.admits(event.actor.kind) {
        return Err(RejectReason::ActorNotAllowed {
            actor: event.actor.kind,
            from,
            to,
        });
    }
    check_party(state, event)?;
    let mut reason = None;
    if event.actor.kind == ActorKind::System {
        let due_at = state
            .order
            .placed_at
            .plus_millis(policy.auto_confirm_after_ms);
        if event.occurred_at < due_at {
            return Err(RejectReason::AutoConfirmTooEarly { due_at });
        }
        reason = Some("auto-confirmed: the restaurant did not answer in time".to_owned());
    }
    let mut next = state.clone();
    let mut entries = Vec::with_capacity(2);
    let mut effects = Vec::new();
    if rule == TransitionRule::DriverCombinedPickup {
        entries.push(entry(
            &next,
            event,
            0,
            HistoryEntryKind::Transition,
            OrderStatus::PickedUp,
            None,
        ));
        let mut second = entry(&next, event, 1, HistoryEntryKind::Transition, to, None);
        second.from = Some(OrderStatus::PickedUp);
        entries.push(second);
        effects.extend(notify_customer(state, OrderStatus::PickedUp));
    } else {
        entries.push(entry(
            &next,
            event,
            0,
            HistoryEntryKind::Transition,
            to,
            reason,
        ));
        effects.extend(notify_customer(state, to));
    }
    match to {
        OrderStatus::Confirmed => effects.push(Effect::CancelAutoConfirm),
        OrderStatus::Preparing => next.order.preparing_since = Some(event.occurred_at),
        OrderStatus::Delivered => {
            if let Some(d) = &next.order.driver_id {
                effects.push(Effect::ReleaseDriver {
                    driver_id: d.clone(),
                });
            }
        }
        _ => {}
    }
    Ok(accept(next, entries, effects))
}
