//! # doorstep-operators
//!
//! Doorstep's pure logic: synchronous, deterministic, no I/O, no async runtime. The
//! pipelines call these functions from their operators; everything here can be tested
//! exhaustively without a single service running.
//!
//! - [`order`]: the order state machine with per-actor rules and the cancellation policy.
//! - [`notify`]: the notifier's message table (what a push says for each status).

pub mod notify;
pub mod order;
