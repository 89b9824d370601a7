//! The source task: reads the Kafka consumer and feeds a bounded channel.

use doorstep_connectors::kafka::{Consumer, Record};
use std::sync::Arc;
use tokio::sync::mpsc;

/// One record as read from the source topic.
pub type SourceRecord = Record;

/// Reads `consumer` into `tx` until the receiver is gone. Errors from the consumer are
/// logged and retried after a pause (the broker may be restarting); they are never fatal.
pub async fn pump(
    consumer: Arc<Consumer>,
    tx: mpsc::Sender<SourceRecord>,
    metrics: super::RuntimeMetrics,
) {
    loop {
        match consumer.recv().await {
            Ok(record) => {
                let wait = std::time::Instant::now();
                if tx.send(record).await.is_err() {
                    return;
                }
                metrics
                    .source_blocked_seconds
                    .inc_by(wait.elapsed().as_secs_f64());
                metrics
                    .queue_depth
                    .set(i64::try_from(tx.max_capacity() - tx.capacity()).unwrap_or(i64::MAX));
            }
            Err(e) => {
                metrics.source_errors.inc();
                tracing::warn!(error = %e, "waiting for the Kafka broker");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        }
    }
}
