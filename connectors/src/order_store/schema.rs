//! The CQL schema of the order store.
//!
//! Every table is read by whole partition only (`WHERE <partition key> = ?`) and sorted
//! client-side, so the same statements give the same answers on ScyllaDB and on kassandra
//! (which mishandles `WHERE pk = ? AND ck = ?`, clustering ranges and `ORDER BY`). Only types
//! both servers handle are used: `text`, `int`, `bigint`, `double`, `timestamp` (no
//! `timeuuid`, `smallint` or `tinyint`). Nothing relies on TTL or lightweight transactions.
//!
//! | table | partition | clustering | what |
//! |---|---|---|---|
//! | `orders` | `order_id` | – | the current order row (`last_seq` = seq of its last history entry; `last_source_offset` = offset of the last event processed for it, so a re-read after a crash is recognised even when that event was rejected) |
//! | `order_status_history` | `order_id` | `seq` | the audit trail / customer timeline |
//! | `active_orders_by_partition` | `source_partition` | `order_id` | non-final orders per Kafka partition of `orders.events.v1`, so a pipeline rebuilds the keyed state of an assigned partition with one partition read |
//! | `timers_by_partition` | `source_partition` | `order_id`, `kind` | durable timers (`due_at`), e.g. the 2-minute auto-confirm |
//! | `prep_time_observations` | `restaurant_id`, `hour_of_day` | `order_id` | how long preparation took, for the ETA's prep-time model |
//! | `trip_points` | `order_id` | `at`, `ping_id` | the driver's accepted positions while delivering the order (the location pipeline), for the trip's replay and analytics |
//!
//! `items` is JSON text (an array of `{item_id, name, quantity, unit_price_cents}`): read and
//! written as a whole with the order, never queried, and readable by any CQL tool.

use super::Error;
use crate::scylla::{Session, validate_identifier};

/// One table of the store: its name and its `CREATE TABLE` body (after the name).
struct Table {
    name: &'static str,
    definition: &'static str,
}

const TABLES: [Table; 6] = [
    Table {
        name: "orders",
        definition: "(
            order_id text,
            customer_id text,
            restaurant_id text,
            driver_id text,
            items text,
            total_cents bigint,
            status text,
            placed_at timestamp,
            updated_at timestamp,
            estimated_delivery_at timestamp,
            restaurant_lat double,
            restaurant_lng double,
            delivery_lat double,
            delivery_lng double,
            cancellation_reason text,
            cancelled_by text,
            cancelled_at timestamp,
            refund_cents bigint,
            preparing_since timestamp,
            last_seq int,
            last_source_offset bigint,
            PRIMARY KEY ((order_id))
        )",
    },
    Table {
        name: "order_status_history",
        definition: "(
            order_id text,
            seq int,
            event_id text,
            kind text,
            from_status text,
            to_status text,
            actor_kind text,
            actor_id text,
            reason text,
            driver_id text,
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
pub const TABLE_NAMES: [&str; 6] = [
    TABLES[0].name,
    TABLES[1].name,
    TABLES[2].name,
    TABLES[3].name,
    TABLES[4].name,
    TABLES[5].name,
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
        assert_eq!(ddl.len(), 6);
        for (table, statement) in &ddl {
            assert!(
                statement.starts_with(&format!("CREATE TABLE IF NOT EXISTS doorstep.{table} (")),
                "{statement}"
            );
            assert!(!statement.contains('\n'));
            for forbidden in ["timeuuid", "smallint", "tinyint", "counter"] {
                assert!(!statement.contains(forbidden), "{statement}");
            }
        }
        assert!(ddl[1].1.contains("PRIMARY KEY ((order_id), seq)"));
    }

    #[test]
    fn bad_keyspaces_are_refused() {
        assert!(ddl("a;DROP").is_err());
        assert!(ddl("").is_err());
    }
}
