//! Avro binary bodies, strictly. Writing validates the value against the writer schema.
//! Reading decodes with the writer schema, then resolves the value to the reader schema when
//! the two differ (schema evolution). apache-avro alone reads a body that ends inside some
//! fields as `null` and ignores bytes left over; here both are errors.

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
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

/// Appends the Avro encoding of `value` (validated against `schema`) to `out`.
pub(crate) fn write(
    schema: &Schema,
    value: Value,
    out: &mut Vec<u8>,
) -> Result<(), apache_avro::Error> {
    GenericDatumWriter::builder(schema)
        .build()?
        .write_value(out, value)?;
    Ok(())
}

/// Reads one record written with `writer` from `body`, resolved to `reader` when given.
pub(crate) fn read(
    writer: &Schema,
    reader: Option<&Schema>,
    body: &[u8],
) -> Result<Value, BodyError> {
    let mut input = Strict {
        rest: body,
        hit_end: false,
    };
    let decoded = GenericDatumReader::builder(writer)
        .build()
        .and_then(|datum_reader| datum_reader.read_value(&mut input));
    if input.hit_end {
        return Err(BodyError::Truncated);
    }
    let value = decoded.map_err(BodyError::Malformed)?;
    if !input.rest.is_empty() {
        return Err(BodyError::Trailing(input.rest.len()));
    }
    match reader {
        Some(reader) => value.resolve(reader).map_err(BodyError::Incompatible),
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
