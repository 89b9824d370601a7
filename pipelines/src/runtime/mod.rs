//! The operator runtime: runs a [`Stage`] on tokio between a Kafka source and its sinks, in
//! the style of Arroyo's operators.
//!
//! A pipeline process runs its stage in [`Lane`]s (`pipeline.lanes`, two by default): each lane
//! is a stage instance with its own output producer and a share of the source partitions
//! (`partition mod lanes`), so per-partition order holds while one lane decodes and decides a
//! batch as another lane's effects and transaction are in flight. Each lane is one
//! `tokio::select!` loop: records flow from the source thread through the lane's bounded
//! channel (a slow stage slows the consumer instead of growing memory), are gathered into
//! batches, and handed to the stage. When the stage returns, every effect of the batch has
//! been acknowledged by its sink, and only then are the batch's offsets committed (in the
//! lane's transaction, or through the consumer). Ticks drive timers; the assignment is
//! watched so a stage can rebuild keyed state for partitions it gains and drop it for
//! partitions it loses. Shutdown drains the batch in hand, commits and returns.
//!
//! Failures: a retriable [`StageError`] (a sink is unavailable) makes the batch wait with
//! backoff and retry until it succeeds — the metrics `doorstep_pipeline_sink_unavailable` and
//! `doorstep_pipeline_sink_wait_seconds_total` and a log line per attempt name the sink waited
//! for. A non-retriable one is a poison record: with [`PoisonRejects`] configured, the batch
//! is retried record by record and the records that still fail go to the reject topic with
//! the reason. A bounded runtime ([`Runtime::bounded`]) stops by itself once
//! every partition reached its stop offset (replays).
//!
//! Backpressure is visible per pipeline: `doorstep_pipeline_queue_depth_records` (records
//! queued between source and lanes), `doorstep_pipeline_source_blocked_seconds_total` (time
//! the source waited on a full queue), `doorstep_pipeline_stage_busy_seconds_total` and the
//! sink waits above.

mod batch;
mod lane;
mod metrics;
mod offsets;
pub mod outbox;
mod poison;
mod produce;
mod read;
mod reject;
mod run;
mod source;
mod stage;

pub use batch::Batcher;
pub use lane::Lane;
pub use metrics::{LaneGauge, RuntimeMetrics};
pub use offsets::OffsetTracker;
pub use poison::{POISON_REASON, PoisonRejects};
pub use produce::{Emitter, Output, timed};
pub use read::{KEY_MISMATCH, Read, TOMBSTONE, Unusable, read_batch};
pub use reject::{SourceMeta, UNDECODABLE, decode};
pub use run::{DEFAULT_LANES, Runtime, RuntimeConfig, RuntimeError};
pub use source::{SourceRecord, StopOffsets};
pub use stage::{Cause, Sink, Stage, StageError};
