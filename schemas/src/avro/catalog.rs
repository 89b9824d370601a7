//! [`Catalog`]: the embedded schemas, parsed once, encoding and decoding with fixed ids (see
//! [`super::table`]). Doorstep runs with it when no registry is configured.

use super::codec::{self, Codec, Parsed};
use super::error::{CatalogError, DecodeError, EncodeError};
use super::record::TopicRecord;
use super::table::{SCHEMA_FILES, SchemaFile};
use super::{RECORDS, wire};
use std::future::Future;
use std::sync::LazyLock;

/// The largest single allocation apache-avro may make while decoding (a string, bytes or an
/// array length read from untrusted bytes). Kafka records are far smaller; the library's own
/// default is 512 MiB. The setting is process-wide and the first caller's value stays.
pub const MAX_DECODE_ALLOCATION_BYTES: usize = 64 * 1024 * 1024;

static EMBEDDED: LazyLock<Result<Catalog, CatalogError>> = LazyLock::new(Catalog::load);

/// One embedded schema: its table entry and the parsed schema.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) file: &'static SchemaFile,
    pub(crate) parsed: Parsed,
}

/// The embedded schema catalog: every `.avsc` file of `schemas/avro/`, compiled in and parsed
/// once. Encodes with the current schema of a topic; decodes records written with any
/// version in the table, resolving them to the current one.
#[derive(Debug)]
pub struct Catalog {
    entries: Vec<Entry>,
}

impl Catalog {
    /// The embedded catalog (parsed on first use, then shared).
    pub fn embedded() -> Result<&'static Catalog, CatalogError> {
        EMBEDDED.as_ref().map_err(Clone::clone)
    }

    fn load() -> Result<Catalog, CatalogError> {
        apache_avro::util::max_allocation_bytes(MAX_DECODE_ALLOCATION_BYTES);
        let mut entries = Vec::with_capacity(SCHEMA_FILES.len());
        for file in &SCHEMA_FILES {
            let parsed = Parsed::parse(file.text).map_err(|e| CatalogError::InvalidSchema {
                path: file.path,
                message: e.to_string(),
            })?;
            entries.push(Entry { file, parsed });
        }
        let catalog = Catalog { entries };
        for (topic, record) in RECORDS {
            let versions = catalog.entries.iter().filter(|e| e.file.topic == topic);
            let mut any = false;
            for entry in versions {
                any = true;
                if entry.parsed.name != record {
                    return Err(CatalogError::WrongRecord {
                        path: entry.file.path,
                        expected: record,
                        found: entry.parsed.name.clone(),
                    });
                }
            }
            if !any {
                return Err(CatalogError::MissingTopic { topic });
            }
        }
        Ok(catalog)
    }

    /// Every schema file, oldest version first within a topic.
    pub fn files(&self) -> impl Iterator<Item = &'static SchemaFile> + '_ {
        self.entries.iter().map(|e| e.file)
    }

    /// The current (latest) schema file of `topic`.
    pub fn current(&self, topic: &str) -> Option<&'static SchemaFile> {
        self.current_entry(topic).map(|e| e.file)
    }

    /// The id records of `T` are written with.
    pub fn schema_id<T: TopicRecord>(&self) -> Option<u32> {
        self.current(T::TOPIC).map(|f| f.id)
    }

    /// The framed Avro encoding of `record` with the current schema of its topic.
    pub fn encode<T: TopicRecord>(&self, record: &T) -> Result<Vec<u8>, EncodeError> {
        let entry = self
            .current_entry(T::TOPIC)
            .ok_or(EncodeError::NoSchema { topic: T::TOPIC })?;
        codec::frame::<T>(
            entry.file.id,
            &entry.parsed.schema,
            codec::to_value(record)?,
        )
    }

    /// The framed encoding of `record` with an older `version` of its topic's schema, for
    /// rolling upgrades (keep writing the version every reader knows). Fields the old version
    /// lacks are dropped.
    pub fn encode_version<T: TopicRecord>(
        &self,
        version: u32,
        record: &T,
    ) -> Result<Vec<u8>, EncodeError> {
        let entry = self
            .entries
            .iter()
            .find(|e| e.file.topic == T::TOPIC && e.file.version == version)
            .ok_or(EncodeError::UnknownVersion {
                topic: T::TOPIC,
                version,
            })?;
        let value = codec::to_value(record)?
            .resolve(&entry.parsed.schema)
            .map_err(|e| EncodeError::Avro {
                record: T::RECORD,
                schema_id: entry.file.id,
                source: Box::new(e),
            })?;
        codec::frame::<T>(entry.file.id, &entry.parsed.schema, value)
    }

    /// Decodes a framed record of `T`'s topic written with any schema version in the table.
    pub fn decode<T: TopicRecord>(&self, bytes: &[u8]) -> Result<T, DecodeError> {
        let (id, body) = wire::split(bytes)?;
        let writer = self.by_id(id).ok_or(DecodeError::UnknownSchemaId { id })?;
        let reader = self
            .current_entry(T::TOPIC)
            .ok_or(DecodeError::UnknownSchemaId { id })?;
        if writer.file.topic != T::TOPIC {
            return Err(DecodeError::WrongRecord {
                id,
                expected: T::RECORD,
                found: writer.parsed.name.clone(),
            });
        }
        codec::unframe(
            id,
            &writer.parsed,
            &reader.parsed,
            writer.file.id == reader.file.id,
            body,
        )
    }

    /// The schema with embedded id `id`.
    fn by_id(&self, id: u32) -> Option<&Entry> {
        self.entries.iter().find(|e| e.file.id == id)
    }

    /// The latest entry of `topic`.
    pub(crate) fn current_entry(&self, topic: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .filter(|e| e.file.topic == topic)
            .max_by_key(|e| e.file.version)
    }
}

impl Codec for Catalog {
    fn encode<T: TopicRecord>(&self, record: &T) -> Result<Vec<u8>, EncodeError> {
        Catalog::encode(self, record)
    }

    fn decode<T: TopicRecord>(
        &self,
        bytes: &[u8],
    ) -> impl Future<Output = Result<T, DecodeError>> + Send {
        std::future::ready(Catalog::decode(self, bytes))
    }
}
