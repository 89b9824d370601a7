//! The ETA pipeline: `orders.status.v1` → per-order ETA (prep remaining + pickup travel +
//! delivery travel) → the order's live channel, its current ETA in Redis, `orders.eta.v1`
//! and `estimated_delivery_at` on the order row; rejects to `orders.rejected.v1`.
//!
//! An ETA is computed at once when an order changes status and then every
//! [`EtaPolicy::interval_ms`] (30 s) by a per-order timer, until the order is DELIVERED or
//! CANCELLED. The timers are durable: a row of kind [`TIMER_KIND`] in the order store's
//! `timers_by_partition` (keyed by this topic's partition) exists while the order is active;
//! a process assigned the partition loads them and recomputes those orders on its first tick
//! (their state comes from the order row). The period itself lives in memory
//! ([`TimerWheel`]), so a recomputation writes no timer row.
//!
//! Inputs per computation: the order's status and places (order row), the driver's last
//! position (location store), the restaurant's prep history for the hour of day
//! ([`prep`]), and the legs' travel times from the [`Router`](doorstep_connectors::routing::Router)
//! (cached, circuit-broken, straight-line fallback flagged). Everything time-related uses
//! the injected [`Clock`].

mod clock;
mod decide;
mod metrics;
pub mod prep;
mod sinks;

pub use clock::{Clock, ManualClock, SystemClock};
pub use decide::{Applied, Places, Tracked};
pub use metrics::EtaMetrics;
pub use sinks::{EtaSinks, EtaTopics, Writes};

use crate::runtime::{Read, SourceRecord, Stage, StageError, read_batch};
use crate::status::TimerWheel;
use doorstep_connectors::routing::RouteAnswer;
use doorstep_operators::eta::{
    Components, PickupLeg, PrepModel, PrepStage, RangePolicy, Travel, TravelModel, estimate,
    hour_of_day, plan, prep_stage,
};
use doorstep_schemas::events::{EtaUpdate, StatusChange};
use doorstep_schemas::model::{DriverId, GeoPoint, OrderId, Timestamp};
use futures::StreamExt;
use prep::PrepHistory;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// The timer kind of ETA recomputations in the order store.
pub const TIMER_KIND: &str = "eta";

/// The stage name in reject records.
pub const REJECTED_BY: &str = "eta";

/// When an order's row is not in the store yet (the status pipeline writes it right after
/// the status record), try again this soon, milliseconds.
const RETRY_INCOMPLETE_MS: i64 = 2_000;

/// Routing lookups in flight at once.
const ROUTE_CONCURRENCY: usize = 64;

/// Order rows loaded at once.
const LOAD_CONCURRENCY: usize = 32;

/// How ETAs are computed.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct EtaPolicy {
    /// Period of the per-order recomputation, milliseconds.
    pub interval_ms: i64,
    /// The prep-time model.
    pub prep: PrepModel,
    /// Travel legs and their uncertainty.
    pub travel: TravelModel,
    /// The customer's range.
    pub range: RangePolicy,
}

impl Default for EtaPolicy {
    /// Every 30 s, default models.
    fn default() -> Self {
        Self {
            interval_ms: 30_000,
            prep: PrepModel::default(),
            travel: TravelModel::default(),
            range: RangePolicy::default(),
        }
    }
}

impl EtaPolicy {
    /// A policy recomputing every `interval_ms` with the given models.
    pub fn new(interval_ms: i64, prep: PrepModel, travel: TravelModel) -> Self {
        Self {
            interval_ms: interval_ms.max(1),
            prep,
            travel,
            range: RangePolicy::default(),
        }
    }
}

/// Why an ETA computation ran (a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A status change.
    Status,
    /// The periodic timer.
    Timer,
}

impl Trigger {
    fn label(self) -> &'static str {
        match self {
            Self::Status => "status",
            Self::Timer => "timer",
        }
    }
}

/// The ETA pipeline's stage.
pub struct EtaStage {
    sinks: EtaSinks,
    policy: EtaPolicy,
    clock: Arc<dyn Clock>,
    metrics: EtaMetrics,
    /// Keyed state of the active orders of owned partitions.
    orders: HashMap<OrderId, Tracked>,
    /// The next recomputation of every active order.
    timers: TimerWheel,
    prep: PrepHistory,
}

impl EtaStage {
    /// A stage working through `sinks`, timed by `clock`.
    pub fn new(
        sinks: EtaSinks,
        policy: EtaPolicy,
        clock: Arc<dyn Clock>,
        metrics: EtaMetrics,
    ) -> Self {
        Self {
            sinks,
            prep: PrepHistory::new(policy.prep),
            policy,
            clock,
            metrics,
            orders: HashMap::new(),
            timers: TimerWheel::default(),
        }
    }

    /// Orders with a pending recomputation.
    pub fn active_orders(&self) -> usize {
        self.timers.len()
    }

    /// Decodes the batch and applies its changes to `scratch`; returns the orders that
    /// changed, in order id order.
    async fn apply_batch(
        &mut self,
        batch: &[SourceRecord],
        scratch: &mut HashMap<OrderId, Tracked>,
        writes: &mut Writes,
        now: Timestamp,
    ) -> Result<BTreeSet<OrderId>, StageError> {
        let mut changed = BTreeSet::new();
        for read in read_batch::<StatusChange>(self.sinks.emitter.catalog(), batch).await? {
            let (partition, change) = match read {
                Read::Record(meta, change) => (meta.partition, change),
                Read::Unusable(u) => {
                    let order = u.record.map(|c| c.order_id);
                    let reject = u
                        .meta
                        .reject(REJECTED_BY, u.code, u.message, None, order, now);
                    writes.rejects.push(reject);
                    continue;
                }
            };
            let id = change.order_id.clone();
            let known = scratch
                .remove(&id)
                .or_else(|| self.orders.get(&id).cloned());
            let tracked = match known {
                Some(mut t) => match t.apply(&change) {
                    Applied::Duplicate => {
                        scratch.insert(id, t);
                        continue;
                    }
                    Applied::Changed(observation) => {
                        if let Some(o) = observation {
                            self.prep.observe(&o);
                        }
                        t
                    }
                },
                None => {
                    let t = Tracked::from_change(&change, partition);
                    if t.is_final() {
                        // First seen when already over (a re-read after the order ended):
                        // nothing to start, but make sure no timer outlives it.
                        writes.finished.push((partition, id.clone()));
                        continue;
                    }
                    writes.timer_puts.push((partition, id.clone()));
                    t
                }
            };
            changed.insert(id.clone());
            scratch.insert(id, tracked);
        }
        for id in &changed {
            if let Some(t) = scratch.get(id)
                && t.is_final()
            {
                writes.finished.push((t.partition, id.clone()));
            }
        }
        Ok(changed)
    }

    /// Loads the order rows of the `ids` in `scratch` without places; returns the ids whose
    /// row turned out to be final.
    async fn load_places(
        &self,
        scratch: &mut HashMap<OrderId, Tracked>,
        ids: &[(OrderId, i32)],
    ) -> Result<Vec<OrderId>, StageError> {
        let missing: Vec<(OrderId, i32)> = ids
            .iter()
            .filter(|(id, _)| scratch.get(id).is_none_or(|t| t.places.is_none()))
            .cloned()
            .collect();
        let loaded: Vec<_> = futures::stream::iter(missing)
            .map(|(id, p)| async move {
                let r = self.sinks.load(&id).await;
                (id, p, r)
            })
            .buffer_unordered(LOAD_CONCURRENCY)
            .collect()
            .await;
        let mut final_rows = Vec::new();
        for (id, partition, r) in loaded {
            let Some(state) = r? else { continue };
            match scratch.get_mut(&id) {
                Some(t) => t.merge_row(&state),
                None => {
                    scratch.insert(id.clone(), Tracked::from_row(&state, partition));
                }
            }
            if scratch.get(&id).is_some_and(Tracked::is_final) {
                final_rows.push(id);
            }
        }
        Ok(final_rows)
    }

    /// Computes the ETA of every order of `ids` with known places, at `now`.
    async fn compute(
        &mut self,
        scratch: &HashMap<OrderId, Tracked>,
        ids: &[OrderId],
        now: Timestamp,
        trigger: Trigger,
    ) -> Result<Vec<EtaUpdate>, StageError> {
        let ready: Vec<(&OrderId, &Tracked, Places)> = ids
            .iter()
            .filter_map(|id| {
                let t = scratch.get(id)?;
                (!t.is_final()).then_some(())?;
                Some((id, t, t.places?))
            })
            .collect();
        if ready.is_empty() {
            return Ok(Vec::new());
        }
        let drivers: Vec<DriverId> = ready
            .iter()
            .filter_map(|(_, t, _)| t.driver_id.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let snapshots = self.sinks.locations.snapshots(&drivers).await?;
        let position = |t: &Tracked| -> Option<GeoPoint> {
            let d = t.driver_id.as_ref()?;
            snapshots.get(d)?.last.as_ref().map(|p| p.location)
        };
        let prep_key = |t: &Tracked| {
            (
                t.restaurant_id.clone(),
                hour_of_day(t.preparing_since.unwrap_or(now)),
            )
        };
        let keys: Vec<_> = ready
            .iter()
            .filter(|(_, t, _)| prep_stage(t.status, t.preparing_since, now) != PrepStage::Ready)
            .map(|(_, t, _)| prep_key(t))
            .collect();
        self.prep.refresh(&self.sinks.store, keys, now).await?;

        // Every leg to route: (order index, is pickup, from, to).
        let mut plans = Vec::with_capacity(ready.len());
        let mut legs: Vec<(usize, bool, GeoPoint, GeoPoint)> = Vec::new();
        for (i, (_, t, places)) in ready.iter().enumerate() {
            let Some(p) = plan(t.status, position(t), places.restaurant, places.customer) else {
                continue;
            };
            if let PickupLeg::Route { from, to } = p.pickup {
                legs.push((i, true, from, to));
            }
            legs.push((i, false, p.delivery.0, p.delivery.1));
            plans.push((i, p));
        }
        let router = &self.sinks.router;
        let answers: Vec<(usize, bool, RouteAnswer)> =
            futures::stream::iter(legs)
                .map(|(i, pickup, from, to)| async move {
                    (i, pickup, router.travel(from, to, now).await)
                })
                .buffer_unordered(ROUTE_CONCURRENCY)
                .collect()
                .await;
        let travel = &self.policy.travel;
        let as_travel = |a: &RouteAnswer| {
            if a.is_fallback() {
                travel.fallback(a.duration_s)
            } else {
                travel.routed(a.duration_s)
            }
        };
        let mut pickup_of: HashMap<usize, Travel> = HashMap::new();
        let mut delivery_of: HashMap<usize, Travel> = HashMap::new();
        for (i, pickup, a) in &answers {
            self.metrics.observe_route(a);
            if *pickup {
                pickup_of.insert(*i, as_travel(a));
            } else {
                delivery_of.insert(*i, as_travel(a));
            }
        }
        let mut updates = Vec::with_capacity(plans.len());
        for (i, p) in plans {
            let (id, t, _) = ready[i];
            let pickup = match p.pickup {
                PickupLeg::Done => Travel::NONE,
                PickupLeg::Assumed => travel.unassigned(),
                PickupLeg::Route { .. } => pickup_of.get(&i).copied().unwrap_or(Travel::NONE),
            };
            let Some(delivery) = delivery_of.get(&i).copied() else {
                continue;
            };
            let expectation = self.prep.expect(&prep_key(t));
            let prep_s = self
                .prep
                .model()
                .remaining(&expectation, prep_stage(t.status, t.preparing_since, now));
            let c = Components {
                prep_s,
                pickup,
                delivery,
            };
            updates.push(estimate(id.clone(), now, &c, &self.policy.range));
        }
        self.metrics
            .recomputations
            .with_label_values(&[trigger.label()])
            .inc_by(updates.len() as u64);
        Ok(updates)
    }

    /// Recomputes the orders whose timer is due on the clock.
    async fn recompute_due(&mut self) -> Result<(), StageError> {
        let now = self.clock.now();
        let due = self.timers.due(now, self.policy.interval_ms);
        if due.is_empty() {
            return Ok(());
        }
        let mut scratch: HashMap<OrderId, Tracked> = HashMap::new();
        let mut ids = Vec::with_capacity(due.len());
        for (partition, id, _) in due {
            if let Some(t) = self.orders.get(&id) {
                scratch.insert(id.clone(), t.clone());
            }
            ids.push((id, partition));
        }
        match self.round(scratch, &ids, now).await {
            Ok(()) => Ok(()),
            Err(e) => {
                // `due` re-armed them a period later: make them due again, so the runtime's
                // retry of this tick recomputes them.
                for (id, partition) in ids {
                    self.timers.put(partition, id, now);
                }
                Err(e)
            }
        }
    }

    /// One timer round over `ids` (with their partitions) at `now`.
    async fn round(
        &mut self,
        mut scratch: HashMap<OrderId, Tracked>,
        ids: &[(OrderId, i32)],
        now: Timestamp,
    ) -> Result<(), StageError> {
        let mut writes = Writes::default();
        for id in self.load_places(&mut scratch, ids).await? {
            if let Some(t) = scratch.get(&id) {
                writes.finished.push((t.partition, id));
            }
        }
        let ids: Vec<OrderId> = ids.iter().map(|(id, _)| id.clone()).collect();
        writes.updates = self.compute(&scratch, &ids, now, Trigger::Timer).await?;
        self.sinks.write(&writes, now, &self.metrics).await?;
        // Orders due whose row is missing stay out of `scratch` and keep the periodic timer
        // `due` re-armed (the status pipeline may not have written the row yet).
        let considered: BTreeSet<OrderId> = ids.into_iter().collect();
        self.keep(scratch, &writes, &considered, now);
        Ok(())
    }

    /// After every sink acknowledged: keeps the state and schedules the next computations.
    /// Orders of `considered` are rescheduled: a full period after a computation, soon when
    /// their row was missing; other orders of `scratch` (re-reads) keep their timer.
    fn keep(
        &mut self,
        scratch: HashMap<OrderId, Tracked>,
        writes: &Writes,
        considered: &BTreeSet<OrderId>,
        now: Timestamp,
    ) {
        let computed: BTreeSet<&OrderId> = writes.updates.iter().map(|u| &u.order_id).collect();
        for (id, t) in scratch {
            if t.is_final() {
                self.orders.remove(&id);
                self.timers.remove(&id);
                continue;
            }
            if considered.contains(&id) {
                let next = if computed.contains(&id) {
                    self.policy.interval_ms
                } else {
                    RETRY_INCOMPLETE_MS
                };
                self.timers
                    .put(t.partition, id.clone(), now.plus_millis(next));
            }
            self.orders.insert(id, t);
        }
        for (_, id) in &writes.finished {
            self.orders.remove(id);
            self.timers.remove(id);
        }
        self.metrics
            .active_orders
            .set(i64::try_from(self.timers.len()).unwrap_or(i64::MAX));
    }
}

impl Stage for EtaStage {
    async fn process_batch(&mut self, batch: &[SourceRecord]) -> Result<(), StageError> {
        let now = self.clock.now();
        let mut writes = Writes::default();
        let mut scratch = HashMap::new();
        let changed = self
            .apply_batch(batch, &mut scratch, &mut writes, now)
            .await?;
        let active: Vec<(OrderId, i32)> = changed
            .iter()
            .filter_map(|id| {
                scratch
                    .get(id)
                    .filter(|t| !t.is_final())
                    .map(|t| (id.clone(), t.partition))
            })
            .collect();
        for id in self.load_places(&mut scratch, &active).await? {
            if let Some(t) = scratch.get(&id) {
                writes.finished.push((t.partition, id));
            }
        }
        let ids: Vec<OrderId> = active.into_iter().map(|(id, _)| id).collect();
        writes.updates = self.compute(&scratch, &ids, now, Trigger::Status).await?;
        self.sinks.write(&writes, now, &self.metrics).await?;
        self.keep(scratch, &writes, &changed, now);
        for r in &writes.rejects {
            self.metrics
                .rejected
                .with_label_values(&[&r.reason_code])
                .inc();
        }
        Ok(())
    }

    async fn on_tick(&mut self, _runtime_now: Timestamp) -> Result<(), StageError> {
        match self.recompute_due().await {
            // A round that can never succeed must not stop the pipeline: the orders' timers
            // are re-armed, so they are tried again a period later.
            Err(e) if !e.is_retriable() => {
                tracing::error!(error = %e, "ETA round failed for good; its orders retry next period");
                Ok(())
            }
            r => r,
        }
    }

    async fn on_assignment(&mut self, assigned: &[i32], revoked: &[i32]) -> Result<(), StageError> {
        self.orders.retain(|_, t| !revoked.contains(&t.partition));
        self.timers.drop_partitions(revoked);
        let now = self.clock.now();
        for p in assigned {
            for (order_id, due_at) in self.sinks.timers(*p).await? {
                // The stored time is when the order was last (re)started: recompute now.
                self.timers.put(*p, order_id, due_at.min(now));
            }
        }
        self.metrics
            .active_orders
            .set(i64::try_from(self.timers.len()).unwrap_or(i64::MAX));
        tracing::info!(timers = self.timers.len(), "ETA timers loaded");
        Ok(())
    }
}
