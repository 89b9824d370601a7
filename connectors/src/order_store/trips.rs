//! Trip points: the positions of the driver delivering an order, one row per accepted ping
//! (`trip_points`, partition = order). Written by the location pipeline with the ping id in
//! the key, so a replayed batch writes the same rows.

use super::{Error, OrderStore, rows};
use doorstep_schemas::model::{DriverId, EventId, GeoPoint, OrderId, Timestamp};
use futures::future::try_join_all;
use scylla::value::CqlTimestamp;

/// One position of an order's trip.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TripPoint {
    /// The order delivered.
    pub order_id: OrderId,
    /// The ping's fix time.
    pub at: Timestamp,
    /// The ping.
    pub ping_id: EventId,
    /// The driver.
    pub driver_id: DriverId,
    /// Where.
    pub location: GeoPoint,
}

impl TripPoint {
    /// A trip point.
    pub fn new(
        order_id: OrderId,
        at: Timestamp,
        ping_id: EventId,
        driver_id: DriverId,
        location: GeoPoint,
    ) -> Self {
        Self {
            order_id,
            at,
            ping_id,
            driver_id,
            location,
        }
    }
}

impl OrderStore {
    /// Writes `points` (upserts, concurrently).
    pub async fn record_trip_points(&self, points: &[TripPoint]) -> Result<(), Error> {
        try_join_all(points.iter().map(|p| async move {
            self.session
                .execute_unpaged(
                    &self.statements.insert_trip_point,
                    (
                        p.order_id.as_str(),
                        rows::ts(p.at),
                        p.ping_id.as_str(),
                        p.driver_id.as_str(),
                        p.location.lat,
                        p.location.lng,
                    ),
                )
                .await
                .map_err(Error::execute("record trip point"))
        }))
        .await?;
        Ok(())
    }

    /// The trip of `order`, oldest fix first.
    pub async fn trip(&self, order: &OrderId) -> Result<Vec<TripPoint>, Error> {
        let rows: Vec<(String, CqlTimestamp, String, String, f64, f64)> = self
            .read(&self.statements.select_trip, (order.as_str(),), "trip")
            .await?;
        let mut out: Vec<TripPoint> = rows
            .into_iter()
            .filter(|(o, ..)| o == order.as_str())
            .map(|(o, at, ping, driver, lat, lng)| TripPoint {
                order_id: OrderId::new(o),
                at: rows::from_ts(at),
                ping_id: EventId::new(ping),
                driver_id: DriverId::new(driver),
                location: GeoPoint { lat, lng },
            })
            .collect();
        out.sort_by(|a, b| (a.at, &a.ping_id).cmp(&(b.at, &b.ping_id)));
        Ok(out)
    }
}
