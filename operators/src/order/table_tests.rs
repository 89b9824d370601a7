//! Every (status, target, actor) combination against a hand-written table.

use super::test_support::*;
use super::{Decision, Effect, OrderPolicy, decide};
use doorstep_schemas::events::{OrderCommand, RecipientKind};
use doorstep_schemas::model::{ActorKind, DriverId, HistoryEntryKind, OrderStatus};

#[derive(Debug, PartialEq)]
enum Expect {
    /// Accepted; status after; refund.
    Accept(OrderStatus, Option<i64>),
    Reject(&'static str),
}

use ActorKind::{Customer as C, Driver as D, Restaurant as R, System as S};
use OrderStatus::*;

/// The allowed transition requests, written out by hand from the seed design.
const ALLOWED: [(OrderStatus, OrderStatus, ActorKind); 8] = [
    (Placed, Confirmed, R),
    (Placed, Confirmed, S),
    (Confirmed, Preparing, R),
    (Preparing, ReadyForPickup, R),
    (ReadyForPickup, PickedUp, D),
    (ReadyForPickup, EnRoute, D),
    (PickedUp, EnRoute, D),
    (EnRoute, Delivered, D),
];

fn expected(from: OrderStatus, to: OrderStatus, actor: ActorKind) -> Expect {
    const FEE: i64 = 500;
    if from == Delivered || from == Cancelled {
        return Expect::Reject("final_state");
    }
    if to == Cancelled {
        let before_pickup = matches!(from, Placed | Confirmed | Preparing | ReadyForPickup);
        return match (actor, from) {
            (C, Placed | Confirmed) => Expect::Accept(Cancelled, Some(TOTAL)),
            (C, Preparing | ReadyForPickup) => Expect::Accept(Cancelled, Some(TOTAL - FEE)),
            (R, _) if before_pickup => Expect::Accept(Cancelled, Some(TOTAL)),
            // The driver hands the order back; the status does not change.
            (D, _) if before_pickup => Expect::Accept(from, None),
            _ => Expect::Reject("cancellation_refused"),
        };
    }
    if ALLOWED.contains(&(from, to, actor)) {
        return Expect::Accept(to, None);
    }
    if ALLOWED.iter().any(|(f, t, _)| *f == from && *t == to) {
        Expect::Reject("actor_not_allowed")
    } else {
        Expect::Reject("invalid_transition")
    }
}

#[test]
fn every_status_target_and_actor() {
    let mut checked = 0;
    let mut accepted = 0;
    for from in OrderStatus::ALL {
        let state = order_in(from);
        for to in OrderStatus::ALL {
            for actor in ActorKind::ALL {
                let cmd = if to == Cancelled {
                    OrderCommand::Cancel {
                        reason: "changed my mind".into(),
                    }
                } else {
                    OrderCommand::Transition { to }
                };
                // Ten minutes after placement: auto-confirm is due.
                let ev = event(1, T0 + 600_000, party(actor), cmd);
                let got = match decide(Some(&state), &ev, &OrderPolicy::default()) {
                    Decision::Accepted(a) => {
                        let refund = a.effects.iter().find_map(|e| match e {
                            Effect::Refund { amount_cents } => Some(*amount_cents),
                            _ => None,
                        });
                        assert_eq!(
                            a.state.history.last().map(|h| h.to),
                            Some(a.state.order.status)
                        );
                        Expect::Accept(a.state.order.status, refund)
                    }
                    Decision::Rejected(r) => Expect::Reject(r.code()),
                    Decision::Duplicate => panic!("unexpected duplicate"),
                };
                let want = expected(from, to, actor);
                assert_eq!(got, want, "{from} -> {to} by {actor}");
                accepted += usize::from(matches!(want, Expect::Accept(..)));
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 8 * 8 * 4);
    // 8 transitions + 4 customer + 4 restaurant + 4 driver cancellations.
    assert_eq!(accepted, 20);
}

fn effects_of(from: OrderStatus, actor: ActorKind, cmd: OrderCommand) -> Vec<Effect> {
    let state = order_in(from);
    match decide(
        Some(&state),
        &event(1, T0 + 600_000, party(actor), cmd),
        &OrderPolicy::default(),
    ) {
        Decision::Accepted(a) => a.effects,
        other => panic!("{other:?}"),
    }
}

fn notified(effects: &[Effect]) -> Vec<RecipientKind> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Notify { recipient_kind, .. } => Some(*recipient_kind),
            _ => None,
        })
        .collect()
}

fn releases(effects: &[Effect]) -> bool {
    effects.contains(&Effect::ReleaseDriver {
        driver_id: DriverId::from(DRIVER),
    })
}

#[test]
fn customer_cancellation_effects() {
    let fx = effects_of(
        Confirmed,
        C,
        OrderCommand::Cancel {
            reason: "late".into(),
        },
    );
    assert!(fx.contains(&Effect::Refund {
        amount_cents: TOTAL
    }));
    assert!(releases(&fx));
    assert_eq!(
        notified(&fx),
        vec![
            RecipientKind::Customer,
            RecipientKind::Restaurant,
            RecipientKind::Driver
        ]
    );

    let fx = effects_of(
        Preparing,
        C,
        OrderCommand::Cancel {
            reason: "late".into(),
        },
    );
    assert!(fx.contains(&Effect::Refund {
        amount_cents: TOTAL - 500
    }));
}

#[test]
fn restaurant_cancellation_refunds_in_full_and_releases_the_driver() {
    let fx = effects_of(
        ReadyForPickup,
        R,
        OrderCommand::Cancel {
            reason: "out of dough".into(),
        },
    );
    assert!(fx.contains(&Effect::Refund {
        amount_cents: TOTAL
    }));
    assert!(releases(&fx));
    assert_eq!(
        notified(&fx),
        vec![RecipientKind::Customer, RecipientKind::Driver]
    );
}

#[test]
fn driver_cancellation_returns_the_order_to_dispatch() {
    let state = order_in(Preparing);
    let ev = event(
        1,
        T0 + 600_000,
        party(D),
        OrderCommand::Cancel {
            reason: "flat tyre".into(),
        },
    );
    let Decision::Accepted(a) = decide(Some(&state), &ev, &OrderPolicy::default()) else {
        panic!()
    };
    assert_eq!(a.state.order.status, Preparing);
    assert_eq!(a.state.order.driver_id, None);
    assert!(a.state.order.cancellation.is_none());
    assert!(releases(&a.effects));
    assert!(a.effects.contains(&Effect::ReturnToDispatch));
    assert!(!a.effects.iter().any(|e| matches!(e, Effect::Refund { .. })));
    let last = a.state.history.last().unwrap();
    assert_eq!(last.kind, HistoryEntryKind::DriverUnassigned);
    assert_eq!(last.reason.as_deref(), Some("flat tyre"));
    assert_eq!(last.driver_id, Some(DriverId::from(DRIVER)));
}

#[test]
fn cancellation_records_reason_and_actor() {
    let state = order_in(Placed);
    let ev = event(
        1,
        T0 + 5_000,
        party(C),
        OrderCommand::Cancel {
            reason: "  wrong address ".into(),
        },
    );
    let Decision::Accepted(a) = decide(Some(&state), &ev, &OrderPolicy::default()) else {
        panic!()
    };
    let c = a.state.order.cancellation.unwrap();
    assert_eq!(c.reason, "wrong address");
    assert_eq!(c.cancelled_by, party(C));
    assert_eq!(c.refund_cents, TOTAL);
    let ev = event(
        2,
        T0 + 5_000,
        party(C),
        OrderCommand::Cancel {
            reason: "   ".into(),
        },
    );
    assert_eq!(
        decide(Some(&state), &ev, &OrderPolicy::default())
            .rejection()
            .map(|r| r.code()),
        Some("missing_reason")
    );
}

#[test]
fn fee_never_makes_a_negative_refund() {
    let state = order_in(Preparing);
    let policy = OrderPolicy {
        customer_cancellation_fee_cents: 10 * TOTAL,
        ..OrderPolicy::default()
    };
    let ev = event(
        1,
        T0 + 600_000,
        party(C),
        OrderCommand::Cancel { reason: "x".into() },
    );
    let Decision::Accepted(a) = decide(Some(&state), &ev, &policy) else {
        panic!()
    };
    assert!(!a.effects.iter().any(|e| matches!(e, Effect::Refund { .. })));
    assert_eq!(a.state.order.cancellation.unwrap().refund_cents, 0);
}

#[test]
fn auto_confirm_only_when_due() {
    let state = order_in(Placed);
    let placed_at = state.order.placed_at.as_millis();
    let early = event(
        1,
        placed_at + 119_999,
        party(S),
        OrderCommand::Transition { to: Confirmed },
    );
    let r = decide(Some(&state), &early, &OrderPolicy::default());
    assert_eq!(
        r.rejection().map(|r| r.code()),
        Some("auto_confirm_too_early")
    );
    let due = event(
        1,
        placed_at + 120_000,
        party(S),
        OrderCommand::Transition { to: Confirmed },
    );
    let a = decide(Some(&state), &due, &OrderPolicy::default());
    let a = a.accepted().unwrap();
    assert_eq!(a.state.order.status, Confirmed);
    assert!(
        a.entries[0]
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("auto-confirmed")
    );
}

#[test]
fn strangers_are_not_parties() {
    use doorstep_schemas::model::Actor;
    let state = order_in(Confirmed);
    let ev = event(
        1,
        T0 + 600_000,
        Actor::restaurant("r-other"),
        OrderCommand::Transition { to: Preparing },
    );
    assert_eq!(
        decide(Some(&state), &ev, &OrderPolicy::default())
            .rejection()
            .map(|r| r.code()),
        Some("not_order_party")
    );
    let state = order_in(ReadyForPickup);
    let ev = event(
        1,
        T0 + 600_000,
        Actor::driver("d-other"),
        OrderCommand::Transition { to: PickedUp },
    );
    assert_eq!(
        decide(Some(&state), &ev, &OrderPolicy::default())
            .rejection()
            .map(|r| r.code()),
        Some("not_order_party")
    );
    let ev = event(
        1,
        T0 + 600_000,
        Actor::customer("c-other"),
        OrderCommand::Cancel { reason: "x".into() },
    );
    assert_eq!(
        decide(Some(&order_in(Placed)), &ev, &OrderPolicy::default())
            .rejection()
            .map(|r| r.code()),
        Some("not_order_party")
    );
}

#[test]
fn combined_pickup_writes_two_entries_and_one_push() {
    let state = order_in(ReadyForPickup);
    let ev = event(
        1,
        T0 + 600_000,
        party(D),
        OrderCommand::Transition { to: EnRoute },
    );
    let a = decide(Some(&state), &ev, &OrderPolicy::default());
    let a = a.accepted().unwrap();
    let steps: Vec<_> = a.entries.iter().map(|e| (e.from, e.to)).collect();
    assert_eq!(
        steps,
        vec![(Some(ReadyForPickup), PickedUp), (Some(PickedUp), EnRoute)]
    );
    assert_eq!(a.entries[1].seq, a.entries[0].seq + 1);
    assert_eq!(notified(&a.effects), vec![RecipientKind::Customer]);
}

#[test]
fn delivery_releases_the_driver() {
    let fx = effects_of(EnRoute, D, OrderCommand::Transition { to: Delivered });
    assert!(releases(&fx));
}

#[test]
fn driver_assignment_rules() {
    use doorstep_schemas::model::Actor;
    let placed = apply(
        None,
        &event(1, T0, party(C), OrderCommand::Place(place_cmd())),
    );
    let assign = |n, actor, d: &str| {
        event(
            n,
            T0 + 1,
            actor,
            OrderCommand::AssignDriver {
                driver_id: d.into(),
            },
        )
    };
    let r = decide(
        Some(&placed),
        &assign(2, Actor::restaurant(RESTAURANT), "d-9"),
        &OrderPolicy::default(),
    );
    assert_eq!(r.rejection().map(|r| r.code()), Some("not_order_party"));
    let a = decide(
        Some(&placed),
        &assign(2, party(S), "d-9"),
        &OrderPolicy::default(),
    );
    let a = a.accepted().unwrap();
    assert_eq!(
        a.effects,
        vec![Effect::OccupyDriver {
            driver_id: "d-9".into()
        }]
    );
    assert_eq!(a.state.order.driver_id, Some("d-9".into()));
    let again = decide(
        Some(&a.state),
        &assign(3, party(S), "d-8"),
        &OrderPolicy::default(),
    );
    assert_eq!(
        again.rejection().map(|r| r.code()),
        Some("driver_already_assigned")
    );
    let late = decide(
        Some(&order_in(PickedUp)),
        &assign(3, party(S), "d-8"),
        &OrderPolicy::default(),
    );
    assert_eq!(
        late.rejection().map(|r| r.code()),
        Some("assignment_not_allowed")
    );
}

#[test]
fn place_validation() {
    let mut p = place_cmd();
    p.total_cents += 1;
    let r = decide(
        None,
        &event(1, T0, party(C), OrderCommand::Place(p)),
        &OrderPolicy::default(),
    );
    assert_eq!(r.rejection().map(|r| r.code()), Some("invalid_order"));
    let mut p = place_cmd();
    p.items.clear();
    p.total_cents = 0;
    let r = decide(
        None,
        &event(1, T0, party(C), OrderCommand::Place(p)),
        &OrderPolicy::default(),
    );
    assert_eq!(r.rejection().map(|r| r.code()), Some("invalid_order"));
    let mut p = place_cmd();
    p.delivery_location.lat = 123.0;
    let r = decide(
        None,
        &event(1, T0, party(C), OrderCommand::Place(p)),
        &OrderPolicy::default(),
    );
    assert_eq!(r.rejection().map(|r| r.code()), Some("invalid_order"));
    let r = decide(
        None,
        &event(1, T0, party(R), OrderCommand::Place(place_cmd())),
        &OrderPolicy::default(),
    );
    assert_eq!(r.rejection().map(|r| r.code()), Some("actor_not_allowed"));
    let r = decide(
        None,
        &event(1, T0, party(R), OrderCommand::Transition { to: Confirmed }),
        &OrderPolicy::default(),
    );
    assert_eq!(r.rejection().map(|r| r.code()), Some("unknown_order"));
    let s = order_in(Placed);
    let r = decide(
        Some(&s),
        &event(1, T0, party(C), OrderCommand::Place(place_cmd())),
        &OrderPolicy::default(),
    );
    assert_eq!(
        r.rejection().map(|r| r.code()),
        Some("order_already_exists")
    );
}

#[test]
fn an_applied_event_is_a_duplicate() {
    let s = order_in(Confirmed);
    let last = s.history.last().unwrap();
    let ev = doorstep_schemas::events::OrderEvent {
        event_id: last.event_id.clone(),
        order_id: s.order.order_id.clone(),
        occurred_at: last.at,
        actor: last.actor.clone(),
        command: OrderCommand::Transition { to: Confirmed },
    };
    assert_eq!(
        decide(Some(&s), &ev, &OrderPolicy::default()),
        Decision::Duplicate
    );
}
