//! The CQL schema of the order store.
//!
//! Only CQL that both ScyllaDB (production) and Apache Cassandra (development, tests) accept,
//! and only types both handle. Every access path is one partition read or write.
//!
//! | table | partition | clustering | what |
//! |---|---|---|---|
//! | `orders` | `order_id` | `seq` | the order: its current fields are **static** columns (with `outbox`, the output records of the last batch that changed it, see [`OrderStore::save_processed`](super::OrderStore::save_processed)) (one copy per partition) and each clustering row is one timeline entry (the audit trail / customer timeline). A status change writes the current fields and the new entries in one single-partition batch, which both servers apply atomically and in isolation, and a load is one partition read: a reader never sees a current row that disagrees with its timeline. `last_seq` = seq of the last entry; `last_source_offset` = offset of the last event processed for the order, so a re-read after a crash is recognised even when that event was rejected |
//! | `active_orders_by_partition` | `source_partition` | `order_id` | non-final orders per Kafka partition of `orders.events.v1`, so a pipeline rebuilds the keyed state of an assigned partition with one partition read; written when an order is placed and removed when it ends, not on every change |
//! | `timers_by_partition` | `source_partition` | `order_id`, `kind` | durable timers (`due_at`), e.g. the 2-minute auto-confirm |
//! | `prep_time_observations` | `restaurant_id`, `hour_of_day` | `order_id` | how long preparation took, for the ETA's prep-time model |
//! | `trip_points` | `order_id` | `at`, `ping_id` | the driver's accepted positions while delivering the order (the location pipeline), for the trip's replay and analytics |
//!
//! `items` is JSON text (an array of `{item_id, name, quantity, unit_price_cents}`): read and
//! written as a whole with the order, never queried, and readable by any CQL tool. Absent
//! values are real NULLs.

use super::Error;
use crate::scylla::{Session, validate_identifier};

/// One table of the store: its name and its `CREATE TABLE` body (after the name).
struct Table {
    name: &'static str,
    definition: &'static str,
}

const TABLES: [Table; 5] = [
    Table {
        name: "orders",
        definition: "(
            order_id text,
            seq int,
            customer_id text static,
            restaurant_id text static,
            driver_id text static,
            items text static,
            total_cents bigint static,
            status text static,
            placed_at timestamp static,
            updated_at timestamp static,
            estimated_delivery_at timestamp static,
            restaurant_lat double static,
            restaurant_lng double static,
            delivery_lat double static,
            delivery_lng double static,
            cancellation_reason text static,
            cancelled_by text static,
            cancelled_at timestamp static,
            refund_cents bigint static,
            preparing_since timestamp static,
            last_seq int static,
            last_source_offset bigint static,
            outbox blob static,
            event_id text,
            kind text,
            from_status text,
            to_status text,
            actor_kind text,
            actor_id text,
            reason text,
            entry_driver_id text,
            at timestamp,
            PRIMARY KEY ((order_id), seq)
        )",
    },
    Table {
        name: "active_orders_by_partition",
        definition: "(
            source_partition int,
            order_id text,
            status text,
            updated_at timestamp,
            PRIMARY KEY ((source_partition), order_id)
        )",
    },
    Table {
        name: "timers_by_partition",
        definition: "(
            source_partition int,
            order_id text,
            kind text,
            due_at timestamp,
            PRIMARY KEY ((source_partition), order_id, kind)
        )",
    },
    Table {
        name: "prep_time_observations",
        definition: "(
            restaurant_id text,
            hour_of_day int,
            order_id text,
            seconds bigint,
            observed_at timestamp,
            PRIMARY KEY ((restaurant_id, hour_of_day), order_id)
        )",
    },
    Table {
        name: "trip_points",
        definition: "(
            order_id text,
            at timestamp,
            ping_id text,
            driver_id text,
            lat double,
            lng double,
            PRIMARY KEY ((order_id), at, ping_id)
        )",
    },
];

/// The names of the store's tables.
pub const TABLE_NAMES: [&str; 5] = [
    TABLES[0].name,
    TABLES[1].name,
    TABLES[2].name,
    TABLES[3].name,
    TABLES[4].name,
];

/// The `CREATE TABLE IF NOT EXISTS` statements for `keyspace`, in creation order.
pub fn ddl(keyspace: &str) -> Result<Vec<(&'static str, String)>, Error> {
    validate_identifier(keyspace)?;
    Ok(TABLES
        .iter()
        .map(|t| {
            let body = t
                .definition
                .lines()
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ");
            (
                t.name,
                format!("CREATE TABLE IF NOT EXISTS {keyspace}.{} {body}", t.name),
            )
        })
        .collect())
}

/// Creates the store's tables in `keyspace` (which must exist: see
/// [`crate::scylla::create_keyspace`]). Existing tables are left as they are.
pub async fn ensure_schema(session: &Session, keyspace: &str) -> Result<(), Error> {
    for (table, statement) in ddl(keyspace)? {
        session
            .query_unpaged(statement.as_str(), &[])
            .await
            .map_err(|source| Error::Schema {
                table,
                source: Box::new(source),
            })?;
    }
    tracing::info!(keyspace, "order store schema ensured");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddl_is_qualified_and_idempotent() {
        let ddl = ddl("doorstep").unwrap();
        assert_eq!(ddl.len(), 5);
        for (table, statement) in &ddl {
            assert!(
                statement.starts_with(&format!("CREATE TABLE IF NOT EXISTS doorstep.{table} (")),
                "{statement}"
            );
            assert!(!statement.contains('\n'));
        }
        assert!(ddl[0].1.contains("PRIMARY KEY ((order_id), seq)"));
        assert!(ddl[0].1.contains("status text static"));
    }

    #[test]
    fn bad_keyspaces_are_refused() {
        assert!(ddl("a;DROP").is_err());
        assert!(ddl("").is_err());
    }
}
