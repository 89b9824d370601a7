//! Driver availability in Redis: whether a driver is `AVAILABLE` or `ON_DELIVERY`, and with
//! which order.
//!
//! One hash per driver at `{<prefix>driver:<id>}` with fields `status` (`AVAILABLE` /
//! `ON_DELIVERY`), `current_order_id` (absent when available) and `updated_at` (epoch
//! milliseconds). The whole key is the hash tag, so each driver's hash lives in one slot of a
//! Redis Cluster and the Lua script below only ever touches that slot.
//!
//! [`DriverState::release`] is a compare-and-set, atomic through a Lua script: it frees the
//! driver only if `current_order_id` is still the order being released. A late or replayed
//! release for an order the driver has since given back (driver cancelled, dispatch
//! reassigned them) therefore cannot free a driver who is already on a new order.
//! [`DriverState::occupy`] overwrites: the assignment is dispatch's decision, the state
//! machine already accepted it.
//!
//! Every change is then announced with the driver id on the channel
//! `{<prefix>drivers}:changes` (sharded on a cluster), in the same round trip on a single
//! node: readers that cache a driver's order ([`crate::driver_orders`]) drop it there.

use crate::redis::{Batch, Error, Redis};
use doorstep_schemas::model::{DriverId, DriverStatus, OrderId, Timestamp};
use std::collections::HashMap;
use std::sync::Arc;

/// Frees the driver if it is on the order in ARGV[1]. KEYS[1] = the driver hash,
/// ARGV[2] = now (ms). Returns 1 when released, 0 otherwise.
const RELEASE_SCRIPT: &str = r"
if redis.call('HGET', KEYS[1], 'current_order_id') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'status', 'AVAILABLE', 'updated_at', ARGV[2])
  redis.call('HDEL', KEYS[1], 'current_order_id')
  return 1
end
return 0
";

/// A driver's availability as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DriverAvailability {
    /// The driver.
    pub driver_id: DriverId,
    /// Available or on a delivery.
    pub status: DriverStatus,
    /// The order being delivered while `ON_DELIVERY`.
    pub current_order_id: Option<OrderId>,
    /// When this was last changed (wall clock of the writer).
    pub updated_at: Timestamp,
}

/// Reads and changes driver availability. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DriverState {
    redis: Redis,
    prefix: String,
    release: Arc<redis::Script>,
}

impl DriverState {
    /// Driver hashes under `key_prefix` (e.g. `doorstep:`; tests use a unique prefix). Braces
    /// in the prefix or a driver id are replaced by `_` so the key stays one hash tag.
    pub fn new(redis: Redis, key_prefix: impl Into<String>) -> Self {
        Self {
            redis,
            prefix: key_prefix.into(),
            release: Arc::new(redis::Script::new(RELEASE_SCRIPT)),
        }
    }

    /// The key of `driver`'s hash.
    pub fn key(&self, driver: &DriverId) -> String {
        driver_key(&self.prefix, driver.as_str())
    }

    /// The channel driver changes are announced on (payload: the driver id).
    pub fn changes_channel(&self) -> String {
        changes_channel(&self.prefix)
    }

    /// The announcement of a change of `driver`, after the commands already in `batch`.
    fn announce(&self, batch: &mut Batch, driver: &DriverId) {
        let channel = self.changes_channel();
        let mut cmd = redis::cmd(self.redis.publish_name());
        cmd.arg(&channel).arg(driver.as_str());
        batch.barrier().add(&channel, "PUBLISH", cmd);
    }

    /// Marks `driver` `ON_DELIVERY` for `order`.
    pub async fn occupy(&self, driver: &DriverId, order: &OrderId) -> Result<(), Error> {
        let key = self.key(driver);
        let mut cmd = redis::cmd("HSET");
        cmd.arg(&key)
            .arg("status")
            .arg(status_str(DriverStatus::OnDelivery))
            .arg("current_order_id")
            .arg(order.as_str())
            .arg("updated_at")
            .arg(Timestamp::now().as_millis());
        let mut batch = Batch::new();
        batch.add(&key, "HSET", cmd);
        self.announce(&mut batch, driver);
        self.redis.run_batch(&batch).await?;
        tracing::debug!(%driver, %order, "driver occupied");
        Ok(())
    }

    /// Marks `driver` `AVAILABLE` if it is still on `order`; returns whether it was released
    /// (false: it is on another order, already available, or unknown).
    pub async fn release(&self, driver: &DriverId, order: &OrderId) -> Result<bool, Error> {
        let key = self.key(driver);
        let mut args = redis::Cmd::new();
        args.arg(order.as_str()).arg(Timestamp::now().as_millis());
        let mut batch = Batch::new();
        batch.add_script(&self.release, "EVALSHA", &[key.as_str()], args);
        self.announce(&mut batch, driver);
        let replies = self.redis.run_batch(&batch).await?;
        let released = matches!(replies.first(), Some(redis::Value::Int(1)));
        tracing::debug!(%driver, %order, released, "driver release");
        Ok(released)
    }

    /// The driver's stored availability, or `None` if nothing is stored for it. A hash
    /// Doorstep did not write (unknown status) reads as `None` with a warning.
    pub async fn get(&self, driver: &DriverId) -> Result<Option<DriverAvailability>, Error> {
        let mut conn = self.redis.clone();
        let fields: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.key(driver))
            .query_async(&mut conn)
            .await
            .map_err(|source| Error::Command {
                command: "HGETALL",
                source,
            })?;
        if fields.is_empty() {
            return Ok(None);
        }
        let status = match fields.get("status").map(String::as_str) {
            Some("AVAILABLE") => DriverStatus::Available,
            Some("ON_DELIVERY") => DriverStatus::OnDelivery,
            other => {
                tracing::warn!(%driver, status = ?other, "driver hash has no known status");
                return Ok(None);
            }
        };
        Ok(Some(DriverAvailability {
            driver_id: driver.clone(),
            status,
            current_order_id: fields
                .get("current_order_id")
                .filter(|s| !s.is_empty())
                .map(|s| OrderId::new(s.clone())),
            updated_at: Timestamp::from_millis(
                fields
                    .get("updated_at")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_default(),
            ),
        }))
    }
}

/// `{<prefix>driver:<id>}`, with any brace in the prefix or id replaced by `_` so that the
/// whole key stays one hash tag.
fn driver_key(prefix: &str, driver: &str) -> String {
    let clean = |s: &str| s.replace(['{', '}'], "_");
    format!("{{{}driver:{}}}", clean(prefix), clean(driver))
}

/// `{<prefix>drivers}:changes`, with any brace in the prefix replaced by `_`.
pub(crate) fn changes_channel(prefix: &str) -> String {
    format!("{{{}drivers}}:changes", prefix.replace(['{', '}'], "_"))
}

/// The stored name of a driver status.
pub const fn status_str(status: DriverStatus) -> &'static str {
    match status {
        DriverStatus::Available => "AVAILABLE",
        DriverStatus::OnDelivery => "ON_DELIVERY",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_one_hash_tag() {
        // The behaviour is tested against Redis (single node and cluster) in
        // tests/tests/status_sinks.rs.
        assert_eq!(driver_key("doorstep:", "d-1"), "{doorstep:driver:d-1}");
        assert_eq!(driver_key("a{b}", "x}y"), "{a_b_driver:x_y}");
        assert_eq!(changes_channel("doorstep:"), "{doorstep:drivers}:changes");
        assert_eq!(status_str(DriverStatus::OnDelivery), "ON_DELIVERY");
    }
}
