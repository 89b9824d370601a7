//! # doorstep-operators
//!
//! Doorstep's pure logic: synchronous, deterministic, no I/O, no async runtime. The
//! pipelines call these functions from their operators; everything here can be tested
//! exhaustively without a single service running.
//!
//! - [`order`]: the order state machine with per-actor rules and the cancellation policy.
//! - [`location`]: the GPS ping filter and region sharding of driver positions.
//! - [`eta`]: the ETA estimator (prep-time model, travel legs, the customer's range).
//! - [`notify`]: the notifier's message table (what a push says for each status).

pub mod eta;
pub mod location;
pub mod notify;
pub mod order;
