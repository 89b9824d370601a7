//! Request and response bodies, as the Confluent Schema Registry API spells them.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// The registry's JSON content type.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// A JSON response with the registry's content type.
pub struct ApiJson<T>(pub T);

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(body) => {
                let mut response = body.into_response();
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
                response
            }
            Err(err) => (
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot serialise response: {err}"),
            )
                .into_response(),
        }
    }
}

/// A reference from one schema to a named type registered under another subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Reference {
    /// The referenced type's full name, as used inside the referring schema.
    pub name: String,
    /// Subject the referenced schema is registered under.
    pub subject: String,
    /// Version of the referenced schema under that subject.
    pub version: u32,
}

/// Body of `POST /subjects/{s}/versions`, `POST /subjects/{s}` and compatibility checks.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaRequest {
    /// The schema text (JSON, as a string).
    pub schema: String,
    /// `AVRO` (the default when absent); other types are refused.
    #[serde(default)]
    pub schema_type: Option<String>,
    /// References to schemas under other subjects.
    #[serde(default)]
    pub references: Vec<Reference>,
}

/// `{"id": N}`, the answer to a registration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IdResponse {
    /// The global schema id.
    pub id: u32,
}

/// `{"schema": "..."}`, the answer to `GET /schemas/ids/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SchemaString {
    /// The schema text.
    pub schema: String,
    /// References, omitted when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<Reference>,
}

/// `{subject, id, version, schema}`: a schema under a subject.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SubjectVersion {
    /// The subject.
    pub subject: String,
    /// The global schema id.
    pub id: u32,
    /// The version under the subject (from 1).
    pub version: u32,
    /// The schema text.
    pub schema: String,
    /// References, omitted when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<Reference>,
}

/// `{"is_compatible": bool}` (with `messages` when `?verbose=true`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CompatibilityResponse {
    /// Whether the schema passes the check.
    pub is_compatible: bool,
    /// Why not, when asked for with `verbose=true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<String>>,
}

/// `GET /config` answer: `{"compatibilityLevel": "BACKWARD"}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ConfigResponse {
    /// The level in force.
    pub compatibility_level: String,
}

/// `PUT /config` body and answer: `{"compatibility": "FULL"}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConfigUpdate {
    /// The level to set.
    pub compatibility: String,
}
