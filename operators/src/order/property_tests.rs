//! Property tests over random event sequences: the state is always valid, the history always
//! agrees with the status, deciding is deterministic and at-least-once delivery changes
//! nothing.

use super::test_support::{T0, TOTAL, event, place_cmd};
use super::{Decision, Effect, OrderPolicy, OrderState, decide};
use doorstep_schemas::events::{OrderCommand, OrderEvent};
use doorstep_schemas::model::{Actor, ActorKind, HistoryEntryKind, OrderStatus};
use proptest::prelude::*;

fn actor() -> impl Strategy<Value = Actor> {
    let kind = prop::sample::select(ActorKind::ALL.to_vec());
    // Mostly the right party, sometimes a stranger.
    let id = prop::sample::select(vec!["c-1", "r-1", "d-1", "d-2", "dispatch", "x-9"]);
    (kind, id).prop_map(|(k, id)| {
        let id = match (k, id) {
            (ActorKind::Customer, "x-9") | (ActorKind::Restaurant, "x-9") => id,
            (ActorKind::Customer, _) => "c-1",
            (ActorKind::Restaurant, _) => "r-1",
            _ => id,
        };
        Actor::new(k, id)
    })
}

fn command() -> impl Strategy<Value = OrderCommand> {
    prop_oneof![
        1 => Just(OrderCommand::Place(place_cmd())),
        2 => prop::sample::select(vec!["d-1", "d-2"]).prop_map(|d| OrderCommand::AssignDriver { driver_id: d.into() }),
        8 => prop::sample::select(OrderStatus::ALL.to_vec()).prop_map(|to| OrderCommand::Transition { to }),
        2 => prop::sample::select(vec!["", "changed my mind"]).prop_map(|r| OrderCommand::Cancel { reason: r.into() }),
    ]
}

fn events() -> impl Strategy<Value = Vec<OrderEvent>> {
    let first = Just(event(
        0,
        T0,
        Actor::customer("c-1"),
        OrderCommand::Place(place_cmd()),
    ));
    let rest = prop::collection::vec((actor(), command(), 0i64..90_000), 0..40);
    (first, rest).prop_map(|(first, rest)| {
        let mut at = T0;
        let mut out = vec![first];
        for (i, (a, c, dt)) in rest.into_iter().enumerate() {
            at += dt;
            out.push(event(u32::try_from(i).unwrap_or(0) + 1, at, a, c));
        }
        out
    })
}

fn run(events: &[OrderEvent]) -> (Option<OrderState>, Vec<Decision>) {
    let policy = OrderPolicy::default();
    let mut state: Option<OrderState> = None;
    let mut decisions = Vec::new();
    for ev in events {
        let d = decide(state.as_ref(), ev, &policy);
        if let Decision::Accepted(a) = &d {
            state = Some(a.state.clone());
        }
        decisions.push(d);
    }
    (state, decisions)
}

fn check_invariants(s: &OrderState) -> Result<(), TestCaseError> {
    prop_assert!(!s.history.is_empty());
    prop_assert_eq!(s.history[0].kind, HistoryEntryKind::Placed);
    prop_assert_eq!(s.history[0].from, None);
    for (i, h) in s.history.iter().enumerate() {
        prop_assert_eq!(h.seq as usize, i);
        if i > 0 {
            prop_assert_eq!(h.from, Some(s.history[i - 1].to), "chain broken at {}", i);
            prop_assert!(
                !s.history[i - 1].to.is_final(),
                "entry after a final status"
            );
            prop_assert!(h.at >= s.history[i - 1].at);
        }
    }
    prop_assert_eq!(s.history.last().map(|h| h.to), Some(s.order.status));
    prop_assert_eq!(
        s.order.cancellation.is_some(),
        s.order.status == OrderStatus::Cancelled
    );
    if let Some(c) = &s.order.cancellation {
        prop_assert!((0..=TOTAL).contains(&c.refund_cents));
    }
    if s.order.status.is_picked_up() {
        prop_assert!(s.order.driver_id.is_some(), "picked up without a driver");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn random_sequences_keep_every_invariant(evs in events()) {
        let policy = OrderPolicy::default();
        let mut state: Option<OrderState> = None;
        let mut refunds = 0;
        let mut occupied: Option<String> = None;
        for ev in &evs {
            let before = state.clone();
            match decide(state.as_ref(), ev, &policy) {
                Decision::Accepted(a) => {
                    check_invariants(&a.state)?;
                    let prev_len = before.as_ref().map_or(0, |b| b.history.len());
                    prop_assert_eq!(a.state.history.len(), prev_len + a.entries.len());
                    prop_assert!(!a.entries.is_empty());
                    for fx in &a.effects {
                        match fx {
                            Effect::Refund { amount_cents } => {
                                refunds += 1;
                                prop_assert!(*amount_cents > 0 && *amount_cents <= TOTAL);
                            }
                            Effect::OccupyDriver { driver_id } => {
                                prop_assert!(occupied.is_none());
                                occupied = Some(driver_id.to_string());
                            }
                            Effect::ReleaseDriver { driver_id } => {
                                prop_assert_eq!(occupied.take(), Some(driver_id.to_string()));
                            }
                            _ => {}
                        }
                    }
                    state = Some(a.state);
                }
                Decision::Rejected(_) | Decision::Duplicate => {
                    prop_assert_eq!(&state, &before, "a refused event changed the state");
                }
            }
        }
        prop_assert!(refunds <= 1, "refunded {} times", refunds);
        // An active order occupies exactly its driver; a final one keeps the driver's id
        // for the record but has released them.
        if let Some(s) = &state {
            if s.order.status.is_active() {
                prop_assert_eq!(s.order.driver_id.as_ref().map(ToString::to_string), occupied);
            } else {
                prop_assert_eq!(occupied, None);
            }
        }
    }

    #[test]
    fn deciding_is_deterministic(evs in events()) {
        let (a, da) = run(&evs);
        let (b, db) = run(&evs);
        prop_assert_eq!(a, b);
        prop_assert_eq!(da, db);
    }

    #[test]
    fn redelivery_changes_nothing(evs in events()) {
        let doubled: Vec<OrderEvent> = evs.iter().flat_map(|e| [e.clone(), e.clone()]).collect();
        let (once, _) = run(&evs);
        let (twice, decisions) = run(&doubled);
        prop_assert_eq!(once, twice);
        // Every redelivery of an accepted event is recognised as a duplicate.
        for pair in decisions.chunks(2) {
            if matches!(pair[0], Decision::Accepted(_)) {
                prop_assert_eq!(&pair[1], &Decision::Duplicate);
            }
        }
    }
}
