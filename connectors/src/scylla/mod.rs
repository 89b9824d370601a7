//! CQL: session builder and keyspace helpers for ScyllaDB (production) and kassandra (tests).
//!
//! The two servers need different driver settings (see [`CqlFlavor`]); everything else is the
//! plain `scylla` driver [`Session`], re-exported here so callers use one version.
//!
//! Rules the pipeline follows so that both servers give the same answers: bind every value
//! with `?` (never format values into CQL text), write upserts keyed by the event, and read
//! whole partitions (`WHERE pk = ?`), sorting clustering rows client-side when order matters.

mod error;
mod session;

pub use error::Error;
pub use session::{
    CqlFlavor, Replication, ScyllaConfig, connect, create_keyspace, validate_identifier,
};

/// The `scylla` driver this module is built on.
pub use scylla as driver;
/// The driver's session type.
pub use scylla::client::session::Session;
