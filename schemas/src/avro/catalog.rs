//! [`Catalog`]: the one codec of topic records. It owns the schemas (the `.avsc` files,
//! parsed once), the id each one is written with, and the cache of writer schemas fetched by
//! id. Two ways to build it, one way to use it:
//!
//! - [`Catalog::connect`]: the run-time codec of every Doorstep process. Each topic's current
//!   schema is registered (or, with `register` off, looked up) under `<prefix><topic>-value`
//!   (TopicNameStrategy) with a Confluent-compatible registry through
//!   `schema_registry_converter`; records are written with the registry's ids; records with
//!   an id the catalog does not know are read by fetching that writer schema from the
//!   registry once and caching it.
//! - [`Catalog::embedded`]: no registry, fixed ids from [`super::table`]. For codec unit tests
//!   and offline tools only: its ids mean nothing to a registry.

use super::codec::{self, Parsed};
use super::error::{CatalogError, DecodeError, EncodeError};
use super::record::TopicRecord;
use super::registry::{Client, RegistryConfig, RegistryError};
use super::table::{SCHEMA_FILES, SchemaFile, value_subject};
use super::{RECORDS, wire};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

/// The largest single allocation apache-avro may make while decoding (a string, bytes or an
/// array length read from untrusted bytes). Kafka records are far smaller; the library's own
/// default is 512 MiB. The setting is process-wide and the first caller's value stays.
pub const MAX_DECODE_ALLOCATION_BYTES: usize = 64 * 1024 * 1024;

static EMBEDDED: LazyLock<Result<Catalog, CatalogError>> = LazyLock::new(Catalog::load);

/// One schema file: its table entry, the parsed schema and the id records written with it
/// carry (`None`: not registered, so it cannot be written).
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) file: &'static SchemaFile,
    pub(crate) parsed: Arc<Parsed>,
    pub(crate) id: Option<u32>,
}

/// The registry side of a connected catalog.
#[derive(Debug)]
struct Remote {
    client: Client,
    /// `(topic, subject)` of every topic.
    subjects: Vec<(&'static str, String)>,
    /// Writer schemas fetched by id (other producers' versions).
    fetched: RwLock<HashMap<u32, Arc<Parsed>>>,
}

/// Encodes topic records with the current schema of their topic and decodes records written
/// with any schema the catalog knows or (connected) the registry has, resolving them to the
/// current one.
#[derive(Debug)]
pub struct Catalog {
    entries: Vec<Entry>,
    remote: Option<Remote>,
}

impl Catalog {
    /// The embedded catalog with fixed ids (parsed on first use, then shared). Codec unit
    /// tests and offline tools only: processes use [`Catalog::connect`].
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
            entries.push(Entry {
                file,
                parsed: Arc::new(parsed),
                id: Some(file.id),
            });
        }
        let catalog = Catalog {
            entries,
            remote: None,
        };
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

    /// Connects to the registry `config` names and gets every topic's id for its current
    /// schema under `<prefix><topic>-value`: registered when `config.register` is on (a no-op
    /// returning the id when the subject has it; an incompatible schema is refused by the
    /// registry, [`RegistryError::Incompatible`]), looked up otherwise (a subject without it
    /// is [`RegistryError::NotRegistered`]). Older versions of a topic's schema are read by
    /// fetching them by id, like any other writer's.
    pub async fn connect(config: &RegistryConfig) -> Result<Catalog, RegistryError> {
        let client = Client::new(&config.url, config.timeout)?;
        let embedded = Catalog::embedded()?;
        let mut entries: Vec<Entry> = embedded
            .entries
            .iter()
            .map(|e| Entry {
                id: None,
                ..e.clone()
            })
            .collect();
        let mut subjects = Vec::with_capacity(RECORDS.len());
        for (topic, _) in RECORDS {
            let subject = value_subject(&format!("{}{topic}", config.topic_prefix));
            let Some(entry) = entries
                .iter_mut()
                .filter(|e| e.file.topic == topic)
                .max_by_key(|e| e.file.version)
            else {
                return Err(CatalogError::MissingTopic { topic }.into());
            };
            let id = if config.register {
                client.register(&subject, entry.file.text).await?
            } else {
                client.lookup(&subject, entry.file.text).await?
            };
            entry.id = Some(id);
            subjects.push((topic, subject));
        }
        Ok(Catalog {
            entries,
            remote: Some(Remote {
                client,
                subjects,
                fetched: RwLock::new(HashMap::new()),
            }),
        })
    }

    /// The registry URL, when connected.
    pub fn registry_url(&self) -> Option<&str> {
        self.remote.as_ref().map(|r| r.client.url())
    }

    /// The subject `topic`'s values are registered under, when connected.
    pub fn subject(&self, topic: &str) -> Option<&str> {
        self.remote.as_ref().and_then(|r| {
            r.subjects
                .iter()
                .find(|(t, _)| *t == topic)
                .map(|(_, s)| s.as_str())
        })
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
        self.topic_schema_id(T::TOPIC)
    }

    /// The id records of `topic` are written with.
    pub fn topic_schema_id(&self, topic: &str) -> Option<u32> {
        self.current_entry(topic).and_then(|e| e.id)
    }

    /// The framed Avro encoding of `record` with the current schema of its topic.
    pub fn encode<T: TopicRecord>(&self, record: &T) -> Result<Vec<u8>, EncodeError> {
        let entry = self
            .current_entry(T::TOPIC)
            .ok_or(EncodeError::NoSchema { topic: T::TOPIC })?;
        let id = entry.id.ok_or(EncodeError::NoSchema { topic: T::TOPIC })?;
        let mut out = wire::header(id);
        if let Some(written) = record.write_direct(entry.file.version, &mut out) {
            written.map_err(|source| EncodeError::Domain {
                record: T::RECORD,
                source,
            })?;
            return Ok(out);
        }
        codec::frame::<T>(id, &entry.parsed, codec::to_value(record)?)
    }

    /// The framed encoding of `record` with an older `version` of its topic's schema, for
    /// rolling upgrades (keep writing the version every reader knows). Fields the old version
    /// lacks are dropped. Only versions with an id (all of them in the embedded catalog, the
    /// current one when connected) can be written.
    pub fn encode_version<T: TopicRecord>(
        &self,
        version: u32,
        record: &T,
    ) -> Result<Vec<u8>, EncodeError> {
        let unknown = EncodeError::UnknownVersion {
            topic: T::TOPIC,
            version,
        };
        let entry = self
            .entries
            .iter()
            .find(|e| e.file.topic == T::TOPIC && e.file.version == version)
            .ok_or(unknown)?;
        let id = entry.id.ok_or(EncodeError::UnknownVersion {
            topic: T::TOPIC,
            version,
        })?;
        let value = entry
            .parsed
            .resolve(codec::to_value(record)?)
            .map_err(|e| EncodeError::Avro {
                record: T::RECORD,
                schema_id: id,
                source: Box::new(e),
            })?;
        codec::frame::<T>(id, &entry.parsed, value)
    }

    /// Decodes a framed record of `T`'s topic written with any schema the catalog knows;
    /// when connected, an unknown writer id is fetched from the registry once and cached. An
    /// id the registry does not have either is [`DecodeError::UnknownSchemaId`].
    pub async fn decode<T: TopicRecord>(&self, bytes: &[u8]) -> Result<T, DecodeError> {
        let (id, body) = wire::split(bytes)?;
        let reader = self
            .current_entry(T::TOPIC)
            .ok_or(DecodeError::UnknownSchemaId { id })?;
        let same = reader.id == Some(id);
        if same && let Some(record) = T::read_direct(reader.file.version, body) {
            return Ok(record);
        }
        let writer = self.writer(id).await?;
        codec::unframe(id, &writer, &reader.parsed, same, body)
    }

    /// The writer schema with id `id`: a known entry, a cached fetch, or a fetch.
    async fn writer(&self, id: u32) -> Result<Arc<Parsed>, DecodeError> {
        if let Some(entry) = self.entries.iter().find(|e| e.id == Some(id)) {
            return Ok(Arc::clone(&entry.parsed));
        }
        let Some(remote) = &self.remote else {
            return Err(DecodeError::UnknownSchemaId { id });
        };
        if let Some(parsed) = remote
            .fetched
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&id)
        {
            return Ok(Arc::clone(parsed));
        }
        let text = remote
            .client
            .fetch(id)
            .await
            .map_err(|source| DecodeError::Registry { id, source })?
            .ok_or(DecodeError::UnknownSchemaId { id })?;
        let parsed = Parsed::parse(&text).map_err(|e| DecodeError::Registry {
            id,
            source: RegistryError::InvalidSchema {
                id,
                message: e.to_string(),
            },
        })?;
        let parsed = Arc::new(parsed);
        remote
            .fetched
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id, Arc::clone(&parsed));
        Ok(parsed)
    }

    /// The latest entry of `topic`.
    pub(crate) fn current_entry(&self, topic: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .filter(|e| e.file.topic == topic)
            .max_by_key(|e| e.file.version)
    }
}
