//! Where the ETA pipeline reads from and writes to: the order store (order rows, prep
//! history, durable timers, the row's `estimated_delivery_at`), driver positions, the live
//! feed (channel + current ETA in Redis), the router, and Kafka (`orders.eta.v1`, rejects).

use super::{EtaMetrics, TIMER_KIND};
use crate::runtime::{StageError, produce_all};
use doorstep_connectors::kafka::Producer;
use doorstep_connectors::live_feed::LiveFeed;
use doorstep_connectors::location_store::LocationStore;
use doorstep_connectors::order_store::OrderStore;
use doorstep_connectors::routing::Router;
use doorstep_operators::order::OrderState;
use doorstep_schemas::avro::{Catalog, TopicRecord};
use doorstep_schemas::events::{EtaUpdate, RejectedRecord};
use doorstep_schemas::live::LiveEvent;
use doorstep_schemas::model::{OrderId, Timestamp};
use futures::{StreamExt, TryStreamExt};
use std::sync::Arc;
use std::time::Instant;

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
    /// Kafka producer.
    pub producer: Producer,
    /// Schemas for decoding and encoding.
    pub catalog: &'static Catalog,
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

    /// Writes everything: Kafka records first, then Redis (channel, current ETA), then
    /// ScyllaDB (the row's ETA, timers). Every write is an overwrite or keyed, so a retried
    /// batch writes the same state (a retried publish repeats an ETA frame).
    pub async fn write(
        &self,
        w: &Writes,
        now: Timestamp,
        metrics: &EtaMetrics,
    ) -> Result<(), StageError> {
        self.kafka(w, metrics).await?;
        self.redis(w, metrics).await?;
        self.cql(w, now, metrics).await
    }

    async fn kafka(&self, w: &Writes, metrics: &EtaMetrics) -> Result<(), StageError> {
        if w.updates.is_empty() && w.rejects.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let mut records: Vec<(&str, String, String, Vec<u8>)> =
            Vec::with_capacity(w.updates.len() + w.rejects.len());
        for u in &w.updates {
            let id = format!("eta:{}:{}", u.order_id, u.computed_at.as_millis());
            records.push((
                &self.topics.eta,
                u.order_id.as_str().to_owned(),
                id,
                self.encode(&self.topics.eta, u)?,
            ));
        }
        for r in &w.rejects {
            let key = r.topic_key();
            let id = r.event_id.as_ref().map_or("", |e| e.as_str()).to_owned();
            records.push((
                &self.topics.rejected,
                key,
                id,
                self.encode(&self.topics.rejected, r)?,
            ));
        }
        produce_all(
            &self.producer,
            records
                .iter()
                .map(|(t, k, i, b)| (*t, k.as_str(), i.as_str(), b.as_slice())),
        )
        .await?;
        metrics
            .sink_latency
            .with_label_values(&["kafka"])
            .observe(started.elapsed().as_secs_f64());
        Ok(())
    }

    async fn redis(&self, w: &Writes, metrics: &EtaMetrics) -> Result<(), StageError> {
        let started = Instant::now();
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
        metrics
            .sink_latency
            .with_label_values(&["redis"])
            .observe(started.elapsed().as_secs_f64());
        Ok(())
    }

    async fn cql(
        &self,
        w: &Writes,
        now: Timestamp,
        metrics: &EtaMetrics,
    ) -> Result<(), StageError> {
        let started = Instant::now();
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
        metrics
            .sink_latency
            .with_label_values(&["cql"])
            .observe(started.elapsed().as_secs_f64());
        Ok(())
    }

    fn encode<T: TopicRecord>(&self, topic: &str, record: &T) -> Result<Vec<u8>, StageError> {
        self.catalog
            .encode(record)
            .map_err(|e| StageError::invalid(format_args!("encoding for {topic}"), e))
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
