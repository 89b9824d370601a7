//! Topic names (DESIGN.md). Deployments may prefix them (tests do, to run in parallel).

/// Requests from apps: place, assign driver, transition, cancel. Key: order id.
pub const ORDER_EVENTS: &str = "orders.events.v1";
/// Accepted transitions: the canonical stream for analytics. Key: order id.
pub const ORDER_STATUS: &str = "orders.status.v1";
/// Rejected or undecodable records with a reason. Key: order id (or the original key).
pub const ORDER_REJECTED: &str = "orders.rejected.v1";
/// GPS pings. Key: driver id.
pub const DRIVER_LOCATIONS: &str = "drivers.locations.v1";
/// Location updates tied to an order. Key: order id.
pub const ORDER_TRACKING: &str = "orders.tracking.v1";
/// ETA recomputations. Key: order id.
pub const ORDER_ETA: &str = "orders.eta.v1";
/// Push notifications to send (outbox). Key: customer id.
pub const NOTIFICATIONS: &str = "notifications.v1";

/// Every topic, for topic creation and docs.
pub const ALL: [&str; 7] = [
    ORDER_EVENTS,
    ORDER_STATUS,
    ORDER_REJECTED,
    DRIVER_LOCATIONS,
    ORDER_TRACKING,
    ORDER_ETA,
    NOTIFICATIONS,
];
