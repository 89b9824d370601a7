//! The operator runtime: runs a [`Stage`] on tokio between a Kafka source and its sinks, in
//! the style of Arroyo's operators.
//!
//! One `tokio::select!` loop per pipeline process: records flow from the source task through
//! a bounded channel (a slow stage slows the consumer instead of growing memory), are
//! gathered into batches, and handed to the stage. When the stage returns, every effect of
//! the batch has been acknowledged by its sink, and only then are the batch's offsets
//! committed (at-least-once reading, idempotent effects). Ticks drive timers; the assignment
//! is watched so a stage can rebuild keyed state for partitions it gains and drop it for
//! partitions it loses. Shutdown drains the batch in hand, commits and returns.

mod batch;
mod metrics;
mod offsets;
mod produce;
mod reject;
mod run;
mod source;
mod stage;

pub use batch::Batcher;
pub use metrics::RuntimeMetrics;
pub use offsets::OffsetTracker;
pub use produce::produce_all;
pub use reject::SourceMeta;
pub use run::{Runtime, RuntimeConfig, RuntimeError};
pub use source::SourceRecord;
pub use stage::{Stage, StageError};
