//! Where the ETA pipeline reads from and writes to: the order store (order rows, prep
//! history, durable timers, the row's `estimated_delivery_at`), driver positions, the live
//! feed (channel + current ETA in Redis), the router, and Kafka (`orders.eta.v1`, rejects).

use super::{EtaMetrics, TIMER_KIND};
use crate::runtime::{Emitter, StageError, timed};
use doorstep_connectors::live_feed::LiveFeed;
use doorstep_connectors::location_store::LocationStore;
use doorstep_connectors::order_store::OrderStore;
use doorstep_connectors::routing::Router;
use doorstep_operators::order::OrderState;
use doorstep_schemas::events::{EtaUpdate, RejectedRecord};
use doorstep_schemas::live::LiveEvent;
use doorstep_schemas::model::{OrderId, Timestamp};
use futures::{StreamExt, TryStreamExt};
use std::sync::Arc;

/// Writes of one kind in flight at once.
const CONCURRENCY: usize = 128;

/// The full names of the topics the ETA pipeline writes.
#[derive(Debug, Clone)]
pub struct EtaTopics {
    /// `orders.eta.v1`.
    pub eta: String,
    /// `orders.rejected.v1`.
    pub rejected: String,
}

/// The connections the ETA pipeline works through.
pub struct EtaSinks {
    /// Kafka records out (and the schemas, for decoding too).
    pub emitter: Emitter,
    /// Topic names.
    pub topics: EtaTopics,
    /// Order rows, prep history, timers.
    pub store: OrderStore,
    /// Driver positions.
    pub locations: LocationStore,
    /// Order channels and current ETAs.
    pub live: LiveFeed,
    /// Travel times.
    pub router: Arc<Router>,
}

/// What a batch or a tick writes.
#[derive(Debug, Default)]
pub struct Writes {
    /// New ETAs.
    pub updates: Vec<EtaUpdate>,
    /// Refused source records.
    pub rejects: Vec<RejectedRecord>,
    /// Orders whose durable timer is (re)written: (partition, order).
    pub timer_puts: Vec<(i32, OrderId)>,
    /// Orders that are over: timer deleted, current ETA cleared.
    pub finished: Vec<(i32, OrderId)>,
}

impl EtaSinks {
    /// The stored state of an order, if it was saved.
    pub async fn load(&self, order: &OrderId) -> Result<Option<OrderState>, StageError> {
        self.store.load(order).await.map_err(StageError::from)
    }

    /// The durable ETA timers of `partition`.
    pub async fn timers(&self, partition: i32) -> Result<Vec<(OrderId, Timestamp)>, StageError> {
        let timers = self.store.timers(partition).await?;
        Ok(timers
            .into_iter()
            .filter(|t| t.kind == TIMER_KIND)
            .map(|t| (t.order_id, t.due_at))
            .collect())
    }

    /// Writes everything, the three sinks concurrently: Kafka records, Redis (channel,
    /// current ETA) and ScyllaDB (the row's ETA, timers). None depends on another: every
    /// write is an overwrite or keyed, so a batch retried after any of them failed writes the
    /// same state again (a retried publish repeats an ETA frame, which clients tolerate).
    pub async fn write(
        &self,
        w: &Writes,
        now: Timestamp,
        metrics: &EtaMetrics,
    ) -> Result<(), StageError> {
        let latency = &metrics.sink_latency;
        futures::try_join!(
            timed(latency, "kafka", self.kafka(w)),
            timed(latency, "redis", self.redis(w)),
            timed(latency, "cql", self.cql(w, now)),
        )?;
        Ok(())
    }

    async fn kafka(&self, w: &Writes) -> Result<(), StageError> {
        if w.updates.is_empty() && w.rejects.is_empty() {
            return Ok(());
        }
        let mut records = Vec::with_capacity(w.updates.len() + w.rejects.len());
        for u in &w.updates {
            records.push(self.emitter.encode(&self.topics.eta, u)?);
        }
        for r in &w.rejects {
            records.push(self.emitter.encode(&self.topics.rejected, r)?);
        }
        self.emitter.send_all(&records).await
    }

    async fn redis(&self, w: &Writes) -> Result<(), StageError> {
        let live = &self.live;
        // Futures built first, then driven: a closure inside the stream would make the
        // stage's future not `Send` (higher-ranked lifetime inference).
        let updates: Vec<_> = w
            .updates
            .iter()
            .map(|u| async move {
                live.set_eta(u).await?;
                live.publish(&LiveEvent::Eta(u.clone())).await.map(drop)
            })
            .collect();
        let clears: Vec<_> = w
            .finished
            .iter()
            .map(|(_, order)| live.clear_eta(order))
            .collect();
        all(updates).await?;
        all(clears).await?;
        Ok(())
    }

    async fn cql(&self, w: &Writes, now: Timestamp) -> Result<(), StageError> {
        let store = &self.store;
        let etas = all(w
            .updates
            .iter()
            .map(|u| store.set_eta(&u.order_id, u.estimated_delivery_at))
            .collect());
        // An order that finished in this batch gets no timer, even when an earlier event of
        // the batch re-armed it: a put racing the delete of the same row could land last and
        // leave a timer behind for a finished order.
        let puts = all(w
            .timer_puts
            .iter()
            .filter(|put| !w.finished.contains(put))
            .map(|(p, order)| store.put_timer(*p, order, TIMER_KIND, now))
            .collect());
        let deletes = all(w
            .finished
            .iter()
            .map(|(p, order)| store.delete_timer(*p, order, TIMER_KIND))
            .collect());
        futures::try_join!(etas, puts, deletes)?;
        Ok(())
    }
}

/// Runs `futures` with at most [`CONCURRENCY`] in flight; the first error wins.
async fn all<F, E>(futures: Vec<F>) -> Result<(), E>
where
    F: std::future::Future<Output = Result<(), E>>,
{
    futures::stream::iter(futures)
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await
}
