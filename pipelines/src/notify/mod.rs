//! The notify pipeline: `notifications.v1` → push provider (FCM HTTP v1 shape) with retries
//! and a sent-ledger keyed by the notification id (order id + status + recipient), so a
//! replay or a restart never notifies twice. A push the provider refuses for good (4xx) is
//! recorded on `orders.rejected.v1` with the reason; nothing is dropped silently.

mod metrics;

pub use metrics::NotifyMetrics;

use crate::runtime::{Emitter, Read, SourceRecord, Stage, StageError, read_batch};
use doorstep_connectors::push::{Delivery, PushClient, SentLedger};
use doorstep_schemas::events::{Notification, RejectedRecord};
use doorstep_schemas::model::Timestamp;
use futures::StreamExt;

/// Pushes in flight at once.
const SEND_CONCURRENCY: usize = 32;

/// The notify pipeline's stage.
pub struct NotifyStage {
    push: PushClient,
    ledger: SentLedger,
    emitter: Emitter,
    rejected_topic: String,
    metrics: NotifyMetrics,
}

impl NotifyStage {
    /// A stage sending through `push`, deduplicating through `ledger`, writing refused pushes
    /// to `rejected_topic`.
    pub fn new(
        push: PushClient,
        ledger: SentLedger,
        emitter: Emitter,
        rejected_topic: String,
        metrics: NotifyMetrics,
    ) -> Self {
        Self {
            push,
            ledger,
            emitter,
            rejected_topic,
            metrics,
        }
    }
}

impl Stage for NotifyStage {
    async fn process_batch(&mut self, batch: &[SourceRecord]) -> Result<(), StageError> {
        let mut rejects: Vec<RejectedRecord> = Vec::new();
        let mut pending = Vec::with_capacity(batch.len());
        for read in read_batch::<Notification>(self.emitter.catalog(), batch).await? {
            match read {
                Read::Record(meta, n) => pending.push((meta, n)),
                Read::Unusable(u) => {
                    self.metrics.pushes.with_label_values(&[u.code]).inc();
                    let order = u.record.map(|n| n.order_id);
                    rejects.push(u.meta.reject(
                        "notify",
                        u.code,
                        u.message,
                        None,
                        order,
                        Timestamp::now(),
                    ));
                }
            }
        }
        let push = &self.push;
        let ledger = &self.ledger;
        let messages: Vec<_> = pending.iter().map(|(_, n)| push.message_for(n)).collect();
        let results: Vec<_> = futures::stream::iter(messages.into_iter().enumerate())
            .map(|(i, message)| async move {
                let started = std::time::Instant::now();
                let r = push.send_once(ledger, &message).await;
                (i, r, started.elapsed())
            })
            .buffer_unordered(SEND_CONCURRENCY)
            .collect()
            .await;
        let mut retry_later = None;
        for (i, result, took) in results {
            let (meta, n) = &pending[i];
            self.metrics.push_latency.observe(took.as_secs_f64());
            match result {
                Ok(Delivery::Sent(_)) => self.metrics.pushes.with_label_values(&["sent"]).inc(),
                Ok(Delivery::AlreadySent { .. }) => {
                    self.metrics.pushes.with_label_values(&["duplicate"]).inc()
                }
                Ok(_) => self.metrics.pushes.with_label_values(&["sent"]).inc(),
                Err(e) if e.is_retriable() => {
                    self.metrics.pushes.with_label_values(&["retry"]).inc();
                    retry_later = Some(StageError::from(e));
                }
                Err(e) => {
                    self.metrics.pushes.with_label_values(&["failed"]).inc();
                    tracing::warn!(notification_id = %n.notification_id, error = %e, "push refused for good");
                    let msg = format!(
                        "push {} to {} refused: {e}",
                        n.notification_id, n.recipient_id
                    );
                    rejects.push(meta.reject(
                        "notify",
                        "push_failed",
                        msg,
                        None,
                        Some(n.order_id.clone()),
                        n.created_at,
                    ));
                }
            }
        }
        self.write_rejects(&rejects).await?;
        // Retriable failures fail the batch: it is offered again, and the ledger skips what
        // was already sent.
        match retry_later {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl NotifyStage {
    async fn write_rejects(&self, rejects: &[RejectedRecord]) -> Result<(), StageError> {
        let records = rejects
            .iter()
            .map(|r| self.emitter.encode(&self.rejected_topic, r))
            .collect::<Result<Vec<_>, _>>()?;
        self.emitter.send_all(&records).await
    }
}
