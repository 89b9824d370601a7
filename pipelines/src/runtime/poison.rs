//! Poison records: a record the stage fails on for good (a non-retriable [`StageError`]) is
//! isolated from its batch — the batch's records are offered again one by one — and written
//! to the reject topic with the reason, so one bad record never blocks its partition and
//! never stops the pipeline. Retriable failures (a sink outage) are never treated as poison:
//! those batches wait and retry.

use super::{Emitter, SourceMeta, SourceRecord, StageError};
use doorstep_schemas::model::{OrderId, Timestamp};

/// The reason code of records the runtime rejects.
pub const POISON_REASON: &str = "processing_failed";

/// Where the runtime writes poison records.
#[derive(Clone)]
pub struct PoisonRejects {
    emitter: Emitter,
    topic: String,
    rejected_by: String,
}

impl std::fmt::Debug for PoisonRejects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoisonRejects")
            .field("topic", &self.topic)
            .field("rejected_by", &self.rejected_by)
            .finish_non_exhaustive()
    }
}

impl PoisonRejects {
    /// Rejects go to `topic` (the full name of `orders.rejected.v1`), signed `rejected_by`
    /// (the pipeline's name).
    pub fn new(emitter: Emitter, topic: impl Into<String>, rejected_by: impl Into<String>) -> Self {
        Self {
            emitter,
            topic: topic.into(),
            rejected_by: rejected_by.into(),
        }
    }

    /// Writes `record` to the reject topic with `error` as the reason; the record's key is
    /// taken as the order id when it is text. A retriable error means "try again".
    pub async fn write(&self, record: &SourceRecord, error: &StageError) -> Result<(), StageError> {
        let meta = SourceMeta::of(record);
        let order_id = record
            .key
            .as_deref()
            .and_then(|k| std::str::from_utf8(k).ok())
            .filter(|k| !k.is_empty())
            .map(OrderId::from);
        let reject = meta.reject(
            &self.rejected_by,
            POISON_REASON,
            format!(
                "{} failed on this record for good: {error}",
                self.rejected_by
            ),
            None,
            order_id,
            Timestamp::now(),
        );
        let output = self.emitter.encode(&self.topic, &reject)?;
        self.emitter.send_all(std::slice::from_ref(&output)).await
    }
}
