//! Routes librdkafka's logs, errors and consumer-group events into `tracing`, and holds a
//! consumer's partitions back on a rebalance until its [`RebalanceFence`] lets them go.

use super::fence::{Handover, RebalanceFence, TopicPartition};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::topic_partition_list::TopicPartitionList;

/// Client context shared by every client this module creates: forwards librdkafka's log lines
/// and errors to `tracing` (target `librdkafka`), logs rebalances and commit results, and on a
/// consumer runs the rebalance fence.
#[derive(Debug, Clone, Default)]
pub struct TracingContext {
    client_id: String,
    fence: RebalanceFence,
    /// Longest a revoke waits for batches in flight.
    handover_bound: std::time::Duration,
}

impl TracingContext {
    /// A context that tags every event with `client_id`.
    pub fn new(client_id: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            fence: RebalanceFence::new(),
            handover_bound: std::time::Duration::ZERO,
        }
    }

    /// The same, holding revoked partitions back until `fence` has no batch of theirs in
    /// flight (at most `bound`).
    pub fn with_fence(mut self, fence: RebalanceFence, bound: std::time::Duration) -> Self {
        self.fence = fence;
        self.handover_bound = bound;
        self
    }
}

impl ClientContext for TracingContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        let client = self.client_id.as_str();
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", client, fac, "{message}");
            }
            RDKafkaLogLevel::Warning => {
                tracing::warn!(target: "librdkafka", client, fac, "{message}");
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", client, fac, "{message}");
            }
            RDKafkaLogLevel::Debug => {
                tracing::debug!(target: "librdkafka", client, fac, "{message}");
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        use rdkafka::types::RDKafkaErrorCode as C;
        // Connection failures repeat on every reconnect attempt and librdkafka already logs
        // them (rate-limited) through `log`; keep them out of the warnings.
        match error.rdkafka_error_code() {
            Some(C::BrokerTransportFailure | C::AllBrokersDown) => {
                tracing::debug!(target: "librdkafka", client = %self.client_id, %error, reason, "client error");
            }
            _ => {
                tracing::warn!(target: "librdkafka", client = %self.client_id, %error, reason, "client error");
            }
        }
    }
}

impl TracingContext {
    fn log_handover(&self, handover: Handover) {
        let client = self.client_id.as_str();
        match handover {
            Handover::Free => {}
            Handover::Waited(waited) => {
                tracing::info!(client, ?waited, "revoke waited for the batch in flight");
            }
            Handover::TimedOut(waited) => {
                tracing::warn!(
                    client,
                    ?waited,
                    "revoke gave up waiting for the batch in flight; its transaction cannot commit under the new generation"
                );
            }
        }
    }
}

impl ConsumerContext for TracingContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                self.fence.assign(&partitions(tpl));
                tracing::info!(client = %self.client_id, partitions = %describe(tpl), "partitions assigned");
            }
            Rebalance::Revoke(tpl) => {
                let handover = self.fence.revoke(&partitions(tpl), self.handover_bound);
                self.log_handover(handover);
                tracing::info!(client = %self.client_id, partitions = %describe(tpl), "partitions revoked");
            }
            Rebalance::Error(e) => {
                // librdkafka then drops the whole assignment: hand it over like a revoke.
                tracing::warn!(client = %self.client_id, error = %e, "rebalance error; every partition is let go");
                self.log_handover(self.fence.revoke_all(self.handover_bound));
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => {
                tracing::debug!(client = %self.client_id, offsets = %describe(offsets), "offsets committed");
            }
            Err(e) => {
                tracing::warn!(client = %self.client_id, offsets = %describe(offsets), error = %e, "offset commit failed");
            }
        }
    }
}

/// The partitions of a list.
fn partitions(tpl: &TopicPartitionList) -> Vec<TopicPartition> {
    tpl.elements()
        .iter()
        .map(|e| TopicPartition::new(e.topic(), e.partition()))
        .collect()
}

/// `topic[partition]@offset, ...` for logs and errors.
pub(crate) fn describe(tpl: &TopicPartitionList) -> String {
    tpl.elements()
        .iter()
        .map(|e| match e.offset().to_raw() {
            Some(o) if o >= 0 => format!("{}[{}]@{}", e.topic(), e.partition(), o),
            _ => format!("{}[{}]", e.topic(), e.partition()),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
