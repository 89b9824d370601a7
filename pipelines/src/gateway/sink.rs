//! Where the gateway's events go: [`EventSink`], implemented by [`KafkaSink`] (the broker) and
//! by anything a test needs (recording, failing).

use doorstep_connectors::kafka::{KafkaConfig, Producer};
use futures::future::BoxFuture;
use std::time::Duration;

/// Produces one record and resolves once the destination acknowledged it (or failed).
pub trait EventSink: Send + Sync + 'static {
    /// Sends `payload` keyed by `key` with `headers` to `topic`; `Err` carries a sentence.
    fn send<'a>(
        &'a self,
        topic: &'a str,
        key: &'a [u8],
        payload: &'a [u8],
        headers: &'a [(&'a str, &'a [u8])],
    ) -> BoxFuture<'a, Result<(), String>>;

    /// Whether the destination is reachable (the `/healthz` probe).
    fn ping(&self) -> BoxFuture<'_, Result<(), String>>;
}

/// How long the gateway's producer waits to gather records of concurrent requests into one
/// produce request (`linger.ms`): a little latency per request for far fewer broker requests
/// under load.
pub const PRODUCE_LINGER: Duration = Duration::from_millis(2);

/// The Kafka producer as an [`EventSink`]: idempotent, `acks=all`, with the delivery timeout
/// set to the gateway's produce timeout so librdkafka gives a record up when the gateway
/// answers 503, and a small linger ([`PRODUCE_LINGER`]).
#[derive(Debug, Clone)]
pub struct KafkaSink {
    producer: Producer,
}

impl KafkaSink {
    /// A producer for `brokers` whose deliveries time out after `produce_timeout`.
    pub fn new(
        brokers: &str,
        produce_timeout: Duration,
    ) -> Result<Self, doorstep_connectors::kafka::Error> {
        let config = KafkaConfig::new(brokers, "doorstep-gateway")
            .with_delivery_timeout(produce_timeout)
            .with_request_timeout(produce_timeout)
            .with_connect_timeout(Duration::from_secs(2))
            .with_linger(PRODUCE_LINGER);
        Ok(Self {
            producer: Producer::new(&config)?,
        })
    }

    /// The wrapped producer (to flush it on shutdown).
    pub fn producer(&self) -> &Producer {
        &self.producer
    }
}

impl EventSink for KafkaSink {
    fn send<'a>(
        &'a self,
        topic: &'a str,
        key: &'a [u8],
        payload: &'a [u8],
        headers: &'a [(&'a str, &'a [u8])],
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.producer
                .send(topic, key, payload, headers)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move { self.producer.ping().await.map_err(|e| e.to_string()) })
    }
}
