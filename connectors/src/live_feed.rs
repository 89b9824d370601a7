//! An order's live feed in Redis: the channel a customer's WebSocket listens to, the per-order
//! sequence number every published frame carries, and the order's current ETA.
//!
//! - `{<prefix>order:<order_id>}:tracking`: the channel (sharded pub/sub on a cluster). Frames
//!   are the JSON of [`LiveEvent`] with `"seq":N` put first (see `doorstep_schemas::live`).
//! - `{<prefix>order:<order_id>}:seq`: the order's sequence counter. A Lua script increments it
//!   and publishes in one step, so frames of one order carry strictly increasing, gap-free
//!   numbers in publish order, whichever pipeline publishes them.
//! - `{<prefix>order:<order_id>}:eta`: the current ETA (JSON [`EtaUpdate`]), read by the
//!   snapshot a customer gets on connect.
//! - `{<prefix>order:<order_id>}:command:<event_id>` and the channel
//!   `{<prefix>order:<order_id>}:commands`: the outcomes of the order's commands
//!   ([`crate::command_outcomes`]).
//!
//! The keys share a hash tag, so on a Redis Cluster they live in one slot and the scripts
//! (which touch a key and publish on a channel) stay on one shard.

use crate::redis::{Error, Redis};
use doorstep_schemas::events::EtaUpdate;
use doorstep_schemas::live::LiveEvent;
use doorstep_schemas::model::{EventId, OrderId};
use futures::future::try_join_all;
use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::Duration;

/// How long an order's sequence counter lives after its last frame.
pub const SEQ_TTL: Duration = Duration::from_secs(48 * 3600);
/// How long an order's current ETA is kept after it was last written.
pub const ETA_TTL: Duration = Duration::from_secs(12 * 3600);

/// `KEYS[1]` = counter, `ARGV[1]` = channel, `ARGV[2]` = event JSON (an object), `ARGV[3]` =
/// counter TTL in ms, `ARGV[4]` = `PUBLISH` or `SPUBLISH`. Returns the frame's sequence number.
const PUBLISH_SCRIPT: &str = r#"
local seq = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call(ARGV[4], ARGV[1], '{"seq":' .. seq .. ',' .. string.sub(ARGV[2], 2))
return seq
"#;

static SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(PUBLISH_SCRIPT));

/// Why a live frame could not be published or the current ETA read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LiveFeedError {
    /// Redis failed.
    #[error(transparent)]
    Redis(#[from] Error),
    /// An event or ETA could not be written or read as JSON.
    #[error("live feed JSON for order {order}: {source}")]
    Json {
        /// The order.
        order: OrderId,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
}

impl LiveFeedError {
    /// Whether retrying later can succeed (Redis unreachable or slow, not a bad request).
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Redis(e) => e.is_retriable(),
            Self::Json { .. } => false,
        }
    }
}

/// Publishes live frames and keeps current ETAs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LiveFeed {
    redis: Redis,
    prefix: String,
}

impl LiveFeed {
    /// Keys under `key_prefix` (the deployment's Redis key prefix, e.g. `doorstep:`).
    pub fn new(redis: Redis, key_prefix: impl Into<String>) -> Self {
        let prefix: String = key_prefix.into();
        Self {
            redis,
            prefix: prefix.replace(['{', '}'], "_"),
        }
    }

    fn tag(&self, order: &OrderId) -> String {
        format!(
            "{{{}order:{}}}",
            self.prefix,
            order.as_str().replace(['{', '}'], "_")
        )
    }

    /// The channel of `order`: `{<prefix>order:<order_id>}:tracking`.
    pub fn channel(&self, order: &OrderId) -> String {
        format!("{}:tracking", self.tag(order))
    }

    /// The sequence counter of `order`.
    pub fn seq_key(&self, order: &OrderId) -> String {
        format!("{}:seq", self.tag(order))
    }

    /// The current-ETA key of `order`.
    pub fn eta_key(&self, order: &OrderId) -> String {
        format!("{}:eta", self.tag(order))
    }

    /// The key of the outcome of `order`'s command `event`.
    pub fn command_key(&self, order: &OrderId, event: &EventId) -> String {
        format!("{}:command:{}", self.tag(order), event.as_str())
    }

    /// The channel `order`'s command outcomes are announced on.
    pub fn commands_channel(&self, order: &OrderId) -> String {
        format!("{}:commands", self.tag(order))
    }

    /// `PUBLISH` on a single node, `SPUBLISH` (sharded) on a cluster.
    pub(crate) fn publish_command(&self) -> &'static str {
        if self.redis.is_cluster() {
            "SPUBLISH"
        } else {
            "PUBLISH"
        }
    }

    /// Publishes `event` on its order's channel with the next sequence number; returns it.
    pub async fn publish(&self, event: &LiveEvent) -> Result<u64, LiveFeedError> {
        let order = event.order_id();
        let json = serde_json::to_string(event).map_err(|source| LiveFeedError::Json {
            order: order.clone(),
            source,
        })?;
        let command = self.publish_command();
        let mut conn = self.redis.clone();
        let seq: u64 = SCRIPT
            .key(self.seq_key(order))
            .arg(self.channel(order))
            .arg(json)
            .arg(SEQ_TTL.as_millis() as u64)
            .arg(command)
            .invoke_async(&mut conn)
            .await
            .map_err(|source| Error::Command {
                command: "EVALSHA (live feed publish)",
                source,
            })?;
        Ok(seq)
    }

    /// Publishes `events`: in the given order within an order, concurrently across orders.
    /// Returns how many were published.
    pub async fn publish_all(&self, events: &[LiveEvent]) -> Result<usize, LiveFeedError> {
        let mut by_order: BTreeMap<&OrderId, Vec<&LiveEvent>> = BTreeMap::new();
        for e in events {
            by_order.entry(e.order_id()).or_default().push(e);
        }
        try_join_all(by_order.into_values().map(|events| async move {
            for e in events {
                self.publish(e).await?;
            }
            Ok::<_, LiveFeedError>(())
        }))
        .await?;
        Ok(events.len())
    }

    /// The last sequence number published for `order` (0 when none yet).
    pub async fn current_seq(&self, order: &OrderId) -> Result<u64, LiveFeedError> {
        Ok(self.get::<u64>(&self.seq_key(order)).await?.unwrap_or(0))
    }

    pub(crate) async fn get<T: redis::FromRedisValue>(
        &self,
        key: &str,
    ) -> Result<Option<T>, Error> {
        let mut conn = self.redis.clone();
        redis::cmd("GET")
            .arg(key)
            .query_async(&mut conn)
            .await
            .map_err(|source| Error::Command {
                command: "GET",
                source,
            })
    }

    /// Keeps `eta` as its order's current ETA (for [`ETA_TTL`]).
    pub async fn set_eta(&self, eta: &EtaUpdate) -> Result<(), LiveFeedError> {
        let json = serde_json::to_string(eta).map_err(|source| LiveFeedError::Json {
            order: eta.order_id.clone(),
            source,
        })?;
        let mut conn = self.redis.clone();
        redis::cmd("SET")
            .arg(self.eta_key(&eta.order_id))
            .arg(json)
            .arg("PX")
            .arg(ETA_TTL.as_millis() as u64)
            .query_async::<()>(&mut conn)
            .await
            .map_err(|source| Error::Command {
                command: "SET",
                source,
            })?;
        Ok(())
    }

    /// Forgets `order`'s current ETA (the order is over).
    pub async fn clear_eta(&self, order: &OrderId) -> Result<(), LiveFeedError> {
        let mut conn = self.redis.clone();
        redis::cmd("DEL")
            .arg(self.eta_key(order))
            .query_async::<()>(&mut conn)
            .await
            .map_err(|source| Error::Command {
                command: "DEL",
                source,
            })?;
        Ok(())
    }

    /// `order`'s current ETA, when there is one.
    pub async fn eta(&self, order: &OrderId) -> Result<Option<EtaUpdate>, LiveFeedError> {
        let json: Option<String> = self.get(&self.eta_key(order)).await?;
        json.map(|j| serde_json::from_str(&j))
            .transpose()
            .map_err(|source| LiveFeedError::Json {
                order: order.clone(),
                source,
            })
    }

    /// The Redis connection (for subscribers built on the same deployment).
    pub fn redis(&self) -> &Redis {
        &self.redis
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn frames_put_seq_first_and_keep_the_event() {
        // The script's string surgery, done in Rust on the same input.
        let json = r#"{"type":"status","order_id":"o-1"}"#;
        let frame = format!("{{\"seq\":{},{}", 12, &json[1..]);
        assert_eq!(frame, r#"{"seq":12,"type":"status","order_id":"o-1"}"#);
    }
}
