//! The contract between the runtime and a pipeline's logic.

use super::SourceRecord;
use doorstep_schemas::model::Timestamp;
use std::future::Future;

/// Why a stage could not finish a batch or a tick. Every variant means "nothing of this
/// batch may be committed"; the runtime retries the same batch (effects are idempotent).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StageError {
    /// A sink or store is unavailable; retrying later can succeed.
    #[error("{sink} unavailable: {message}")]
    Unavailable {
        /// Which sink (`kafka`, `cql`, `redis`, `payments`, ...).
        sink: &'static str,
        /// What happened.
        message: String,
    },
    /// Something that retrying will not fix (a bug or a misconfiguration).
    #[error("{0}")]
    Fatal(String),
}

impl StageError {
    /// A retriable failure of `sink`.
    pub fn unavailable(sink: &'static str, e: impl std::fmt::Display) -> Self {
        Self::Unavailable {
            sink,
            message: e.to_string(),
        }
    }

    /// A failure of `sink`: retriable when the sink's error says so (an outage, a timeout),
    /// else fatal for the batch (the runtime then isolates the record that causes it).
    pub fn of(sink: &'static str, retriable: bool, e: impl std::fmt::Display) -> Self {
        if retriable {
            Self::unavailable(sink, e)
        } else {
            Self::Fatal(format!("{sink}: {e}"))
        }
    }

    /// Whether retrying the same batch can succeed.
    pub fn is_retriable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

/// A pipeline's logic, driven by the runtime. Records of one partition arrive in offset
/// order; a stage keeps keyed state itself.
pub trait Stage: Send {
    /// Processes a batch. Returns only when every effect of the batch has been acknowledged
    /// by its sink; records the stage refuses must have been written to the reject topic
    /// (never dropped). Must be idempotent: after an error the same batch is offered again.
    fn process_batch(
        &mut self,
        batch: &[SourceRecord],
    ) -> impl Future<Output = Result<(), StageError>> + Send;

    /// Called about once a second (timers, periodic work).
    fn on_tick(&mut self, now: Timestamp) -> impl Future<Output = Result<(), StageError>> + Send;

    /// The partitions of the source topic this process owns changed. A partition that was
    /// revoked and assigned again since the last call (another process may have worked on
    /// it meanwhile) is in both lists: drop its keyed state for `revoked` first, then load
    /// it for `assigned`.
    fn on_assignment(
        &mut self,
        assigned: &[i32],
        revoked: &[i32],
    ) -> impl Future<Output = Result<(), StageError>> + Send;

    /// The transaction of the last call was aborted after it returned: its records are
    /// gone and its offsets not committed, so keyed state the call advanced in memory is
    /// ahead of what the topics say. Drop it; it is rebuilt from the stores, whose saved
    /// outboxes produce the lost records again when their batch is re-read.
    fn on_abort(&mut self) {}
}
