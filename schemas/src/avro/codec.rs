//! The encode and decode steps of the [`Catalog`](super::Catalog) once it knows the schemas: a
//! record and a writer schema make a framed message; a framed body, its writer schema and the
//! current (reader) schema make a record.
//!
//! A [`Parsed`] schema carries its Avro datum reader and writer, built once when the schema is
//! parsed (building one resolves every named type of the schema): no record pays for it.

use super::datum::{self, BodyError};
use super::error::{DecodeError, EncodeError};
use super::record::TopicRecord;
use super::wire;
use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema::ResolvedSchema;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;

/// A schema with the named types it defines resolved, and a datum reader and writer for it.
#[ouroboros::self_referencing]
struct Compiled {
    schema: Schema,
    #[borrows(schema)]
    #[covariant]
    resolved: ResolvedSchema<'this>,
    #[borrows(schema, resolved)]
    #[covariant]
    writer: GenericDatumWriter<'this>,
    #[borrows(schema, resolved)]
    #[covariant]
    reader: GenericDatumReader<'this>,
}

/// A parsed schema with its full record name, ready to write and read bodies.
pub(crate) struct Parsed {
    compiled: Compiled,
    /// Its full name (`io.doorstep.v1.OrderEvent`), empty if it has none.
    pub(crate) name: String,
}

impl std::fmt::Debug for Parsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parsed")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Parsed {
    /// Parses Avro JSON and builds the schema's reader and writer.
    pub(crate) fn parse(text: &str) -> Result<Self, apache_avro::Error> {
        let schema = Schema::parse_str(text)?;
        let name = schema.name().map(|n| n.fullname(None)).unwrap_or_default();
        let compiled = CompiledTryBuilder {
            schema,
            resolved_builder: |schema: &Schema| ResolvedSchema::try_from(schema),
            writer_builder: |schema: &Schema, resolved: &ResolvedSchema<'_>| {
                GenericDatumWriter::builder(schema)
                    .resolved_schemata(resolved.clone())
                    .build()
            },
            reader_builder: |schema: &Schema, resolved: &ResolvedSchema<'_>| {
                GenericDatumReader::builder(schema)
                    .resolved_writer_schemata(resolved.clone())
                    .build()
            },
        }
        .try_build()?;
        Ok(Self { compiled, name })
    }

    /// The schema.
    pub(crate) fn schema(&self) -> &Schema {
        self.compiled.borrow_schema()
    }

    /// Appends the Avro encoding of `value` (validated against the schema) to `out`.
    pub(crate) fn write(&self, value: &Value, out: &mut Vec<u8>) -> Result<(), apache_avro::Error> {
        self.compiled
            .borrow_writer()
            .write_value_ref(out, value)
            .map(|_| ())
    }

    /// Reads one value written with this schema from `input`.
    pub(crate) fn read<R: std::io::Read>(
        &self,
        input: &mut R,
    ) -> Result<Value, apache_avro::Error> {
        self.compiled.borrow_reader().read_value(input)
    }

    /// `value` (read with another schema) resolved to this one.
    pub(crate) fn resolve(&self, value: Value) -> Result<Value, apache_avro::Error> {
        value.resolve_with_names(self.schema(), self.compiled.borrow_resolved().get_names())
    }
}

/// The framed encoding of `value` with `writer` under `schema_id`.
pub(crate) fn frame<T: TopicRecord>(
    schema_id: u32,
    writer: &Parsed,
    value: Value,
) -> Result<Vec<u8>, EncodeError> {
    let mut out = wire::header(schema_id);
    writer
        .write(&value, &mut out)
        .map_err(|e| EncodeError::Avro {
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
    let value = datum::read(writer, (!same).then_some(reader), body).map_err(|e| match e {
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
    })?;
    T::from_avro(value).map_err(|source| DecodeError::Domain {
        record: T::RECORD,
        source,
    })
}
