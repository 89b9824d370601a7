//! The location pipeline: `drivers.locations.v1` → per-driver filter → Redis (GEO set of the
//! driver's region, last position in the driver hash), and for drivers on a delivery a
//! tracking message on the order's channel and a `TrackingUpdate` on `orders.tracking.v1`;
//! refused pings to `orders.rejected.v1` with their reason.
//!
//! Per batch: decode; know every driver's order and last position — from memory (the last
//! accepted ping, kept by this stage, and the driver → order cache, [`DriverOrders`], kept
//! honest by the status pipeline's announcements), and for the drivers memory cannot answer
//! from Redis, all their hashes in one round trip; judge every ping in order on a scratch
//! state (`decide::gather`, pure); then the sinks: first the live frames on the orders'
//! channels (customers do not wait for the durable writes; with conflation on, only the latest
//! frame of each order in the batch), one round trip; then together the Kafka records
//! (tracking updates and rejects, all sent before any acknowledgement is awaited) and the trip
//! points of orders being delivered (ScyllaDB), and only once both are acknowledged the
//! positions, one round trip (`GEOADD`, `ZREM` from a previous region, the hash last, naming
//! the last record of the driver in the batch). Only then is the scratch state kept and the
//! batch committed. Every write is keyed (update id = ping id, positions are overwrites), so a
//! retried batch writes the same things; and because the position is written last, a record
//! re-read after a crash either finds the stored position naming it (every effect done:
//! skipped, counted as `redelivered`) or finds the state before its batch (judged again the
//! same way). Frames and Kafka records are therefore at least once, deduplicated by update id.

mod decide;
mod metrics;
mod sinks;

pub use decide::{Outputs, REJECTED_BY, gather, tracking_update};
pub use metrics::LocationMetrics;
pub use sinks::{LocationSinks, LocationTopics};

use crate::runtime::outbox;
use crate::runtime::{Read, SourceRecord, Stage, StageError, read_batch, timed};
use doorstep_connectors::location_store::{DriverSnapshot, StoredPosition};
use doorstep_operators::location::{LastPing, LocationFilter};
use doorstep_schemas::events::LocationPing;
use doorstep_schemas::model::{DriverId, Timestamp};
use std::collections::{BTreeSet, HashMap};

/// Default region grid cell, degrees (about 55 km × 28 km at Helsinki).
pub const DEFAULT_CELL_DEG: f64 = 0.5;

/// Most drivers the driver → order cache holds.
pub const DRIVER_ORDERS_CAPACITY: u64 = 1_000_000;
/// How long the driver → order cache keeps an entry at most (its bound on a lost change
/// announcement).
pub const DRIVER_ORDERS_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// A driver whose last fix is older than this (by the clock of the ticks) is dropped from
/// memory; the next ping reads the last position back from Redis.
pub const IDLE_DRIVER_MS: i64 = 15 * 60 * 1000;

/// What the stage remembers of a driver between batches.
#[derive(Debug, Clone)]
struct Known {
    /// The last accepted ping.
    last: LastPing,
    /// The source partition of its record.
    partition: i32,
    /// The region set the driver is stored in.
    region: String,
}

/// The location pipeline's stage.
pub struct LocationStage {
    sinks: LocationSinks,
    filter: LocationFilter,
    cell_deg: f64,
    conflate: bool,
    metrics: LocationMetrics,
    /// Keyed state: the last accepted ping, its source partition and region per driver.
    last: HashMap<DriverId, Known>,
}

impl LocationStage {
    /// A stage writing through `sinks`; with `conflate`, a batch publishes only the latest
    /// frame of each order (the Kafka records and trip points keep every ping).
    pub fn new(
        sinks: LocationSinks,
        filter: LocationFilter,
        cell_deg: f64,
        conflate: bool,
        metrics: LocationMetrics,
    ) -> Self {
        Self {
            sinks,
            filter,
            cell_deg,
            conflate,
            metrics,
            last: HashMap::new(),
        }
    }

    /// Drivers held in memory.
    pub fn cached_drivers(&self) -> usize {
        self.last.len()
    }

    /// Decodes the batch and judges every ping (reads driver snapshots from Redis).
    async fn decide_batch(&self, batch: &[SourceRecord]) -> Result<Outputs, StageError> {
        let mut out = Outputs::default();
        let mut pings = Vec::with_capacity(batch.len());
        for read in read_batch::<LocationPing>(self.sinks.emitter.catalog(), batch).await? {
            match read {
                Read::Record(meta, p) => pings.push((meta, p)),
                Read::Unusable(u) => out.unreadable(&u.meta, u.code, u.message),
            }
        }
        let drivers: BTreeSet<&DriverId> = pings.iter().map(|(_, p)| &p.driver_id).collect();
        // Memory answers for a driver whose last ping it holds and whose order is cached;
        // the others are read from Redis (one round trip for all of them).
        let mut snapshots: HashMap<DriverId, DriverSnapshot> = HashMap::new();
        let mut unknown: Vec<DriverId> = Vec::new();
        for &driver in &drivers {
            match (self.last.get(driver), self.sinks.orders.get(driver)) {
                (Some(known), Some(on_order)) => {
                    snapshots.insert(driver.clone(), remembered(known, on_order));
                }
                _ => unknown.push(driver.clone()),
            }
        }
        let ticket = self.sinks.orders.ticket();
        let read = self.sinks.store.snapshots(&unknown).await?;
        self.sinks.orders.fill(
            ticket,
            read.iter().map(|(d, s)| (d.clone(), s.on_order.clone())),
        );
        if !unknown.is_empty() {
            self.metrics.driver_reads.inc_by(unknown.len() as u64);
        }
        let known: HashMap<DriverId, LastPing> = drivers
            .iter()
            .filter_map(|&d| self.last.get(d).map(|k| (d.clone(), k.last.clone())))
            .collect();
        let mut again = HashMap::new();
        for (driver, snapshot) in &read {
            // A re-read only matters for a driver judged from Redis (not in memory).
            if known.contains_key(driver) {
                continue;
            }
            let Some(text) = snapshot
                .last
                .as_ref()
                .map(|p| &p.outbox)
                .filter(|t| !t.is_empty())
            else {
                continue;
            };
            let fatal = |e: outbox::OutboxError| {
                StageError::invalid(format_args!("driver {driver}'s outbox"), e)
            };
            let bytes = outbox::from_hex(text).map_err(fatal)?;
            let records = outbox::decode(self.sinks.emitter.catalog(), &bytes)
                .await
                .map_err(fatal)?;
            again.insert(driver.clone(), records);
        }
        snapshots.extend(read);
        gather(
            &self.filter,
            self.cell_deg,
            &pings,
            &known,
            &snapshots,
            again,
            &mut out,
        );
        for write in &mut out.writes {
            if let Some(kept) = out.kept.get(&write.driver) {
                let bytes = outbox::encode(self.sinks.emitter.catalog(), kept).map_err(|e| {
                    StageError::invalid(format_args!("driver {}'s outbox", write.driver), e)
                })?;
                write.outbox = outbox::to_hex(&bytes);
            }
        }
        Ok(out)
    }
}

/// What memory knows of a driver: its order and last position (no `source`: a driver in
/// memory is never judged as a re-read).
fn remembered(known: &Known, on_order: Option<doorstep_schemas::model::OrderId>) -> DriverSnapshot {
    DriverSnapshot {
        on_order,
        last: Some(StoredPosition {
            location: known.last.location,
            at: known.last.recorded_at,
            ping_id: known.last.ping_id.clone(),
            region: Some(known.region.clone()),
            source: None,
            outbox: String::new(),
        }),
    }
}

impl Stage for LocationStage {
    async fn process_batch(&mut self, batch: &[SourceRecord]) -> Result<(), StageError> {
        let out = self.decide_batch(batch).await?;
        // Customers first: the live frames do not wait for the durable writes (a retried
        // batch publishes them again; a client recognises a repeat by its update id).
        let latency = &self.metrics.sink_latency;
        let sinks = &self.sinks;
        let published = timed(latency, "redis_publish", sinks.publish(&out, self.conflate)).await?;
        let conflated = out.tracking.len() - published;
        if conflated > 0 {
            self.metrics.frames_conflated.inc_by(conflated as u64);
        }
        tokio::try_join!(
            timed(latency, "kafka", sinks.kafka(&out)),
            timed(latency, "cql", sinks.trips(&out)),
        )?;
        // Last: a stored position tells a re-read record that everything above is done.
        let commands = timed(latency, "redis", sinks.positions(&out)).await?;
        self.metrics
            .redis_batch_size
            .observe((commands + published) as f64);
        // Every sink acknowledged: keep the new keyed state, count.
        let partition_of: HashMap<&[u8], i32> = batch
            .iter()
            .filter_map(|r| r.key.as_deref().map(|k| (k, r.partition)))
            .collect();
        let regions: HashMap<&DriverId, &str> = out
            .writes
            .iter()
            .map(|w| (&w.driver, w.region.as_str()))
            .collect();
        for (driver, last) in &out.last {
            let partition = partition_of
                .get(driver.as_str().as_bytes())
                .copied()
                .unwrap_or_default();
            let Some(region) = regions.get(driver) else {
                continue;
            };
            let known = Known {
                last: last.clone(),
                partition,
                region: (*region).to_owned(),
            };
            self.last.insert(driver.clone(), known);
        }
        self.metrics
            .pings
            .with_label_values(&["accepted"])
            .inc_by(out.accepted as u64);
        if out.redelivered > 0 {
            self.metrics
                .pings
                .with_label_values(&["redelivered"])
                .inc_by(out.redelivered as u64);
        }
        for r in &out.rejects {
            self.metrics
                .pings
                .with_label_values(&[&r.reason_code])
                .inc();
            self.metrics
                .rejected
                .with_label_values(&[&r.reason_code])
                .inc();
        }
        Ok(())
    }

    async fn on_tick(&mut self, now: Timestamp) -> Result<(), StageError> {
        let before = self.last.len();
        let oldest = now.as_millis() - IDLE_DRIVER_MS;
        self.last
            .retain(|_, k| k.last.recorded_at.as_millis() >= oldest);
        self.metrics
            .drivers_evicted
            .inc_by((before - self.last.len()) as u64);
        self.metrics.drivers_cached.set(self.last.len() as i64);
        Ok(())
    }

    fn on_abort(&mut self) {
        // Judged from Redis on their next ping, with the outbox a re-read needs.
        self.last.clear();
    }

    async fn on_assignment(
        &mut self,
        _assigned: &[i32],
        revoked: &[i32],
    ) -> Result<(), StageError> {
        // Drivers of partitions gained are loaded from Redis on first sight.
        self.last.retain(|_, k| !revoked.contains(&k.partition));
        Ok(())
    }
}
