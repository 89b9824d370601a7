//! Doorstep's domain model: the one place where orders, drivers, actors and tracking
//! updates are defined. Every crate above `schemas` speaks these types; the Avro records in
//! [`crate::events`] are built from them.

mod actor;
mod driver;
mod geo;
mod ids;
mod order;
mod status;
mod time;
mod tracking;

pub use actor::{Actor, ActorKind};
pub use driver::{Driver, DriverStatus};
pub use geo::{GeoError, GeoPoint};
pub use ids::{CustomerId, DriverId, EventId, OrderId, RestaurantId};
pub use order::{Cancellation, HistoryEntryKind, Order, OrderItem, StatusHistoryEntry};
pub use status::{OrderStatus, ParseStatusError};
pub use time::Timestamp;
pub use tracking::{TrackingEventType, TrackingUpdate};
