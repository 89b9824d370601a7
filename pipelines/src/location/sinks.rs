//! The location pipeline's sinks: the Kafka records (tracking updates, rejects), the trip
//! points (ScyllaDB), the live frames and the drivers' positions (Redis), each one round trip
//! or one concurrent burst per batch. The order they run in is the stage's
//! ([`super`]'s module docs).

use super::Outputs;
use crate::runtime::{Emitter, StageError};
use doorstep_connectors::driver_orders::DriverOrders;
use doorstep_connectors::live_feed::LiveFeed;
use doorstep_connectors::location_store::LocationStore;
use doorstep_connectors::order_store::{OrderStore, TripPoint};
use doorstep_schemas::live::{LiveEvent, LiveLocation};
use doorstep_schemas::model::TrackingUpdate;
use std::collections::HashMap;

/// The full names of the topics the location pipeline writes.
#[derive(Debug, Clone)]
pub struct LocationTopics {
    /// `orders.tracking.v1`.
    pub tracking: String,
    /// `orders.rejected.v1`.
    pub rejected: String,
}

/// Where the location stage reads and writes.
#[derive(Clone)]
pub struct LocationSinks {
    /// Tracking updates and rejects (and the schemas the stage decodes with).
    pub emitter: Emitter,
    /// Topic names.
    pub topics: LocationTopics,
    /// Driver positions.
    pub store: LocationStore,
    /// The orders' live channels.
    pub live: LiveFeed,
    /// Trip points of orders being delivered.
    pub trips: OrderStore,
    /// The driver → order cache (following the drivers' changes).
    pub orders: DriverOrders,
}

impl LocationSinks {
    /// Produces the tracking updates and rejects; waits for every acknowledgement. Rejects
    /// are keyed by order, or by the original record key (the driver id) for a ping of a
    /// driver not on one ([`RejectedRecord::topic_key`](doorstep_schemas::events::RejectedRecord::topic_key)).
    pub async fn kafka(&self, out: &Outputs) -> Result<(), StageError> {
        let mut records = Vec::with_capacity(out.tracking.len() + out.rejects.len());
        for t in &out.tracking {
            records.push(self.emitter.encode(&self.topics.tracking, t)?);
        }
        for r in &out.rejects {
            records.push(self.emitter.encode(&self.topics.rejected, r)?);
        }
        self.emitter.send_all(&records).await
    }

    /// Stores the positions (GEO sets, driver hashes); returns how many commands ran.
    pub async fn positions(&self, out: &Outputs) -> Result<usize, StageError> {
        Ok(self.store.write_positions(&out.writes).await?)
    }

    /// Writes the trip points of the drivers on a delivery.
    pub async fn trips(&self, out: &Outputs) -> Result<(), StageError> {
        if out.tracking.is_empty() {
            return Ok(());
        }
        let points: Vec<TripPoint> = out.tracking.iter().filter_map(trip_point).collect();
        Ok(self.trips.record_trip_points(&points).await?)
    }

    /// Publishes the accepted positions on the orders' live channels; with `conflate`, only
    /// the latest of each order. Returns how many frames went out.
    pub async fn publish(&self, out: &Outputs, conflate: bool) -> Result<usize, StageError> {
        let events = frames(&out.tracking, conflate);
        self.live.publish_all(&events).await?;
        Ok(events.len())
    }
}

/// The trip point of a tracking update.
fn trip_point(t: &TrackingUpdate) -> Option<TripPoint> {
    Some(TripPoint::new(
        t.order_id.clone(),
        t.timestamp,
        t.update_id.clone(),
        t.driver_id.clone()?,
        t.driver_location?,
    ))
}

/// The live frames of `tracking` (in order); with `conflate`, only each order's last one.
fn frames(tracking: &[TrackingUpdate], conflate: bool) -> Vec<LiveEvent> {
    if !conflate {
        return tracking.iter().filter_map(live_location).collect();
    }
    let mut latest: HashMap<&doorstep_schemas::model::OrderId, usize> = HashMap::new();
    for (i, t) in tracking.iter().enumerate() {
        latest.insert(&t.order_id, i);
    }
    tracking
        .iter()
        .enumerate()
        .filter(|(i, t)| latest.get(&t.order_id) == Some(i))
        .filter_map(|(_, t)| live_location(t))
        .collect()
}

/// The live frame of a tracking update (one of a driver on a delivery).
fn live_location(t: &TrackingUpdate) -> Option<LiveEvent> {
    Some(LiveEvent::Location(LiveLocation {
        order_id: t.order_id.clone(),
        update_id: t.update_id.clone(),
        driver_id: t.driver_id.clone()?,
        location: t.driver_location?,
        at: t.timestamp,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use doorstep_schemas::model::{
        DriverId, EventId, GeoPoint, OrderId, Timestamp, TrackingEventType,
    };

    fn update(id: &str, order: &str) -> TrackingUpdate {
        TrackingUpdate {
            update_id: EventId::new(id),
            order_id: OrderId::new(order),
            driver_id: Some(DriverId::new(format!("d-{order}"))),
            driver_location: Some(GeoPoint {
                lat: 60.17,
                lng: 24.94,
            }),
            timestamp: Timestamp::from_millis(1_700_000_000_000),
            event_type: TrackingEventType::LocationUpdate,
            status: None,
            status_seq: None,
        }
    }

    #[test]
    fn conflation_keeps_the_last_frame_of_each_order_in_batch_order() {
        let tracking = [
            update("a1", "o-a"),
            update("b1", "o-b"),
            update("a2", "o-a"),
            update("c1", "o-c"),
            update("a3", "o-a"),
        ];
        let ids = |conflate| -> Vec<String> {
            frames(&tracking, conflate)
                .iter()
                .map(|e| match e {
                    LiveEvent::Location(l) => l.update_id.as_str().to_owned(),
                    other => panic!("not a location frame: {other:?}"),
                })
                .collect()
        };
        assert_eq!(ids(true), ["b1", "c1", "a3"]);
        assert_eq!(ids(false), ["a1", "b1", "a2", "c1", "a3"]);
    }
}
