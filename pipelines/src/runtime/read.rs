//! Typed reading of a batch: every stage turns its source records into its topic's record
//! type here, so tombstones, undecodable values and keys that do not match the record are
//! refused the same way everywhere (the stage only chooses how its reject record looks).

use super::{SourceMeta, SourceRecord, StageError, UNDECODABLE, decode};
use doorstep_schemas::avro::{Catalog, TopicRecord};

/// The reason code of a record without a value.
pub const TOMBSTONE: &str = "tombstone";

/// The reason code of a record whose Kafka key is not the one its value is produced with.
pub const KEY_MISMATCH: &str = "key_mismatch";

/// One source record as a stage receives it.
#[derive(Debug)]
pub enum Read<'a, T> {
    /// Decoded, with the key it belongs under.
    Record(SourceMeta<'a>, T),
    /// Not usable: the stage writes a reject record for it.
    Unusable(Unusable<'a, T>),
}

/// A source record the stage must refuse, and why.
#[derive(Debug)]
pub struct Unusable<'a, T> {
    /// Where it came from (and its bytes, for the reject record).
    pub meta: SourceMeta<'a>,
    /// [`TOMBSTONE`], [`UNDECODABLE`] or [`KEY_MISMATCH`].
    pub code: &'static str,
    /// The sentence for the reject record.
    pub message: String,
    /// The decoded value, when only its key was wrong (its ids go into the reject record).
    pub record: Option<T>,
}

/// Decodes every record of `batch` as a `T`, in order. `Err` only when the schema registry
/// could not be asked (the batch is retried); a record that is bad for good comes back as
/// [`Read::Unusable`].
pub async fn read_batch<'a, T: TopicRecord>(
    catalog: &Catalog,
    batch: &'a [SourceRecord],
) -> Result<Vec<Read<'a, T>>, StageError> {
    let mut out = Vec::with_capacity(batch.len());
    for record in batch {
        let meta = SourceMeta::of(record);
        let unusable = |code, message, record| {
            Read::Unusable(Unusable {
                meta,
                code,
                message,
                record,
            })
        };
        let Some(payload) = record.payload.as_deref() else {
            out.push(unusable(
                TOMBSTONE,
                format!("{} needs a value", T::NOUN),
                None,
            ));
            continue;
        };
        out.push(match decode::<T>(catalog, payload).await? {
            Ok(value) if record.key.as_deref() != Some(value.key().as_bytes()) => {
                let message = format!(
                    "record key does not match the key of its value ({})",
                    value.key()
                );
                unusable(KEY_MISMATCH, message, Some(value))
            }
            Ok(value) => Read::Record(meta, value),
            Err(e) => unusable(UNDECODABLE, e.to_string(), None),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use doorstep_schemas::events::LocationPing;
    use doorstep_schemas::model::{DriverId, EventId, GeoPoint, Timestamp};

    fn record(offset: i64, key: &str, payload: Option<Vec<u8>>) -> SourceRecord {
        SourceRecord::new(
            "drivers.locations.v1",
            0,
            offset,
            Some(key.as_bytes().to_vec()),
            payload,
        )
    }

    #[tokio::test]
    async fn every_record_is_a_value_or_a_reason_in_order() {
        let catalog = Catalog::embedded().expect("catalog");
        let ping = LocationPing {
            ping_id: EventId::new("p-1"),
            driver_id: DriverId::new("d-1"),
            location: GeoPoint {
                lat: 60.17,
                lng: 24.94,
            },
            accuracy_m: None,
            heading_deg: None,
            speed_mps: None,
            recorded_at: Timestamp::from_millis(1_700_000_000_000),
            received_at: Timestamp::from_millis(1_700_000_000_100),
        };
        let bytes = catalog.encode(&ping).expect("encode");
        let batch = [
            record(1, "d-1", Some(bytes.clone())),
            record(2, "d-1", None),
            record(3, "d-1", Some(b"\x00\x00\x00\x00\x01garbage".to_vec())),
            record(4, "d-2", Some(bytes)),
        ];
        let read = read_batch::<LocationPing>(catalog, &batch)
            .await
            .expect("no registry call fails");
        assert_eq!(read.len(), 4, "no record is dropped");
        assert!(matches!(&read[0], Read::Record(m, p) if m.offset == 1 && *p == ping));
        let codes: Vec<(i64, &str, bool)> = read[1..]
            .iter()
            .map(|r| match r {
                Read::Unusable(u) => (u.meta.offset, u.code, u.record.is_some()),
                Read::Record(m, _) => (m.offset, "accepted", false),
            })
            .collect();
        assert_eq!(
            codes,
            [
                (2, TOMBSTONE, false),
                (3, UNDECODABLE, false),
                (4, KEY_MISMATCH, true)
            ]
        );
        let Read::Unusable(mismatch) = &read[3] else {
            unreachable!()
        };
        assert!(mismatch.message.contains("d-1"), "{}", mismatch.message);
    }
}
