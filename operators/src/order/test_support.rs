//! Builders shared by the state machine's tests.

use super::{Decision, OrderPolicy, OrderState, decide};
use doorstep_schemas::events::{OrderCommand, OrderEvent, PlaceOrder};
use doorstep_schemas::model::{
    Actor, ActorKind, DriverId, EventId, GeoPoint, OrderId, OrderItem, OrderStatus, Timestamp,
};

pub const T0: i64 = 1_700_000_000_000;
pub const CUSTOMER: &str = "c-1";
pub const RESTAURANT: &str = "r-1";
pub const DRIVER: &str = "d-1";
pub const TOTAL: i64 = 2_000;

pub fn place_cmd() -> PlaceOrder {
    PlaceOrder {
        customer_id: CUSTOMER.into(),
        restaurant_id: RESTAURANT.into(),
        items: vec![
            OrderItem {
                item_id: "pizza".into(),
                name: "Pizza".into(),
                quantity: 1,
                unit_price_cents: 1_400,
            },
            OrderItem {
                item_id: "cola".into(),
                name: "Cola".into(),
                quantity: 2,
                unit_price_cents: 300,
            },
        ],
        total_cents: TOTAL,
        restaurant_location: GeoPoint {
            lat: 60.1699,
            lng: 24.9384,
        },
        delivery_location: GeoPoint {
            lat: 60.1718,
            lng: 24.9458,
        },
    }
}

pub fn event(n: u32, at: i64, actor: Actor, command: OrderCommand) -> OrderEvent {
    OrderEvent {
        event_id: EventId::new(format!("e-{n}")),
        order_id: OrderId::from("o-1"),
        occurred_at: Timestamp::from_millis(at),
        actor,
        command,
    }
}

/// The right party of each kind for the test order.
pub fn party(kind: ActorKind) -> Actor {
    match kind {
        ActorKind::Customer => Actor::customer(CUSTOMER),
        ActorKind::Restaurant => Actor::restaurant(RESTAURANT),
        ActorKind::Driver => Actor::driver(DRIVER),
        ActorKind::System => Actor::system("dispatch"),
    }
}

pub fn apply(state: Option<OrderState>, ev: &OrderEvent) -> OrderState {
    match decide(state.as_ref(), ev, &OrderPolicy::default()) {
        Decision::Accepted(a) => a.state,
        other => panic!("{ev:?} not accepted: {other:?}"),
    }
}

/// An order driven to `status` through the real rules, with driver `d-1` assigned.
pub fn order_in(status: OrderStatus) -> OrderState {
    use OrderStatus::*;
    let mut n = 0;
    let mut at = T0;
    let mut step = |s: Option<OrderState>, actor: Actor, cmd: OrderCommand| {
        n += 1;
        at += 1_000;
        apply(s, &event(1000 + n, at, actor, cmd))
    };
    let mut s = step(
        None,
        party(ActorKind::Customer),
        OrderCommand::Place(place_cmd()),
    );
    s = step(
        Some(s),
        party(ActorKind::System),
        OrderCommand::AssignDriver {
            driver_id: DriverId::from(DRIVER),
        },
    );
    let path = [
        Confirmed,
        Preparing,
        ReadyForPickup,
        PickedUp,
        EnRoute,
        Delivered,
    ];
    let target_idx = match status {
        Placed => 0,
        Cancelled => {
            let s = step(
                Some(s),
                party(ActorKind::Restaurant),
                OrderCommand::Cancel {
                    reason: "closed".into(),
                },
            );
            return s;
        }
        other => path.iter().position(|p| *p == other).map_or(0, |i| i + 1),
    };
    for to in path.iter().take(target_idx) {
        let who = match to {
            Confirmed | Preparing | ReadyForPickup => ActorKind::Restaurant,
            _ => ActorKind::Driver,
        };
        s = step(Some(s), party(who), OrderCommand::Transition { to: *to });
    }
    assert_eq!(s.order.status, status);
    s
}
