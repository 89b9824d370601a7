//! Reading what a pipeline wrote: every record of a topic from the beginning, decoded, in a
//! fresh consumer group, until enough arrived or a deadline passed.

use doorstep_connectors::kafka::{ConsumerBuilder, KafkaConfig};
use doorstep_schemas::avro::{Catalog, TopicRecord};
use std::time::Duration;

/// One decoded record with its key and position.
#[derive(Debug, Clone)]
pub struct Read<T> {
    /// Record key as UTF-8 (lossy).
    pub key: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// The decoded value.
    pub value: T,
}

/// Reads `topic` from the start until `at_least` records arrived or `quiet` passed with
/// nothing new after `deadline`; panics with a clear message on undecodable records.
pub async fn read_topic<T: TopicRecord>(
    brokers: &str,
    topic: &str,
    at_least: usize,
    deadline: Duration,
) -> anyhow::Result<Vec<Read<T>>> {
    let config = KafkaConfig::new(brokers, "doorstep-tests-reader");
    let group = crate::unique("reader");
    let consumer = ConsumerBuilder::new(&config, group).subscribe(&[topic])?;
    let catalog = crate::catalog().await?;
    let mut out = Vec::new();
    let end = tokio::time::Instant::now() + deadline;
    while out.len() < at_least {
        let Ok(next) = tokio::time::timeout_at(end, consumer.recv()).await else {
            break;
        };
        out.push(decode(catalog, topic, next?).await?);
    }
    Ok(out)
}

/// Reads everything `topic` holds now: waits `settle` for stragglers after the last record.
pub async fn read_all<T: TopicRecord>(
    brokers: &str,
    topic: &str,
    settle: Duration,
) -> anyhow::Result<Vec<Read<T>>> {
    let config = KafkaConfig::new(brokers, "doorstep-tests-reader");
    let consumer = ConsumerBuilder::new(&config, crate::unique("reader")).subscribe(&[topic])?;
    let catalog = crate::catalog().await?;
    let mut out = Vec::new();
    // The first record may take a group join.
    let mut wait = settle.max(Duration::from_secs(5));
    while let Ok(next) = tokio::time::timeout(wait, consumer.recv()).await {
        out.push(decode(catalog, topic, next?).await?);
        wait = settle;
    }
    Ok(out)
}

async fn decode<T: TopicRecord>(
    catalog: &Catalog,
    topic: &str,
    record: doorstep_connectors::kafka::Record,
) -> anyhow::Result<Read<T>> {
    let payload = record.payload.unwrap_or_default();
    let value = catalog
        .decode::<T>(&payload)
        .await
        .map_err(|e| anyhow::anyhow!("{topic} offset {} is undecodable: {e}", record.offset))?;
    Ok(Read {
        key: String::from_utf8_lossy(record.key.as_deref().unwrap_or_default()).into_owned(),
        partition: record.partition,
        offset: record.offset,
        value,
    })
}
