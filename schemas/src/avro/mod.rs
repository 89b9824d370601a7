//! Avro contracts: the `.avsc` files of `schemas/avro/` compiled in, and a codec for every
//! topic record in the Confluent wire format.
//!
//! # Wire format
//!
//! Every Kafka value is `0x00` (magic byte), the writer schema's id as a 4-byte big-endian
//! integer, then the Avro binary encoding of the record ([`wire`]). Decoding reads the id,
//! finds the writer schema, decodes strictly (a short body or bytes left over are errors) and,
//! when the writer is an older or newer version, resolves the value to the current schema
//! (Avro schema resolution: added optional fields take their defaults, removed ones are
//! skipped). Then the value becomes the Rust record, with range checks (positions, `u32`
//! fields, enum symbols). Every failure is a [`DecodeError`]; nothing panics on bad bytes.
//!
//! # Where ids come from
//!
//! - [`Catalog::connect`]: every Doorstep process. Each topic's current schema is registered
//!   under the subject `<topic>-value` (TopicNameStrategy) with a Confluent-compatible
//!   registry ([`registry`], through `schema_registry_converter`); records carry the
//!   registry's ids, and unknown writer ids are fetched from the registry and cached.
//! - [`Catalog::embedded`]: no registry, ids fixed by the table in [`table`]
//!   (`topic number × 100 + version`). Codec unit tests and offline tools only.
//!
//! The schemas, the Rust conversions (`convert/`) and the Avro encoding are the same in both:
//! only where ids come from differs.
//!
//! ```
//! use doorstep_schemas::avro::Catalog;
//! use doorstep_schemas::events::EtaUpdate;
//! use doorstep_schemas::model::{OrderId, Timestamp};
//!
//! let catalog = Catalog::embedded()?;
//! let eta = EtaUpdate {
//!     order_id: OrderId::new("o-1"),
//!     computed_at: Timestamp::from_millis(1_700_000_000_000),
//!     prep_remaining_s: 300.0,
//!     pickup_travel_s: 240.0,
//!     delivery_travel_s: 600.0,
//!     estimated_delivery_at: Timestamp::from_millis(1_700_000_900_000),
//!     range_low_min: 15,
//!     range_high_min: 20,
//!     fallback: false,
//! };
//! let bytes = catalog.encode(&eta)?;
//! assert_eq!(bytes[..5], [0, 0, 0, 2, 89]); // magic byte, id 601
//! let decoded = tokio::runtime::Runtime::new()?.block_on(catalog.decode::<EtaUpdate>(&bytes))?;
//! assert_eq!(decoded, eta);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod catalog;
mod codec;
mod convert;
mod datum;
mod direct;
mod error;
mod record;
pub mod registry;
pub mod table;
pub mod wire;

pub use catalog::{Catalog, MAX_DECODE_ALLOCATION_BYTES};
pub use error::{BoxError, CatalogError, DecodeError, DomainError, EncodeError};
pub use record::TopicRecord;
pub use table::{SCHEMA_FILES, SchemaFile, value_subject};

use crate::events::{
    EtaUpdate, LocationPing, Notification, OrderEvent, RejectedRecord, StatusChange,
};
use crate::model::TrackingUpdate;

/// Every topic record: (topic, Avro record name).
pub(crate) const RECORDS: [(&str, &str); 7] = [
    (OrderEvent::TOPIC, OrderEvent::RECORD),
    (StatusChange::TOPIC, StatusChange::RECORD),
    (RejectedRecord::TOPIC, RejectedRecord::RECORD),
    (LocationPing::TOPIC, LocationPing::RECORD),
    (TrackingUpdate::TOPIC, TrackingUpdate::RECORD),
    (EtaUpdate::TOPIC, EtaUpdate::RECORD),
    (Notification::TOPIC, Notification::RECORD),
];
