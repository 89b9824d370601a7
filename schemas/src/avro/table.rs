//! The embedded schema table: every `.avsc` file of `schemas/avro/`, compiled in, with its
//! topic, version and fixed id.
//!
//! # Ids
//!
//! Without a registry, the id in a record's header is `topic number × 100 + version`, where
//! the topic number is the topic's 1-based position in [`topics::ALL`] and the version counts
//! the subject's schemas from 1. So `orders.events.v1` version 1 is `101` and
//! `drivers.locations.v1` version 2 is `402`. The ids depend only on this table, never on
//! the order of registration or on a machine, and a test checks every entry against the rule.
//! They are meaningful only between processes using the embedded catalog: a registry assigns
//! its own ids, and the two modes must not share a topic.
//!
//! # Adding a version
//!
//! Move the current file to `history/<name>.v<N>.avsc`, write the new one in its place with
//! only Avro-compatible changes (new fields optional with `"default": null`), append the new
//! entry here with the next version, and update the Rust conversion. Old ids stay readable.

use crate::events::topics;

/// One schema file of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaFile {
    /// The id written in record headers by the embedded catalog.
    pub id: u32,
    /// The topic whose values it describes (subject `<topic>-value`).
    pub topic: &'static str,
    /// The subject version, from 1.
    pub version: u32,
    /// The file, relative to `schemas/avro/`.
    pub path: &'static str,
    /// The file's text (Avro JSON).
    pub text: &'static str,
}

macro_rules! schema_file {
    ($id:expr, $topic:expr, $version:expr, $path:literal) => {
        SchemaFile {
            id: $id,
            topic: $topic,
            version: $version,
            path: $path,
            text: include_str!(concat!("../../avro/", $path)),
        }
    };
}

/// Every schema file, oldest version first within a topic. The last entry of a topic is its
/// current schema: the one records are written with and read into.
pub const SCHEMA_FILES: [SchemaFile; 9] = [
    schema_file!(101, topics::ORDER_EVENTS, 1, "order_event.avsc"),
    schema_file!(201, topics::ORDER_STATUS, 1, "status_change.avsc"),
    schema_file!(301, topics::ORDER_REJECTED, 1, "rejected_record.avsc"),
    schema_file!(
        401,
        topics::DRIVER_LOCATIONS,
        1,
        "history/location_ping.v1.avsc"
    ),
    schema_file!(402, topics::DRIVER_LOCATIONS, 2, "location_ping.avsc"),
    schema_file!(
        501,
        topics::ORDER_TRACKING,
        1,
        "history/tracking_update.v1.avsc"
    ),
    schema_file!(502, topics::ORDER_TRACKING, 2, "tracking_update.avsc"),
    schema_file!(601, topics::ORDER_ETA, 1, "eta_update.avsc"),
    schema_file!(701, topics::NOTIFICATIONS, 1, "notification.avsc"),
];

/// The Confluent subject for a topic's values (TopicNameStrategy): `<topic>-value`.
pub fn value_subject(topic: &str) -> String {
    format!("{topic}-value")
}
