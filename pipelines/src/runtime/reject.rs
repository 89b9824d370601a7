//! Building reject records: every pipeline refuses records the same way, with the original
//! bytes, where they came from, a machine-readable code and a sentence.

use doorstep_schemas::events::RejectedRecord;
use doorstep_schemas::model::{EventId, OrderId, Timestamp};

/// Where a source record came from, for reject records.
#[derive(Debug, Clone, Copy)]
pub struct SourceMeta<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key bytes.
    pub key: Option<&'a [u8]>,
    /// Value bytes (empty for a tombstone).
    pub payload: &'a [u8],
}

impl<'a> SourceMeta<'a> {
    /// The metadata of a consumed record.
    pub fn of(r: &'a super::SourceRecord) -> Self {
        Self {
            topic: &r.topic,
            partition: r.partition,
            offset: r.offset,
            key: r.key.as_deref(),
            payload: r.payload.as_deref().unwrap_or_default(),
        }
    }

    /// A reject record for this source record.
    pub fn reject(
        &self,
        rejected_by: &str,
        reason_code: &str,
        message: String,
        event_id: Option<EventId>,
        order_id: Option<OrderId>,
        at: Timestamp,
    ) -> RejectedRecord {
        RejectedRecord {
            source_topic: self.topic.to_owned(),
            source_partition: self.partition,
            source_offset: self.offset,
            original_key: self.key.map(<[u8]>::to_vec),
            original_value: self.payload.to_vec(),
            event_id,
            order_id,
            rejected_by: rejected_by.to_owned(),
            reason_code: reason_code.to_owned(),
            message,
            rejected_at: at,
        }
    }
}
