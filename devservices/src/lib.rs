//! Local stand-ins for services that cannot be installed on a development machine.
//!
//! Production runs ScyllaDB and a Confluent Schema Registry; on a dev or CI machine without
//! Docker this crate provides protocol-compatible replacements, each behind a thin binary:
//!
//! - [`cql`] serves the in-memory `kassandra` CQL v4 engine on a TCP port
//!   (`doorstep-cql-server`), hardened so that a panic in the engine answers one request with a
//!   server error instead of taking the process down.
//! - [`registry`] implements the subset of the Confluent Schema Registry REST API that
//!   `schema_registry_converter` and the tests use (`doorstep-schema-registry`), with Avro
//!   BACKWARD compatibility checks.
//! - [`fakes`] are local HTTP servers speaking third-party APIs Doorstep calls — FCM HTTP v1
//!   push and Stripe refunds — with request validation, recording and fault injection
//!   (`doorstep-fake-fcm`, `doorstep-fake-payments`).
//! - [`probe`] holds protocol-level readiness probes (Kafka, CQL, HTTP) used by
//!   `doorstep-wait`, which `scripts/services` calls to wait for each service.
//!
//! [`shutdown`] and [`telemetry`] are the small pieces the binaries share.

#![warn(missing_docs)]

pub mod cql;
pub mod fakes;
pub mod probe;
pub mod registry;
pub mod shutdown;
pub mod telemetry;
