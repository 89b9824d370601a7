//! Avro binary bodies, read strictly. Reading decodes with the writer schema, then resolves
//! the value to the reader schema when the two differ (schema evolution). apache-avro alone
//! reads a body that ends inside some fields as `null` and ignores bytes left over; here both
//! are errors.

use super::codec::Parsed;
use apache_avro::types::Value;
use std::io::Read;

/// Why a body could not be read.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// Not Avro for the writer schema.
    Malformed(apache_avro::Error),
    /// The body ended inside the record.
    Truncated,
    /// Bytes were left over after the record.
    Trailing(usize),
    /// The writer's value cannot be resolved to the reader schema.
    Incompatible(apache_avro::Error),
}

/// Reads one record written with `writer` from `body`, resolved to `reader` when given.
pub(crate) fn read(
    writer: &Parsed,
    reader: Option<&Parsed>,
    body: &[u8],
) -> Result<Value, BodyError> {
    let mut input = Strict {
        rest: body,
        hit_end: false,
    };
    let decoded = writer.read(&mut input);
    if input.hit_end {
        return Err(BodyError::Truncated);
    }
    let value = decoded.map_err(BodyError::Malformed)?;
    if !input.rest.is_empty() {
        return Err(BodyError::Trailing(input.rest.len()));
    }
    match reader {
        Some(reader) => reader.resolve(value).map_err(BodyError::Incompatible),
        None => Ok(value),
    }
}

/// A byte slice that remembers whether the decoder asked for more than it had.
struct Strict<'a> {
    rest: &'a [u8],
    hit_end: bool,
}

impl Read for Strict<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !buf.is_empty() && self.rest.is_empty() {
            self.hit_end = true;
            return Ok(0);
        }
        self.rest.read(buf)
    }
}
