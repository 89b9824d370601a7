//! Idempotent producer.

use super::{Error, KafkaConfig, TracingContext};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::util::Timeout;
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
/// Cheap to clone: clones share one librdkafka client and its connections. Records with the
/// same key go to the same partition and keep their order, retries included.
#[derive(Clone)]
pub struct Producer {
    inner: FutureProducer<TracingContext>,
    brokers: String,
    connect_timeout: Duration,
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
            inner,
            brokers: config.brokers.clone(),
            connect_timeout: config.connect_timeout,
        })
    }

    /// Checks that a broker answers a metadata request within the configured connect timeout.
    pub async fn ping(&self) -> Result<(), Error> {
        let producer = self.inner.clone();
        let timeout = self.connect_timeout;
        let result = tokio::task::spawn_blocking(move || {
            producer.client().fetch_metadata(None, timeout).map(|_| ())
        })
        .await
        .map_err(|e| Error::Task(e.to_string()))?;
        result.map_err(|source| Error::Unreachable {
            brokers: self.brokers.clone(),
            timeout,
            source,
        })
    }

    /// The brokers the cluster advertises, as `id@host:port`, sorted by id: what
    /// `doorstep check` shows (the Kafka protocol does not tell a client the broker's
    /// software version).
    pub async fn brokers(&self) -> Result<Vec<String>, Error> {
        let producer = self.inner.clone();
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
        match self.inner.send(record, Timeout::Never).await {
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
        let producer = self.inner.clone();
        let result = tokio::task::spawn_blocking(move || producer.flush(timeout))
            .await
            .map_err(|e| Error::Task(e.to_string()))?;
        result.map_err(|source| Error::Delivery {
            topic: "*".to_owned(),
            source,
        })
    }

    /// The underlying rdkafka producer, for what this wrapper does not cover.
    pub fn inner(&self) -> &FutureProducer<TracingContext> {
        &self.inner
    }
}
