//! Every boundary Doorstep has with the outside world.
//!
//! One module per external system, each with its own `#[non_exhaustive]` error enum, so a
//! caller can tell "the service is down" from "the request was wrong" without string matching:
//!
//! - [`config`] — [`ServiceEndpoints::from_env`](config::ServiceEndpoints::from_env): where every
//!   service lives (`DOORSTEP_*` environment variables, validated up front).
//! - [`kafka`] — idempotent producer, manually committed consumer, topic admin (`rdkafka`).
//! - [`redis`] — one connection type for a single node or a Redis Cluster; GEO helpers and
//!   pub/sub (`redis` 1.x).
//! - [`scylla`] — CQL session builder (ScyllaDB in production, Apache Cassandra in development
//!   and tests) and keyspace helpers (`scylla` 1.x).
//! - [`routing`] — OSRM HTTP client for travel time and distance (`reqwest`).
//! - [`order_store`] — orders with their timelines, active orders per partition, durable
//!   timers and prep-time observations in ScyllaDB (`scylla` 1.x).
//! - [`driver_state`] — driver availability (`AVAILABLE` / `ON_DELIVERY`) in Redis, with an
//!   atomic compare-and-release; every change announced on the drivers' changes channel.
//! - [`driver_orders`] — the in-memory driver → order cache of the location pipeline, kept
//!   honest by those announcements.
//! - [`location_store`] — driver positions in Redis: GEO sets per region, the last position
//!   in the driver hash.
//! - [`live_feed`] — an order's live feed: its channel, the per-order sequence number every
//!   frame carries (publish and number in one Redis script), its current ETA.
//! - [`open_orders`] — a customer's open orders in Redis, for the gateway's cap per customer.
//! - [`command_outcomes`] — what became of each order command (accepted or rejected and
//!   why), kept a few minutes in Redis and announced on the order's command channel.
//! - [`push`] — FCM HTTP v1 push client and the Redis sent-ledger that keeps a replay or a
//!   restart from notifying twice.
//! - [`payments`] — refund client speaking Stripe's Refunds API, idempotent per order.
//! - [`retry`] — the one retry-with-backoff loop (exponential, jitter, `Retry-After`) the
//!   HTTP clients use and the pipelines can reuse.
//!
//! Nothing here panics on bad input or on a failing service: every fallible call returns the
//! module's error, and every network call has a timeout.

pub mod command_outcomes;
pub mod config;
pub mod driver_orders;
pub mod driver_state;
mod http;
pub mod kafka;
pub mod live_feed;
pub mod location_store;
pub mod open_orders;
pub mod order_store;
pub mod payments;
pub mod push;
pub mod redis;
pub mod retry;
pub mod routing;
pub mod scylla;

pub use config::ServiceEndpoints;
