//! The status pipeline's sinks: what it writes where, in which order, and how failures are
//! classified (retriable → the runtime retries the batch; permanent refund failures → a
//! reject record).
//!
//! Phase 1 runs refunds first (a refused refund becomes a reject record of the same batch),
//! then, concurrently: the driver operations (concurrently across drivers, in decision order
//! for each driver), the Kafka records followed by the outcomes of rejected commands, and the
//! batch's writes to the per-partition tables (orders placed into the active-order index,
//! auto-confirm timers set and cleared): one CQL request per source partition. Phase 2 saves
//! each changed order (one single-partition batch: its current fields, its new timeline
//! entries, its outbox) and the observed preparation times, then takes the orders that ended
//! out of the index (again one request per partition). Phase 3 publishes.
//!
//! Command outcomes: a rejection is recorded in phase 1, once its reject record is
//! acknowledged (nothing later in the batch depends on it, and a crash after the order row
//! is saved could not compute it again); an acceptance in phase 3 with the live frames, once
//! the order row is saved, so that whoever hears it and then reads the order sees the change.

use super::{AUTO_CONFIRM, DriverOp, Outputs, StatusMetrics, TimerOp};
use crate::runtime::{Emitter, StageError, timed};
use doorstep_connectors::command_outcomes::CommandOutcomes;
use doorstep_connectors::driver_state::DriverState;
use doorstep_connectors::live_feed::LiveFeed;
use doorstep_connectors::order_store::{OrderStore, PartitionWrite, Stored};
use doorstep_connectors::payments::PaymentsClient;
use doorstep_schemas::events::{OrderEvent, RejectedRecord};
use doorstep_schemas::model::{DriverId, EventId, OrderId, Timestamp};
use doorstep_schemas::outcome::CommandOutcome;
use futures::future::try_join_all;
use std::collections::HashMap;
use std::time::Instant;

/// The full names of the topics the status pipeline writes.
#[derive(Debug, Clone)]
pub struct StatusTopics {
    /// `orders.events.v1` (auto-confirm events are written back here).
    pub events: String,
    /// `orders.status.v1`.
    pub status: String,
    /// `orders.tracking.v1` (`STATUS_CHANGE` updates).
    pub tracking: String,
    /// `notifications.v1`.
    pub notifications: String,
    /// `orders.rejected.v1`.
    pub rejected: String,
}

/// The connections the status pipeline writes through.
pub struct StatusSinks {
    /// Kafka records out (transactional, or idempotent with acks=all), and the schemas.
    pub emitter: Emitter,
    /// Topic names.
    pub topics: StatusTopics,
    /// Order rows, history, timers.
    pub store: OrderStore,
    /// Driver availability.
    pub drivers: DriverState,
    /// Refunds; `None` suppresses them (replays).
    pub payments: Option<PaymentsClient>,
    /// Whether notifications are emitted (suppressed in replays).
    pub notify: bool,
    /// The orders' live channels; `None` publishes nothing (replays).
    pub live: Option<LiveFeed>,
    /// The commands' outcomes; `None` records none (replays, backfills).
    pub outcomes: Option<CommandOutcomes>,
}

impl StatusSinks {
    /// The stored state of an order, the offset of the last event processed for it and the
    /// outbox of that event's batch.
    pub async fn load(&self, order_id: &OrderId) -> Result<Option<Stored>, StageError> {
        self.store
            .load_processed(order_id)
            .await
            .map_err(StageError::from)
    }

    /// The recorded outcomes of the given commands (none without an outcome store).
    pub async fn recorded(
        &self,
        commands: Vec<(OrderId, EventId)>,
    ) -> Result<HashMap<EventId, CommandOutcome>, StageError> {
        let Some(outcomes) = &self.outcomes else {
            return Ok(HashMap::new());
        };
        outcomes.get_many(commands).await.map_err(StageError::from)
    }

    /// The durable timers of a partition.
    pub async fn timers(&self, partition: i32) -> Result<Vec<(OrderId, Timestamp)>, StageError> {
        let timers = self.store.timers(partition).await?;
        Ok(timers
            .into_iter()
            .filter(|t| t.kind == AUTO_CONFIRM)
            .map(|t| (t.order_id, t.due_at))
            .collect())
    }

    /// Phase 1: every effect but the order rows (see the module docs).
    pub async fn emit(&self, out: &mut Outputs, metrics: &StatusMetrics) -> Result<(), StageError> {
        self.refund(out, metrics).await?;
        let out = &*out;
        futures::future::try_join3(
            self.drive(out, metrics),
            self.produce(out, metrics),
            self.index_and_timers(out, metrics),
        )
        .await?;
        Ok(())
    }

    /// The driver operations: each driver's in decision order (an occupy and a later release
    /// of the same driver must not overtake each other), different drivers concurrently.
    async fn drive(&self, out: &Outputs, metrics: &StatusMetrics) -> Result<(), StageError> {
        if out.driver_ops.is_empty() {
            return Ok(());
        }
        let mut by_driver: HashMap<&DriverId, Vec<&DriverOp>> = HashMap::new();
        for op in &out.driver_ops {
            let driver = match op {
                DriverOp::Occupy(d, _) | DriverOp::Release(d, _) => d,
            };
            by_driver.entry(driver).or_default().push(op);
        }
        let drivers = try_join_all(by_driver.into_values().map(|ops| async move {
            for op in ops {
                match op {
                    DriverOp::Occupy(d, o) => self.drivers.occupy(d, o).await,
                    DriverOp::Release(d, o) => self.drivers.release(d, o).await.map(|_| ()),
                }?;
            }
            Ok::<_, StageError>(())
        }));
        timed(&metrics.sink_latency, "redis", drivers).await?;
        Ok(())
    }

    /// The Kafka records, then the outcomes of the rejected commands.
    async fn produce(&self, out: &Outputs, metrics: &StatusMetrics) -> Result<(), StageError> {
        let mut sends = Vec::new();
        for c in &out.status_changes {
            sends.push(self.emitter.encode(&self.topics.status, c)?);
        }
        for t in &out.tracking {
            sends.push(self.emitter.encode(&self.topics.tracking, t)?);
        }
        if self.notify {
            for n in &out.notifications {
                sends.push(self.emitter.encode(&self.topics.notifications, n)?);
            }
        }
        for r in &out.rejects {
            sends.push(self.emitter.encode(&self.topics.rejected, r)?);
        }
        timed(
            &metrics.sink_latency,
            "kafka",
            self.emitter.send_all(&sends),
        )
        .await?;
        for record in &sends {
            metrics
                .records_out
                .with_label_values(&[record.topic.as_str()])
                .inc();
        }
        if let Some(outcomes) = &self.outcomes {
            let rejected = async {
                let recorded = outcomes.record_all(out.outcomes.iter().filter(|o| o.is_rejected()));
                Ok(recorded.await?)
            };
            timed(&metrics.sink_latency, "redis_outcomes", rejected).await?;
        }
        Ok(())
    }

    /// The orders placed into the active-order index (before their rows are saved) and the
    /// timers set and cleared: one request per source partition.
    async fn index_and_timers(
        &self,
        out: &Outputs,
        metrics: &StatusMetrics,
    ) -> Result<(), StageError> {
        let index = out
            .saves
            .values()
            .filter_map(|s| PartitionWrite::for_save(&s.state, &s.entries, s.partition).0);
        let timers = out.timer_ops.iter().map(|op| match op {
            TimerOp::Put(p, o, at) => PartitionWrite::PutTimer {
                source_partition: *p,
                order_id: o.clone(),
                kind: AUTO_CONFIRM.to_owned(),
                due_at: *at,
            },
            TimerOp::Delete(p, o) => PartitionWrite::DeleteTimer {
                source_partition: *p,
                order_id: o.clone(),
                kind: AUTO_CONFIRM.to_owned(),
            },
        });
        let writes: Vec<PartitionWrite> = index.chain(timers).collect();
        if writes.is_empty() {
            return Ok(());
        }
        let written = async { Ok(self.store.write_partitions(writes).await?) };
        timed(&metrics.sink_latency, "cql_partitions", written).await
    }

    /// Phase 2: the order rows and history, the state the pipeline is rebuilt from, each with
    /// the order's records of this batch as its outbox, and the preparation times; then the
    /// orders that ended leave the active-order index.
    pub async fn persist(&self, out: &Outputs, metrics: &StatusMetrics) -> Result<(), StageError> {
        timed(&metrics.sink_latency, "cql", self.save(out)).await
    }

    /// [`persist`](Self::persist) without the timing.
    async fn save(&self, out: &Outputs) -> Result<(), StageError> {
        let mut kept = out.kept_by_order(self.notify);
        let mut saves = Vec::with_capacity(out.saves.len());
        for s in out.saves.values() {
            let id = &s.state.order.order_id;
            let records = kept.remove(id).unwrap_or_default();
            let outbox = crate::runtime::outbox::encode(self.emitter.catalog(), &records)
                .map_err(|e| StageError::invalid(format_args!("order {id}'s outbox"), e))?;
            saves.push(async move {
                self.store
                    .save_order(&s.state, &s.entries, s.source_offset, &outbox)
                    .await
                    .map_err(StageError::from)
            });
        }
        let prep_times = async {
            self.store
                .record_prep_times(&out.prep_times)
                .await
                .map_err(StageError::from)
        };
        futures::future::try_join(try_join_all(saves), prep_times).await?;
        let ended: Vec<PartitionWrite> = out
            .saves
            .values()
            .filter_map(|s| PartitionWrite::for_save(&s.state, &s.entries, s.partition).1)
            .collect();
        self.store.write_partitions(ended).await?;
        Ok(())
    }

    /// Phase 3: the live frames of the new timeline entries (and the customers' `rejected`
    /// frames) and the outcomes of the accepted commands, once the rows they belong to are
    /// saved. (After a crash right before this, the re-read events publish them again: at
    /// least once, de-duplicated by clients through the entry's `seq`.)
    pub async fn publish(&self, out: &Outputs, metrics: &StatusMetrics) -> Result<(), StageError> {
        let latency = &metrics.sink_latency;
        let frames = async {
            let Some(live) = &self.live else {
                return Ok(());
            };
            let published = async { Ok(live.publish_all(&out.live).await.map(drop)?) };
            timed(latency, "redis_publish", published).await
        };
        let outcomes = async {
            let Some(outcomes) = &self.outcomes else {
                return Ok(());
            };
            let accepted = async {
                let recorded =
                    outcomes.record_all(out.outcomes.iter().filter(|o| !o.is_rejected()));
                Ok(recorded.await.map(drop)?)
            };
            timed(latency, "redis_outcomes", accepted).await
        };
        futures::future::try_join(frames, outcomes).await?;
        Ok(())
    }

    /// Writes timer-fired events back to the events topic.
    pub async fn fire(&self, events: &[OrderEvent]) -> Result<(), StageError> {
        let mut sends = Vec::with_capacity(events.len());
        for e in events {
            sends.push(self.emitter.encode(&self.topics.events, e)?);
        }
        self.emitter.send_all(&sends).await
    }

    async fn refund(&self, out: &mut Outputs, metrics: &StatusMetrics) -> Result<(), StageError> {
        let Some(payments) = &self.payments else {
            metrics
                .refunds
                .with_label_values(&["suppressed"])
                .inc_by(out.refunds.len() as u64);
            return Ok(());
        };
        let started = Instant::now();
        let results = futures::future::join_all(
            out.refunds
                .iter()
                .map(|r| async move { (r, payments.refund(&r.order_id, r.amount_cents).await) }),
        )
        .await;
        let mut failed: Vec<RejectedRecord> = Vec::new();
        for (r, result) in results {
            match result {
                Ok(_) => metrics.refunds.with_label_values(&["ok"]).inc(),
                Err(e) if e.is_retriable() => return Err(e.into()),
                Err(e) => {
                    metrics.refunds.with_label_values(&["failed"]).inc();
                    tracing::error!(order_id = %r.order_id, error = %e, "refund refused by the payment provider");
                    failed.push(RejectedRecord {
                        source_topic: self.topics.events.clone(),
                        source_partition: -1,
                        source_offset: -1,
                        original_key: Some(r.order_id.as_str().as_bytes().to_vec()),
                        original_value: Vec::new(),
                        event_id: None,
                        order_id: Some(r.order_id.clone()),
                        rejected_by: "status.refund".to_owned(),
                        reason_code: "refund_failed".to_owned(),
                        message: format!("refund of {} cents failed: {e}", r.amount_cents),
                        rejected_at: Timestamp::now(),
                    });
                }
            }
        }
        metrics
            .sink_latency
            .with_label_values(&["payments"])
            .observe(started.elapsed().as_secs_f64());
        out.rejects.extend(failed);
        Ok(())
    }
}
