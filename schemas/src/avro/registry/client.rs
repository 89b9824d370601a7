//! The registry calls the codec needs, on `schema_registry_converter`: register a schema
//! under a subject, look one up without registering it, fetch a schema by id. Errors are classified from the library's
//! `SRCError`: an answer with a registry error body is [`RegistryError::Rejected`], a failed
//! HTTP exchange is [`RegistryError::Unreachable`].

use super::error::RegistryError;
use schema_registry_converter::async_impl::schema_registry::{
    SrSettings, get_schema_by_id, perform_sr_call, post_schema,
};
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{
    RawError, SchemaType, SrCall, SuppliedSchema,
};
use std::time::Duration;

/// The registry's "schema not found" error codes.
const NOT_FOUND: [u32; 2] = [40403, 404];
/// The registry's "subject not found" and "schema not found" error codes of a lookup.
const NOT_REGISTERED: [u32; 3] = [40401, 40403, 404];
/// The registry's "incompatible schema" error code (HTTP 409 carries it).
const INCOMPATIBLE: u32 = 409;

/// A client for one registry.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    settings: SrSettings,
    url: String,
}

impl Client {
    /// A client for `url`; every request is bounded by `timeout`.
    pub(crate) fn new(url: &str, timeout: Duration) -> Result<Self, RegistryError> {
        let url = url.trim_end_matches('/').to_owned();
        let settings = SrSettings::new_builder(url.clone())
            .set_timeout(timeout)
            .build()
            .map_err(|e| RegistryError::Config {
                url: url.clone(),
                source: Box::new(e),
            })?;
        Ok(Self { settings, url })
    }

    /// The registry URL.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Registers the Avro `schema` under `subject`; the registry's id for it.
    pub(crate) async fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let supplied = SuppliedSchema::new(None, SchemaType::Avro, schema.to_owned());
        post_schema(&self.settings, subject.to_owned(), supplied)
            .await
            .map(|registered| registered.id)
            .map_err(
                |e| match self.classify(format!("register subject {subject}"), e) {
                    RegistryError::Rejected {
                        error_code,
                        message,
                        ..
                    } if error_code == INCOMPATIBLE => RegistryError::Incompatible {
                        subject: subject.to_owned(),
                        message,
                    },
                    other => other,
                },
            )
    }

    /// The id the registry gave the Avro `schema` under `subject`, without registering it.
    pub(crate) async fn lookup(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let body = serde_json::json!({ "schema": schema }).to_string();
        let not_registered = || RegistryError::NotRegistered {
            subject: subject.to_owned(),
        };
        match perform_sr_call(&self.settings, SrCall::PostForVersion(subject, &body)).await {
            Ok(raw) => raw.id.ok_or_else(not_registered),
            Err(e) => match self.classify(format!("look up subject {subject}"), e) {
                RegistryError::Rejected { error_code, .. }
                    if NOT_REGISTERED.contains(&error_code) =>
                {
                    Err(not_registered())
                }
                other => Err(other),
            },
        }
    }

    /// The Avro schema text with id `id`, or `None` if the registry has no such id.
    pub(crate) async fn fetch(&self, id: u32) -> Result<Option<String>, RegistryError> {
        match get_schema_by_id(id, &self.settings).await {
            Ok(schema) if schema.schema_type == SchemaType::Avro => Ok(Some(schema.schema)),
            Ok(schema) => Err(RegistryError::InvalidSchema {
                id,
                message: format!("it is a {:?} schema", schema.schema_type),
            }),
            Err(e) => match self.classify(format!("fetch schema {id}"), e) {
                RegistryError::Rejected { error_code, .. } if NOT_FOUND.contains(&error_code) => {
                    Ok(None)
                }
                other => Err(other),
            },
        }
    }

    fn classify(&self, request: String, e: SRCError) -> RegistryError {
        if e.retriable {
            // No answer, or 502/503 from a proxy in front of the registry.
            return RegistryError::Unreachable {
                url: self.url.clone(),
                source: Box::new(e),
            };
        }
        let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&e);
        while let Some(s) = source {
            if let Some(raw) = s.downcast_ref::<RawError>() {
                return RegistryError::Rejected {
                    request,
                    error_code: raw.error_code,
                    message: raw.message.clone(),
                };
            }
            source = s.source();
        }
        RegistryError::Other {
            request,
            source: Box::new(e),
        }
    }
}
