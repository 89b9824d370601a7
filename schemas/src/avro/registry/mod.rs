//! The registry-backed codec (cargo feature `registry`): [`RegistryCatalog`] registers the
//! embedded schemas with a Confluent-compatible schema registry under `<topic>-value`
//! (TopicNameStrategy), writes records with the registry's ids, and reads records written
//! with any schema the registry knows, fetching it by id once and resolving it to the
//! current schema (schema evolution across producers on different versions).
//!
//! Only the registry calls use `schema_registry_converter`; the wire format and the Avro
//! encoding are the same code as the embedded [`Catalog`], so both modes produce the same
//! bodies and differ only in the 4-byte id.

mod client;
mod error;

pub use error::RegistryError;

use super::RECORDS;
use super::catalog::Catalog;
use super::codec::{self, Codec, Parsed};
use super::error::{CatalogError, DecodeError, EncodeError};
use super::record::TopicRecord;
use super::table::value_subject;
use super::wire;
use client::Client;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Where the registry is and how to name subjects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    /// Base URL, e.g. `http://127.0.0.1:18081`.
    pub url: String,
    /// Prefix of every topic name (tests and shared clusters use one); subjects are
    /// `<prefix><topic>-value`.
    pub topic_prefix: String,
    /// Bound on every registry request (connect and answer).
    pub timeout: Duration,
}

impl RegistryConfig {
    /// The registry at `url`, no topic prefix, 10 s timeout.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            topic_prefix: String::new(),
            timeout: Duration::from_secs(10),
        }
    }

    /// With a topic prefix.
    pub fn with_topic_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.topic_prefix = prefix.into();
        self
    }

    /// With a request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// The current schema of one topic, as registered.
#[derive(Debug)]
struct Registered {
    topic: &'static str,
    subject: String,
    id: u32,
    parsed: Arc<Parsed>,
}

/// Encodes and decodes topic records with schema ids from a schema registry.
#[derive(Debug)]
pub struct RegistryCatalog {
    client: Client,
    registered: Vec<Registered>,
    /// Writer schemas by registry id: the registered ones, then every one fetched.
    writers: RwLock<HashMap<u32, Arc<Parsed>>>,
}

impl RegistryCatalog {
    /// Connects to the registry at `url` and registers every topic's current schema.
    pub async fn connect(url: &str) -> Result<Self, RegistryError> {
        Self::connect_with(RegistryConfig::new(url)).await
    }

    /// Connects as `config` says and registers every topic's current schema under
    /// `<prefix><topic>-value`. Registering a schema the subject already has is a no-op that
    /// returns its id; an incompatible one is refused (409) by the registry.
    pub async fn connect_with(config: RegistryConfig) -> Result<Self, RegistryError> {
        let client = Client::new(&config.url, config.timeout)?;
        let embedded = Catalog::embedded()?;
        let mut registered = Vec::with_capacity(RECORDS.len());
        let mut writers = HashMap::new();
        for (topic, _) in RECORDS {
            let entry = embedded
                .current_entry(topic)
                .ok_or(CatalogError::MissingTopic { topic })?;
            let subject = value_subject(&format!("{}{topic}", config.topic_prefix));
            let id = client.register(&subject, entry.file.text).await?;
            let parsed = Arc::new(entry.parsed.clone());
            writers.insert(id, Arc::clone(&parsed));
            registered.push(Registered {
                topic,
                subject,
                id,
                parsed,
            });
        }
        Ok(Self {
            client,
            registered,
            writers: RwLock::new(writers),
        })
    }

    /// The registry URL.
    pub fn url(&self) -> &str {
        self.client.url()
    }

    /// The subject `topic`'s values are registered under.
    pub fn subject(&self, topic: &str) -> Option<&str> {
        self.current(topic).map(|r| r.subject.as_str())
    }

    /// The registry id records of `T` are written with.
    pub fn schema_id<T: TopicRecord>(&self) -> Option<u32> {
        self.current(T::TOPIC).map(|r| r.id)
    }

    /// The framed Avro encoding of `record` with its topic's current schema and registry id.
    pub fn encode<T: TopicRecord>(&self, record: &T) -> Result<Vec<u8>, EncodeError> {
        let current = self
            .current(T::TOPIC)
            .ok_or(EncodeError::NoSchema { topic: T::TOPIC })?;
        codec::frame::<T>(current.id, &current.parsed.schema, codec::to_value(record)?)
    }

    /// Decodes a framed record of `T`'s topic written with any schema the registry knows,
    /// fetching an unknown writer schema once.
    pub async fn decode<T: TopicRecord>(&self, bytes: &[u8]) -> Result<T, DecodeError> {
        let (id, body) = wire::split(bytes)?;
        let reader = self
            .current(T::TOPIC)
            .ok_or(DecodeError::UnknownSchemaId { id })?;
        let writer = self.writer(id).await?;
        codec::unframe(id, &writer, &reader.parsed, id == reader.id, body)
    }

    /// The writer schema with registry id `id`, from the cache or the registry.
    async fn writer(&self, id: u32) -> Result<Arc<Parsed>, DecodeError> {
        if let Some(parsed) = self.cached(id) {
            return Ok(parsed);
        }
        let text = self
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
        self.writers
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id, Arc::clone(&parsed));
        Ok(parsed)
    }

    fn cached(&self, id: u32) -> Option<Arc<Parsed>> {
        self.writers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    fn current(&self, topic: &str) -> Option<&Registered> {
        self.registered.iter().find(|r| r.topic == topic)
    }
}

impl Codec for RegistryCatalog {
    fn encode<T: TopicRecord>(&self, record: &T) -> Result<Vec<u8>, EncodeError> {
        RegistryCatalog::encode(self, record)
    }

    fn decode<T: TopicRecord>(
        &self,
        bytes: &[u8],
    ) -> impl Future<Output = Result<T, DecodeError>> + Send {
        RegistryCatalog::decode(self, bytes)
    }
}
