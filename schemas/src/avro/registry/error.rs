//! [`RegistryError`]: what can go wrong talking to the schema registry.

use crate::avro::error::{BoxError, CatalogError};

/// A failed schema registry request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The HTTP client could not be built from the settings.
    #[error("invalid schema registry settings for {url}: {source}")]
    Config {
        /// The registry URL.
        url: String,
        /// The library's error.
        #[source]
        source: BoxError,
    },
    /// The registry did not answer (connection refused, timeout, 502/503).
    #[error(
        "schema registry at {url} is unreachable (is it running? `scripts/services up` starts the local one): {source}"
    )]
    Unreachable {
        /// The registry URL.
        url: String,
        /// The library's error.
        #[source]
        source: BoxError,
    },
    /// The registry answered with an error: 409 (incompatible schema), 42201 (invalid
    /// schema), 40401/40403 (not found), ...
    #[error("schema registry refused to {request}: error {error_code}: {message}")]
    Rejected {
        /// What was asked (`register subject ...`, `fetch schema ...`).
        request: String,
        /// The registry's `error_code`.
        error_code: u32,
        /// The registry's `message`.
        message: String,
    },
    /// The registry refused to register a schema under `subject`: its compatibility rule
    /// (BACKWARD by default) forbids the change from the subject's latest version.
    #[error(
        "schema registry refused the schema of subject {subject} as incompatible with its latest version: {message}"
    )]
    Incompatible {
        /// The subject.
        subject: String,
        /// The registry's reason.
        message: String,
    },
    /// The subject does not hold the schema and registering is off.
    #[error(
        "subject {subject} does not hold this build's schema and registering is off \
         (schemas.auto_register = false): run `doorstep topics ensure` first, or turn it on"
    )]
    NotRegistered {
        /// The subject.
        subject: String,
    },
    /// The registry returned a schema that is not Avro, or that apache-avro cannot parse.
    #[error("schema {id} from the registry is not a usable Avro schema: {message}")]
    InvalidSchema {
        /// The schema id.
        id: u32,
        /// What is wrong with it.
        message: String,
    },
    /// The embedded schemas to register did not load.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// Any other failure (an answer that does not parse, ...).
    #[error("schema registry request to {request} failed: {source}")]
    Other {
        /// What was asked.
        request: String,
        /// The library's error.
        #[source]
        source: BoxError,
    },
}

impl RegistryError {
    /// Whether the same request can succeed later (the registry was down or overloaded).
    pub fn is_retriable(&self) -> bool {
        match self {
            RegistryError::Unreachable { .. } => true,
            RegistryError::Rejected { error_code, .. } => *error_code >= 50000,
            _ => false,
        }
    }
}
