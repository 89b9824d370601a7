//! # doorstep-schemas
//!
//! The bottom of Doorstep's dependency graph: the domain model ([`model`]) and the records
//! carried on every Kafka topic ([`events`]), with their Avro contracts.
//!
//! Dependency direction: `pipelines → connectors → operators → schemas`.

pub mod events;
pub mod model;
