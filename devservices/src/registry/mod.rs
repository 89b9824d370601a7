//! A Confluent Schema Registry stand-in: the REST API subset that `schema_registry_converter`
//! and the Doorstep tests use, with the real API's paths, JSON shapes and error codes.
//!
//! - [`avro`]: parsing, canonical text and reader/writer compatibility of Avro schemas.
//! - [`level`]: compatibility levels (`BACKWARD`, `FULL_TRANSITIVE`, ...) and what each checks.
//! - [`store`]: the registry state (schemas by global id, versions per subject, configs) and
//!   its operations, independent of HTTP.
//! - [`api`]: request and response bodies as the Confluent API spells them.
//! - [`error`]: API errors (`{"error_code": 40401, "message": ...}`) and their HTTP statuses.
//! - [`routes`]: the axum router mapping the REST paths onto the store.
//! - [`persist`]: optional JSON-file persistence of the store.
//!
//! Only Avro schemas are accepted (`schemaType` absent or `"AVRO"`). Deletion, modes, contexts
//! and metadata rules are not implemented.

pub mod api;
pub mod avro;
pub mod error;
pub mod level;
pub mod persist;
pub mod routes;
pub mod store;

pub use error::ApiError;
pub use level::Level;
pub use routes::{AppState, router};
pub use store::Registry;
