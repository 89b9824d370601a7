//! Building order events for tests: a whole order's life, or single requests, with
//! deterministic ids and times.

use doorstep_schemas::events::{OrderCommand, OrderEvent, PlaceOrder};
use doorstep_schemas::model::{
    Actor, EventId, GeoPoint, OrderId, OrderItem, OrderStatus, Timestamp,
};

/// Total of [`place`]'s order, in cents.
pub const TOTAL_CENTS: i64 = 1_950;

/// An order's parties and an event counter.
#[derive(Debug, Clone)]
pub struct OrderScript {
    /// The order.
    pub order_id: String,
    /// Its customer.
    pub customer: String,
    /// Its restaurant.
    pub restaurant: String,
    /// Its driver.
    pub driver: String,
    n: u32,
    at: i64,
}

impl OrderScript {
    /// A script for order `order_id` starting at `start_ms`.
    pub fn new(order_id: &str, start_ms: i64) -> Self {
        Self {
            order_id: order_id.to_owned(),
            customer: format!("{order_id}-customer"),
            restaurant: "r-kamppi".to_owned(),
            driver: format!("{order_id}-driver"),
            n: 0,
            at: start_ms,
        }
    }

    /// The next event by `actor` with `command`, one second after the previous one.
    pub fn event(&mut self, actor: Actor, command: OrderCommand) -> OrderEvent {
        self.n += 1;
        self.at += 1_000;
        OrderEvent {
            event_id: EventId::new(format!("{}-e{}", self.order_id, self.n)),
            order_id: OrderId::new(self.order_id.clone()),
            occurred_at: Timestamp::from_millis(self.at),
            actor,
            command,
        }
    }

    /// The customer places the order.
    pub fn place(&mut self) -> OrderEvent {
        let cmd = OrderCommand::Place(PlaceOrder {
            customer_id: self.customer.clone().into(),
            restaurant_id: self.restaurant.clone().into(),
            items: vec![
                OrderItem {
                    item_id: "soup".into(),
                    name: "Salmon soup".into(),
                    quantity: 1,
                    unit_price_cents: 1_450,
                },
                OrderItem {
                    item_id: "bread".into(),
                    name: "Rye bread".into(),
                    quantity: 2,
                    unit_price_cents: 250,
                },
            ],
            total_cents: TOTAL_CENTS,
            restaurant_location: GeoPoint {
                lat: 60.1690,
                lng: 24.9320,
            },
            delivery_location: GeoPoint {
                lat: 60.1718,
                lng: 24.9458,
            },
        });
        let customer = Actor::customer(self.customer.clone());
        self.event(customer, cmd)
    }

    /// Dispatch assigns the script's driver.
    pub fn assign(&mut self) -> OrderEvent {
        let cmd = OrderCommand::AssignDriver {
            driver_id: self.driver.clone().into(),
        };
        self.event(Actor::system("dispatch"), cmd)
    }

    /// The restaurant asks for `to`.
    pub fn restaurant(&mut self, to: OrderStatus) -> OrderEvent {
        let actor = Actor::restaurant(self.restaurant.clone());
        self.event(actor, OrderCommand::Transition { to })
    }

    /// The driver asks for `to`.
    pub fn driver(&mut self, to: OrderStatus) -> OrderEvent {
        let actor = Actor::driver(self.driver.clone());
        self.event(actor, OrderCommand::Transition { to })
    }

    /// `actor` cancels with `reason`.
    pub fn cancel(&mut self, actor: Actor, reason: &str) -> OrderEvent {
        self.event(
            actor,
            OrderCommand::Cancel {
                reason: reason.to_owned(),
            },
        )
    }

    /// Place → assign → every status by the right actor → DELIVERED.
    pub fn full_life(&mut self) -> Vec<OrderEvent> {
        use OrderStatus::*;
        vec![
            self.place(),
            self.assign(),
            self.restaurant(Confirmed),
            self.restaurant(Preparing),
            self.restaurant(ReadyForPickup),
            self.driver(PickedUp),
            self.driver(EnRoute),
            self.driver(Delivered),
        ]
    }
}

/// A placement by customer `c-1` at restaurant `r-1` (central Helsinki, delivered ~500 m
/// away): `quantity` soups at `unit_price_cents`, the total their product.
pub fn soup_order(quantity: u32, unit_price_cents: i64) -> PlaceOrder {
    PlaceOrder {
        customer_id: "c-1".into(),
        restaurant_id: "r-1".into(),
        items: vec![OrderItem {
            item_id: "soup".into(),
            name: "Soup".into(),
            quantity,
            unit_price_cents,
        }],
        total_cents: i64::from(quantity) * unit_price_cents,
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
