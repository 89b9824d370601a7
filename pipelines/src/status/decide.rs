//! What a batch of decisions asks of the sinks, gathered before any I/O: records for the
//! output topics, driver and timer operations, refunds, the order rows to save, the live
//! frames and the commands' outcomes. Pure, so the mapping from decisions to effects is
//! unit-tested without services.

pub use crate::runtime::SourceMeta;
use crate::runtime::outbox::Kept;
use doorstep_connectors::order_store::PrepTimeObservation;
use doorstep_operators::notify;
use doorstep_operators::order::{Accepted, Effect, OrderState, RejectReason};
use doorstep_schemas::events::{Notification, OrderEvent, RejectedRecord, StatusChange};
use doorstep_schemas::live::{LiveEvent, LiveRejected, LiveStatus};
use doorstep_schemas::model::{
    ActorKind, DriverId, EventId, HistoryEntryKind, OrderId, OrderStatus, StatusHistoryEntry,
    Timestamp, TrackingEventType, TrackingUpdate,
};
use doorstep_schemas::outcome::{CommandOutcome, Decided};
use std::collections::{BTreeMap, HashMap};

/// The kind of the auto-confirm timer in the timer table.
pub const AUTO_CONFIRM: &str = "auto_confirm";

/// A change to a driver's availability in Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverOp {
    /// The driver is ON_DELIVERY for the order.
    Occupy(DriverId, OrderId),
    /// The driver is AVAILABLE again (if still on that order).
    Release(DriverId, OrderId),
}

/// A change to the durable timers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimerOp {
    /// Fire the auto-confirm of the order at the time.
    Put(i32, OrderId, Timestamp),
    /// The order's auto-confirm is no longer needed.
    Delete(i32, OrderId),
}

/// A refund to request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    /// The order (its id is the idempotency key).
    pub order_id: OrderId,
    /// Amount in cents.
    pub amount_cents: i64,
}

/// The order row and new history entries to persist for one order.
#[derive(Debug, Clone, PartialEq)]
pub struct Save {
    /// State after the batch.
    pub state: OrderState,
    /// Entries appended during the batch, in order.
    pub entries: Vec<StatusHistoryEntry>,
    /// Source partition (for the per-partition active-order and timer tables).
    pub partition: i32,
    /// Offset of the last event of the batch processed for the order (−1 until known).
    pub source_offset: i64,
}

/// Everything a batch asks of the sinks.
#[derive(Debug, Default, Clone)]
pub struct Outputs {
    /// Accepted changes for `orders.status.v1`.
    pub status_changes: Vec<StatusChange>,
    /// The same changes as `STATUS_CHANGE` tracking updates for `orders.tracking.v1` (beside
    /// the location pipeline's `LOCATION_UPDATE` ones).
    pub tracking: Vec<TrackingUpdate>,
    /// Pushes for `notifications.v1`.
    pub notifications: Vec<Notification>,
    /// Refused records for `orders.rejected.v1`.
    pub rejects: Vec<RejectedRecord>,
    /// Driver availability changes.
    pub driver_ops: Vec<DriverOp>,
    /// Timer changes.
    pub timer_ops: Vec<TimerOp>,
    /// Refunds (suppressed in replays).
    pub refunds: Vec<Refund>,
    /// Orders to save, at most one per order.
    pub saves: BTreeMap<OrderId, Save>,
    /// Preparation times observed (an order became READY_FOR_PICKUP), for the ETA's model.
    pub prep_times: Vec<PrepTimeObservation>,
    /// Live frames for the orders' channels (one per new timeline entry, and again for the
    /// entries of events re-read after a crash), published after the order rows are saved so
    /// a customer's snapshot never lags behind a frame.
    pub live: Vec<LiveEvent>,
    /// What became of each command decided (or decided again after a crash), for its sender:
    /// rejections are recorded with the effects, acceptances once the order rows are saved.
    pub outcomes: Vec<CommandOutcome>,
}

impl Outputs {
    /// Produces a saved outbox again (its batch's transaction did not commit).
    pub fn produce_again(&mut self, again: Vec<Kept>) {
        for record in again {
            match record {
                Kept::Status(r) => self.status_changes.push(r),
                Kept::Notification(r) => self.notifications.push(r),
                Kept::Rejected(r) => self.rejects.push(r),
                Kept::Tracking(r) => self.tracking.push(r),
            }
        }
    }

    /// The records of `order_id` in this batch's outputs, to keep with its save.
    pub fn kept(&self, order_id: &OrderId, notify: bool) -> Vec<Kept> {
        self.kept_by_order(notify)
            .remove(order_id)
            .unwrap_or_default()
    }

    /// The records of this batch's outputs by order, to keep with the orders' saves: status
    /// changes, tracking updates, notifications (when `notify`), reject records, each in
    /// output order. One pass over the outputs for the whole batch.
    pub fn kept_by_order(&self, notify: bool) -> HashMap<OrderId, Vec<Kept>> {
        let mut by: HashMap<OrderId, Vec<Kept>> = HashMap::with_capacity(self.saves.len());
        let mut keep = |id: &OrderId, record: Kept| match by.get_mut(id) {
            Some(records) => records.push(record),
            None => {
                by.insert(id.clone(), vec![record]);
            }
        };
        for c in &self.status_changes {
            keep(&c.order_id, Kept::Status(c.clone()));
        }
        for t in &self.tracking {
            keep(&t.order_id, Kept::Tracking(t.clone()));
        }
        if notify {
            for n in &self.notifications {
                keep(&n.order_id, Kept::Notification(n.clone()));
            }
        }
        for r in &self.rejects {
            if let Some(id) = &r.order_id {
                keep(id, Kept::Rejected(r.clone()));
            }
        }
        by
    }

    /// What an event re-read after a crash, at or below its order's last processed offset,
    /// still owes: its order may have been saved but its live frames and outcome never
    /// published. When it had been accepted, the frames of the timeline entries it made and
    /// its outcome again; when it had been rejected (`first`: its recorded outcome), the
    /// customer's `rejected` frame again.
    pub fn republish(
        &mut self,
        state: &OrderState,
        event: &OrderEvent,
        first: Option<&CommandOutcome>,
    ) {
        let order_id = &state.order.order_id;
        let entries: Vec<_> = state
            .history
            .iter()
            .filter(|entry| entry.event_id == event.event_id)
            .cloned()
            .collect();
        if entries.is_empty() {
            if let Some(first) = first {
                self.rejected_again(state, first);
            }
            return;
        }
        self.live
            .extend(entries.iter().map(|entry| live_status(order_id, entry)));
        self.outcomes.push(accepted_outcome(event, entries));
    }

    /// The outcome of an accepted event seen again (its id is in the order's history: a
    /// command re-sent with the same idempotency key), so that its sender hears it even when
    /// the first outcome has expired. No live frames: the customer saw them the first time.
    pub fn accepted_again(&mut self, state: &OrderState, event: &OrderEvent) {
        let entries: Vec<_> = state
            .history
            .iter()
            .filter(|entry| entry.event_id == event.event_id)
            .cloned()
            .collect();
        if !entries.is_empty() {
            self.outcomes.push(accepted_outcome(event, entries));
        }
    }

    /// A command whose first decision was a rejection, seen again (re-sent with the same
    /// idempotency key, or its batch retried after the rejection was recorded): it keeps its
    /// first outcome and changes nothing; the customer's `rejected` frame goes out again.
    pub fn rejected_again(&mut self, state: &OrderState, first: &CommandOutcome) {
        if let Some(frame) = customer_rejection(Some(state), first) {
            self.live.push(frame);
        }
    }

    /// Adds what an accepted event asks for.
    pub fn accepted(&mut self, event: &OrderEvent, a: &Accepted, partition: i32) {
        let order = &a.state.order;
        let refund = a.effects.iter().find_map(|e| match e {
            Effect::Refund { amount_cents } => Some(*amount_cents),
            _ => None,
        });
        for entry in &a.entries {
            self.live.push(live_status(&order.order_id, entry));
            if let Some(seconds) = prep_seconds(&a.state.history, entry) {
                self.prep_times.push(PrepTimeObservation::new(
                    order.restaurant_id.clone(),
                    doorstep_operators::eta::hour_of_day(
                        preparing_since(&a.state.history, entry).unwrap_or(entry.at),
                    ),
                    order.order_id.clone(),
                    seconds,
                    entry.at,
                ));
            }
            self.status_changes.push(StatusChange {
                event_id: entry.event_id.clone(),
                order_id: order.order_id.clone(),
                seq: entry.seq,
                kind: entry.kind,
                from: entry.from,
                to: entry.to,
                actor: entry.actor.clone(),
                reason: entry.reason.clone(),
                customer_id: order.customer_id.clone(),
                restaurant_id: order.restaurant_id.clone(),
                driver_id: order.driver_id.clone(),
                refund_cents: refund.filter(|_| entry.to == OrderStatus::Cancelled),
                at: entry.at,
            });
            self.tracking.push(status_update(
                &order.order_id,
                order.driver_id.as_ref(),
                entry,
            ));
        }
        for effect in &a.effects {
            match effect {
                Effect::Notify {
                    recipient_kind,
                    recipient_id,
                    status,
                } => {
                    if let Some(message) =
                        notify::message_for(*recipient_kind, &order.order_id, *status)
                    {
                        self.notifications.push(Notification {
                            notification_id: notify::notification_id(
                                &order.order_id,
                                *status,
                                *recipient_kind,
                            ),
                            recipient_kind: *recipient_kind,
                            recipient_id: recipient_id.clone(),
                            order_id: order.order_id.clone(),
                            status: *status,
                            message,
                            created_at: event.occurred_at,
                        });
                    }
                }
                Effect::Refund { amount_cents } => {
                    self.refunds.push(Refund {
                        order_id: order.order_id.clone(),
                        amount_cents: *amount_cents,
                    });
                }
                Effect::OccupyDriver { driver_id } => {
                    self.driver_ops
                        .push(DriverOp::Occupy(driver_id.clone(), order.order_id.clone()));
                }
                Effect::ReleaseDriver { driver_id } => {
                    self.driver_ops
                        .push(DriverOp::Release(driver_id.clone(), order.order_id.clone()));
                }
                Effect::ScheduleAutoConfirm { at } => {
                    self.timer_ops
                        .push(TimerOp::Put(partition, order.order_id.clone(), *at));
                }
                Effect::CancelAutoConfirm => {
                    self.timer_ops
                        .push(TimerOp::Delete(partition, order.order_id.clone()));
                }
                // The DRIVER_UNASSIGNED status change on orders.status.v1 is dispatch's cue.
                Effect::ReturnToDispatch => {}
            }
        }
        self.outcomes
            .push(accepted_outcome(event, a.entries.clone()));
        let save = self
            .saves
            .entry(order.order_id.clone())
            .or_insert_with(|| Save {
                state: a.state.clone(),
                entries: Vec::new(),
                partition,
                source_offset: -1,
            });
        save.state = a.state.clone();
        save.entries.extend(a.entries.iter().cloned());
    }

    /// Adds a reject record for a refused or undecodable source record.
    pub fn reject(
        &mut self,
        record: &SourceMeta<'_>,
        event: Option<&OrderEvent>,
        code: &str,
        message: String,
    ) {
        let order_id = event.map(|e| e.order_id.clone()).or_else(|| {
            record
                .key
                .and_then(|k| std::str::from_utf8(k).ok())
                .map(OrderId::from)
        });
        let at = event.map_or_else(Timestamp::now, |e| e.occurred_at);
        self.rejects.push(record.reject(
            "status",
            code,
            message,
            event.map(|e| e.event_id.clone()),
            order_id,
            at,
        ));
    }

    /// Adds what a state-machine rejection asks for: the reject record, the command's
    /// outcome and, when it was the order's customer's own command, their `rejected` frame.
    /// `state` is the order's state it was decided against (`None`: never placed). Returns
    /// the outcome.
    pub fn rejected(
        &mut self,
        record: &SourceMeta<'_>,
        event: &OrderEvent,
        reason: &RejectReason,
        state: Option<&OrderState>,
    ) -> CommandOutcome {
        let message = format!("{} {}: {reason}", event.command.name(), event.order_id);
        self.reject(record, Some(event), reason.code(), message);
        let outcome = CommandOutcome {
            order_id: event.order_id.clone(),
            event_id: event.event_id.clone(),
            command: event.command.name().to_owned(),
            actor: event.actor.clone(),
            at: event.occurred_at,
            decision: Decided::Rejected {
                reason: reason.code().to_owned(),
                message: reason.to_string(),
                status: state.map(|s| s.order.status),
            },
        };
        if let Some(frame) = customer_rejection(state, &outcome) {
            self.live.push(frame);
        }
        self.outcomes.push(outcome.clone());
        outcome
    }
}

/// The outcome of an accepted event that appended `entries`.
fn accepted_outcome(event: &OrderEvent, entries: Vec<StatusHistoryEntry>) -> CommandOutcome {
    CommandOutcome {
        order_id: event.order_id.clone(),
        event_id: event.event_id.clone(),
        command: event.command.name().to_owned(),
        actor: event.actor.clone(),
        at: event.occurred_at,
        decision: Decided::Accepted {
            status: entries.last().map_or(OrderStatus::Placed, |e| e.to),
            entries,
        },
    }
}

/// The `rejected` frame of a refused command, when it was the order's own customer's: they
/// follow the order's channel. Nobody else's refusals go there.
fn customer_rejection(state: Option<&OrderState>, outcome: &CommandOutcome) -> Option<LiveEvent> {
    let Decided::Rejected {
        reason, message, ..
    } = &outcome.decision
    else {
        return None;
    };
    let own = outcome.actor.kind == ActorKind::Customer
        && state.is_some_and(|s| s.order.customer_id.as_str() == outcome.actor.id);
    own.then(|| {
        LiveEvent::Rejected(LiveRejected {
            order_id: outcome.order_id.clone(),
            event_id: outcome.event_id.clone(),
            command: outcome.command.clone(),
            reason: reason.clone(),
            message: message.clone(),
            at: outcome.at,
        })
    })
}

/// When the preparation that `entry` ends began: the last PREPARING entry before it.
fn preparing_since(
    history: &[StatusHistoryEntry],
    entry: &StatusHistoryEntry,
) -> Option<Timestamp> {
    history
        .iter()
        .take_while(|h| h.seq < entry.seq)
        .filter(|h| h.to == OrderStatus::Preparing && h.kind == HistoryEntryKind::Transition)
        .last()
        .map(|h| h.at)
}

/// How long the preparation took, seconds, when `entry` is the move to READY_FOR_PICKUP.
fn prep_seconds(history: &[StatusHistoryEntry], entry: &StatusHistoryEntry) -> Option<i64> {
    if entry.kind != HistoryEntryKind::Transition
        || entry.to != OrderStatus::ReadyForPickup
        || entry.from != Some(OrderStatus::Preparing)
    {
        return None;
    }
    let since = preparing_since(history, entry)?;
    let ms = entry.at.as_millis() - since.as_millis();
    (ms >= 0).then_some(ms / 1000)
}

/// The `STATUS_CHANGE` tracking update of a timeline entry (`driver`: the order's driver
/// after the change). Its id is the event's and the entry's, so a re-read makes the same one.
pub fn status_update(
    order_id: &OrderId,
    driver: Option<&DriverId>,
    entry: &StatusHistoryEntry,
) -> TrackingUpdate {
    TrackingUpdate {
        update_id: EventId::new(format!("{}.{}", entry.event_id, entry.seq)),
        order_id: order_id.clone(),
        driver_id: driver.cloned(),
        driver_location: None,
        timestamp: entry.at,
        event_type: TrackingEventType::StatusChange,
        status: Some(entry.to),
        status_seq: Some(entry.seq),
    }
}

/// The live frame of a timeline entry.
fn live_status(order_id: &OrderId, entry: &StatusHistoryEntry) -> LiveEvent {
    LiveEvent::Status(LiveStatus {
        order_id: order_id.clone(),
        status: entry.to,
        entry: entry.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use doorstep_operators::order::{Decision, OrderPolicy, decide};
    use doorstep_schemas::events::{OrderCommand, PlaceOrder, RecipientKind};
    use doorstep_schemas::model::{Actor, EventId, GeoPoint, OrderItem, OrderStatus};
    use doorstep_schemas::outcome::Decided;

    fn ev(n: u32, actor: Actor, command: OrderCommand) -> OrderEvent {
        OrderEvent {
            event_id: EventId::new(format!("e{n}")),
            order_id: OrderId::from("o1"),
            occurred_at: Timestamp::from_millis(1_000_000 + i64::from(n) * 1000),
            actor,
            command,
        }
    }

    fn place() -> OrderCommand {
        OrderCommand::Place(PlaceOrder {
            customer_id: "c1".into(),
            restaurant_id: "r1".into(),
            items: vec![OrderItem {
                item_id: "i".into(),
                name: "Soup".into(),
                quantity: 2,
                unit_price_cents: 650,
            }],
            total_cents: 1300,
            restaurant_location: GeoPoint {
                lat: 60.17,
                lng: 24.94,
            },
            delivery_location: GeoPoint {
                lat: 60.18,
                lng: 24.95,
            },
        })
    }

    #[test]
    fn a_cancelled_order_maps_to_every_sink() {
        let policy = OrderPolicy::default();
        let mut out = Outputs::default();
        let e1 = ev(1, Actor::customer("c1"), place());
        let Decision::Accepted(a1) = decide(None, &e1, &policy) else {
            panic!()
        };
        out.accepted(&e1, &a1, 3);
        let e2 = ev(
            2,
            Actor::system("dispatch"),
            OrderCommand::AssignDriver {
                driver_id: "d1".into(),
            },
        );
        let Decision::Accepted(a2) = decide(Some(&a1.state), &e2, &policy) else {
            panic!()
        };
        out.accepted(&e2, &a2, 3);
        let e3 = ev(
            3,
            Actor::restaurant("r1"),
            OrderCommand::Cancel {
                reason: "closed".into(),
            },
        );
        let Decision::Accepted(a3) = decide(Some(&a2.state), &e3, &policy) else {
            panic!()
        };
        out.accepted(&e3, &a3, 3);

        assert_eq!(out.status_changes.len(), 3);
        assert_eq!(out.status_changes[2].to, OrderStatus::Cancelled);
        assert_eq!(out.status_changes[2].refund_cents, Some(1300));
        assert_eq!(out.status_changes[0].refund_cents, None);
        assert_eq!(
            out.refunds,
            vec![Refund {
                order_id: "o1".into(),
                amount_cents: 1300
            }]
        );
        assert_eq!(
            out.driver_ops,
            vec![
                DriverOp::Occupy("d1".into(), "o1".into()),
                DriverOp::Release("d1".into(), "o1".into())
            ]
        );
        assert_eq!(out.timer_ops.len(), 2);
        assert!(
            matches!(out.timer_ops[0], TimerOp::Put(3, _, at) if at.as_millis() == 1_001_000 + 120_000)
        );
        let kinds: Vec<_> = out.notifications.iter().map(|n| n.recipient_kind).collect();
        assert_eq!(kinds, vec![RecipientKind::Customer, RecipientKind::Driver]);
        assert_eq!(
            out.notifications[0].message,
            "Your order has been cancelled"
        );
        let save = &out.saves[&OrderId::from("o1")];
        assert_eq!(save.entries.len(), 3);
        assert_eq!(save.state.order.status, OrderStatus::Cancelled);
        assert_eq!(save.partition, 3);

        // One STATUS_CHANGE tracking update per timeline entry, numbered like it.
        let tracking: Vec<_> = out
            .tracking
            .iter()
            .map(|t| (t.event_type, t.status, t.status_seq, t.update_id.as_str()))
            .collect();
        assert_eq!(
            tracking,
            vec![
                (
                    TrackingEventType::StatusChange,
                    Some(OrderStatus::Placed),
                    Some(0),
                    "e1.0"
                ),
                (
                    TrackingEventType::StatusChange,
                    Some(OrderStatus::Placed),
                    Some(1),
                    "e2.1"
                ),
                (
                    TrackingEventType::StatusChange,
                    Some(OrderStatus::Cancelled),
                    Some(2),
                    "e3.2"
                ),
            ]
        );
        assert_eq!(out.tracking[0].driver_id, None);
        assert_eq!(out.tracking[1].driver_id, Some("d1".into()));
        assert!(
            out.tracking
                .iter()
                .all(|t| t.order_id.as_str() == "o1" && t.driver_location.is_none())
        );
        // They are kept with the order's save, and produced again from it.
        let kept = out.kept(&OrderId::from("o1"), true);
        let mut again = Outputs::default();
        again.produce_again(kept);
        assert_eq!(again.tracking, out.tracking);
    }

    #[test]
    fn rejects_keep_the_original_bytes_and_the_reason() {
        let mut out = Outputs::default();
        let meta = SourceMeta {
            topic: "t",
            partition: 1,
            offset: 42,
            key: Some(b"o9"),
            payload: b"\x00junk",
        };
        out.reject(&meta, None, "undecodable", "bad bytes".into());
        let r = &out.rejects[0];
        assert_eq!(r.original_value, b"\x00junk".to_vec());
        assert_eq!(r.order_id, Some(OrderId::from("o9")));
        assert_eq!((r.source_partition, r.source_offset), (1, 42));
        assert_eq!(r.reason_code, "undecodable");
    }

    #[test]
    fn every_entry_is_a_live_frame_and_ready_for_pickup_is_a_prep_observation() {
        let policy = OrderPolicy::default();
        let mut out = Outputs::default();
        let mut state = None;
        let steps = [
            (1, Actor::customer("c1"), place()),
            (
                2,
                Actor::restaurant("r1"),
                OrderCommand::Transition {
                    to: OrderStatus::Confirmed,
                },
            ),
            (
                3,
                Actor::restaurant("r1"),
                OrderCommand::Transition {
                    to: OrderStatus::Preparing,
                },
            ),
            (
                4,
                Actor::system("dispatch"),
                OrderCommand::AssignDriver {
                    driver_id: "d1".into(),
                },
            ),
            // 600 s of preparation: events are 1 s apart, so make READY 600 s after PREPARING.
            (
                603,
                Actor::restaurant("r1"),
                OrderCommand::Transition {
                    to: OrderStatus::ReadyForPickup,
                },
            ),
        ];
        for (n, actor, command) in steps {
            let e = ev(n, actor, command);
            let Decision::Accepted(a) = decide(state.as_ref(), &e, &policy) else {
                panic!("step {n} refused")
            };
            out.accepted(&e, &a, 0);
            state = Some(a.state.clone());
        }
        let statuses: Vec<_> = out
            .live
            .iter()
            .map(|l| match l {
                LiveEvent::Status(s) => (s.entry.seq, s.status),
                other => panic!("not a status frame: {other:?}"),
            })
            .collect();
        assert_eq!(
            statuses,
            [
                (0, OrderStatus::Placed),
                (1, OrderStatus::Confirmed),
                (2, OrderStatus::Preparing),
                (3, OrderStatus::Preparing), // the driver assignment entry
                (4, OrderStatus::ReadyForPickup),
            ]
        );

        // One accepted outcome per event, with the status it led to and its entries.
        let outcomes: Vec<_> = out
            .outcomes
            .iter()
            .map(|o| match &o.decision {
                Decided::Accepted { status, entries } => {
                    (o.event_id.as_str(), *status, entries.len())
                }
                other => panic!("not accepted: {other:?}"),
            })
            .collect();
        assert_eq!(
            outcomes,
            [
                ("e1", OrderStatus::Placed, 1),
                ("e2", OrderStatus::Confirmed, 1),
                ("e3", OrderStatus::Preparing, 1),
                ("e4", OrderStatus::Preparing, 1),
                ("e603", OrderStatus::ReadyForPickup, 1),
            ]
        );

        // Re-read after a crash: the frames of exactly that event's entries, unchanged, and
        // its outcome again; an event that changed nothing and has no recorded outcome owes
        // nothing.
        let state = state.expect("an order");
        let preparing = ev(
            3,
            Actor::restaurant("r1"),
            OrderCommand::Transition {
                to: OrderStatus::Preparing,
            },
        );
        let never_seen = ev(999, Actor::restaurant("r1"), place());
        let mut again = Outputs::default();
        again.republish(&state, &preparing, None);
        again.republish(&state, &never_seen, None);
        assert_eq!(format!("{:?}", again.live), format!("{:?}", [&out.live[2]]));
        assert_eq!(again.outcomes, [out.outcomes[2].clone()]);
        // Seen again with an id the history has (a re-sent command): the outcome only.
        let mut resent = Outputs::default();
        resent.accepted_again(&state, &preparing);
        resent.accepted_again(&state, &never_seen);
        assert!(resent.live.is_empty());
        assert_eq!(resent.outcomes, [out.outcomes[2].clone()]);

        assert_eq!(out.prep_times.len(), 1);
        let p = &out.prep_times[0];
        assert_eq!(p.seconds, 600);
        assert_eq!(p.restaurant_id.as_str(), "r1");
        assert_eq!(
            p.hour_of_day,
            doorstep_operators::eta::hour_of_day(Timestamp::from_millis(1_003_000))
        );
    }

    #[test]
    fn a_rejection_is_an_outcome_and_only_the_customers_own_is_a_live_frame() {
        let policy = OrderPolicy::default();
        let e1 = ev(1, Actor::customer("c1"), place());
        let Decision::Accepted(a1) = decide(None, &e1, &policy) else {
            panic!()
        };
        let meta = SourceMeta {
            topic: "t",
            partition: 0,
            offset: 7,
            key: Some(b"o1"),
            payload: b"",
        };
        let cases = [
            // The customer asks for a status, which a customer may never do: shown to them.
            (
                Actor::customer("c1"),
                OrderCommand::Transition {
                    to: OrderStatus::Confirmed,
                },
                true,
            ),
            // Another customer's cancellation of this order: refused, not shown to c1.
            (
                Actor::customer("c2"),
                OrderCommand::Cancel {
                    reason: "mine?".into(),
                },
                false,
            ),
            // The restaurant marks a PLACED order ready: refused, its own business.
            (
                Actor::restaurant("r1"),
                OrderCommand::Transition {
                    to: OrderStatus::ReadyForPickup,
                },
                false,
            ),
        ];
        for (n, (actor, command, shown)) in cases.into_iter().enumerate() {
            let e = ev(10 + n as u32, actor.clone(), command);
            let Decision::Rejected(reason) = decide(Some(&a1.state), &e, &policy) else {
                panic!("case {n} accepted")
            };
            let mut out = Outputs::default();
            let outcome = out.rejected(&meta, &e, &reason, Some(&a1.state));
            assert_eq!(out.rejects.len(), 1);
            assert_eq!(out.rejects[0].reason_code, reason.code());
            assert_eq!(out.outcomes, std::slice::from_ref(&outcome));
            assert_eq!(outcome.actor, actor);
            assert_eq!(outcome.event_id, e.event_id);
            assert_eq!(
                outcome.decision,
                Decided::Rejected {
                    reason: reason.code().to_owned(),
                    message: reason.to_string(),
                    status: Some(OrderStatus::Placed),
                }
            );
            match (&out.live[..], shown) {
                ([LiveEvent::Rejected(r)], true) => {
                    assert_eq!(r.event_id, e.event_id);
                    assert_eq!(r.reason, reason.code());
                    assert_eq!(r.command, "transition");
                }
                ([], false) => {}
                (other, _) => panic!("case {n}: {other:?}"),
            }
            // Seen again: nothing but the customer's frame, again.
            let mut again = Outputs::default();
            again.rejected_again(&a1.state, &outcome);
            assert!(again.outcomes.is_empty() && again.rejects.is_empty());
            assert_eq!(again.live.len(), usize::from(shown));
            let mut reread = Outputs::default();
            reread.republish(&a1.state, &e, Some(&outcome));
            assert_eq!(reread.live.len(), usize::from(shown));
            assert!(reread.outcomes.is_empty());
        }
        // A command for an order that was never placed: an outcome, no frame.
        let e = ev(
            20,
            Actor::customer("c1"),
            OrderCommand::Cancel { reason: "x".into() },
        );
        let Decision::Rejected(reason) = decide(None, &e, &policy) else {
            panic!()
        };
        let mut out = Outputs::default();
        out.rejected(&meta, &e, &reason, None);
        assert_eq!(out.outcomes.len(), 1);
        assert!(out.live.is_empty());
    }
}
