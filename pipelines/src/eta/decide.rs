//! The ETA pipeline's keyed state: what it knows of each active order of its partitions, and
//! how a status change updates it. Pure (no I/O), unit-tested.
//!
//! The status stream carries the status, parties and times; where the restaurant and the
//! customer are comes from the order row (loaded once per order, [`Tracked::places`]). A
//! change at or below the order's last seen history `seq` is a re-read and is ignored.

use doorstep_connectors::order_store::PrepTimeObservation;
use doorstep_operators::eta::hour_of_day;
use doorstep_operators::order::OrderState;
use doorstep_schemas::events::StatusChange;
use doorstep_schemas::model::{
    DriverId, GeoPoint, HistoryEntryKind, OrderStatus, RestaurantId, Timestamp,
};

/// Where the food is and where it goes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Places {
    /// The restaurant.
    pub restaurant: GeoPoint,
    /// The customer.
    pub customer: GeoPoint,
}

/// What the pipeline knows of one order.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracked {
    /// The partition of the source topic the order belongs to.
    pub partition: i32,
    /// The status after the last change seen.
    pub status: OrderStatus,
    /// The `seq` of the last history entry seen.
    pub last_seq: u32,
    /// The restaurant.
    pub restaurant_id: RestaurantId,
    /// The driver, when one is assigned.
    pub driver_id: Option<DriverId>,
    /// When the order entered PREPARING.
    pub preparing_since: Option<Timestamp>,
    /// From the order row, once loaded.
    pub places: Option<Places>,
}

/// What applying a change did.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// Already seen (a re-read).
    Duplicate,
    /// The state changed; carries a prep-time observation when the food just became ready.
    Changed(Option<PrepTimeObservation>),
}

impl Tracked {
    /// The state of an order first seen through `change` (places unknown yet).
    pub fn from_change(change: &StatusChange, partition: i32) -> Self {
        Self {
            partition,
            status: change.to,
            last_seq: change.seq,
            restaurant_id: change.restaurant_id.clone(),
            driver_id: change.driver_id.clone(),
            preparing_since: (change.to == OrderStatus::Preparing).then_some(change.at),
            places: None,
        }
    }

    /// The state as stored in the order row (after a restart or a partition move).
    pub fn from_row(state: &OrderState, partition: i32) -> Self {
        let mut t = Self {
            partition,
            status: state.order.status,
            last_seq: 0,
            restaurant_id: state.order.restaurant_id.clone(),
            driver_id: None,
            preparing_since: None,
            places: None,
        };
        t.merge_row(state);
        t
    }

    /// Takes the places from the order row and, when the row is ahead of what this state has
    /// seen, its status, driver and preparation start.
    pub fn merge_row(&mut self, state: &OrderState) {
        let o = &state.order;
        self.places = Some(Places {
            restaurant: o.restaurant_location,
            customer: o.delivery_location,
        });
        let row_seq = state.history.last().map_or(0, |e| e.seq);
        if row_seq > self.last_seq || state.history.is_empty() {
            self.last_seq = self.last_seq.max(row_seq);
            self.status = o.status;
            self.driver_id = o.driver_id.clone();
        }
        if self.preparing_since.is_none() {
            self.preparing_since = o.preparing_since;
        }
    }

    /// Applies a change of this order.
    pub fn apply(&mut self, change: &StatusChange) -> Applied {
        if change.seq <= self.last_seq {
            return Applied::Duplicate;
        }
        let mut observation = None;
        if change.to == OrderStatus::Preparing {
            self.preparing_since = Some(change.at);
        }
        if change.kind == HistoryEntryKind::Transition
            && change.from == Some(OrderStatus::Preparing)
            && change.to == OrderStatus::ReadyForPickup
            && let Some(since) = self.preparing_since
        {
            let seconds = change.at.millis_since(since) / 1_000;
            if seconds >= 0 {
                observation = Some(PrepTimeObservation::new(
                    change.restaurant_id.clone(),
                    hour_of_day(since),
                    change.order_id.clone(),
                    seconds,
                    change.at,
                ));
            }
        }
        self.last_seq = change.seq;
        self.status = change.to;
        self.restaurant_id = change.restaurant_id.clone();
        self.driver_id = change.driver_id.clone();
        Applied::Changed(observation)
    }

    /// Whether the order is over (no more ETAs).
    pub fn is_final(&self) -> bool {
        self.status.is_final()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use doorstep_schemas::model::{Actor, CustomerId, EventId, OrderId};

    fn change(seq: u32, from: Option<OrderStatus>, to: OrderStatus, at: i64) -> StatusChange {
        StatusChange {
            event_id: EventId::new(format!("e{seq}")),
            order_id: OrderId::new("o-1"),
            seq,
            kind: if from.is_none() {
                HistoryEntryKind::Placed
            } else {
                HistoryEntryKind::Transition
            },
            from,
            to,
            actor: Actor::restaurant("r-1"),
            reason: None,
            customer_id: CustomerId::new("c-1"),
            restaurant_id: RestaurantId::new("r-1"),
            driver_id: None,
            refund_cents: None,
            at: Timestamp::from_millis(at),
        }
    }

    #[test]
    fn changes_apply_once_and_ready_yields_a_prep_observation() {
        use OrderStatus::*;
        let mut t = Tracked::from_change(&change(0, None, Placed, 0), 2);
        assert_eq!(t.partition, 2);
        assert_eq!(
            t.apply(&change(1, Some(Placed), Confirmed, 1_000)),
            Applied::Changed(None)
        );
        assert_eq!(
            t.apply(&change(2, Some(Confirmed), Preparing, 3_600_000)),
            Applied::Changed(None)
        );
        assert_eq!(t.preparing_since, Some(Timestamp::from_millis(3_600_000)));
        assert_eq!(
            t.apply(&change(2, Some(Confirmed), Preparing, 3_600_000)),
            Applied::Duplicate
        );
        let Applied::Changed(Some(obs)) =
            t.apply(&change(3, Some(Preparing), ReadyForPickup, 4_320_000))
        else {
            panic!("expected an observation");
        };
        assert_eq!(obs.seconds, 720);
        assert_eq!(obs.hour_of_day, 1);
        assert_eq!(t.status, ReadyForPickup);
        assert!(!t.is_final());
        t.apply(&change(4, Some(ReadyForPickup), Cancelled, 5_000_000));
        assert!(t.is_final());
    }
}
