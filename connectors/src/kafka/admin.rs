//! Topic administration.

use super::{Error, KafkaConfig, TracingContext};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::types::RDKafkaErrorCode;
use std::time::Duration;

/// Creates topics. The broker must allow it (Kafka does with its default ACLs).
pub struct Admin {
    inner: AdminClient<TracingContext>,
    replication_factor: i32,
    operation_timeout: Duration,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("replication_factor", &self.replication_factor)
            .finish_non_exhaustive()
    }
}

impl Admin {
    /// An admin client creating topics with replication factor 1 (a single local broker; raise
    /// it with [`with_replication_factor`](Self::with_replication_factor) in production).
    pub fn new(config: &KafkaConfig) -> Result<Self, Error> {
        let inner = config
            .admin()
            .create_with_context(TracingContext::new(&config.client_id))
            .map_err(Error::Config)?;
        Ok(Self {
            inner,
            replication_factor: 1,
            operation_timeout: config.request_timeout,
        })
    }

    /// Sets the replication factor of topics this client creates.
    pub fn with_replication_factor(mut self, replication_factor: i32) -> Self {
        self.replication_factor = replication_factor;
        self
    }

    /// Creates each `(name, partitions)` topic that does not exist yet. Existing topics are left
    /// as they are (their partition count is not changed), so this is safe to call at every
    /// start-up.
    pub async fn ensure_topics(&self, topics: &[(&str, i32)]) -> Result<(), Error> {
        if topics.is_empty() {
            return Ok(());
        }
        let new_topics: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|(name, partitions)| {
                NewTopic::new(
                    name,
                    *partitions,
                    TopicReplication::Fixed(self.replication_factor),
                )
            })
            .collect();
        let opts = AdminOptions::new()
            .operation_timeout(Some(self.operation_timeout))
            .request_timeout(Some(self.operation_timeout));
        let results = self
            .inner
            .create_topics(&new_topics, &opts)
            .await
            .map_err(Error::Admin)?;
        for result in results {
            match result {
                Ok(topic) => tracing::info!(%topic, "topic created"),
                Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    tracing::debug!(%topic, "topic already exists");
                }
                Err((topic, code)) => return Err(Error::CreateTopic { topic, code }),
            }
        }
        Ok(())
    }

    /// The underlying rdkafka admin client.
    pub fn inner(&self) -> &AdminClient<TracingContext> {
        &self.inner
    }
}
