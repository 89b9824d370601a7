//! The records carried on Doorstep's Kafka topics, one module per topic. Each type is the
//! Rust side of an Avro contract under `schemas/avro/`.

mod eta;
mod location;
mod notification;
mod order_event;
mod rejected;
mod status_change;
pub mod topics;

pub use eta::EtaUpdate;
pub use location::LocationPing;
pub use notification::{Notification, RecipientKind};
pub use order_event::{OrderCommand, OrderEvent, PlaceOrder};
pub use rejected::RejectedRecord;
pub use status_change::StatusChange;
