//! The live-tracking contract: what is published on an order's Redis channel and what a
//! customer's WebSocket (`GET /v1/orders/{order_id}/track`) receives. JSON, not Avro: it never
//! goes through Kafka.
//!
//! Every frame is one JSON object with a `type` and a per-order `seq`:
//!
//! - `snapshot` (sent on connect, and on a reconnect that cannot resume): the current status,
//!   the timeline, the driver's last position and the current ETA, and `seq`, the last
//!   sequence number the snapshot already reflects. Live frames with a `seq` at or below it
//!   can be ignored. A client that asked to resume (`?since=SEQ`) and gets a snapshot instead
//!   sees `recovered: false` in it.
//! - `resumed` ([`LiveResumed`], `recovered: true`): the first frame of a reconnect that
//!   resumes after `since`: the status, ETA and rejected frames numbered after `since` follow
//!   as they were published, oldest first, with the order's latest location among them in its
//!   `seq` place (when newer than `since`), then the live frames.
//! - `location`, `status`, `eta` ([`LiveEvent`]): live changes. `seq` grows by one per
//!   published event of the order, so a gap tells a client it missed something (a
//!   conflated location, or anything while it was away: reconnect with `since`).
//! - `rejected` ([`LiveRejected`]): one of the order's customer's own commands (a
//!   cancellation, say) was refused, and why. Only the customer's commands: what the
//!   restaurant, the driver or dispatch asked is theirs to learn, through the command's
//!   outcome ([`crate::outcome`]). It changes nothing, so no snapshot reflects it.
//!
//! Publishers ([`LiveEvent`] → channel) add `seq` atomically with the publish (a Redis script
//! `INCR`s the order's counter and publishes `{"seq":N,` + the event's JSON without its `{`),
//! so the gateway forwards the published bytes as they are.

use crate::events::EtaUpdate;
use crate::model::{
    DriverId, EventId, GeoPoint, OrderId, OrderStatus, StatusHistoryEntry, Timestamp,
};
use serde::{Deserialize, Serialize};

/// A live change of an order, as published on its channel (without `seq`, which the
/// publishing script adds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveEvent {
    /// The driver delivering the order moved.
    Location(LiveLocation),
    /// The order changed status (or was assigned a driver): one new timeline entry.
    Status(LiveStatus),
    /// A new ETA.
    Eta(EtaUpdate),
    /// One of the customer's own commands was refused.
    Rejected(LiveRejected),
}

impl LiveEvent {
    /// The order it belongs to.
    pub fn order_id(&self) -> &OrderId {
        match self {
            Self::Location(l) => &l.order_id,
            Self::Status(s) => &s.order_id,
            Self::Eta(e) => &e.order_id,
            Self::Rejected(r) => &r.order_id,
        }
    }

    /// Whether a newer event of the same kind replaces it entirely (so a slow client may skip
    /// it): locations only. Status changes and ETAs are always delivered.
    pub fn is_conflatable(&self) -> bool {
        matches!(self, Self::Location(_))
    }
}

/// A driver position on an order's channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveLocation {
    /// The order.
    pub order_id: OrderId,
    /// The ping it comes from (unique: a client may de-duplicate by it).
    pub update_id: EventId,
    /// The driver.
    pub driver_id: DriverId,
    /// Where.
    pub location: GeoPoint,
    /// The fix time.
    pub at: Timestamp,
}

/// A status change on an order's channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveStatus {
    /// The order.
    pub order_id: OrderId,
    /// The status after the change.
    pub status: OrderStatus,
    /// The new timeline entry (a client may de-duplicate by `entry.seq`).
    pub entry: StatusHistoryEntry,
}

/// A command of the order's customer that the state machine refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveRejected {
    /// The order.
    pub order_id: OrderId,
    /// The refused command's event id (what the gateway answered when it was sent).
    pub event_id: EventId,
    /// What was asked: `place`, `assign_driver`, `transition` or `cancel`.
    pub command: String,
    /// The stable reason code (`cancellation_refused`, ...).
    pub reason: String,
    /// The sentence that explains it.
    pub message: String,
    /// When the command was sent.
    pub at: Timestamp,
}

/// The driver part of a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveDriver {
    /// The driver.
    pub driver_id: DriverId,
    /// The last known position (`GEOPOS` of the driver's region set), when known.
    pub location: Option<GeoPoint>,
    /// The fix time of that position, when known.
    pub at: Option<Timestamp>,
}

/// The first frame of a resumed connection: the frames after `seq` follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveResumed {
    /// Always `resumed`.
    #[serde(rename = "type")]
    pub kind: FrameKind,
    /// The `since` the client resumes after: the frames that follow are numbered above it.
    pub seq: u64,
    /// Always `true`: nothing after `seq` is missing.
    pub recovered: bool,
}

impl LiveResumed {
    /// The frame of a client resuming after `since`.
    pub fn new(since: u64) -> Self {
        Self {
            kind: FrameKind::Resumed,
            seq: since,
            recovered: true,
        }
    }
}

/// The frame header a forwarder reads without parsing the whole event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct FrameHeader {
    /// The per-order sequence number.
    pub seq: u64,
    /// The frame type.
    #[serde(rename = "type")]
    pub kind: FrameKind,
}

/// The frame types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameKind {
    /// The connect-time snapshot.
    Snapshot,
    /// A driver position.
    Location,
    /// A status change.
    Status,
    /// An ETA.
    Eta,
    /// A refused command of the customer.
    Rejected,
    /// The start of a resumed connection.
    Resumed,
}

impl FrameKind {
    /// Whether a newer frame of the same kind replaces it (see [`LiveEvent::is_conflatable`]).
    pub fn is_conflatable(self) -> bool {
        self == Self::Location
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_serializes_with_its_type_and_header_reads_back() {
        let event = LiveEvent::Location(LiveLocation {
            order_id: OrderId::new("o-1"),
            update_id: EventId::new("p-1"),
            driver_id: DriverId::new("d-1"),
            location: GeoPoint {
                lat: 60.17,
                lng: 24.94,
            },
            at: Timestamp::from_millis(1_700_000_000_000),
        });
        let json = serde_json::to_string(&event).unwrap();
        assert!(json.starts_with("{\"type\":\"location\""), "{json}");
        // What the publishing script makes of it.
        let frame = format!("{{\"seq\":7,{}", &json[1..]);
        let header: FrameHeader = serde_json::from_str(&frame).unwrap();
        assert_eq!(header.seq, 7);
        assert_eq!(header.kind, FrameKind::Location);
        assert!(header.kind.is_conflatable());
        let back: LiveEvent = serde_json::from_str(&frame).unwrap();
        assert_eq!(back, event);
        assert!(back.is_conflatable());
    }
}
