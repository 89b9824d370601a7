//! A customer's open orders in Redis, for the gateway's cap on open orders per customer:
//! `{<prefix>customer:<customer_id>}:open`, a sorted set of order ids scored by when the
//! gateway accepted their placement (ms since the epoch).
//!
//! The gateway adds an order when it accepts the placement and prunes the set before it
//! counts: members older than the longest time an order stays open, and members the order
//! store shows final (delivered, cancelled) or never saved (a placement the state machine
//! refused). Nothing else writes the set, so no pipeline has to know about the cap.

use crate::redis::{Error, Redis};
use std::time::Duration;

/// How long a customer's set lives after its last placement.
pub const OPEN_ORDERS_TTL: Duration = Duration::from_secs(24 * 3600);

/// The open-orders sets of one deployment (key prefix).
#[derive(Debug, Clone)]
pub struct OpenOrders {
    redis: Redis,
    key_prefix: String,
}

/// One member of a customer's set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenOrder {
    /// The order.
    pub order_id: String,
    /// When its placement was accepted, ms since the epoch.
    pub placed_at_ms: i64,
}

fn command(command: &'static str) -> impl FnOnce(redis::RedisError) -> Error {
    move |source| Error::Command { command, source }
}

impl OpenOrders {
    /// The sets under `key_prefix` in `redis`.
    pub fn new(redis: Redis, key_prefix: impl Into<String>) -> Self {
        Self {
            redis,
            key_prefix: key_prefix.into(),
        }
    }

    /// The key of `customer`'s set.
    pub fn key(&self, customer: &str) -> String {
        format!("{{{}customer:{customer}}}:open", self.key_prefix)
    }

    /// Every member of `customer`'s set, oldest first.
    pub async fn list(&self, customer: &str) -> Result<Vec<OpenOrder>, Error> {
        let mut conn = self.redis.clone();
        let pairs: Vec<(String, i64)> = redis::cmd("ZRANGE")
            .arg(self.key(customer))
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query_async(&mut conn)
            .await
            .map_err(command("ZRANGE"))?;
        Ok(pairs
            .into_iter()
            .map(|(order_id, placed_at_ms)| OpenOrder {
                order_id,
                placed_at_ms,
            })
            .collect())
    }

    /// Adds `order_id` (placed at `placed_at_ms`) to `customer`'s set and returns how many
    /// members it has now (an order already there is not counted twice).
    pub async fn add(
        &self,
        customer: &str,
        order_id: &str,
        placed_at_ms: i64,
    ) -> Result<usize, Error> {
        let key = self.key(customer);
        let mut conn = self.redis.clone();
        let (_, count, _): (i64, usize, i64) = redis::pipe()
            .atomic()
            .cmd("ZADD")
            .arg(&key)
            .arg("NX")
            .arg(placed_at_ms)
            .arg(order_id)
            .cmd("ZCARD")
            .arg(&key)
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(OPEN_ORDERS_TTL.as_millis() as u64)
            .query_async(&mut conn)
            .await
            .map_err(command("ZADD"))?;
        Ok(count)
    }

    /// Removes `order_ids` from `customer`'s set.
    pub async fn remove(&self, customer: &str, order_ids: &[String]) -> Result<(), Error> {
        if order_ids.is_empty() {
            return Ok(());
        }
        let mut conn = self.redis.clone();
        redis::cmd("ZREM")
            .arg(self.key(customer))
            .arg(order_ids)
            .query_async::<()>(&mut conn)
            .await
            .map_err(command("ZREM"))
    }
}
