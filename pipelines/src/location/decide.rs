//! What a batch of pings asks of the sinks, gathered before any I/O: the filter's verdicts
//! against each driver's last accepted ping, the positions to store, tracking updates and
//! messages for drivers on a delivery, and reject records. Pure, unit-tested without services.

use crate::runtime::SourceMeta;
use crate::runtime::outbox::Kept;
use doorstep_connectors::location_store::{DriverSnapshot, PositionWrite, SourceOffset};
use doorstep_operators::location::{LastPing, LocationFilter, region_of};
use doorstep_schemas::events::{LocationPing, RejectedRecord};
use doorstep_schemas::model::{DriverId, OrderId, Timestamp, TrackingEventType, TrackingUpdate};
use std::collections::HashMap;

/// The stage name in reject records.
pub const REJECTED_BY: &str = "location";

/// Everything a batch asks of the sinks.
#[derive(Debug, Default, Clone)]
pub struct Outputs {
    /// Refused records for `orders.rejected.v1`.
    pub rejects: Vec<RejectedRecord>,
    /// Accepted pings of drivers on a delivery, for `orders.tracking.v1` and the channel.
    pub tracking: Vec<TrackingUpdate>,
    /// The last accepted position of every driver that moved, one per driver.
    pub writes: Vec<PositionWrite>,
    /// The last accepted ping per driver after the batch (the new keyed state).
    pub last: HashMap<DriverId, LastPing>,
    /// Accepted pings.
    pub accepted: usize,
    /// Pings skipped because their record was processed before a crash (the driver's stored
    /// position names it or a later record of the partition): every effect of theirs outside
    /// Kafka is done; their records come from the position's outbox.
    pub redelivered: usize,
    /// Per driver, the records this batch produces for its pings, kept with its position.
    pub kept: HashMap<DriverId, Vec<Kept>>,
}

impl Outputs {
    /// A reject record for a record that could not be read as a ping.
    pub fn unreadable(&mut self, meta: &SourceMeta<'_>, code: &str, message: String) {
        self.rejects
            .push(meta.reject(REJECTED_BY, code, message, None, None, Timestamp::now()));
    }
}

/// Judges `pings` in order. `known` is the in-memory last accepted ping per driver,
/// `snapshots` what Redis holds (the last position on first sight, the current order).
/// "Now" for staleness is each ping's `received_at`, so a replay decides the same way.
///
/// A driver judged from Redis (not in memory: a restart, a rebalance, an eviction) skips
/// the pings whose record the stored position's `source` covers: positions are written only
/// after every other sink acknowledged their batch, so those were fully processed before a
/// crash, and judging them again against their own batch's result would reject them. Their
/// records went out in a transaction that did not commit (else their offsets would have
/// been committed with them): at the ping the stored `source` names, the batch's records of
/// the driver, `again` (the decoded outbox of its position), are produced again. Each
/// driver's write records the last of its records in the batch.
pub fn gather(
    filter: &LocationFilter,
    cell_deg: f64,
    pings: &[(SourceMeta<'_>, LocationPing)],
    known: &HashMap<DriverId, LastPing>,
    snapshots: &HashMap<DriverId, DriverSnapshot>,
    mut again: HashMap<DriverId, Vec<Kept>>,
    out: &mut Outputs,
) {
    let mut moved: HashMap<DriverId, usize> = HashMap::new();
    let mut seen: HashMap<DriverId, SourceOffset> = HashMap::new();
    for (meta, ping) in pings {
        let driver = &ping.driver_id;
        let snapshot = snapshots.get(driver);
        let from_redis = !out.last.contains_key(driver) && !known.contains_key(driver);
        let stored = snapshot
            .and_then(|s| s.last.as_ref())
            .and_then(|p| p.source);
        if from_redis && stored.is_some_and(|s| s.covers(meta.partition, meta.offset)) {
            out.redelivered += 1;
            if stored.is_some_and(|s| s.offset == meta.offset)
                && let Some(records) = again.remove(driver)
            {
                for record in records {
                    match record {
                        Kept::Tracking(t) => out.tracking.push(t),
                        Kept::Rejected(r) => out.rejects.push(r),
                        _ => {}
                    }
                }
            }
            continue;
        }
        let source = SourceOffset {
            partition: meta.partition,
            offset: meta.offset,
        };
        seen.insert(driver.clone(), source);
        let last = out
            .last
            .get(driver)
            .or_else(|| known.get(driver))
            .cloned()
            .or_else(|| {
                snapshot.and_then(|s| s.last.as_ref()).map(|p| LastPing {
                    ping_id: p.ping_id.clone(),
                    location: p.location,
                    recorded_at: p.at,
                })
            });
        match filter.decide(last.as_ref(), ping, ping.received_at) {
            Err(why) => {
                let order = snapshot.and_then(|s| s.on_order.clone());
                let reject = meta.reject(
                    REJECTED_BY,
                    why.code(),
                    format!("ping {} of driver {driver}: {why}", ping.ping_id),
                    Some(ping.ping_id.clone()),
                    order,
                    ping.received_at,
                );
                out.kept
                    .entry(driver.clone())
                    .or_default()
                    .push(Kept::Rejected(reject.clone()));
                out.rejects.push(reject);
            }
            Ok(()) => {
                out.accepted += 1;
                out.last.insert(driver.clone(), LastPing::of(ping));
                let write = PositionWrite {
                    driver: driver.clone(),
                    location: ping.location,
                    at: ping.recorded_at,
                    ping_id: ping.ping_id.clone(),
                    region: region_of(ping.location, cell_deg),
                    previous_region: snapshot
                        .and_then(|s| s.last.as_ref())
                        .and_then(|p| p.region.clone()),
                    source,
                    outbox: String::new(),
                };
                match moved.get(driver) {
                    Some(&i) => out.writes[i] = write,
                    None => {
                        moved.insert(driver.clone(), out.writes.len());
                        out.writes.push(write);
                    }
                }
                if let Some(order) = snapshot.and_then(|s| s.on_order.clone()) {
                    let update = tracking_update(ping, order);
                    out.kept
                        .entry(driver.clone())
                        .or_default()
                        .push(Kept::Tracking(update.clone()));
                    out.tracking.push(update);
                }
            }
        }
    }
    for write in &mut out.writes {
        if let Some(last) = seen.get(&write.driver) {
            write.source = *last;
        }
    }
}

/// The tracking update of an accepted ping of a driver delivering `order`.
pub fn tracking_update(ping: &LocationPing, order: OrderId) -> TrackingUpdate {
    TrackingUpdate {
        update_id: ping.ping_id.clone(),
        order_id: order,
        driver_id: Some(ping.driver_id.clone()),
        driver_location: Some(ping.location),
        timestamp: ping.recorded_at,
        event_type: TrackingEventType::LocationUpdate,
        status: None,
        status_seq: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use doorstep_connectors::location_store::StoredPosition;
    use doorstep_schemas::model::{EventId, GeoPoint};

    const T0: i64 = 1_700_000_000_000;

    fn ping(id: &str, driver: &str, lat: f64, at: i64) -> LocationPing {
        LocationPing {
            ping_id: EventId::new(id),
            driver_id: DriverId::new(driver),
            location: GeoPoint { lat, lng: 24.94 },
            accuracy_m: None,
            heading_deg: None,
            speed_mps: None,
            recorded_at: Timestamp::from_millis(at),
            received_at: Timestamp::from_millis(at + 100),
        }
    }

    fn meta() -> SourceMeta<'static> {
        SourceMeta {
            topic: "drivers.locations.v1",
            partition: 0,
            offset: 7,
            key: Some(b"d-1"),
            payload: b"x",
        }
    }

    #[test]
    fn one_write_per_driver_tracking_only_on_delivery_rejects_with_reasons() {
        let pings = vec![
            (meta(), ping("p1", "d-1", 60.170, T0)),
            (meta(), ping("p2", "d-1", 60.1702, T0 + 5_000)),
            (meta(), ping("p2", "d-1", 60.1702, T0 + 5_000)), // duplicate
            (meta(), ping("p0", "d-1", 60.1702, T0 - 5_000)), // out of order
            (meta(), ping("p3", "d-1", 60.30, T0 + 10_000)),  // impossible speed
            (meta(), ping("q1", "d-2", 60.60, T0)),
        ];
        let mut snapshots = HashMap::new();
        let snap = |on: Option<&str>, region: Option<&str>| DriverSnapshot {
            on_order: on.map(OrderId::new),
            last: region.map(|r| StoredPosition {
                location: GeoPoint {
                    lat: 60.599,
                    lng: 24.94,
                },
                at: Timestamp::from_millis(T0 - 60_000),
                ping_id: EventId::new("q0"),
                region: Some(r.to_owned()),
                source: None,
                outbox: String::new(),
            }),
        };
        snapshots.insert(DriverId::new("d-1"), snap(Some("o-1"), None));
        snapshots.insert(DriverId::new("d-2"), snap(None, Some("59.50:24.50")));
        let mut out = Outputs::default();
        gather(
            &LocationFilter::default(),
            0.5,
            &pings,
            &HashMap::new(),
            &snapshots,
            HashMap::new(),
            &mut out,
        );
        assert_eq!(out.accepted, 3);
        let codes: Vec<_> = out.rejects.iter().map(|r| r.reason_code.as_str()).collect();
        assert_eq!(codes, ["duplicate", "out_of_order", "impossible_speed"]);
        assert!(out.rejects.iter().all(|r| r.rejected_by == "location"));
        assert_eq!(out.rejects[0].order_id, Some(OrderId::new("o-1")));
        assert_eq!(out.writes.len(), 2);
        assert_eq!(out.writes[0].ping_id, EventId::new("p2"));
        assert_eq!(out.writes[0].region, "60.00:24.50");
        assert_eq!(
            out.writes[1].previous_region.as_deref(),
            Some("59.50:24.50")
        );
        assert_eq!(out.writes[1].region, "60.50:24.50");
        let ids: Vec<_> = out.tracking.iter().map(|t| t.update_id.as_str()).collect();
        assert_eq!(ids, ["p1", "p2"]);
        assert!(out.tracking.iter().all(|t| t.order_id.as_str() == "o-1"));
        assert_eq!(out.last[&DriverId::new("d-1")].ping_id, EventId::new("p2"));
    }

    #[test]
    fn records_the_stored_position_names_are_skipped_as_processed() {
        let at = |offset: i64, p: LocationPing| {
            let mut m = meta();
            m.offset = offset;
            (m, p)
        };
        let pings = vec![
            at(10, ping("p1", "d-1", 60.1700, T0)),
            at(11, ping("p2", "d-1", 60.1702, T0 + 5_000)),
            at(12, ping("p9", "d-1", 60.9000, T0 + 6_000)), // impossible
            at(13, ping("p3", "d-1", 60.1704, T0 + 10_000)),
            at(14, ping("p4", "d-1", 60.1706, T0 + 15_000)),
        ];
        // A crash after the positions of the batch up to offset 12 were written.
        let stored = |partition: i32| DriverSnapshot {
            on_order: Some(OrderId::new("o-1")),
            last: Some(StoredPosition {
                location: GeoPoint {
                    lat: 60.1702,
                    lng: 24.94,
                },
                at: Timestamp::from_millis(T0 + 5_000),
                ping_id: EventId::new("p2"),
                region: Some("60.00:24.50".into()),
                source: Some(SourceOffset {
                    partition,
                    offset: 12,
                }),
                outbox: String::new(),
            }),
        };
        let run_with = |snapshot: DriverSnapshot,
                        known: HashMap<DriverId, LastPing>,
                        again: HashMap<DriverId, Vec<Kept>>| {
            let mut out = Outputs::default();
            let snapshots = HashMap::from([(DriverId::new("d-1"), snapshot)]);
            gather(
                &LocationFilter::default(),
                0.5,
                &pings,
                &known,
                &snapshots,
                again,
                &mut out,
            );
            out
        };
        let run = |snapshot, known| run_with(snapshot, known, HashMap::new());
        let out = run(stored(0), HashMap::new());
        assert_eq!((out.redelivered, out.accepted), (3, 2));
        assert!(out.rejects.is_empty(), "{:?}", out.rejects);
        let ids: Vec<_> = out.tracking.iter().map(|t| t.update_id.as_str()).collect();
        assert_eq!(ids, ["p3", "p4"]);
        assert_eq!(out.writes[0].source.to_string(), "0:14");

        // The stored position's outbox (the aborted batch's records of the driver) is
        // produced again at the record the position names, once.
        let first = run(stored(0), HashMap::new());
        let kept_before: Vec<Kept> = [&pings[0], &pings[1]]
            .iter()
            .map(|(_, p)| Kept::Tracking(tracking_update(p, OrderId::new("o-1"))))
            .collect();
        let again = HashMap::from([(DriverId::new("d-1"), kept_before)]);
        let out = run_with(stored(0), HashMap::new(), again);
        let ids: Vec<_> = out.tracking.iter().map(|t| t.update_id.as_str()).collect();
        assert_eq!(ids, ["p1", "p2", "p3", "p4"]);
        assert_eq!(
            out.kept, first.kept,
            "only this batch's records are kept anew"
        );

        // Another partition's offsets say nothing about these records: judged as usual.
        let out = run(stored(1), HashMap::new());
        assert_eq!(out.redelivered, 0);
        let codes: Vec<_> = out.rejects.iter().map(|r| r.reason_code.as_str()).collect();
        assert_eq!(codes, ["out_of_order", "duplicate", "impossible_speed"]);

        // A driver in memory was never lost: nothing is skipped.
        let known = HashMap::from([(
            DriverId::new("d-1"),
            LastPing::of(&ping("p0", "d-1", 60.1698, T0 - 5_000)),
        )]);
        let out = run(stored(0), known);
        assert_eq!((out.redelivered, out.accepted), (0, 4));
    }
}
