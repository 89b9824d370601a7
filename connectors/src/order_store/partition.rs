//! Writes to the per-source-partition tables (`active_orders_by_partition`,
//! `timers_by_partition`), gathered so that all of one partition's go to the server as one
//! request.
//!
//! Both tables are keyed by the Kafka partition of `orders.events.v1`, so every write a batch
//! of events makes to them for one partition (orders placed, orders ended, timers set and
//! cleared, across all the batch's orders) is one single-partition unlogged batch: one
//! request, one mutation on the replicas, no batch log. [`plan`] does the grouping, pure and
//! unit-tested here; [`OrderStore::write_partitions`](super::OrderStore::write_partitions)
//! sends it.

use doorstep_operators::order::OrderState;
use doorstep_schemas::model::{OrderId, OrderStatus, StatusHistoryEntry, Timestamp};
use std::collections::BTreeMap;

/// At most this many rows go in one batch: the index and timer rows are ~100 bytes, so a
/// chunk stays far below ScyllaDB's batch size warning (128 KiB; Cassandra checks the size of
/// multi-partition batches only).
pub(super) const MAX_ROWS_PER_BATCH: usize = 100;

/// One write to the per-partition tables.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PartitionWrite {
    /// The order is active (placed, not final): listed in `active_orders_by_partition`.
    Index {
        /// The Kafka partition of `orders.events.v1` the order belongs to.
        source_partition: i32,
        /// The order.
        order_id: OrderId,
        /// Its status when indexed.
        status: OrderStatus,
        /// Its `updated_at` when indexed.
        updated_at: Timestamp,
    },
    /// The order ended: its entry in `active_orders_by_partition` goes.
    Unindex {
        /// The Kafka partition of `orders.events.v1` the order belongs to.
        source_partition: i32,
        /// The order.
        order_id: OrderId,
    },
    /// Sets (or moves) the `kind` timer of the order to `due_at`.
    PutTimer {
        /// The Kafka partition of `orders.events.v1` the order belongs to.
        source_partition: i32,
        /// The order.
        order_id: OrderId,
        /// What fires (`auto_confirm`, ...).
        kind: String,
        /// When.
        due_at: Timestamp,
    },
    /// Removes the `kind` timer of the order (nothing happens if there is none).
    DeleteTimer {
        /// The Kafka partition of `orders.events.v1` the order belongs to.
        source_partition: i32,
        /// The order.
        order_id: OrderId,
        /// What would have fired.
        kind: String,
    },
}

/// Which row a write touches: later writes of a row replace earlier ones in a plan.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum RowKey<'a> {
    Index(&'a OrderId),
    Timer(&'a OrderId, &'a str),
}

impl PartitionWrite {
    /// The Kafka partition whose rows this write touches.
    pub fn source_partition(&self) -> i32 {
        match self {
            PartitionWrite::Index {
                source_partition, ..
            }
            | PartitionWrite::Unindex {
                source_partition, ..
            }
            | PartitionWrite::PutTimer {
                source_partition, ..
            }
            | PartitionWrite::DeleteTimer {
                source_partition, ..
            } => *source_partition,
        }
    }

    fn row(&self) -> RowKey<'_> {
        match self {
            PartitionWrite::Index { order_id, .. } | PartitionWrite::Unindex { order_id, .. } => {
                RowKey::Index(order_id)
            }
            PartitionWrite::PutTimer { order_id, kind, .. }
            | PartitionWrite::DeleteTimer { order_id, kind, .. } => RowKey::Timer(order_id, kind),
        }
    }

    /// The index writes that keep `active_orders_by_partition` in step with a save of `state`
    /// with `new_entries`: (before the save, after it). The order is added before the save
    /// that holds its first entry while it is active, and removed after any save that leaves
    /// it final, so a crash in between leaves at most the entry of a final order (which
    /// [`OrderStore::active_orders`](super::OrderStore::active_orders) skips and removes),
    /// never an active order missing from the index.
    pub fn for_save(
        state: &OrderState,
        new_entries: &[StatusHistoryEntry],
        source_partition: i32,
    ) -> (Option<Self>, Option<Self>) {
        let order = &state.order;
        if !order.status.is_active() {
            let after = PartitionWrite::Unindex {
                source_partition,
                order_id: order.order_id.clone(),
            };
            return (None, Some(after));
        }
        let placed = new_entries.iter().any(|e| e.seq == 0);
        let before = placed.then(|| PartitionWrite::Index {
            source_partition,
            order_id: order.order_id.clone(),
            status: order.status,
            updated_at: order.updated_at,
        });
        (before, None)
    }
}

/// `writes` as batches to send: grouped by source partition (ascending), only the last write
/// of each row kept (in an unlogged batch every statement has the same timestamp, so a put and
/// a delete of one row would not apply in order), at most [`MAX_ROWS_PER_BATCH`] each.
pub(super) fn plan(writes: impl IntoIterator<Item = PartitionWrite>) -> Vec<Vec<PartitionWrite>> {
    let writes: Vec<PartitionWrite> = writes.into_iter().collect();
    let mut last: BTreeMap<(i32, RowKey<'_>), usize> = BTreeMap::new();
    for (i, w) in writes.iter().enumerate() {
        last.insert((w.source_partition(), w.row()), i);
    }
    let mut by_partition: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
    for ((partition, _), i) in last {
        by_partition.entry(partition).or_default().push(i);
    }
    let mut batches = Vec::new();
    for (_, mut indices) in by_partition {
        // In the order given, for readable traces.
        indices.sort_unstable();
        for chunk in indices.chunks(MAX_ROWS_PER_BATCH) {
            batches.push(chunk.iter().map(|&i| writes[i].clone()).collect());
        }
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(p: i32, o: &str, at: i64) -> PartitionWrite {
        PartitionWrite::PutTimer {
            source_partition: p,
            order_id: OrderId::from(o),
            kind: "auto_confirm".into(),
            due_at: Timestamp::from_millis(at),
        }
    }

    fn delete(p: i32, o: &str) -> PartitionWrite {
        PartitionWrite::DeleteTimer {
            source_partition: p,
            order_id: OrderId::from(o),
            kind: "auto_confirm".into(),
        }
    }

    fn index(p: i32, o: &str) -> PartitionWrite {
        PartitionWrite::Index {
            source_partition: p,
            order_id: OrderId::from(o),
            status: OrderStatus::Placed,
            updated_at: Timestamp::from_millis(1),
        }
    }

    #[test]
    fn one_batch_per_partition_and_the_last_write_of_a_row_wins() {
        let batches = plan([
            index(1, "a"),
            put(1, "a", 10),
            index(0, "b"),
            put(0, "b", 20),
            delete(1, "a"),
            put(1, "c", 30),
        ]);
        assert_eq!(
            batches,
            vec![
                vec![index(0, "b"), put(0, "b", 20)],
                vec![index(1, "a"), delete(1, "a"), put(1, "c", 30)],
            ]
        );
        // A timer set again after its delete is set.
        assert_eq!(
            plan([delete(2, "a"), put(2, "a", 5)]),
            vec![vec![put(2, "a", 5)]]
        );
        assert!(plan([]).is_empty());
    }

    #[test]
    fn large_partitions_are_chunked() {
        let n = MAX_ROWS_PER_BATCH * 2 + 1;
        let batches = plan((0..n).map(|i| index(3, &format!("o{i:04}"))));
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, [MAX_ROWS_PER_BATCH, MAX_ROWS_PER_BATCH, 1]);
    }
}
