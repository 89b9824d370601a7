//! Poison records: a record the stage fails on for good (a non-retriable [`StageError`]) is
//! isolated from its batch — the batch's records are offered again one by one — and written
//! to the reject topic with the reason, so one bad record never blocks its partition and
//! never stops the pipeline. Retriable failures (a sink outage) are never treated as poison:
//! those batches wait and retry.

use super::{SourceMeta, SourceRecord, StageError};
use doorstep_connectors::kafka::Producer;
use doorstep_schemas::avro::Catalog;
use doorstep_schemas::model::{OrderId, Timestamp};

/// The reason code of records the runtime rejects.
pub const POISON_REASON: &str = "processing_failed";

/// Where the runtime writes poison records.
#[derive(Clone)]
pub struct PoisonRejects {
    producer: Producer,
    topic: String,
    catalog: &'static Catalog,
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
    pub fn new(
        producer: Producer,
        topic: impl Into<String>,
        catalog: &'static Catalog,
        rejected_by: impl Into<String>,
    ) -> Self {
        Self {
            producer,
            topic: topic.into(),
            catalog,
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
            order_id.clone(),
            Timestamp::now(),
        );
        let bytes = self
            .catalog
            .encode(&reject)
            .map_err(|e| StageError::invalid("encoding a reject", e))?;
        let key = order_id.as_ref().map_or("", |o| o.as_str());
        self.producer
            .send(&self.topic, key.as_bytes(), &bytes, &[])
            .await?;
        Ok(())
    }
}
