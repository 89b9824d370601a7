//! `orders.rejected.v1`: the dead-letter topic. Nothing is dropped silently: every record a
//! pipeline cannot accept lands here with a machine-readable code and a human message.

use crate::model::{EventId, OrderId, Timestamp};
use serde::{Deserialize, Serialize};

/// A record that was refused, with why and the original bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RejectedRecord {
    /// Topic the record came from.
    pub source_topic: String,
    /// Partition it came from.
    pub source_partition: i32,
    /// Offset it had.
    pub source_offset: i64,
    /// The original key bytes, if any.
    pub original_key: Option<Vec<u8>>,
    /// The original value bytes, untouched up to 64 KiB; a longer value is cut there by the
    /// pipelines, and `message` then ends with its full length and SHA-256.
    pub original_value: Vec<u8>,
    /// The event id, when the value could be decoded.
    pub event_id: Option<EventId>,
    /// The order, when known.
    pub order_id: Option<OrderId>,
    /// Which component refused it (`status`, `location`, ...).
    pub rejected_by: String,
    /// Machine-readable reason (`invalid_transition`, `undecodable`, ...).
    pub reason_code: String,
    /// Human sentence.
    pub message: String,
    /// When it was refused.
    pub rejected_at: Timestamp,
}

impl RejectedRecord {
    /// Its key on the reject topic: the order when known (the topic is keyed by order), else
    /// the original record's key (a driver's ping is keyed by driver), else empty.
    pub fn topic_key(&self) -> String {
        match (&self.order_id, &self.original_key) {
            (Some(o), _) => o.as_str().to_owned(),
            (None, Some(k)) => String::from_utf8_lossy(k).into_owned(),
            (None, None) => String::new(),
        }
    }

    /// Its event id header: the event's id when the value could be decoded, else empty.
    pub fn event_id_header(&self) -> &str {
        self.event_id.as_ref().map_or("", |e| e.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_the_order_then_the_original_key() {
        let mut r = RejectedRecord {
            source_topic: "t".into(),
            source_partition: 0,
            source_offset: 1,
            original_key: Some(b"d-1".to_vec()),
            original_value: vec![],
            event_id: None,
            order_id: Some(OrderId::new("o-1")),
            rejected_by: "location".into(),
            reason_code: "stale".into(),
            message: "old".into(),
            rejected_at: Timestamp::from_millis(0),
        };
        assert_eq!(r.topic_key(), "o-1");
        r.order_id = None;
        assert_eq!(r.topic_key(), "d-1");
        r.original_key = None;
        assert_eq!(r.topic_key(), "");
        assert_eq!(r.event_id_header(), "");
    }
}
