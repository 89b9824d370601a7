//! The typed errors of the Avro codec: [`EncodeError`], [`DecodeError`], [`DomainError`] (a
//! value outside what the Rust types allow) and [`CatalogError`] (the embedded schemas do not
//! parse). Decoding untrusted bytes never panics: every failure is one of these.

use crate::model::GeoError;

/// A boxed library error, kept as the `source` so the library's types stay out of this API.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A value that has the right Avro shape but is not a valid Rust record, or an Avro value of
/// the wrong shape for a field. `field` names the Avro field (`Record.field`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// A position outside WGS 84 ranges (or not finite).
    #[error("{field}: {source}")]
    Geo {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        #[source]
        source: GeoError,
    },
    /// A number outside the range of its Rust type (a `long` carrying a `u32`).
    #[error("{field}: {value} is outside {min}..={max}")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// The value found.
        value: i64,
        /// Smallest allowed.
        min: i64,
        /// Largest allowed.
        max: i64,
    },
    /// An enum symbol the Rust type does not know.
    #[error("{field}: unknown symbol {symbol:?}")]
    UnknownSymbol {
        /// The field.
        field: &'static str,
        /// The symbol found.
        symbol: String,
    },
    /// A union branch the Rust type does not know.
    #[error("{field}: unknown union branch {index}")]
    UnknownBranch {
        /// The field.
        field: &'static str,
        /// The branch index found.
        index: u32,
    },
    /// A required field is absent.
    #[error("{field}: missing")]
    MissingField {
        /// The field.
        field: &'static str,
    },
    /// An Avro value of another type than the field's.
    #[error("{field}: expected {expected}, found {found}")]
    UnexpectedValue {
        /// The field.
        field: &'static str,
        /// The Avro type expected.
        expected: &'static str,
        /// The Avro type found.
        found: &'static str,
    },
}

/// Why a record could not be encoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The record holds a value its contract forbids (e.g. a latitude of 91).
    #[error("cannot encode {record}: {source}")]
    Domain {
        /// The Avro record name.
        record: &'static str,
        /// What is out of domain.
        #[source]
        source: DomainError,
    },
    /// The catalog has no schema for the record's topic (cannot happen with the embedded
    /// catalog, which checks every topic when it loads).
    #[error("no schema for topic {topic}")]
    NoSchema {
        /// The topic.
        topic: &'static str,
    },
    /// The schema version asked for is not in the catalog.
    #[error("{topic} has no schema version {version}")]
    UnknownVersion {
        /// The topic.
        topic: &'static str,
        /// The version asked for.
        version: u32,
    },
    /// apache-avro refused the value for the schema: a mismatch between the Rust conversion and
    /// the `.avsc` file (a bug, caught by the round-trip tests).
    #[error("{record} does not match writer schema {schema_id}: {source}")]
    Avro {
        /// The Avro record name.
        record: &'static str,
        /// The writer schema's id.
        schema_id: u32,
        /// The library's error.
        #[source]
        source: BoxError,
    },
}

/// Why bytes could not be decoded into a record. Every variant but
/// [`DecodeError::Registry`] is a property of the bytes: retrying will not help, the record
/// belongs on the dead-letter topic.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer than 5 bytes: no room for the magic byte and the schema id.
    #[error("{len} bytes is shorter than the 5-byte header (magic byte 0 + 4-byte schema id)")]
    TruncatedHeader {
        /// How many bytes there were.
        len: usize,
    },
    /// The first byte is not the Confluent wire format's magic byte 0.
    #[error("unknown magic byte {found:#04x}; expected 0x00 (Confluent wire format)")]
    UnknownMagicByte {
        /// The byte found.
        found: u8,
    },
    /// No schema with this id is known (embedded catalog) or registered (registry).
    #[error("unknown schema id {id}")]
    UnknownSchemaId {
        /// The id from the header.
        id: u32,
    },
    /// The schema id names another record type than the one asked for.
    #[error("schema id {id} is a {found} schema, not {expected}")]
    WrongRecord {
        /// The id from the header.
        id: u32,
        /// The record name asked for.
        expected: &'static str,
        /// The writer schema's name.
        found: String,
    },
    /// The body does not parse as Avro with the writer schema.
    #[error("body does not parse with writer schema {id}: {source}")]
    Malformed {
        /// The id from the header.
        id: u32,
        /// The library's error.
        #[source]
        source: BoxError,
    },
    /// The body ends before the record does.
    #[error("body ends before the record of writer schema {id} does")]
    Truncated {
        /// The id from the header.
        id: u32,
    },
    /// Bytes are left over after the record.
    #[error("{extra} bytes left over after the record of writer schema {id}")]
    TrailingBytes {
        /// The id from the header.
        id: u32,
        /// How many bytes were left.
        extra: usize,
    },
    /// The writer schema cannot be read as the current schema (Avro schema resolution).
    #[error("writer schema {id} cannot be read as the current {record} schema: {source}")]
    Incompatible {
        /// The id from the header.
        id: u32,
        /// The Avro record name read into.
        record: &'static str,
        /// The library's error.
        #[source]
        source: BoxError,
    },
    /// The record parses but holds a value its Rust type forbids (e.g. a latitude of 91).
    #[error("{record} out of domain: {source}")]
    Domain {
        /// The Avro record name.
        record: &'static str,
        /// What is out of domain.
        #[source]
        source: DomainError,
    },
    /// The writer schema could not be fetched from the registry.
    #[error("cannot fetch writer schema {id}: {source}")]
    Registry {
        /// The id from the header.
        id: u32,
        /// What went wrong.
        #[source]
        source: super::registry::RegistryError,
    },
}

impl DecodeError {
    /// Whether decoding the same bytes later can succeed (the registry was unreachable).
    /// Everything else is final: route the record to the dead-letter topic.
    pub fn is_retriable(&self) -> bool {
        match self {
            DecodeError::Registry { source, .. } => source.is_retriable(),
            _ => false,
        }
    }

    /// A short machine-readable code for `RejectedRecord::reason_code` and metrics labels.
    pub const fn code(&self) -> &'static str {
        match self {
            DecodeError::TruncatedHeader { .. } => "truncated_header",
            DecodeError::UnknownMagicByte { .. } => "unknown_magic_byte",
            DecodeError::UnknownSchemaId { .. } => "unknown_schema_id",
            DecodeError::WrongRecord { .. } => "wrong_record",
            DecodeError::Malformed { .. } => "malformed",
            DecodeError::Truncated { .. } => "truncated",
            DecodeError::TrailingBytes { .. } => "trailing_bytes",
            DecodeError::Incompatible { .. } => "incompatible_schema",
            DecodeError::Domain { .. } => "out_of_domain",
            DecodeError::Registry { .. } => "registry_unavailable",
        }
    }
}

/// The embedded schemas could not be loaded: a broken `.avsc` file or table entry. The
/// contract tests catch this before a build ships.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// A schema file does not parse.
    #[error("schemas/avro/{path} does not parse: {message}")]
    InvalidSchema {
        /// The file, relative to `schemas/avro/`.
        path: &'static str,
        /// The parser's message.
        message: String,
    },
    /// A schema file's record name is not the one its Rust type expects.
    #[error("schemas/avro/{path} defines {found}, expected {expected}")]
    WrongRecord {
        /// The file, relative to `schemas/avro/`.
        path: &'static str,
        /// The record name the Rust type expects.
        expected: &'static str,
        /// The record name found.
        found: String,
    },
    /// A topic has no current schema in the table.
    #[error("no schema for topic {topic}")]
    MissingTopic {
        /// The topic.
        topic: &'static str,
    },
}
