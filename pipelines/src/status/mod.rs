//! The status pipeline: `orders.events.v1` → order state machine → ScyllaDB (order rows and
//! history), `orders.status.v1`, `STATUS_CHANGE` tracking updates on `orders.tracking.v1`,
//! `notifications.v1`, driver state in Redis, refunds;
//! rejects to `orders.rejected.v1`. PLACED orders auto-confirm through durable timers.
//!
//! Per batch: decode, load the state of orders not in memory (one partition read each),
//! decide every event in order on a scratch copy, then run the sinks: first the effects
//! (refunds, then concurrently Redis, Kafka records with the outcomes of rejected commands,
//! and the active-order index and timers), then the order rows and history (and observed
//! preparation times) in ScyllaDB, last the live frames on the orders' channels and the
//! outcomes of accepted commands.
//!
//! CQL cost: one request per order changed in the batch (its partition: current fields,
//! new timeline entries, outbox), one read per order not in memory, and per source partition
//! at most one request for the index and timers before the saves and one for the orders that
//! ended after them (see `sinks.rs`); measured by `doorstep_pipeline_cql_requests_total`.
//!
//! Every command's outcome is kept a few minutes in Redis under its event id
//! (`connectors::command_outcomes`), for the app that sent it. Before deciding, the stage
//! reads the recorded outcomes of the batch's events: a command whose first decision was a
//! rejection (re-sent with the same idempotency key, or re-read after its batch failed past
//! phase 1) keeps that outcome and is not decided again; one already accepted is a duplicate
//! by the order's history, as before.
//! Only then is the scratch state kept and the batch committed by the runtime, in the same
//! Kafka transaction as its records. A crash before the ScyllaDB write re-does effects that
//! are all idempotent (keyed by event id, order id + status, or the order id for refunds); a
//! crash after it (the transaction aborted, the events read again) finds the events in the
//! history and produces only the order's saved outbox again
//! ([`crate::runtime::outbox`]).

mod decide;
mod metrics;
mod sinks;
mod timers;

pub use decide::{AUTO_CONFIRM, DriverOp, Outputs, Refund, Save, SourceMeta, TimerOp};
pub use metrics::StatusMetrics;
pub use sinks::{StatusSinks, StatusTopics};
pub use timers::TimerWheel;

use crate::runtime::{Read, SourceRecord, Stage, StageError, read_batch};
use doorstep_operators::order::{Decision, OrderPolicy, OrderState, decide};
use doorstep_schemas::avro::Catalog;
use doorstep_schemas::events::{OrderCommand, OrderEvent};
use doorstep_schemas::model::{Actor, EventId, OrderId, OrderStatus, Timestamp};
use doorstep_schemas::outcome::{CommandOutcome, Decided};
use futures::StreamExt;
use std::collections::{BTreeSet, HashMap};

/// How many order states to load from ScyllaDB at once.
const LOAD_CONCURRENCY: usize = 32;

/// The actor id of auto-confirm events.
pub const AUTO_CONFIRM_ACTOR: &str = "auto-confirm";

/// The status pipeline's stage.
pub struct StatusStage {
    sinks: StatusSinks,
    catalog: &'static Catalog,
    policy: OrderPolicy,
    metrics: StatusMetrics,
    /// Keyed state of the orders seen in owned partitions.
    orders: HashMap<OrderId, Known>,
    timers: TimerWheel,
}

impl StatusStage {
    /// A stage writing through `sinks`.
    pub fn new(
        sinks: StatusSinks,
        catalog: &'static Catalog,
        policy: OrderPolicy,
        metrics: StatusMetrics,
    ) -> Self {
        metrics.cql_requests.watch(&sinks.store);
        Self {
            sinks,
            catalog,
            policy,
            metrics,
            orders: HashMap::new(),
            timers: TimerWheel::default(),
        }
    }

    /// Orders held in memory (for tests and metrics).
    pub fn cached_orders(&self) -> usize {
        self.orders.len()
    }

    /// Decodes the batch and decides every event against `scratch` (loaded as needed).
    async fn decide_batch(
        &mut self,
        batch: &[SourceRecord],
        scratch: &mut HashMap<OrderId, Known>,
    ) -> Result<Outputs, StageError> {
        let mut out = Outputs::default();
        let mut decoded = Vec::with_capacity(batch.len());
        for read in read_batch::<OrderEvent>(self.catalog, batch).await? {
            match read {
                Read::Record(meta, ev) => decoded.push((meta, ev)),
                Read::Unusable(u) => out.reject(&u.meta, u.record.as_ref(), u.code, u.message),
            }
        }
        let load = self.load_unknown(
            decoded
                .iter()
                .map(|(meta, ev)| (&ev.order_id, meta.partition)),
            scratch,
        );
        let commands = decoded
            .iter()
            .map(|(_, ev)| (ev.order_id.clone(), ev.event_id.clone()))
            .collect();
        let recorded = self.sinks.recorded(commands);
        let (loaded, recorded) = futures::join!(load, recorded);
        loaded?;
        // The first rejections of this batch join them as they are decided.
        let mut rejected_before: HashMap<EventId, CommandOutcome> = recorded?
            .into_iter()
            .filter(|(_, o)| o.is_rejected())
            .collect();
        for (meta, ev) in &decoded {
            let first_rejection = rejected_before.get(&ev.event_id);
            // Re-read after a crash: this event was handled (accepted or rejected) before the
            // order was last saved, and its effects outside Kafka were carried out then. Its
            // records went out in a transaction that did not commit (else its offset would
            // have been committed with them): the saved outbox of that batch is produced
            // again, once, at the batch's last event. Its live frames and accepted outcome
            // (published after the save) go out again too; customers de-duplicate frames by
            // the entry's `seq`.
            if let Some(known) = scratch.get_mut(&ev.order_id)
                && meta.offset <= known.last_offset
            {
                self.metrics.events.with_label_values(&["duplicate"]).inc();
                if meta.offset == known.last_offset
                    && let Some(saved) = known.outbox.take()
                {
                    let again = crate::runtime::outbox::decode(self.catalog, &saved)
                        .await
                        .map_err(|e| {
                            StageError::invalid(format_args!("order {}'s outbox", ev.order_id), e)
                        })?;
                    out.produce_again(again);
                }
                out.republish(&known.state, ev, first_rejection);
                continue;
            }
            let current = scratch.get(&ev.order_id).map(|k| &k.state);
            if let Some(first) = first_rejection {
                self.metrics.events.with_label_values(&["duplicate"]).inc();
                // Its reject record goes out again: the first one may have been in a
                // transaction that aborted (the outcome in Redis is not transactional), and a
                // re-sent command is a refused record of its own.
                if let Decided::Rejected {
                    reason, message, ..
                } = &first.decision
                {
                    out.reject(meta, Some(ev), reason, message.clone());
                }
                if let Some(state) = current {
                    out.rejected_again(state, first);
                }
                if let Some(known) = scratch.get_mut(&ev.order_id) {
                    known.processed(meta.offset);
                }
                continue;
            }
            match decide(current, ev, &self.policy) {
                Decision::Accepted(a) => {
                    self.metrics.events.with_label_values(&["accepted"]).inc();
                    let partition = scratch
                        .get(&ev.order_id)
                        .map_or(meta.partition, |k| k.partition);
                    out.accepted(ev, &a, partition);
                    scratch.insert(
                        ev.order_id.clone(),
                        Known {
                            state: a.state,
                            partition,
                            last_offset: meta.offset,
                            outbox: None,
                        },
                    );
                }
                Decision::Duplicate => {
                    self.metrics.events.with_label_values(&["duplicate"]).inc();
                    if let Some(state) = current {
                        out.accepted_again(state, ev);
                    }
                }
                Decision::Rejected(reason) => {
                    self.metrics.events.with_label_values(&["rejected"]).inc();
                    let outcome = out.rejected(meta, ev, &reason, current);
                    rejected_before.insert(ev.event_id.clone(), outcome);
                    if let Some(known) = scratch.get_mut(&ev.order_id) {
                        known.processed(meta.offset);
                    }
                }
            }
        }
        for (id, save) in &mut out.saves {
            if let Some(known) = scratch.get(id) {
                save.source_offset = known.last_offset;
            }
        }
        for r in &out.rejects {
            self.metrics
                .rejected
                .with_label_values(&[&r.reason_code])
                .inc();
        }
        Ok(out)
    }

    /// Copies known states into `scratch` and loads the others from ScyllaDB.
    async fn load_unknown<'a>(
        &self,
        ids: impl Iterator<Item = (&'a OrderId, i32)>,
        scratch: &mut HashMap<OrderId, Known>,
    ) -> Result<(), StageError> {
        let mut missing = BTreeSet::new();
        for (id, partition) in ids {
            if scratch.contains_key(id) {
                continue;
            }
            match self.orders.get(id) {
                Some(known) => {
                    scratch.insert(id.clone(), known.clone());
                }
                None => {
                    missing.insert((id.clone(), partition));
                }
            }
        }
        let loaded: Vec<_> = futures::stream::iter(missing)
            .map(|(id, partition)| async move {
                let r = self.sinks.load(&id).await;
                (id, partition, r)
            })
            .buffer_unordered(LOAD_CONCURRENCY)
            .collect()
            .await;
        for (id, partition, r) in loaded {
            if let Some(stored) = r? {
                let known = Known {
                    state: stored.state,
                    partition,
                    last_offset: stored.last_source_offset,
                    outbox: Some(stored.outbox).filter(|o| !o.is_empty()),
                };
                scratch.insert(id, known);
            }
        }
        Ok(())
    }

    /// Keeps the batch's results once every sink acknowledged them.
    fn keep(&mut self, out: &Outputs, scratch: HashMap<OrderId, Known>) {
        for (id, known) in scratch {
            if known.state.order.status.is_final() {
                self.orders.remove(&id);
            } else {
                self.orders.insert(id, known);
            }
        }
        for op in &out.timer_ops {
            match op {
                TimerOp::Put(p, id, at) => self.timers.put(*p, id.clone(), *at),
                TimerOp::Delete(_, id) => self.timers.remove(id),
            }
        }
    }
}

/// What the stage knows of an order between batches.
#[derive(Debug, Clone)]
struct Known {
    /// Its state after the last event processed.
    state: OrderState,
    /// The source partition its events are read from.
    partition: i32,
    /// Offset of the last event processed for it (accepted or rejected).
    last_offset: i64,
    /// The records of the batch that processed `last_offset`, as saved with the order, while
    /// that batch's transaction may not have committed: produced again when the event at
    /// `last_offset` is re-read (whichever batch of the re-read holds it), dropped once an
    /// event after it shows that the batch did commit.
    outbox: Option<Vec<u8>>,
}

impl Known {
    /// A later event (at `offset`) was processed without changing the state: its batch's
    /// save supersedes the outbox.
    fn processed(&mut self, offset: i64) {
        self.last_offset = offset;
        self.outbox = None;
    }
}

impl Stage for StatusStage {
    async fn process_batch(&mut self, batch: &[SourceRecord]) -> Result<(), StageError> {
        let mut scratch = HashMap::new();
        let mut out = self.decide_batch(batch, &mut scratch).await?;
        self.sinks.emit(&mut out, &self.metrics).await?;
        self.sinks.persist(&out, &self.metrics).await?;
        self.sinks.publish(&out, &self.metrics).await?;
        self.keep(&out, scratch);
        Ok(())
    }

    async fn on_tick(&mut self, now: Timestamp) -> Result<(), StageError> {
        // Re-fire after a while if the fired event has not confirmed the order by then.
        let refire_after_ms = self.policy.auto_confirm_after_ms.max(10_000);
        let due = self.timers.due(now, refire_after_ms);
        let mut events = Vec::with_capacity(due.len());
        for (_, order_id, due_at) in due {
            let still_placed = self
                .orders
                .get(&order_id)
                .is_none_or(|k| k.state.order.status == OrderStatus::Placed);
            if !still_placed {
                self.timers.remove(&order_id);
                continue;
            }
            events.push(OrderEvent {
                event_id: EventId::new(format!("{AUTO_CONFIRM}:{order_id}")),
                order_id: order_id.clone(),
                occurred_at: due_at,
                actor: Actor::system(AUTO_CONFIRM_ACTOR),
                command: OrderCommand::Transition {
                    to: OrderStatus::Confirmed,
                },
            });
        }
        if events.is_empty() {
            return Ok(());
        }
        self.metrics
            .timers_fired
            .with_label_values(&[AUTO_CONFIRM])
            .inc_by(events.len() as u64);
        self.sinks.fire(&events).await
    }

    fn on_abort(&mut self) {
        // Reloaded from ScyllaDB on their next event, with the outbox a re-read needs.
        self.orders.clear();
    }

    async fn on_assignment(&mut self, assigned: &[i32], revoked: &[i32]) -> Result<(), StageError> {
        self.orders.retain(|_, k| !revoked.contains(&k.partition));
        self.timers.drop_partitions(revoked);
        for p in assigned {
            for (order_id, due_at) in self.sinks.timers(*p).await? {
                self.timers.put(*p, order_id, due_at);
            }
        }
        tracing::info!(
            timers = self.timers.len(),
            orders = self.orders.len(),
            "keyed state rebuilt"
        );
        Ok(())
    }
}
