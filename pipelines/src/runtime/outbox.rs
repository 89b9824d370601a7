//! Outboxes: the output records of a batch, saved with the state the batch changed (an
//! order's partition, a driver's position), so that a re-read of the batch — its Kafka
//! transaction aborted after the state was saved, so the state says "processed" — produces
//! those records again instead of losing them.
//!
//! Format: frames of `[kind: u8][length: u32 big-endian][Avro record in the Confluent wire
//! format]`, kinds 1 = `StatusChange`, 2 = `Notification`, 3 = `RejectedRecord`,
//! 4 = `TrackingUpdate`; hex text where the store keeps strings.

use doorstep_schemas::avro::Catalog;
use doorstep_schemas::events::{Notification, RejectedRecord, StatusChange};
use doorstep_schemas::model::TrackingUpdate;

const STATUS: u8 = 1;
const NOTIFICATION: u8 = 2;
const REJECTED: u8 = 3;
const TRACKING: u8 = 4;

/// Why an outbox could not be written or read back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutboxError {
    /// A record could not be encoded.
    #[error("encoding an outbox record: {0}")]
    Encode(#[source] doorstep_schemas::avro::EncodeError),
    /// A stored record could not be decoded.
    #[error("decoding an outbox record: {0}")]
    Decode(#[source] doorstep_schemas::avro::DecodeError),
    /// The bytes are not frames of this format.
    #[error("corrupt outbox: {0}")]
    Corrupt(&'static str),
}

/// One kept output record.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Kept {
    /// For `orders.status.v1`.
    Status(StatusChange),
    /// For `notifications.v1`.
    Notification(Notification),
    /// For `orders.rejected.v1`.
    Rejected(RejectedRecord),
    /// For `orders.tracking.v1`.
    Tracking(TrackingUpdate),
}

/// The stored form of `records`.
pub fn encode(catalog: &Catalog, records: &[Kept]) -> Result<Vec<u8>, OutboxError> {
    let mut out = Vec::new();
    for record in records {
        let (kind, bytes) = match record {
            Kept::Status(r) => (STATUS, catalog.encode(r)),
            Kept::Notification(r) => (NOTIFICATION, catalog.encode(r)),
            Kept::Rejected(r) => (REJECTED, catalog.encode(r)),
            Kept::Tracking(r) => (TRACKING, catalog.encode(r)),
        };
        let bytes = bytes.map_err(OutboxError::Encode)?;
        let len =
            u32::try_from(bytes.len()).map_err(|_| OutboxError::Corrupt("record too large"))?;
        out.push(kind);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&bytes);
    }
    Ok(out)
}

/// Reads a stored form back.
pub async fn decode(catalog: &Catalog, mut bytes: &[u8]) -> Result<Vec<Kept>, OutboxError> {
    let mut records = Vec::new();
    while let Some((&kind, rest)) = bytes.split_first() {
        let (len, rest) = rest
            .split_first_chunk::<4>()
            .ok_or(OutboxError::Corrupt("truncated frame length"))?;
        let len = usize::try_from(u32::from_be_bytes(*len))
            .map_err(|_| OutboxError::Corrupt("frame length"))?;
        if rest.len() < len {
            return Err(OutboxError::Corrupt("truncated frame"));
        }
        let (record, rest) = rest.split_at(len);
        let d = |e| OutboxError::Decode(e);
        records.push(match kind {
            STATUS => Kept::Status(catalog.decode(record).await.map_err(d)?),
            NOTIFICATION => Kept::Notification(catalog.decode(record).await.map_err(d)?),
            REJECTED => Kept::Rejected(catalog.decode(record).await.map_err(d)?),
            TRACKING => Kept::Tracking(catalog.decode(record).await.map_err(d)?),
            _ => return Err(OutboxError::Corrupt("unknown record kind")),
        });
        bytes = rest;
    }
    Ok(records)
}

/// Hex text of `bytes` (for stores that keep strings).
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        text.push(char::from(DIGITS[usize::from(b >> 4)]));
        text.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    text
}

/// Bytes of hex text.
pub fn from_hex(text: &str) -> Result<Vec<u8>, OutboxError> {
    if !text.len().is_multiple_of(2) {
        return Err(OutboxError::Corrupt("odd hex length"));
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(OutboxError::Corrupt("not hex"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use doorstep_schemas::events::RecipientKind;
    use doorstep_schemas::model::{
        Actor, EventId, HistoryEntryKind, OrderId, OrderStatus, Timestamp,
    };

    #[tokio::test]
    async fn records_round_trip_through_bytes_and_hex() {
        let catalog = Catalog::embedded().expect("catalog");
        let records = vec![
            Kept::Status(StatusChange {
                event_id: EventId::new("o-1-e1"),
                order_id: OrderId::new("o-1"),
                seq: 1,
                kind: HistoryEntryKind::Transition,
                from: Some(OrderStatus::Placed),
                to: OrderStatus::Confirmed,
                actor: Actor::restaurant("r-1"),
                reason: None,
                customer_id: "c-1".into(),
                restaurant_id: "r-1".into(),
                driver_id: None,
                refund_cents: None,
                at: Timestamp::from_millis(1_700_000_000_000),
            }),
            Kept::Notification(Notification {
                notification_id: "o-1:CONFIRMED:customer".into(),
                recipient_kind: RecipientKind::Customer,
                recipient_id: "c-1".into(),
                order_id: OrderId::new("o-1"),
                status: OrderStatus::Confirmed,
                message: "Your order has been confirmed!".into(),
                created_at: Timestamp::from_millis(1_700_000_000_000),
            }),
        ];
        let bytes = encode(catalog, &records).expect("encode");
        assert_eq!(decode(catalog, &bytes).await.expect("decode"), records);
        let hex = to_hex(&bytes);
        assert_eq!(from_hex(&hex).expect("hex"), bytes);
        assert!(decode(catalog, &[]).await.expect("empty").is_empty());
        assert!(decode(catalog, &bytes[..bytes.len() - 1]).await.is_err());
        assert!(decode(catalog, &[9, 0, 0, 0, 0]).await.is_err());
        assert!(from_hex("abc").is_err() && from_hex("zz").is_err());
        assert_eq!(to_hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }
}
