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
