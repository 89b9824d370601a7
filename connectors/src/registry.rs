//! Schema registry client (Confluent REST API) on top of `schema_registry_converter`.
//!
//! Only the registry calls live here: register a subject's schema, fetch a schema by id,
//! check compatibility. The Avro encoding and the wire format (magic byte + schema id) are the
//! `schemas` crate's job; it can share this client's [`SrSettings`] through
//! [`RegistryClient::settings`].

use schema_registry_converter::async_impl::schema_registry::{
    SrSettings, get_schema_by_id, is_compatible_schema, post_schema,
};
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{RawError, SchemaType, SuppliedSchema};
use std::time::Duration;

pub use schema_registry_converter::schema_registry_common::RegisteredSchema;

/// What went wrong talking to the schema registry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The client could not be built from the given settings.
    #[error("invalid schema registry settings for {url}: {source}")]
    Config {
        /// The registry URL.
        url: String,
        /// The library's error.
        #[source]
        source: SRCError,
    },
    /// The registry did not answer (connection refused, timeout).
    #[error("schema registry at {url} is unreachable: {source}")]
    Unreachable {
        /// The registry URL.
        url: String,
        /// The library's error.
        #[source]
        source: SRCError,
    },
    /// The registry answered with an error, e.g. 409 (incompatible schema), 42201 (invalid
    /// schema), 40403 (schema not found).
    #[error("schema registry refused the request: error {error_code}: {message}")]
    Rejected {
        /// The registry's `error_code`.
        error_code: u32,
        /// The registry's `message`.
        message: String,
    },
    /// Anything else (an unparseable answer, ...).
    #[error("schema registry request failed: {0}")]
    Other(#[source] SRCError),
}

impl Error {
    /// Whether retrying later can succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Unreachable { .. } => true,
            Error::Rejected { error_code, .. } => *error_code >= 50000,
            Error::Other(e) => e.retriable,
            Error::Config { .. } => false,
        }
    }

    fn classify(url: &str, e: SRCError) -> Self {
        let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&e);
        while let Some(s) = source {
            if let Some(raw) = s.downcast_ref::<RawError>() {
                return Error::Rejected {
                    error_code: raw.error_code,
                    message: raw.message.clone(),
                };
            }
            if let Some(http) = s.downcast_ref::<reqwest::Error>()
                && (http.is_connect() || http.is_timeout())
            {
                return Error::Unreachable {
                    url: url.to_owned(),
                    source: e,
                };
            }
            source = s.source();
        }
        Error::Other(e)
    }
}

/// A client for one schema registry.
#[derive(Debug, Clone)]
pub struct RegistryClient {
    settings: SrSettings,
    url: String,
}

impl RegistryClient {
    /// A client for the registry at `url` (e.g. `http://127.0.0.1:18081`); every request is
    /// bounded by `timeout` (connect and read).
    pub fn new(url: &str, timeout: Duration) -> Result<Self, Error> {
        let url = url.trim_end_matches('/').to_owned();
        let settings = SrSettings::new_builder(url.clone())
            .set_timeout(timeout)
            .build()
            .map_err(|source| Error::Config {
                url: url.clone(),
                source,
            })?;
        Ok(Self { settings, url })
    }

    /// The registry URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The settings, for `schema_registry_converter`'s encoders and decoders.
    pub fn settings(&self) -> &SrSettings {
        &self.settings
    }

    /// Registers an Avro `schema` (JSON text) under `subject` and returns its id. Registering
    /// a schema the subject already has returns the existing id; an incompatible one is
    /// [`Error::Rejected`] with error code 409.
    pub async fn register_avro(&self, subject: &str, schema: &str) -> Result<u32, Error> {
        let supplied = SuppliedSchema::new(None, SchemaType::Avro, schema.to_owned());
        let registered = post_schema(&self.settings, subject.to_owned(), supplied)
            .await
            .map_err(|e| Error::classify(&self.url, e))?;
        tracing::info!(subject, id = registered.id, "schema registered");
        Ok(registered.id)
    }

    /// Fetches the schema with id `id`.
    pub async fn fetch(&self, id: u32) -> Result<RegisteredSchema, Error> {
        get_schema_by_id(id, &self.settings)
            .await
            .map_err(|e| Error::classify(&self.url, e))
    }

    /// Whether the Avro `schema` could be registered under `subject` given the subject's
    /// compatibility level.
    pub async fn is_compatible_avro(&self, subject: &str, schema: &str) -> Result<bool, Error> {
        let supplied = SuppliedSchema::new(None, SchemaType::Avro, schema.to_owned());
        is_compatible_schema(&self.settings, subject.to_owned(), supplied)
            .await
            .map_err(|e| Error::classify(&self.url, e))
    }
}
