//! Local stand-ins for services that cannot be installed on a development machine.
//!
//! Production runs a Confluent Schema Registry and calls FCM and Stripe; on a dev or CI machine
//! this crate provides protocol-compatible replacements, each behind a thin binary:
//!
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

pub mod fakes;
pub mod probe;
pub mod registry;
pub mod shutdown;
pub mod telemetry;
