//! A CQL v4 server in front of the in-memory `kassandra` engine.
//!
//! - [`engine`] owns the shared `KassandraSession` and turns one decoded request frame into one
//!   response, catching panics from the engine so that a single bad statement cannot take the
//!   server down or leave its lock poisoned.
//! - [`server`] accepts TCP connections and runs one read/answer loop per connection.
//! - [`panic`] turns a panic payload into a message for the client and the log.
//!
//! Known limits of the engine itself (not of this server) are listed in `SERVICES.md`: some
//! statements are ignored or answered wrongly; keep hot queries to upserts and full-partition
//! reads. `USE <keyspace>` is tracked per connection here, while kassandra keeps a single
//! current keyspace: a connection that never issued `USE` sees whichever keyspace another
//! connection selected last, so always qualify table names or call `USE` per session.

pub mod engine;
pub mod panic;
pub mod server;

pub use engine::{Connection, Engine};
pub use server::serve;
