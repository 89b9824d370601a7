//! The replay stage: decode → the state machine against the target keyspace's state → the
//! order rows, timelines and (optionally) prep times, and nothing else.

use crate::runtime::{Read, SourceRecord, Stage, StageError, read_batch};
use crate::status::Outputs;
use doorstep_connectors::order_store::{Error as StoreError, OrderStore};
use doorstep_operators::order::{Decision, OrderPolicy, OrderState, decide};
use doorstep_schemas::avro::Catalog;
use doorstep_schemas::events::OrderEvent;
use doorstep_schemas::model::OrderId;
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Orders loaded from the store at once.
const LOAD_CONCURRENCY: usize = 32;
/// Orders saved at once.
const SAVE_CONCURRENCY: usize = 64;

/// What a replay did so far; shared with the progress display.
#[derive(Debug, Default)]
pub struct ReplayCounts {
    /// Records read.
    pub records: AtomicU64,
    /// Events the state machine accepted (and whose results were written).
    pub accepted: AtomicU64,
    /// Events already processed in the target keyspace (at or below the order's recorded
    /// offset), or duplicates: skipped.
    pub skipped: AtomicU64,
    /// Events the state machine refused (nothing written).
    pub rejected: AtomicU64,
    /// Records that are not order events.
    pub undecodable: AtomicU64,
    /// Order rows written (one per order per batch).
    pub orders_written: AtomicU64,
    /// Prep-time observations written.
    pub prep_times_written: AtomicU64,
    /// Refusals by reason code.
    pub reasons: Mutex<BTreeMap<String, u64>>,
}

impl ReplayCounts {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn reason(&self, code: &str) {
        let mut r = self.reasons.lock().unwrap_or_else(PoisonError::into_inner);
        *r.entry(code.to_owned()).or_default() += 1;
    }

    /// A counter's value.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Keyed state of one order.
#[derive(Debug, Clone)]
struct Known {
    /// The order as the replay has rebuilt it so far.
    state: OrderState,
    /// The source partition its events are on.
    partition: i32,
    /// The offset of the last event processed (a re-read one at or below it is skipped).
    last_offset: i64,
}

/// The replay's stage. It has no timers: a replay never fires auto-confirms (they are live
/// effects), so it keeps the runtime's default tick.
pub struct ReplayStage {
    store: OrderStore,
    catalog: &'static Catalog,
    policy: OrderPolicy,
    prep_times: bool,
    counts: Arc<ReplayCounts>,
    orders: HashMap<OrderId, Known>,
}

impl ReplayStage {
    /// A stage writing into `store`'s keyspace; `prep_times` also writes prep-time
    /// observations.
    pub fn new(
        store: OrderStore,
        catalog: &'static Catalog,
        policy: OrderPolicy,
        prep_times: bool,
    ) -> Self {
        Self {
            store,
            catalog,
            policy,
            prep_times,
            counts: Arc::new(ReplayCounts::default()),
            orders: HashMap::new(),
        }
    }

    /// The counters (shared; they keep counting while the stage runs).
    pub fn counts(&self) -> Arc<ReplayCounts> {
        self.counts.clone()
    }

    async fn load(
        &self,
        ids: BTreeSet<(OrderId, i32)>,
    ) -> Result<Vec<(OrderId, Known)>, StageError> {
        let loaded: Vec<_> = futures::stream::iter(ids)
            .map(|(id, partition)| async move {
                let r = self.store.load_processed(&id).await;
                (id, partition, r)
            })
            .buffer_unordered(LOAD_CONCURRENCY)
            .collect()
            .await;
        let mut out = Vec::new();
        for (id, partition, r) in loaded {
            if let Some(stored) = r? {
                out.push((
                    id,
                    Known {
                        state: stored.state,
                        partition,
                        last_offset: stored.last_source_offset,
                    },
                ));
            }
        }
        Ok(out)
    }
}

impl Stage for ReplayStage {
    async fn process_batch(&mut self, batch: &[SourceRecord]) -> Result<(), StageError> {
        let c = &self.counts;
        let mut decoded: Vec<(i32, i64, OrderEvent)> = Vec::with_capacity(batch.len());
        // Counted once the batch is written (a failed batch is offered again).
        let mut reasons: Vec<&str> = Vec::new();
        let mut undecodable = 0u64;
        for read in read_batch::<OrderEvent>(self.catalog, batch).await? {
            match read {
                Read::Record(meta, e) => decoded.push((meta.partition, meta.offset, e)),
                Read::Unusable(u) if u.record.is_some() => reasons.push(u.code),
                Read::Unusable(_) => undecodable += 1,
            }
        }
        let mut scratch: HashMap<OrderId, Known> = HashMap::new();
        let mut missing = BTreeSet::new();
        for (p, _, e) in &decoded {
            if scratch.contains_key(&e.order_id) {
                continue;
            }
            match self.orders.get(&e.order_id) {
                Some(k) => {
                    scratch.insert(e.order_id.clone(), k.clone());
                }
                None => {
                    missing.insert((e.order_id.clone(), *p));
                }
            }
        }
        scratch.extend(self.load(missing).await?);

        let mut out = Outputs::default();
        let (mut accepted, mut skipped, mut rejected) = (0u64, 0u64, 0u64);
        for (partition, offset, e) in &decoded {
            if scratch
                .get(&e.order_id)
                .is_some_and(|k| *offset <= k.last_offset)
            {
                skipped += 1;
                continue;
            }
            let current = scratch.get(&e.order_id).map(|k| &k.state);
            match decide(current, e, &self.policy) {
                Decision::Accepted(a) => {
                    accepted += 1;
                    let p = scratch.get(&e.order_id).map_or(*partition, |k| k.partition);
                    out.accepted(e, &a, p);
                    let known = Known {
                        state: a.state,
                        partition: p,
                        last_offset: *offset,
                    };
                    scratch.insert(e.order_id.clone(), known);
                }
                Decision::Duplicate => skipped += 1,
                Decision::Rejected(reason) => {
                    rejected += 1;
                    reasons.push(reason.code());
                    if let Some(k) = scratch.get_mut(&e.order_id) {
                        k.last_offset = *offset;
                    }
                }
            }
        }
        for (id, save) in &mut out.saves {
            if let Some(k) = scratch.get(id) {
                save.source_offset = k.last_offset;
            }
        }
        // The same observations the status pipeline records (status::Outputs).
        let prep = if self.prep_times {
            std::mem::take(&mut out.prep_times)
        } else {
            Vec::new()
        };
        // Prep times first: a crash between the two writes re-derives them on the next run
        // (the order row is what marks the events processed).
        let store = &self.store;
        let writes: Vec<_> = prep.iter().map(|o| store.record_prep_time(o)).collect();
        let written: Vec<Result<(), StoreError>> = futures::stream::iter(writes)
            .buffer_unordered(SAVE_CONCURRENCY)
            .collect()
            .await;
        written.into_iter().collect::<Result<(), _>>()?;
        let saves: Vec<_> = out
            .saves
            .values()
            // A replay writes no topic: nothing to keep for a re-read.
            .map(|s| store.save_processed(&s.state, &s.entries, s.partition, s.source_offset, &[]))
            .collect();
        let saved: Vec<Result<(), StoreError>> = futures::stream::iter(saves)
            .buffer_unordered(SAVE_CONCURRENCY)
            .collect()
            .await;
        saved.into_iter().collect::<Result<(), _>>()?;

        ReplayCounts::add(&c.records, batch.len() as u64);
        ReplayCounts::add(&c.undecodable, undecodable);
        for r in reasons {
            c.reason(r);
        }
        ReplayCounts::add(&c.accepted, accepted);
        ReplayCounts::add(&c.skipped, skipped);
        ReplayCounts::add(&c.rejected, rejected);
        ReplayCounts::add(&c.orders_written, out.saves.len() as u64);
        ReplayCounts::add(&c.prep_times_written, prep.len() as u64);
        for (id, known) in scratch {
            if known.state.order.status.is_final() {
                self.orders.remove(&id);
            } else {
                self.orders.insert(id, known);
            }
        }
        Ok(())
    }

    async fn on_assignment(
        &mut self,
        _assigned: &[i32],
        revoked: &[i32],
    ) -> Result<(), StageError> {
        self.orders.retain(|_, k| !revoked.contains(&k.partition));
        Ok(())
    }
}
