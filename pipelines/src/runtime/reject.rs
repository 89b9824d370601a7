//! Decoding source records and building reject records: every pipeline decodes with
//! [`decode`] and refuses records the same way, with the original bytes, where they came
//! from, a machine-readable code and a sentence.
//!
//! A reject record is bounded ([`MAX_REJECT_VALUE_BYTES`] of the original value,
//! [`MAX_REJECT_KEY_BYTES`] of its key, [`MAX_REJECT_MESSAGE_CHARS`] of the sentence), so a
//! poison record near the broker's `message.max.bytes` still fits in its reject record: when
//! the value is cut, the message ends with its full length and SHA-256
//! (`[original value truncated to 65536 of N bytes; sha256 <hex>]`).

use super::StageError;
use doorstep_schemas::avro::{Catalog, DecodeError, TopicRecord};
use doorstep_schemas::events::RejectedRecord;
use doorstep_schemas::model::{EventId, OrderId, Timestamp};
use sha2::{Digest, Sha256};

/// Most original value bytes a reject record keeps (64 KiB).
pub const MAX_REJECT_VALUE_BYTES: usize = 64 * 1024;
/// Most original key bytes a reject record keeps.
pub const MAX_REJECT_KEY_BYTES: usize = 1024;
/// Most characters of a reject record's message (before the truncation note).
pub const MAX_REJECT_MESSAGE_CHARS: usize = 2048;

/// The reason code of records that do not decode (the message says why: an unknown schema
/// id, bytes that do not match the writer schema, ...).
pub const UNDECODABLE: &str = "undecodable";

/// Decodes a source record's value. `Ok(Err(e))`: the bytes are bad for good (an id the
/// registry does not know, a malformed body, ...), reject the record with [`UNDECODABLE`] and
/// `e`; `Err`: the schema registry could not be asked, retry the batch later.
pub async fn decode<T: TopicRecord>(
    catalog: &Catalog,
    payload: &[u8],
) -> Result<Result<T, DecodeError>, StageError> {
    match catalog.decode::<T>(payload).await {
        Err(e) if e.is_retriable() => Err(StageError::unavailable("schema registry", e)),
        other => Ok(other),
    }
}

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

    /// A reject record for this source record, bounded (see the module docs).
    pub fn reject(
        &self,
        rejected_by: &str,
        reason_code: &str,
        message: String,
        event_id: Option<EventId>,
        order_id: Option<OrderId>,
        at: Timestamp,
    ) -> RejectedRecord {
        let mut message = if message.chars().count() > MAX_REJECT_MESSAGE_CHARS {
            let mut m: String = message.chars().take(MAX_REJECT_MESSAGE_CHARS).collect();
            m.push('…');
            m
        } else {
            message
        };
        let value = self.payload;
        let original_value = if value.len() > MAX_REJECT_VALUE_BYTES {
            let hash: String = Sha256::digest(value)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            message.push_str(&format!(
                " [original value truncated to {MAX_REJECT_VALUE_BYTES} of {} bytes; sha256 {hash}]",
                value.len()
            ));
            value[..MAX_REJECT_VALUE_BYTES].to_vec()
        } else {
            value.to_vec()
        };
        RejectedRecord {
            source_topic: self.topic.to_owned(),
            source_partition: self.partition,
            source_offset: self.offset,
            original_key: self
                .key
                .map(|k| k[..k.len().min(MAX_REJECT_KEY_BYTES)].to_vec()),
            original_value,
            event_id,
            order_id,
            rejected_by: rejected_by.to_owned(),
            reason_code: reason_code.to_owned(),
            message,
            rejected_at: at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(payload: &[u8]) -> SourceMeta<'_> {
        SourceMeta {
            topic: "t",
            partition: 0,
            offset: 7,
            key: Some(b"o-1"),
            payload,
        }
    }

    #[test]
    fn small_values_are_kept_whole() {
        let r = meta(b"junk").reject(
            "status",
            "undecodable",
            "bad".into(),
            None,
            None,
            Timestamp::from_millis(0),
        );
        assert_eq!(r.original_value, b"junk");
        assert_eq!(r.message, "bad");
    }

    #[test]
    fn large_values_are_cut_with_their_length_and_hash() {
        let value = vec![7u8; 999_900];
        let r = meta(&value).reject(
            "status",
            "undecodable",
            "x".repeat(10_000),
            None,
            None,
            Timestamp::from_millis(0),
        );
        assert_eq!(r.original_value.len(), MAX_REJECT_VALUE_BYTES);
        let hash: String = Sha256::digest(&value)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(
            r.message.ends_with(&format!(
                "[original value truncated to 65536 of 999900 bytes; sha256 {hash}]"
            )),
            "{}",
            &r.message[r.message.len() - 200..]
        );
        assert!(r.message.len() < MAX_REJECT_MESSAGE_CHARS + 200);
    }
}
