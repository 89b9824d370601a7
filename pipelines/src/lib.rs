//! # doorstep-pipelines
//!
//! The top of Doorstep's dependency graph: configuration, the operations surface (metrics,
//! health), graceful shutdown, and the `doorstep` binary's commands.
//!
//! - [`config`]: file + environment configuration, validated at start.
//! - [`gateway`]: the HTTP producer API in front of `orders.events.v1`.
//! - [`ops`]: `/metrics` and `/healthz` on every process.
//! - [`shutdown`]: SIGINT/SIGTERM → drain, flush, commit.
//! - [`telemetry`]: `tracing` logs, text or JSON.
//! - [`runtime`]: the operator runtime (source → batches → stage → commit).
//! - [`simulate`]: a simulated fleet driving orders through the public API.
//! - [`auth`]: HMAC-signed bearer tokens (sign, verify, claims).
//! - [`status`]: the status pipeline (order events → state machine → sinks).
//! - [`location`]: the location pipeline (GPS pings → filter → Redis GEO, tracking).
//! - [`eta`]: the ETA pipeline (status changes and 30 s timers → routed ETA ranges).
//! - [`notify`]: the notify pipeline (outbox → push provider, at most once per key).
//! - [`replay`]: replays and backfills of order history into a keyspace.
//! - [`assemble`]: building a pipeline from the configuration.
//! - [`cli`]: the `doorstep` subcommands.

pub mod assemble;
pub mod auth;
pub mod cli;
pub mod config;
pub mod eta;
pub mod gateway;
pub mod location;
pub mod notify;
pub mod ops;
pub mod replay;
pub mod runtime;
pub mod shutdown;
pub mod simulate;
pub mod status;
pub mod telemetry;
