//! Redis: one connection type for a single node or a Redis Cluster, GEO helpers, pub/sub.
//!
//! [`Redis`] hides which deployment is behind it: a single node (through a reconnecting
//! `ConnectionManager`) or a cluster (through the cluster-async `ClusterConnection`, which
//! routes each command by key slot). It implements `redis::aio::ConnectionLike`, so any
//! `redis::cmd(..)` or `AsyncCommands` call works on it too.
//!
//! In a cluster, multi-key operations and pipelines must stay within one hash slot: put a hash
//! tag in keys that belong together (`drivers:{hel}:geo`, `order:{<id>}:last`).
//!
//! [`Batch`] runs many single-slot commands in one pipeline per slot (one round trip on a
//! single node).
//!
//! Pub/sub: on a single node, classic `PUBLISH`/`SUBSCRIBE`; on a cluster, *sharded* pub/sub
//! (`SPUBLISH`/`SSUBSCRIBE`, Redis 7+), so a message only travels to the shard that owns the
//! channel's slot instead of being broadcast to every node. Publish and subscribe through the
//! same kind of [`Redis`] and callers never see the difference.

mod batch;
mod connection;
mod error;
pub(crate) mod geo;
mod pubsub;

pub use batch::Batch;
pub use connection::{Redis, RedisOptions, RedisTarget};
pub use error::Error;
pub use geo::GeoHit;
pub use pubsub::{Message, SharedEvent, SharedEvents, SharedSubscription, Subscription};

/// The `redis` crate this module is built on, for `redis::cmd(..)` on a [`Redis`].
pub use ::redis as driver;
