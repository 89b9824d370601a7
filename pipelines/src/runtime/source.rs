//! The source task: reads the Kafka consumer and feeds a bounded channel.

use doorstep_connectors::kafka::{Consumer, Record};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// One record as read from the source topic.
pub type SourceRecord = Record;

/// Where a bounded source stops: per partition, the first offset not to read. A partition
/// absent from the map is not read at all.
pub type StopOffsets = BTreeMap<i32, i64>;

/// Reads `consumer` into `tx` until the receiver is gone, or, when `stop` is given, until
/// every partition reached its stop offset (then the channel closes and the runtime drains
/// and returns). Errors from the consumer are logged and retried after a pause (the broker
/// may be restarting); they are never fatal.
pub async fn pump(
    consumer: Arc<Consumer>,
    tx: mpsc::Sender<SourceRecord>,
    metrics: super::RuntimeMetrics,
    stop: Option<StopOffsets>,
) {
    let mut open: Option<StopOffsets> =
        stop.map(|s| s.into_iter().filter(|(_, end)| *end > 0).collect());
    let mut failing_since: Option<std::time::Instant> = None;
    loop {
        if open.as_ref().is_some_and(BTreeMap::is_empty) {
            return;
        }
        match consumer.recv().await {
            Ok(record) => {
                if let Some(since) = failing_since.take() {
                    metrics.source_unavailable.set(0);
                    tracing::info!(after = ?since.elapsed(), "Kafka broker reachable again");
                }
                if let Some(open) = open.as_mut() {
                    let Some(end) = open.get(&record.partition).copied() else {
                        continue;
                    };
                    if record.offset >= end {
                        open.remove(&record.partition);
                        continue;
                    }
                    if record.offset + 1 >= end {
                        open.remove(&record.partition);
                    }
                }
                let wait = std::time::Instant::now();
                metrics
                    .queue_depth
                    .set(i64::try_from(tx.max_capacity() - tx.capacity()).unwrap_or(i64::MAX));
                if tx.send(record).await.is_err() {
                    return;
                }
                metrics
                    .source_blocked_seconds
                    .inc_by(wait.elapsed().as_secs_f64());
            }
            Err(e) => {
                metrics.source_errors.inc();
                metrics.source_unavailable.set(1);
                let since = *failing_since.get_or_insert_with(std::time::Instant::now);
                tracing::warn!(error = %e, waiting = ?since.elapsed(), "waiting for the Kafka broker");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        }
    }
}
