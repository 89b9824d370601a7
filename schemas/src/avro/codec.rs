//! The encode and decode steps of the [`Catalog`](super::Catalog) once it knows the schemas: a
//! record and a writer schema make a framed message; a framed body, its writer schema and the
//! current (reader) schema make a record.

use super::datum::{self, BodyError};
use super::error::{DecodeError, EncodeError};
use super::record::TopicRecord;
use super::wire;
use apache_avro::Schema;
use apache_avro::types::Value;

/// A parsed schema with its full record name.
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    /// The schema.
    pub(crate) schema: Schema,
    /// Its full name (`io.doorstep.v1.OrderEvent`), empty if it has none.
    pub(crate) name: String,
}

impl Parsed {
    /// Parses Avro JSON.
    pub(crate) fn parse(text: &str) -> Result<Self, apache_avro::Error> {
        let schema = Schema::parse_str(text)?;
        let name = schema.name().map(|n| n.fullname(None)).unwrap_or_default();
        Ok(Self { schema, name })
    }
}

/// The framed encoding of `value` with `writer` under `schema_id`.
pub(crate) fn frame<T: TopicRecord>(
    schema_id: u32,
    writer: &Schema,
    value: Value,
) -> Result<Vec<u8>, EncodeError> {
    let mut out = wire::header(schema_id);
    datum::write(writer, value, &mut out).map_err(|e| EncodeError::Avro {
        record: T::RECORD,
        schema_id,
        source: Box::new(e),
    })?;
    Ok(out)
}

/// The Avro value of `record` for its current schema.
pub(crate) fn to_value<T: TopicRecord>(record: &T) -> Result<Value, EncodeError> {
    record.to_avro().map_err(|source| EncodeError::Domain {
        record: T::RECORD,
        source,
    })
}

/// Decodes the `body` written with `writer` (id `id`) into `T`, resolving to `reader` unless
/// `same` says the writer is the reader.
pub(crate) fn unframe<T: TopicRecord>(
    id: u32,
    writer: &Parsed,
    reader: &Parsed,
    same: bool,
    body: &[u8],
) -> Result<T, DecodeError> {
    if writer.name != T::RECORD {
        return Err(DecodeError::WrongRecord {
            id,
            expected: T::RECORD,
            found: writer.name.clone(),
        });
    }
    let value = datum::read(&writer.schema, (!same).then_some(&reader.schema), body).map_err(
        |e| match e {
            BodyError::Malformed(e) => DecodeError::Malformed {
                id,
                source: Box::new(e),
            },
            BodyError::Truncated => DecodeError::Truncated { id },
            BodyError::Trailing(extra) => DecodeError::TrailingBytes { id, extra },
            BodyError::Incompatible(e) => DecodeError::Incompatible {
                id,
                record: T::RECORD,
                source: Box::new(e),
            },
        },
    )?;
    T::from_avro(value).map_err(|source| DecodeError::Domain {
        record: T::RECORD,
        source,
    })
}
