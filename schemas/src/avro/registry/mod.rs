//! The schema registry side of the codec: where the registry is ([`RegistryConfig`]), the
//! calls [`Catalog::connect`](super::Catalog::connect) and decoding make (register, look up,
//! fetch by id, all through `schema_registry_converter`) and what can go wrong with them
//! ([`RegistryError`]). The wire format and the Avro encoding are the catalog's.

mod client;
mod error;

pub use error::RegistryError;

pub(crate) use client::Client;
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
    /// Register the current schemas (`true`), or only look them up and refuse to start when
    /// a subject lacks one (`false`).
    pub register: bool,
}

impl RegistryConfig {
    /// The registry at `url`, no topic prefix, 10 s timeout, registering.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            topic_prefix: String::new(),
            timeout: Duration::from_secs(10),
            register: true,
        }
    }

    /// Registering the schemas (`true`) or only looking them up (`false`).
    pub fn with_register(mut self, register: bool) -> Self {
        self.register = register;
        self
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
