//! Errors of the Kafka connector.

use crate::retry::{RetryClass, Retryable};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use std::time::Duration;

/// What went wrong talking to Kafka.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// librdkafka refused the client configuration.
    #[error("invalid Kafka client configuration: {0}")]
    Config(#[source] KafkaError),
    /// No broker answered a metadata request in time.
    #[error("no Kafka broker reachable at {brokers} within {timeout:?}: {source}")]
    Unreachable {
        /// The bootstrap list that was tried.
        brokers: String,
        /// How long we waited.
        timeout: Duration,
        /// librdkafka's error.
        #[source]
        source: KafkaError,
    },
    /// A produced record was not acknowledged by the broker.
    #[error("delivery to topic {topic} failed: {source}")]
    Delivery {
        /// The target topic.
        topic: String,
        /// librdkafka's error.
        #[source]
        source: KafkaError,
    },
    /// Reading from the subscription failed.
    #[error("consuming failed: {0}")]
    Consume(#[source] KafkaError),
    /// Subscribing to topics failed.
    #[error("subscribing to {topics:?} failed: {source}")]
    Subscribe {
        /// The requested topics.
        topics: Vec<String>,
        /// librdkafka's error.
        #[source]
        source: KafkaError,
    },
    /// Committing offsets failed; the records will be read again after a restart.
    #[error("committing offsets {offsets} failed: {source}")]
    Commit {
        /// `topic[partition]@offset` of each offset that was being committed.
        offsets: String,
        /// librdkafka's error.
        #[source]
        source: KafkaError,
    },
    /// The broker refused to create a topic (other than because it already exists).
    #[error("creating topic {topic} failed: {code}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// The broker's error code.
        code: RDKafkaErrorCode,
    },
    /// An admin request failed as a whole.
    #[error("Kafka admin request failed: {0}")]
    Admin(#[source] KafkaError),
    /// A step of a producer transaction failed. [`Error::is_retriable`] says whether the
    /// same step may be tried again, [`Error::requires_abort`] whether the transaction must
    /// be aborted first, [`Error::is_fatal`] whether the producer is unusable (fenced by a
    /// newer instance with the same transactional id).
    #[error("Kafka transaction {step} failed: {source}")]
    Transaction {
        /// `init`, `begin`, `send offsets`, `commit` or `abort`.
        step: &'static str,
        /// librdkafka's error.
        #[source]
        source: KafkaError,
    },
    /// Consumed offsets were to be committed in a transaction, but the consumer is not a
    /// group member (it was assigned partitions directly), so there is no group to commit to.
    #[error("offsets can only be committed in a transaction by a consumer-group member")]
    NoGroupMetadata,
    /// A transactional operation was asked of a producer without a transactional id.
    #[error("the Kafka producer is not transactional")]
    NotTransactional,
    /// A blocking librdkafka call could not be run (the runtime is shutting down).
    #[error("Kafka background task failed: {0}")]
    Task(String),
}

impl Error {
    /// Whether retrying the same operation later can succeed (broker down, timeouts, leader
    /// changes), as opposed to a request that will always fail (bad config, oversized record,
    /// unknown topic with auto-creation off, authorization).
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Unreachable { .. } | Error::Task(_) => true,
            Error::Transaction { source, .. } => match source {
                KafkaError::Transaction(e) => e.is_retriable(),
                other => other.rdkafka_error_code().is_some_and(code_is_retriable),
            },
            Error::Config(_)
            | Error::Subscribe { .. }
            | Error::NoGroupMetadata
            | Error::NotTransactional => false,
            Error::CreateTopic { code, .. } => code_is_retriable(*code),
            Error::Delivery { source, .. }
            | Error::Consume(source)
            | Error::Commit { source, .. }
            | Error::Admin(source) => source.rdkafka_error_code().is_some_and(code_is_retriable),
        }
    }
}

impl Error {
    /// Whether a transaction step failed in a way that needs the transaction aborted before
    /// anything else (its records are then discarded; the batch is redone in a new one).
    pub fn requires_abort(&self) -> bool {
        matches!(self, Error::Transaction { source: KafkaError::Transaction(e), .. } if e.txn_requires_abort())
    }

    /// Whether the producer can no longer be used: a newer producer with the same
    /// transactional id fenced it, or librdkafka raised a fatal error.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Error::Transaction { source: KafkaError::Transaction(e), .. } if e.is_fatal())
    }

    /// Whether a produced record was refused for its size (larger than the client's or the
    /// broker's `message.max.bytes`): sending the same record again can never succeed.
    pub fn is_record_too_large(&self) -> bool {
        use RDKafkaErrorCode as C;
        match self {
            Error::Delivery { source, .. } => matches!(
                source.rdkafka_error_code(),
                Some(C::MessageSizeTooLarge | C::MessageBatchTooLarge)
            ),
            _ => false,
        }
    }
}

/// How a pipeline's sink treats a failed send: a record refused for its size can never be
/// sent (the runtime then isolates it as a poison record); every other failure of an
/// idempotent producer is waited out (a broker outage, a leader change, a timeout, but also
/// a topic that does not exist yet), because dropping records is worse than stalling.
/// Transaction steps are classified by the runtime itself ([`Error::is_fatal`],
/// [`Error::requires_abort`], [`Error::is_retriable`]).
impl Retryable for Error {
    fn retry_class(&self) -> RetryClass {
        if self.is_record_too_large() {
            RetryClass::Permanent
        } else {
            RetryClass::RETRIABLE
        }
    }
}

fn code_is_retriable(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        code,
        C::BrokerTransportFailure
            | C::AllBrokersDown
            | C::MessageTimedOut
            | C::RequestTimedOut
            | C::OperationTimedOut
            | C::NetworkException
            | C::LeaderNotAvailable
            | C::NotLeaderForPartition
            | C::NotEnoughReplicas
            | C::NotEnoughReplicasAfterAppend
            | C::NotCoordinator
            | C::CoordinatorNotAvailable
            | C::CoordinatorLoadInProgress
            | C::RebalanceInProgress
            | C::QueueFull
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::error::KafkaError;

    #[test]
    fn a_record_refused_for_its_size_is_neither_retriable_nor_an_outage() {
        for code in [
            RDKafkaErrorCode::MessageSizeTooLarge,
            RDKafkaErrorCode::MessageBatchTooLarge,
        ] {
            let e = Error::Delivery {
                topic: "t".into(),
                source: KafkaError::MessageProduction(code),
            };
            assert!(e.is_record_too_large() && !e.is_retriable(), "{code:?}");
        }
        let down = Error::Delivery {
            topic: "t".into(),
            source: KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut),
        };
        assert!(!down.is_record_too_large() && down.is_retriable());
    }
}
