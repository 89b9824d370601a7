//! The contract between the runtime and a pipeline's logic.

use super::SourceRecord;
use doorstep_connectors::retry::Retryable;
use doorstep_schemas::model::Timestamp;
use std::future::Future;

/// The cause of a [`StageError`], kept whole (its own source chain included).
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a stage could not finish a batch or a tick. Every variant means "nothing of this
/// batch may be committed"; the runtime retries the same batch when
/// [`is_retriable`](Self::is_retriable) (effects are idempotent), else isolates the record
/// that causes it and writes it to the reject topic.
///
/// Built from a connector's error with `?` or `StageError::from`: the error's [`Sink`] impl
/// names the sink and its [`Retryable`] impl classifies it, once per error type rather than
/// at each call site.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StageError {
    /// A sink or store is unavailable; retrying later can succeed.
    #[error("{sink} unavailable: {source}")]
    Unavailable {
        /// Which sink (`kafka`, `cql`, `redis`, `payments`, ...).
        sink: &'static str,
        /// What the sink's client said.
        #[source]
        source: Cause,
    },
    /// A sink refused something it will never take (a record over the broker's size limit,
    /// a write the store rejects): retrying cannot help.
    #[error("{sink} refused: {source}")]
    Refused {
        /// Which sink.
        sink: &'static str,
        /// What the sink's client said.
        #[source]
        source: Cause,
    },
    /// The stage cannot handle a record or its saved state (an output it cannot encode, an
    /// outbox it cannot read back): a bug or a corrupt store, not an outage.
    #[error("{context}: {source}")]
    Invalid {
        /// What the stage was doing, and for which order or driver.
        context: String,
        /// Why it failed.
        #[source]
        source: Cause,
    },
}

/// A connector error the runtime knows how to treat: which sink it comes from (for logs
/// and the `sink` label of the runtime's metrics) and, through [`Retryable`], whether the
/// batch can succeed later.
pub trait Sink: Retryable + std::error::Error + Send + Sync + 'static {
    /// The sink's name.
    const SINK: &'static str;
}

impl Sink for doorstep_connectors::kafka::Error {
    const SINK: &'static str = "kafka";
}
impl Sink for doorstep_connectors::redis::Error {
    const SINK: &'static str = "redis";
}
impl Sink for doorstep_connectors::live_feed::LiveFeedError {
    const SINK: &'static str = "redis";
}
impl Sink for doorstep_connectors::order_store::Error {
    const SINK: &'static str = "cql";
}
impl Sink for doorstep_connectors::payments::Error {
    const SINK: &'static str = "payments";
}
impl Sink for doorstep_connectors::push::Error {
    const SINK: &'static str = "push";
}
impl Sink for doorstep_connectors::routing::Error {
    const SINK: &'static str = "routing";
}

impl<E: Sink> From<E> for StageError {
    fn from(e: E) -> Self {
        let sink = E::SINK;
        if e.retry_class().is_retriable() {
            Self::Unavailable {
                sink,
                source: Box::new(e),
            }
        } else {
            Self::Refused {
                sink,
                source: Box::new(e),
            }
        }
    }
}

impl StageError {
    /// `sink` is unavailable, whatever its error type says (a failed transaction step, an
    /// unreachable schema registry): the batch is retried.
    pub fn unavailable(sink: &'static str, source: impl Into<Cause>) -> Self {
        Self::Unavailable {
            sink,
            source: source.into(),
        }
    }

    /// The stage could not handle a record or its state: `context` says what it was doing.
    pub fn invalid(context: impl std::fmt::Display, source: impl Into<Cause>) -> Self {
        Self::Invalid {
            context: context.to_string(),
            source: source.into(),
        }
    }

    /// Whether retrying the same batch can succeed.
    pub fn is_retriable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    /// The sink this error is about (`None` for the stage's own [`Invalid`](Self::Invalid)).
    pub fn sink(&self) -> Option<&'static str> {
        match self {
            Self::Unavailable { sink, .. } | Self::Refused { sink, .. } => Some(sink),
            Self::Invalid { .. } => None,
        }
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

    /// Called about once a second (timers, periodic work). Default: nothing.
    fn on_tick(&mut self, now: Timestamp) -> impl Future<Output = Result<(), StageError>> + Send {
        let _ = now;
        async { Ok(()) }
    }

    /// The partitions of the source topic this process owns changed. A partition that was
    /// revoked and assigned again since the last call (another process may have worked on
    /// it meanwhile) is in both lists: drop its keyed state for `revoked` first, then load
    /// it for `assigned`. Default: nothing (a stage without keyed state).
    fn on_assignment(
        &mut self,
        assigned: &[i32],
        revoked: &[i32],
    ) -> impl Future<Output = Result<(), StageError>> + Send {
        let _ = (assigned, revoked);
        async { Ok(()) }
    }

    /// The transaction of the last call was aborted after it returned: its records are
    /// gone and its offsets not committed, so keyed state the call advanced in memory is
    /// ahead of what the topics say. Drop it; it is rebuilt from the stores, whose saved
    /// outboxes produce the lost records again when their batch is re-read.
    fn on_abort(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use doorstep_connectors::redis::Error as RedisError;
    use std::error::Error as _;
    use std::time::Duration;

    #[test]
    fn a_connector_error_is_classified_by_its_type_and_keeps_its_source() {
        let down: StageError = RedisError::ConnectTimeout {
            target: "redis://127.0.0.1:1".into(),
            timeout: Duration::from_secs(5),
        }
        .into();
        assert!(down.is_retriable());
        assert_eq!(down.sink(), Some("redis"));
        let source = down.source().expect("the source is kept");
        assert!(source.downcast_ref::<RedisError>().is_some());

        let bad: StageError = RedisError::InvalidCoordinate {
            member: "d-1".into(),
            lng: 200.0,
            lat: 0.0,
        }
        .into();
        assert!(!bad.is_retriable());
        assert!(matches!(bad, StageError::Refused { sink: "redis", .. }));
    }

    #[test]
    fn an_invalid_record_names_what_the_stage_was_doing() {
        let e = StageError::invalid("order o-1's outbox", "truncated");
        assert!(!e.is_retriable());
        assert_eq!(e.sink(), None);
        assert_eq!(e.to_string(), "order o-1's outbox: truncated");
    }
}
