//! The one way a stage writes records to Kafka: [`Emitter`] encodes each output record with
//! its topic's schema, keyed and identified by the record itself ([`TopicRecord::key`],
//! [`TopicRecord::id`]), and produces all of a batch's records concurrently, returning once
//! the broker acknowledged every one. [`timed`] measures a sink phase.

use super::StageError;
use doorstep_connectors::kafka::Producer;
use doorstep_schemas::avro::{Catalog, TopicRecord};
use futures::future::try_join_all;
use prometheus::HistogramVec;
use std::future::Future;
use std::time::Instant;

/// One output record, encoded and ready to produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The full topic name.
    pub topic: String,
    /// The record key (it chooses the partition).
    pub key: String,
    /// The `event_id` header.
    pub id: String,
    /// The Avro value (registry wire format).
    pub value: Vec<u8>,
}

/// Encodes and produces a stage's output records. Cheap to clone.
#[derive(Clone)]
pub struct Emitter {
    producer: Producer,
    catalog: &'static Catalog,
}

impl Emitter {
    /// Writes through `producer` (the runtime's transactional one, when transactional),
    /// encoding with `catalog`.
    pub fn new(producer: Producer, catalog: &'static Catalog) -> Self {
        Self { producer, catalog }
    }

    /// The producer records go through.
    pub fn producer(&self) -> &Producer {
        &self.producer
    }

    /// The schemas records are encoded with (and a stage's source records decoded with).
    pub fn catalog(&self) -> &'static Catalog {
        self.catalog
    }

    /// `record`, encoded for `topic`. A record the schema cannot carry is
    /// [`StageError::Invalid`] (a bug: the runtime isolates the record that caused it).
    pub fn encode<T: TopicRecord>(&self, topic: &str, record: &T) -> Result<Output, StageError> {
        let value = self
            .catalog
            .encode(record)
            .map_err(|e| StageError::invalid(format_args!("encoding for {topic}"), e))?;
        Ok(Output {
            topic: topic.to_owned(),
            key: record.key().into_owned(),
            id: record.id().into_owned(),
            value,
        })
    }

    /// Produces `outputs` and waits for every acknowledgement. A failure is classified by the
    /// Kafka error ([`StageError::from`]): retriable (the runtime offers the batch again),
    /// except a record refused for its size, which no retry can deliver.
    pub async fn send_all(&self, outputs: &[Output]) -> Result<(), StageError> {
        try_join_all(outputs.iter().map(|o| async move {
            self.producer
                .send(
                    &o.topic,
                    o.key.as_bytes(),
                    &o.value,
                    &[("event_id", o.id.as_bytes())],
                )
                .await
        }))
        .await?;
        Ok(())
    }
}

/// Runs one sink phase and, when it succeeds, records its duration in `latency` under the
/// `sink` label (`doorstep_sink_latency_seconds`, labelled by pipeline).
pub async fn timed<T>(
    latency: &HistogramVec,
    sink: &'static str,
    phase: impl Future<Output = Result<T, StageError>>,
) -> Result<T, StageError> {
    let started = Instant::now();
    let value = phase.await?;
    latency
        .with_label_values(&[sink])
        .observe(started.elapsed().as_secs_f64());
    Ok(value)
}
