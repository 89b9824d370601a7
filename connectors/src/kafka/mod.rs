//! Kafka: idempotent producer, manually committed consumer, and topic admin.
//!
//! Built on `rdkafka` (librdkafka). Every client is created from one [`KafkaConfig`], logs
//! through `tracing` (target `librdkafka`), and maps failures into [`Error`], which says whether
//! a retry can help ([`Error::is_retriable`]).
//!
//! Delivery semantics follow the design: the producer is idempotent with `acks=all`; the
//! consumer never auto-commits, the caller commits the offsets it has fully processed with
//! [`Consumer::commit`]; the pipeline is at-least-once with idempotent effects.

mod admin;
mod config;
mod consumer;
mod context;
mod error;
mod fence;
mod producer;
mod seek;

pub use admin::Admin;
pub use config::{Compression, KafkaConfig, OffsetReset};
pub use consumer::{Consumer, ConsumerBuilder, GroupMetadata, Record};
pub use context::TracingContext;
pub use error::Error;
pub use fence::{Epoch, FenceGuard, Handover, RebalanceFence, TopicPartition};
pub use producer::{Delivery, Producer};
pub use seek::{Lookup, PartitionRange, TopicSeeker};

/// The `rdkafka` crate this module is built on, for callers that need its lower-level types.
pub use rdkafka;
