//! # doorstep-schemas
//!
//! The bottom of Doorstep's dependency graph: the domain model ([`model`]) and the records
//! carried on every Kafka topic ([`events`]), with their Avro contracts ([`avro`]: the
//! `.avsc` files, the codec of the Confluent wire format with ids from a schema
//! registry), and the JSON live-tracking
//! frames of an order's channel and WebSocket ([`live`]), and the outcome of a command as its
//! sender reads it ([`outcome`]).
//!
//! Dependency direction: `pipelines → connectors → operators → schemas`.

pub mod avro;
pub mod events;
pub mod live;
pub mod model;
pub mod outcome;
