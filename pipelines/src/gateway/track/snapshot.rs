//! The `snapshot` frame a customer gets on connect: the order's current status and timeline
//! (order store), the driver's last position (`GEOPOS` of the driver's region set, fix time
//! from the driver hash), the current ETA, and the sequence number it already reflects.

use doorstep_operators::order::OrderState;
use doorstep_schemas::events::EtaUpdate;
use doorstep_schemas::live::{FrameKind, LiveDriver};
use doorstep_schemas::model::{Order, OrderStatus, StatusHistoryEntry};
use serde::Serialize;

/// The snapshot frame.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotFrame {
    /// Always `snapshot`.
    #[serde(rename = "type")]
    pub kind: FrameKind,
    /// The last sequence number already reflected: later live frames have higher numbers.
    pub seq: u64,
    /// The order.
    pub order_id: String,
    /// The current status; `null` while the order is not saved yet (just placed).
    pub status: Option<OrderStatus>,
    /// The order row (parties, items, locations), `null` while not saved yet.
    pub order: Option<Order>,
    /// Every accepted change, oldest first.
    pub timeline: Vec<StatusHistoryEntry>,
    /// The assigned driver and their last known position.
    pub driver: Option<LiveDriver>,
    /// The current ETA, when one was computed.
    pub eta: Option<EtaUpdate>,
    /// `false` when the client asked to resume (`?since=`) and could not: this snapshot
    /// replaces what it had. Absent on a plain connect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovered: Option<bool>,
}

impl SnapshotFrame {
    /// Puts the parts together. `seq` must have been read *before* the other parts, so
    /// that every frame numbered up to it is reflected in them.
    pub fn new(
        seq: u64,
        order_id: &str,
        state: Option<OrderState>,
        driver: Option<LiveDriver>,
        eta: Option<EtaUpdate>,
    ) -> Self {
        let (status, order, timeline) = match state {
            Some(s) => (Some(s.order.status), Some(s.order), s.history),
            None => (None, None, Vec::new()),
        };
        let over = matches!(
            status,
            Some(OrderStatus::Delivered | OrderStatus::Cancelled)
        );
        Self {
            kind: FrameKind::Snapshot,
            seq,
            order_id: order_id.to_owned(),
            status,
            order,
            timeline,
            driver,
            // An ETA of an order that is over is history, not an estimate.
            eta: eta.filter(|_| !over),
            recovered: None,
        }
    }

    /// Marks it as the answer to a resume that could not be served.
    pub fn not_recovered(mut self) -> Self {
        self.recovered = Some(false);
        self
    }

    /// The highest timeline entry number it shows (`None` with an empty timeline).
    pub fn last_entry(&self) -> Option<u32> {
        self.timeline.iter().map(|e| e.seq).max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_order_has_no_status_and_the_type_is_snapshot() {
        let f = SnapshotFrame::new(4, "o-1", None, None, None);
        let json = serde_json::to_value(&f).unwrap();
        assert_eq!(json["type"], "snapshot");
        assert_eq!(json["seq"], 4);
        assert_eq!(json["status"], serde_json::Value::Null);
        assert_eq!(json["timeline"], serde_json::json!([]));
        assert!(json.get("recovered").is_none(), "{json}");
        let json = serde_json::to_value(f.not_recovered()).unwrap();
        assert_eq!(json["recovered"], false);
    }
}
