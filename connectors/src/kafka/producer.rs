//! Idempotent producer, optionally transactional.

use super::{Error, GroupMetadata, KafkaConfig, TracingContext};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::util::Timeout;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

/// Where the broker stored a produced record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivery {
    /// Partition the record landed in (decided by the key's hash).
    pub partition: i32,
    /// Offset of the record in that partition.
    pub offset: i64,
}

/// An idempotent (`enable.idempotence=true`, `acks=all`) Kafka producer.
///
/// Cheap to clone: clones share one librdkafka client and its connections (and, for a
/// transactional producer, the client that [`renew`](Self::renew) puts in its place). Records
/// with the same key go to the same partition and keep their order, retries included.
#[derive(Clone)]
pub struct Producer {
    inner: Arc<RwLock<FutureProducer<TracingContext>>>,
    /// What the client was made from (a renewal makes a new one alike).
    config: KafkaConfig,
    brokers: String,
    connect_timeout: Duration,
    /// The transactional id, for a transactional producer.
    transactional_id: Option<String>,
    /// Bound on one transaction call (init, send offsets, commit, abort).
    transaction_call_timeout: Duration,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("brokers", &self.brokers)
            .finish_non_exhaustive()
    }
}

impl Producer {
    /// Creates the producer. This does not contact a broker; call [`ping`](Self::ping) to check
    /// one is reachable.
    pub fn new(config: &KafkaConfig) -> Result<Self, Error> {
        let inner = config
            .producer()
            .create_with_context(TracingContext::new(&config.client_id))
            .map_err(Error::Config)?;
        tracing::debug!(brokers = %config.brokers, client_id = %config.client_id, "Kafka producer created");
        Ok(Self {
            inner: Arc::new(RwLock::new(inner)),
            config: config.clone(),
            brokers: config.brokers.clone(),
            connect_timeout: config.connect_timeout,
            transactional_id: None,
            transaction_call_timeout: config.request_timeout,
        })
    }

    /// Creates a transactional producer with `transactional_id` and registers it with the
    /// transaction coordinator, which aborts whatever an earlier producer with the same id
    /// left open and fences that producer off. Every [`send`](Self::send) must then happen
    /// between [`begin`](Self::begin) and [`commit`](Self::commit) or [`abort`](Self::abort).
    pub async fn transactional(
        config: &KafkaConfig,
        transactional_id: &str,
    ) -> Result<Self, Error> {
        let inner = Self::registered(config, transactional_id).await?;
        tracing::info!(brokers = %config.brokers, transactional_id, "transactional Kafka producer ready");
        Ok(Self {
            inner: Arc::new(RwLock::new(inner)),
            config: config.clone(),
            brokers: config.brokers.clone(),
            connect_timeout: config.connect_timeout,
            transactional_id: Some(transactional_id.to_owned()),
            transaction_call_timeout: Self::call_timeout(config),
        })
    }

    fn call_timeout(config: &KafkaConfig) -> Duration {
        config.request_timeout.min(config.transaction_timeout)
    }

    /// A transactional client registered with the coordinator (`init_transactions`).
    async fn registered(
        config: &KafkaConfig,
        transactional_id: &str,
    ) -> Result<FutureProducer<TracingContext>, Error> {
        let inner: FutureProducer<TracingContext> = config
            .transactional_producer(transactional_id)
            .create_with_context(TracingContext::new(&config.client_id))
            .map_err(Error::Config)?;
        let timeout = Self::call_timeout(config);
        let init = inner.clone();
        tokio::task::spawn_blocking(move || init.init_transactions(timeout))
            .await
            .map_err(|e| Error::Task(e.to_string()))?
            .map_err(|source| Error::Transaction {
                step: "init",
                source,
            })?;
        Ok(inner)
    }

    /// The client in use now.
    fn client(&self) -> FutureProducer<TracingContext> {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// librdkafka's fatal error, once the client has raised one: the client can send nothing
    /// more (a transactional producer is fenced when the coordinator aborted its transaction
    /// for running past `transaction.timeout.ms`, or when a newer producer registered its
    /// transactional id).
    pub fn fatal_error(&self) -> Option<String> {
        self.client()
            .client()
            .fatal_error()
            .map(|(code, reason)| format!("{code}: {reason}"))
    }

    /// Replaces the client of a transactional producer by a new one registered under the
    /// same transactional id (which fences the old one and aborts whatever it left open), for
    /// every clone. The way back from a [`fatal_error`](Self::fatal_error).
    ///
    /// # Errors
    /// [`Error::NotTransactional`] for a plain producer; the registration's error when the
    /// coordinator cannot be reached (try again later).
    pub async fn renew(&self) -> Result<(), Error> {
        let id = self
            .transactional_id
            .as_deref()
            .ok_or(Error::NotTransactional)?;
        let fresh = Self::registered(&self.config, id).await?;
        *self.inner.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        tracing::warn!(
            transactional_id = id,
            "transactional Kafka producer renewed"
        );
        Ok(())
    }

    /// The transactional id, when this producer is transactional.
    pub fn transactional_id(&self) -> Option<&str> {
        self.transactional_id.as_deref()
    }

    /// Begins a transaction (a local state change; the broker learns of it with the first
    /// record).
    pub fn begin(&self) -> Result<(), Error> {
        self.client()
            .begin_transaction()
            .map_err(|source| Error::Transaction {
                step: "begin",
                source,
            })
    }

    /// Commits the transaction: first the consumed `(topic, partition, last processed
    /// offset)` positions of `group` (so they are committed if and only if the records are),
    /// then the transaction itself. Records sent in it become visible to `read_committed`
    /// readers all at once.
    pub async fn commit(
        &self,
        consumed: &[(&str, i32, i64)],
        group: Option<&GroupMetadata>,
    ) -> Result<(), Error> {
        let mut tpl = TopicPartitionList::with_capacity(consumed.len());
        for (topic, partition, offset) in consumed {
            tpl.add_partition_offset(topic, *partition, Offset::Offset(offset.saturating_add(1)))
                .map_err(|source| Error::Transaction {
                    step: "send offsets",
                    source,
                })?;
        }
        let group = match (consumed.is_empty(), group) {
            (true, _) => None,
            (false, Some(g)) => Some(g.clone()),
            (false, None) => return Err(Error::NoGroupMetadata),
        };
        let producer = self.client();
        let timeout = self.transaction_call_timeout;
        tokio::task::spawn_blocking(move || {
            if let Some(group) = group {
                producer
                    .send_offsets_to_transaction(&tpl, group.raw(), timeout)
                    .map_err(|source| Error::Transaction {
                        step: "send offsets",
                        source,
                    })?;
            }
            producer
                .commit_transaction(timeout)
                .map_err(|source| Error::Transaction {
                    step: "commit",
                    source,
                })
        })
        .await
        .map_err(|e| Error::Task(e.to_string()))?
    }

    /// Aborts the transaction: its records are discarded (never shown to `read_committed`
    /// readers) and its offsets not committed.
    pub async fn abort(&self) -> Result<(), Error> {
        let producer = self.client();
        let timeout = self.transaction_call_timeout;
        tokio::task::spawn_blocking(move || producer.abort_transaction(timeout))
            .await
            .map_err(|e| Error::Task(e.to_string()))?
            .map_err(|source| Error::Transaction {
                step: "abort",
                source,
            })
    }

    /// Checks that a broker answers a metadata request within the configured connect timeout.
    pub async fn ping(&self) -> Result<(), Error> {
        self.brokers().await.map(|_| ())
    }

    /// The brokers the cluster advertises, as `id@host:port`, sorted by id: what
    /// `doorstep check` shows (the Kafka protocol does not tell a client the broker's
    /// software version).
    pub async fn brokers(&self) -> Result<Vec<String>, Error> {
        let producer = self.client();
        let timeout = self.connect_timeout;
        let result = tokio::task::spawn_blocking(move || {
            producer.client().fetch_metadata(None, timeout).map(|m| {
                let mut brokers: Vec<(i32, String)> = m
                    .brokers()
                    .iter()
                    .map(|b| (b.id(), format!("{}@{}:{}", b.id(), b.host(), b.port())))
                    .collect();
                brokers.sort();
                brokers.into_iter().map(|(_, b)| b).collect::<Vec<_>>()
            })
        })
        .await
        .map_err(|e| Error::Task(e.to_string()))?;
        result.map_err(|source| Error::Unreachable {
            brokers: self.brokers.clone(),
            timeout,
            source,
        })
    }

    /// Sends one record and waits for the broker's acknowledgement.
    ///
    /// `headers` are `(name, value)` pairs. Fails after the configured delivery timeout if the
    /// record cannot be delivered; [`Error::is_retriable`] says whether sending again may help.
    pub async fn send(
        &self,
        topic: &str,
        key: &[u8],
        payload: &[u8],
        headers: &[(&str, &[u8])],
    ) -> Result<Delivery, Error> {
        let mut record = FutureRecord::to(topic).key(key).payload(payload);
        if !headers.is_empty() {
            let owned = headers.iter().fold(
                OwnedHeaders::new_with_capacity(headers.len()),
                |h, (k, v)| {
                    h.insert(Header {
                        key: k,
                        value: Some(*v),
                    })
                },
            );
            record = record.headers(owned);
        }
        // The queue timeout only covers a full local queue; the delivery timeout
        // (`message.timeout.ms`) bounds the whole send.
        match self.client().send(record, Timeout::Never).await {
            Ok(d) => {
                tracing::trace!(
                    topic,
                    partition = d.partition,
                    offset = d.offset,
                    "record delivered"
                );
                Ok(Delivery {
                    partition: d.partition,
                    offset: d.offset,
                })
            }
            Err((source, _message)) => {
                tracing::warn!(topic, error = %source, "record delivery failed");
                Err(Error::Delivery {
                    topic: topic.to_owned(),
                    source,
                })
            }
        }
    }

    /// Waits until every queued record is delivered or `timeout` passes (call before exit).
    pub async fn flush(&self, timeout: Duration) -> Result<(), Error> {
        let producer = self.client();
        let result = tokio::task::spawn_blocking(move || producer.flush(timeout))
            .await
            .map_err(|e| Error::Task(e.to_string()))?;
        result.map_err(|source| Error::Delivery {
            topic: "*".to_owned(),
            source,
        })
    }

    /// The underlying rdkafka producer (the client in use now), for what this wrapper does
    /// not cover.
    pub fn inner(&self) -> FutureProducer<TracingContext> {
        self.client()
    }
}
