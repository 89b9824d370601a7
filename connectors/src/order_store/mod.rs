//! The order store: order rows, status history, the per-partition index of active orders,
//! durable timers, prep-time observations and trip points, in ScyllaDB (Apache Cassandra in
//! development and tests).
//!
//! An order is one partition of `orders`: its current fields in static columns, its timeline
//! as clustering rows (see [`schema`]). [`OrderStore::save_order`] is the status pipeline's
//! state write: one single-partition batch upserts the current fields and the new timeline
//! entries, which the server applies atomically and in isolation, so applying the same call
//! twice leaves the same rows and a reader never sees the current fields without their
//! entries. That is one CQL request per order and batch of events.
//!
//! The active-order index of the order's source partition is written when the order is
//! placed (before the order) and removed when it ends (after it), so a crash in between
//! leaves at most an index entry of a final order, which [`OrderStore::active_orders`] skips
//! and removes ([`PartitionWrite::for_save`]). The index and the durable timers are keyed by
//! the source partition, so a pipeline sends all of a batch's writes to them for one partition
//! as one request ([`OrderStore::write_partitions`]); [`OrderStore::save`] does the three steps
//! for one order (tests, replays).
//!
//! [`OrderStore::load`] reads the order's partition once and checks the timeline against the
//! current `last_seq`, returning [`Error::Corrupt`] rather than a state the state machine
//! would misjudge.
//!
//! Column ownership: `estimated_delivery_at` belongs to the ETA pipeline ([`OrderStore::set_eta`]);
//! `save` never writes it, so a status change cannot erase a fresher ETA. Everything else in
//! the row belongs to the status pipeline.
//!
//! The CQL is in [`schema`].

mod error;
mod partition;
mod rows;
pub mod schema;
mod trips;

pub use error::Error;
pub use partition::PartitionWrite;
pub use schema::ensure_schema;
pub use trips::TripPoint;

use crate::scylla::{Session, validate_identifier};
use doorstep_operators::order::OrderState;
use doorstep_schemas::model::{OrderId, RestaurantId, StatusHistoryEntry, Timestamp};
use futures::future::try_join_all;
use futures::{StreamExt, TryStreamExt};
use rows::{HistoryRow, PartitionRow};
use scylla::deserialize::row::DeserializeRow;
use scylla::serialize::row::SerializeRow;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::value::CqlTimestamp;
use std::collections::BTreeMap;
use std::sync::Arc;

/// How many orders [`OrderStore::active_orders`] loads at once.
const LOAD_CONCURRENCY: usize = 16;

/// An order as [`OrderStore::load_processed`] reads it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Stored {
    /// The order and its timeline.
    pub state: OrderState,
    /// The offset of the last source event processed for it (−1 when unknown).
    pub last_source_offset: i64,
    /// The output records of the batch that processed that event, as saved (empty when none).
    pub outbox: Vec<u8>,
}

/// A durable timer: fire `kind` for `order_id` at `due_at`. Owned by the pipeline instance
/// that owns `source_partition`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timer {
    /// The Kafka partition of `orders.events.v1` the order belongs to.
    pub source_partition: i32,
    /// The order.
    pub order_id: OrderId,
    /// What fires (`auto_confirm`, ...): one timer per order and kind.
    pub kind: String,
    /// When.
    pub due_at: Timestamp,
}

/// How long one order took to prepare (PREPARING → READY_FOR_PICKUP), for the ETA's
/// prep-time model (restaurant × hour of day).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PrepTimeObservation {
    /// The restaurant.
    pub restaurant_id: RestaurantId,
    /// Hour of day (0..=23, in the restaurant's reference time zone) preparation started.
    pub hour_of_day: u8,
    /// The order observed.
    pub order_id: OrderId,
    /// Preparation time in seconds.
    pub seconds: i64,
    /// When the food was ready.
    pub observed_at: Timestamp,
}

impl PrepTimeObservation {
    /// An observation.
    pub fn new(
        restaurant_id: RestaurantId,
        hour_of_day: u8,
        order_id: OrderId,
        seconds: i64,
        observed_at: Timestamp,
    ) -> Self {
        Self {
            restaurant_id,
            hour_of_day,
            order_id,
            seconds,
            observed_at,
        }
    }
}

#[derive(Debug, Clone)]
struct Statements {
    insert_order: PreparedStatement,
    insert_history: PreparedStatement,
    insert_active: PreparedStatement,
    delete_active: PreparedStatement,
    select_order: PreparedStatement,
    select_active: PreparedStatement,
    insert_timer: PreparedStatement,
    delete_timer: PreparedStatement,
    select_timers: PreparedStatement,
    set_eta: PreparedStatement,
    insert_prep: PreparedStatement,
    select_prep: PreparedStatement,
    insert_trip_point: PreparedStatement,
    select_trip: PreparedStatement,
}

/// Orders, history, active-order index, timers and prep times in one keyspace. Statements
/// are prepared once, in [`OrderStore::new`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct OrderStore {
    session: Arc<Session>,
    keyspace: String,
    statements: Arc<Statements>,
}

type Row = Box<dyn SerializeRow + Send + Sync>;

impl OrderStore {
    /// Creates the tables in `keyspace` if they do not exist (the keyspace itself must
    /// exist). Same as [`schema::ensure_schema`].
    pub async fn ensure_schema(session: &Session, keyspace: &str) -> Result<(), Error> {
        schema::ensure_schema(session, keyspace).await
    }

    /// A store on `keyspace`, whose tables must exist; prepares every statement.
    pub async fn new(session: Arc<Session>, keyspace: &str) -> Result<Self, Error> {
        validate_identifier(keyspace)?;
        let ks = keyspace;
        let prepare = |name: &'static str, cql: String| {
            let session = Arc::clone(&session);
            async move {
                let mut statement =
                    session
                        .prepare(cql)
                        .await
                        .map_err(|source| Error::Prepare {
                            statement: name,
                            source: Box::new(source),
                        })?;
                // Every statement here is an upsert, a delete by key or a read: safe for the
                // driver to retry after a timeout.
                statement.set_is_idempotent(true);
                Ok::<_, Error>(statement)
            }
        };
        let order_values = vec!["?"; rows::ORDER_WRITE_COLUMNS.split(',').count()].join(", ");
        let history_values = vec!["?"; rows::HISTORY_COLUMNS.split(',').count()].join(", ");
        let statements = Statements {
            insert_order: prepare(
                "insert order",
                format!(
                    "INSERT INTO {ks}.orders ({}) VALUES ({order_values})",
                    rows::ORDER_WRITE_COLUMNS
                ),
            )
            .await?,
            insert_history: prepare(
                "insert history",
                format!(
                    "INSERT INTO {ks}.orders ({}) VALUES ({history_values})",
                    rows::HISTORY_COLUMNS
                ),
            )
            .await?,
            insert_active: prepare(
                "insert active order",
                format!(
                    "INSERT INTO {ks}.active_orders_by_partition \
                     (source_partition, order_id, status, updated_at) VALUES (?, ?, ?, ?)"
                ),
            )
            .await?,
            delete_active: prepare(
                "delete active order",
                format!(
                    "DELETE FROM {ks}.active_orders_by_partition \
                     WHERE source_partition = ? AND order_id = ?"
                ),
            )
            .await?,
            select_order: prepare(
                "select order",
                format!(
                    "SELECT {} FROM {ks}.orders WHERE order_id = ?",
                    rows::PARTITION_READ_COLUMNS
                ),
            )
            .await?,
            select_active: prepare(
                "select active orders",
                format!(
                    "SELECT source_partition, order_id FROM {ks}.active_orders_by_partition \
                     WHERE source_partition = ?"
                ),
            )
            .await?,
            insert_timer: prepare(
                "insert timer",
                format!(
                    "INSERT INTO {ks}.timers_by_partition (source_partition, order_id, kind, due_at) \
                     VALUES (?, ?, ?, ?)"
                ),
            )
            .await?,
            delete_timer: prepare(
                "delete timer",
                format!(
                    "DELETE FROM {ks}.timers_by_partition \
                     WHERE source_partition = ? AND order_id = ? AND kind = ?"
                ),
            )
            .await?,
            select_timers: prepare(
                "select timers",
                format!(
                    "SELECT source_partition, order_id, kind, due_at FROM {ks}.timers_by_partition \
                     WHERE source_partition = ?"
                ),
            )
            .await?,
            set_eta: prepare(
                "set eta",
                format!("UPDATE {ks}.orders SET estimated_delivery_at = ? WHERE order_id = ?"),
            )
            .await?,
            insert_prep: prepare(
                "insert prep time",
                format!(
                    "INSERT INTO {ks}.prep_time_observations \
                     (restaurant_id, hour_of_day, order_id, seconds, observed_at) VALUES (?, ?, ?, ?, ?)"
                ),
            )
            .await?,
            select_prep: prepare(
                "select prep times",
                format!(
                    "SELECT restaurant_id, hour_of_day, order_id, seconds, observed_at \
                     FROM {ks}.prep_time_observations WHERE restaurant_id = ? AND hour_of_day = ?"
                ),
            )
            .await?,
            insert_trip_point: prepare(
                "insert trip point",
                format!(
                    "INSERT INTO {ks}.trip_points (order_id, at, ping_id, driver_id, lat, lng) \
                     VALUES (?, ?, ?, ?, ?, ?)"
                ),
            )
            .await?,
            select_trip: prepare(
                "select trip",
                format!(
                    "SELECT order_id, at, ping_id, driver_id, lat, lng FROM {ks}.trip_points \
                     WHERE order_id = ?"
                ),
            )
            .await?,
        };
        let store = Self {
            session,
            keyspace: keyspace.to_owned(),
            statements: Arc::new(statements),
        };
        Ok(store)
    }

    /// The keyspace this store writes to.
    pub fn keyspace(&self) -> &str {
        &self.keyspace
    }

    /// Persists `state` after a change: upserts the order's current fields and inserts
    /// `new_entries` (the timeline entries appended since the last save; entries already
    /// stored may be repeated) in one single-partition batch, and keeps
    /// `active_orders_by_partition` of `source_partition` in step: added (first) when
    /// `new_entries` holds the order's first entry while it is active, removed (last) once it
    /// is final ([`PartitionWrite::for_save`]). Idempotent.
    ///
    /// `estimated_delivery_at` is not written (see the module docs).
    pub async fn save(
        &self,
        state: &OrderState,
        new_entries: &[StatusHistoryEntry],
        source_partition: i32,
    ) -> Result<(), Error> {
        self.save_processed(state, new_entries, source_partition, -1, &[])
            .await
    }

    /// [`save`](Self::save), also recording `source_offset` and `outbox` as
    /// [`save_order`](Self::save_order) does. Up to three requests (index, order, unindex):
    /// a pipeline saving many orders at once calls [`save_order`](Self::save_order) and
    /// gathers the index writes of all of them in [`write_partitions`](Self::write_partitions)
    /// instead.
    pub async fn save_processed(
        &self,
        state: &OrderState,
        new_entries: &[StatusHistoryEntry],
        source_partition: i32,
        source_offset: i64,
        outbox: &[u8],
    ) -> Result<(), Error> {
        let (before, after) = PartitionWrite::for_save(state, new_entries, source_partition);
        self.write_partitions(before).await?;
        self.save_order(state, new_entries, source_offset, outbox)
            .await?;
        self.write_partitions(after).await
    }

    /// The order's partition only: upserts its current fields and inserts `new_entries` in
    /// one single-partition batch (one request), also recording `source_offset`, the offset of
    /// the last event of `orders.events.v1` processed for this order (accepted or rejected),
    /// and `outbox`, the encoded output records of the batch that made this save. The caller
    /// keeps the active-order index in step ([`PartitionWrite::for_save`]). Idempotent.
    ///
    /// A pipeline that re-reads an event at or below `source_offset` after a crash knows it
    /// was already handled. Its outputs went out in a Kafka transaction together with the
    /// consumed offsets; since the event is read again, that transaction did not commit, so
    /// the re-read of the event at `source_offset` itself produces `outbox` again.
    pub async fn save_order(
        &self,
        state: &OrderState,
        new_entries: &[StatusHistoryEntry],
        source_offset: i64,
        outbox: &[u8],
    ) -> Result<(), Error> {
        let order = rows::order_write(state, source_offset, outbox)?;
        for entry in new_entries {
            if entry.order_id != state.order.order_id {
                return Err(Error::Unstorable {
                    what: "history entry",
                    detail: format!(
                        "entry {} belongs to order {}, not {}",
                        entry.seq, entry.order_id, state.order.order_id
                    ),
                });
            }
            if i64::from(entry.seq) > i64::from(order.last_seq) {
                return Err(Error::Unstorable {
                    what: "history entry",
                    detail: format!(
                        "entry {} is beyond the state's history (last seq {})",
                        entry.seq, order.last_seq
                    ),
                });
            }
        }
        let s = &self.statements;
        // One partition: the server applies the batch as one mutation, atomically and in
        // isolation, without the batch log a multi-partition batch needs.
        let mut batch = Batch::new(BatchType::Unlogged);
        batch.set_is_idempotent(true);
        let mut values: Vec<Row> = Vec::with_capacity(new_entries.len() + 1);
        batch.append_statement(s.insert_order.clone());
        values.push(Box::new(order));
        for entry in new_entries {
            batch.append_statement(s.insert_history.clone());
            values.push(Box::new(rows::history_write(entry)?));
        }
        self.session
            .batch(&batch, values)
            .await
            .map_err(Error::execute("save"))?;
        tracing::trace!(order_id = %state.order.order_id, entries = new_entries.len(), "order saved");
        Ok(())
    }

    /// Applies `writes` to the per-partition tables (active-order index, timers): one
    /// single-partition unlogged batch per source partition (a single statement when it holds
    /// one write; chunks of at most 100 rows), all partitions concurrently. Of several writes
    /// to the same row only the last is applied. Idempotent.
    pub async fn write_partitions(
        &self,
        writes: impl IntoIterator<Item = PartitionWrite>,
    ) -> Result<(), Error> {
        let batches = partition::plan(writes);
        try_join_all(batches.iter().map(|b| self.write_partition(b))).await?;
        Ok(())
    }

    /// One request: the writes of one partition.
    async fn write_partition(&self, writes: &[PartitionWrite]) -> Result<(), Error> {
        let s = &self.statements;
        let mut statements = Vec::with_capacity(writes.len());
        let mut values: Vec<Row> = Vec::with_capacity(writes.len());
        for w in writes {
            let (statement, row): (&PreparedStatement, Row) = match w {
                PartitionWrite::Index {
                    source_partition,
                    order_id,
                    status,
                    updated_at,
                } => (
                    &s.insert_active,
                    Box::new((
                        *source_partition,
                        order_id.to_string(),
                        status.as_str().to_owned(),
                        rows::ts(*updated_at),
                    )),
                ),
                PartitionWrite::Unindex {
                    source_partition,
                    order_id,
                } => (
                    &s.delete_active,
                    Box::new((*source_partition, order_id.to_string())),
                ),
                PartitionWrite::PutTimer {
                    source_partition,
                    order_id,
                    kind,
                    due_at,
                } => (
                    &s.insert_timer,
                    Box::new((
                        *source_partition,
                        order_id.to_string(),
                        kind.clone(),
                        rows::ts(*due_at),
                    )),
                ),
                PartitionWrite::DeleteTimer {
                    source_partition,
                    order_id,
                    kind,
                } => (
                    &s.delete_timer,
                    Box::new((*source_partition, order_id.to_string(), kind.clone())),
                ),
            };
            statements.push(statement);
            values.push(row);
        }
        if statements.len() == 1
            && let (Some(statement), Some(row)) = (statements.pop(), values.pop())
        {
            self.session
                .execute_unpaged(statement, row)
                .await
                .map_err(Error::execute("write partition rows"))?;
            return Ok(());
        }
        if statements.is_empty() {
            return Ok(());
        }
        let mut batch = Batch::new(BatchType::Unlogged);
        batch.set_is_idempotent(true);
        for statement in statements {
            batch.append_statement(statement.clone());
        }
        self.session
            .batch(&batch, values)
            .await
            .map_err(Error::execute("write partition rows"))?;
        Ok(())
    }

    /// The order's state (row + full history sorted by seq), or `None` if it was never saved.
    pub async fn load(&self, order_id: &OrderId) -> Result<Option<OrderState>, Error> {
        Ok(self.load_processed(order_id).await?.map(|s| s.state))
    }

    /// [`load`](Self::load), with the offset and the outbox recorded by
    /// [`save_processed`](Self::save_processed).
    pub async fn load_processed(&self, order_id: &OrderId) -> Result<Option<Stored>, Error> {
        let id = order_id.as_str();
        let found: Vec<PartitionRow> = self
            .read(&self.statements.select_order, (id,), "load order")
            .await?;
        let Some(first) = found.first() else {
            return Ok(None);
        };
        let current = first.order();
        let offset = current.last_source_offset.unwrap_or(-1);
        let outbox = first.outbox.clone().unwrap_or_default();
        let (order, last_seq) = rows::order_from_row(current)?;
        let mut history: Vec<HistoryRow> = Vec::with_capacity(found.len());
        for row in found {
            history.extend(row.entry()?);
        }
        rows::assemble(order, last_seq, history).map(|state| {
            Some(Stored {
                state,
                last_source_offset: offset,
                outbox,
            })
        })
    }

    /// The states of the active orders of `source_partition`, sorted by order id: what a
    /// pipeline instance needs when it is assigned that partition. Orders that are missing
    /// (indexed, then the process died before saving them) are skipped; orders that are
    /// final (saved, then the process died before removing the index entry) are skipped and
    /// their index entry removed.
    pub async fn active_orders(&self, source_partition: i32) -> Result<Vec<OrderState>, Error> {
        let ids = self.active_order_ids(source_partition).await?;
        let loaded: Vec<Option<OrderState>> = futures::stream::iter(ids)
            .map(|id| async move { self.load(&id).await })
            .buffer_unordered(LOAD_CONCURRENCY)
            .try_collect()
            .await?;
        let mut states = Vec::with_capacity(loaded.len());
        let mut ended = Vec::new();
        for state in loaded.into_iter().flatten() {
            if state.order.status.is_active() {
                states.push(state);
            } else {
                ended.push(PartitionWrite::Unindex {
                    source_partition,
                    order_id: state.order.order_id,
                });
            }
        }
        self.write_partitions(ended).await?;
        states.sort_by(|a, b| a.order.order_id.cmp(&b.order.order_id));
        Ok(states)
    }

    /// The ids in `active_orders_by_partition` for `source_partition`, sorted.
    pub async fn active_order_ids(&self, source_partition: i32) -> Result<Vec<OrderId>, Error> {
        let rows: Vec<(i32, String)> = self
            .read(
                &self.statements.select_active,
                (source_partition,),
                "active orders",
            )
            .await?;
        let mut ids: Vec<OrderId> = rows
            .into_iter()
            .filter(|(p, _)| *p == source_partition)
            .map(|(_, id)| OrderId::new(id))
            .collect();
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// Sets (or moves) the `kind` timer of `order_id` to `due_at`.
    pub async fn put_timer(
        &self,
        source_partition: i32,
        order_id: &OrderId,
        kind: &str,
        due_at: Timestamp,
    ) -> Result<(), Error> {
        self.write_partitions([PartitionWrite::PutTimer {
            source_partition,
            order_id: order_id.clone(),
            kind: kind.to_owned(),
            due_at,
        }])
        .await
    }

    /// Removes the `kind` timer of `order_id` (nothing happens if there is none).
    pub async fn delete_timer(
        &self,
        source_partition: i32,
        order_id: &OrderId,
        kind: &str,
    ) -> Result<(), Error> {
        self.write_partitions([PartitionWrite::DeleteTimer {
            source_partition,
            order_id: order_id.clone(),
            kind: kind.to_owned(),
        }])
        .await
    }

    /// Every timer of `source_partition`, earliest first (ties by order id, then kind).
    pub async fn timers(&self, source_partition: i32) -> Result<Vec<Timer>, Error> {
        let rows: Vec<(i32, String, String, CqlTimestamp)> = self
            .read(
                &self.statements.select_timers,
                (source_partition,),
                "timers",
            )
            .await?;
        let mut timers: Vec<Timer> = rows
            .into_iter()
            .filter(|(p, ..)| *p == source_partition)
            .map(|(p, order_id, kind, due_at)| Timer {
                source_partition: p,
                order_id: OrderId::new(order_id),
                kind,
                due_at: rows::from_ts(due_at),
            })
            .collect();
        timers.sort_by(|a, b| {
            (a.due_at, &a.order_id, &a.kind).cmp(&(b.due_at, &b.order_id, &b.kind))
        });
        Ok(timers)
    }

    /// Sets the order's ETA point estimate. For orders that exist: on an order never saved,
    /// this creates a partial row that [`load`](Self::load) reports as [`Error::Corrupt`]
    /// (guarding the UPDATE with `IF EXISTS` would make every ETA write a Paxos round, four
    /// round trips, for a case the ETA pipeline never produces: it only tracks saved orders).
    pub async fn set_eta(
        &self,
        order_id: &OrderId,
        estimated_delivery_at: Timestamp,
    ) -> Result<(), Error> {
        self.session
            .execute_unpaged(
                &self.statements.set_eta,
                (rows::ts(estimated_delivery_at), order_id.as_str()),
            )
            .await
            .map_err(Error::execute("set eta"))?;
        Ok(())
    }

    /// Records a prep-time observation (idempotent per restaurant, hour and order).
    pub async fn record_prep_time(&self, observation: &PrepTimeObservation) -> Result<(), Error> {
        self.record_prep_times(std::slice::from_ref(observation))
            .await
    }

    /// Records prep-time observations: one request per restaurant and hour of day (a
    /// single-partition batch when it holds several), all concurrently. Idempotent.
    pub async fn record_prep_times(
        &self,
        observations: &[PrepTimeObservation],
    ) -> Result<(), Error> {
        let mut by_partition: BTreeMap<(&str, i32), Vec<&PrepTimeObservation>> = BTreeMap::new();
        for o in observations {
            by_partition
                .entry((o.restaurant_id.as_str(), hour_to_int(o.hour_of_day)?))
                .or_default()
                .push(o);
        }
        let insert = &self.statements.insert_prep;
        let requests = by_partition
            .into_iter()
            .flat_map(|((restaurant, hour), all)| {
                all.chunks(partition::MAX_ROWS_PER_BATCH)
                    .map(|chunk| {
                        let values: Vec<_> = chunk
                            .iter()
                            .map(|o| {
                                (
                                    restaurant,
                                    hour,
                                    o.order_id.as_str(),
                                    o.seconds,
                                    rows::ts(o.observed_at),
                                )
                            })
                            .collect();
                        async move {
                            let done = if let [one] = values.as_slice() {
                                self.session.execute_unpaged(insert, one).await.map(|_| ())
                            } else {
                                let mut batch = Batch::new(BatchType::Unlogged);
                                batch.set_is_idempotent(true);
                                for _ in &values {
                                    batch.append_statement(insert.clone());
                                }
                                self.session.batch(&batch, &values).await.map(|_| ())
                            };
                            done.map_err(Error::execute("record prep time"))
                        }
                    })
                    .collect::<Vec<_>>()
            });
        try_join_all(requests).await?;
        Ok(())
    }

    /// The CQL requests this store's session sent so far, counted by the driver (every
    /// attempt, each page of a paged read, a batch as one): what the server saw from it.
    pub fn requests(&self) -> crate::scylla::RequestCounts {
        crate::scylla::request_counts(&self.session)
    }

    /// The prep-time observations of a restaurant at an hour of day, oldest first.
    pub async fn prep_times(
        &self,
        restaurant_id: &RestaurantId,
        hour_of_day: u8,
    ) -> Result<Vec<PrepTimeObservation>, Error> {
        let hour = hour_to_int(hour_of_day)?;
        let rows: Vec<(String, i32, String, i64, CqlTimestamp)> = self
            .read(
                &self.statements.select_prep,
                (restaurant_id.as_str(), hour),
                "prep times",
            )
            .await?;
        let mut out: Vec<PrepTimeObservation> = rows
            .into_iter()
            .filter(|(r, h, ..)| r == restaurant_id.as_str() && *h == hour)
            .map(|(r, _, order_id, seconds, at)| PrepTimeObservation {
                restaurant_id: RestaurantId::new(r),
                hour_of_day,
                order_id: OrderId::new(order_id),
                seconds,
                observed_at: rows::from_ts(at),
            })
            .collect();
        out.sort_by(|a, b| (a.observed_at, &a.order_id).cmp(&(b.observed_at, &b.order_id)));
        Ok(out)
    }

    /// Runs a paged read and collects every row.
    async fn read<R>(
        &self,
        statement: &PreparedStatement,
        values: impl SerializeRow,
        operation: &'static str,
    ) -> Result<Vec<R>, Error>
    where
        R: for<'frame, 'metadata> DeserializeRow<'frame, 'metadata> + Send + 'static,
    {
        let pager = self
            .session
            .execute_iter(statement.clone(), values)
            .await
            .map_err(Error::page(operation))?;
        let stream = pager.rows_stream::<R>().map_err(|e| Error::Rows {
            operation,
            detail: e.to_string(),
            transient: false,
        })?;
        stream
            .try_collect()
            .await
            .map_err(Error::next_row(operation))
    }
}

fn hour_to_int(hour: u8) -> Result<i32, Error> {
    if hour > 23 {
        return Err(Error::Unstorable {
            what: "hour of day",
            detail: format!("{hour} is not in 0..=23"),
        });
    }
    Ok(i32::from(hour))
}
