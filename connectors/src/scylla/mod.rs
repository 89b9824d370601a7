//! CQL: session builder and keyspace helpers for ScyllaDB (production) and Apache Cassandra
//! (development and tests), with the plain `scylla` driver [`Session`] re-exported here so
//! callers use one version.
//!
//! Both servers get the same driver settings and the same statements: only CQL both accept
//! (no Scylla-only or Cassandra-only extensions). Every value is bound with `?` (never
//! formatted into CQL text) and writes are upserts keyed by the event.

mod error;
mod requests;
mod session;

pub use error::Error;
pub use requests::{RequestCounts, request_counts};
pub use session::{
    Replication, ScyllaConfig, connect, create_keyspace, release_version, validate_identifier,
};

/// The `scylla` driver this module is built on.
pub use scylla as driver;
/// The driver's session type.
pub use scylla::client::session::Session;
