//! Driver positions in Redis: the active-drivers GEO sets (one per region), the driver's last
//! accepted position. (An order's live channel is [`crate::live_feed`]'s.)
//!
//! - `{<prefix>geo:<region>}`: a GEO set per region (see `operators::location::region_of`),
//!   member = driver id; the seed's `GEOADD active_drivers lng lat driver_id`, sharded so a
//!   Redis Cluster spreads the regions over its slots. A driver is in exactly one region set:
//!   moving to another region adds it there, then removes it from the previous one.
//! - `{<prefix>driver:<id>}`: the hash [`crate::driver_state`] keeps `status`,
//!   `current_order_id` and `updated_at` in. This module adds `lat`, `lng`, `at` (the fix time,
//!   epoch ms), `ping_id`, `region` and `source` (`<partition>:<offset>` of the ping's record
//!   on `drivers.locations.v1`), with `HSET` of its own fields only, so neither writer
//!   clobbers the other.
//!
//! Every command touches one key (or one region key), so nothing crosses a cluster slot. A
//! batch's reads are one [`Batch`] (one round trip on a single node, one pipeline per slot
//! on a cluster), and so are its writes.
//!
//! Write order per batch, for crash safety: `GEOADD` into the new region, `ZREM` from the
//! previous one, and last the hash (after a [`Batch::barrier`]). A crash before the hash write
//! leaves the previous position in the hash, so the pings are accepted and written again on
//! replay; once the hash is written, its `source` tells a re-read record that it was processed
//! (the pipeline writes positions only after its other sinks acknowledged the batch).

use crate::driver_state::{DriverState, status_str};
use crate::redis::geo::{GEOADD_CHUNK, valid_coordinate};
use crate::redis::{Batch, Error, Redis};
use doorstep_schemas::model::{DriverId, DriverStatus, EventId, GeoPoint, OrderId, Timestamp};
use redis::FromRedisValue;
use std::collections::{BTreeMap, HashMap};

/// The driver hash fields a snapshot reads, in order.
const SNAPSHOT_FIELDS: [&str; 9] = [
    "status",
    "current_order_id",
    "lat",
    "lng",
    "at",
    "ping_id",
    "region",
    "source",
    "outbox",
];

/// A driver's last stored position.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPosition {
    /// Where.
    pub location: GeoPoint,
    /// The fix time of the ping.
    pub at: Timestamp,
    /// The ping's id.
    pub ping_id: EventId,
    /// The region set the driver is in.
    pub region: Option<String>,
    /// Where the ping's record is on the source topic, when stored (older hashes lack it).
    pub source: Option<SourceOffset>,
    /// The output records of the batch that stored this position (opaque text of the
    /// pipeline's, empty when none): a re-read of that batch produces them again.
    pub outbox: String,
}

/// A record's place on its topic: partition and offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceOffset {
    /// The partition.
    pub partition: i32,
    /// The offset in it.
    pub offset: i64,
}

impl SourceOffset {
    /// Whether the record at `partition`/`offset` is this one or an earlier one of the same
    /// partition.
    pub fn covers(&self, partition: i32, offset: i64) -> bool {
        self.partition == partition && offset <= self.offset
    }

    fn parse(s: &str) -> Option<Self> {
        let (partition, offset) = s.split_once(':')?;
        Some(Self {
            partition: partition.parse().ok()?,
            offset: offset.parse().ok()?,
        })
    }
}

impl std::fmt::Display for SourceOffset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.partition, self.offset)
    }
}

/// What the location pipeline needs to know about a driver before a batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DriverSnapshot {
    /// The order the driver is delivering, when `ON_DELIVERY`.
    pub on_order: Option<OrderId>,
    /// The last stored position.
    pub last: Option<StoredPosition>,
}

/// One position to store.
#[derive(Debug, Clone, PartialEq)]
pub struct PositionWrite {
    /// The driver.
    pub driver: DriverId,
    /// Where.
    pub location: GeoPoint,
    /// The fix time.
    pub at: Timestamp,
    /// The ping's id.
    pub ping_id: EventId,
    /// The region set to be in.
    pub region: String,
    /// The region set the driver was in before, when different.
    pub previous_region: Option<String>,
    /// Where the ping's record is on the source topic.
    pub source: SourceOffset,
    /// The output records of this batch for the driver (opaque text of the pipeline's).
    pub outbox: String,
}

/// Reads and writes driver positions. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LocationStore {
    redis: Redis,
    prefix: String,
    drivers: DriverState,
}

impl LocationStore {
    /// Keys under `key_prefix` (the same prefix as [`DriverState`]).
    pub fn new(redis: Redis, key_prefix: impl Into<String>) -> Self {
        let prefix: String = key_prefix.into();
        Self {
            drivers: DriverState::new(redis.clone(), prefix.clone()),
            redis,
            prefix: prefix.replace(['{', '}'], "_"),
        }
    }

    /// The GEO set of `region`: `{<prefix>geo:<region>}`.
    pub fn geo_key(&self, region: &str) -> String {
        format!("{{{}geo:{}}}", self.prefix, region.replace(['{', '}'], "_"))
    }

    /// The hash of `driver` (shared with [`DriverState`]).
    pub fn driver_key(&self, driver: &DriverId) -> String {
        self.drivers.key(driver)
    }

    /// The snapshot of every driver in `drivers`: one `HMGET` each, all in one [`Batch`].
    pub async fn snapshots(
        &self,
        drivers: &[DriverId],
    ) -> Result<HashMap<DriverId, DriverSnapshot>, Error> {
        if drivers.is_empty() {
            return Ok(HashMap::new());
        }
        let mut batch = Batch::new();
        for driver in drivers {
            let key = self.driver_key(driver);
            let mut cmd = redis::cmd("HMGET");
            cmd.arg(&key).arg(&SNAPSHOT_FIELDS);
            batch.add(&key, "HMGET", cmd);
        }
        let replies = self.redis.run_batch(&batch).await?;
        drivers
            .iter()
            .zip(replies)
            .map(|(driver, reply)| {
                let fields = Vec::<Option<String>>::from_redis_value(reply).map_err(|source| {
                    Error::Command {
                        command: "HMGET",
                        source: source.into(),
                    }
                })?;
                Ok((driver.clone(), snapshot(&fields)))
            })
            .collect()
    }

    /// Stores `writes` (at most one per driver) in one [`Batch`]: `GEOADD` per region,
    /// `ZREM` from previous regions, then (after a barrier) the hash fields. Returns how many
    /// commands ran.
    pub async fn write_positions(&self, writes: &[PositionWrite]) -> Result<usize, Error> {
        if writes.is_empty() {
            return Ok(0);
        }
        let mut by_region: BTreeMap<String, Vec<&PositionWrite>> = BTreeMap::new();
        for w in writes {
            if !valid_coordinate(w.location.lng, w.location.lat) {
                return Err(Error::InvalidCoordinate {
                    member: w.driver.as_str().to_owned(),
                    lng: w.location.lng,
                    lat: w.location.lat,
                });
            }
            by_region
                .entry(self.geo_key(&w.region))
                .or_default()
                .push(w);
        }
        let mut batch = Batch::new();
        for (key, points) in &by_region {
            for chunk in points.chunks(GEOADD_CHUNK) {
                let mut cmd = redis::cmd("GEOADD");
                cmd.arg(key);
                for w in chunk {
                    cmd.arg(w.location.lng)
                        .arg(w.location.lat)
                        .arg(w.driver.as_str());
                }
                batch.add(key, "GEOADD", cmd);
            }
        }
        for w in writes {
            if let Some(previous) = w.previous_region.as_deref().filter(|p| *p != w.region) {
                let key = self.geo_key(previous);
                let mut cmd = redis::cmd("ZREM");
                cmd.arg(&key).arg(w.driver.as_str());
                batch.add(&key, "ZREM", cmd);
            }
        }
        batch.barrier();
        for w in writes {
            let key = self.driver_key(&w.driver);
            let mut cmd = redis::cmd("HSET");
            cmd.arg(&key)
                .arg("lat")
                .arg(w.location.lat)
                .arg("lng")
                .arg(w.location.lng)
                .arg("at")
                .arg(w.at.as_millis())
                .arg("ping_id")
                .arg(w.ping_id.as_str())
                .arg("region")
                .arg(&w.region)
                .arg("source")
                .arg(w.source.to_string())
                .arg("outbox")
                .arg(&w.outbox);
            batch.add(&key, "HSET", cmd);
        }
        self.redis.run_batch(&batch).await?;
        Ok(batch.len())
    }

    /// The position `(lng, lat)` of `driver` in `region`'s GEO set (the customer's
    /// reconnect path: `GEOPOS`).
    pub async fn position(
        &self,
        region: &str,
        driver: &DriverId,
    ) -> Result<Option<(f64, f64)>, Error> {
        self.redis
            .clone()
            .geo_pos(&self.geo_key(region), driver.as_str())
            .await
    }
}

fn snapshot(fields: &[Option<String>]) -> DriverSnapshot {
    let get = |i: usize| fields.get(i).cloned().flatten().filter(|s| !s.is_empty());
    let on_delivery = get(0).as_deref() == Some(status_str(DriverStatus::OnDelivery));
    let on_order = get(1).filter(|_| on_delivery).map(OrderId::new);
    let num = |i: usize| get(i).and_then(|s| s.parse::<f64>().ok());
    let last = match (
        num(2),
        num(3),
        get(4).and_then(|s| s.parse::<i64>().ok()),
        get(5),
    ) {
        (Some(lat), Some(lng), Some(at), Some(ping_id)) => Some(StoredPosition {
            location: GeoPoint { lat, lng },
            at: Timestamp::from_millis(at),
            ping_id: EventId::new(ping_id),
            region: get(6),
            source: get(7).as_deref().and_then(SourceOffset::parse),
            outbox: get(8).unwrap_or_default(),
        }),
        _ => None,
    };
    DriverSnapshot { on_order, last }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_read_only_complete_positions_and_orders_on_delivery() {
        let s = |v: &[Option<&str>]| {
            snapshot(&v.iter().map(|o| o.map(str::to_owned)).collect::<Vec<_>>())
        };
        let full = s(&[
            Some("ON_DELIVERY"),
            Some("o-1"),
            Some("60.17"),
            Some("24.94"),
            Some("1700000000000"),
            Some("p-1"),
            Some("60.00:24.50"),
            Some("3:1234"),
        ]);
        assert_eq!(full.on_order, Some(OrderId::new("o-1")));
        let last = full.last.expect("position");
        assert_eq!(
            last.location,
            GeoPoint {
                lat: 60.17,
                lng: 24.94
            }
        );
        assert_eq!(last.region.as_deref(), Some("60.00:24.50"));
        let source = last.source.expect("source");
        assert_eq!(source.to_string(), "3:1234");
        assert!(source.covers(3, 1234) && source.covers(3, 7));
        assert!(!source.covers(3, 1235) && !source.covers(2, 7));
        assert_eq!(SourceOffset::parse("x:1"), None);
        let available = s(&[Some("AVAILABLE"), Some("o-1"), None, None, None, None, None]);
        assert_eq!(available, DriverSnapshot::default());
        assert_eq!(s(&[]), DriverSnapshot::default());
    }
}
