//! The outcomes of order commands in Redis: what the status pipeline decided for each command
//! (accepted with what it changed, or rejected with why), kept for [`OUTCOME_TTL`] so that the
//! app that sent it can read it, and announced when recorded so that a gateway waiting for it
//! hears it without polling.
//!
//! - `{<prefix>order:<order_id>}:command:<event_id>`: the outcome (JSON [`CommandOutcome`]),
//!   expiring [`OUTCOME_TTL`] after it was (last) recorded.
//! - `{<prefix>order:<order_id>}:commands`: the channel (sharded pub/sub on a cluster) every
//!   recorded outcome of the order is published on, the same JSON. A Redis script writes the
//!   key and publishes in one step, so whoever subscribed before reading the key either reads
//!   it or hears it.
//!
//! Both share the order's hash tag with the rest of its live feed ([`LiveFeed`]).

use crate::live_feed::{LiveFeed, LiveFeedError};
use crate::redis::Error;
use doorstep_schemas::model::{EventId, OrderId};
use doorstep_schemas::outcome::CommandOutcome;
use futures::future::try_join_all;
use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

/// How long a command's outcome is kept after it was recorded: long enough for an app that
/// timed out to ask again, or re-send with the same idempotency key.
pub const OUTCOME_TTL: Duration = Duration::from_secs(10 * 60);

/// Keys read by one `MGET` of [`CommandOutcomes::get_many`].
const READ_CHUNK: usize = 500;

/// `KEYS[1]` = outcome key, `ARGV[1]` = outcome JSON, `ARGV[2]` = TTL in ms, `ARGV[3]` =
/// channel, `ARGV[4]` = `PUBLISH` or `SPUBLISH`.
const RECORD_SCRIPT: &str = r#"
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call(ARGV[4], ARGV[3], ARGV[1])
return 1
"#;

static SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(RECORD_SCRIPT));

/// Records, announces and reads command outcomes. Cheap to clone.
#[derive(Debug, Clone)]
pub struct CommandOutcomes {
    live: LiveFeed,
}

impl CommandOutcomes {
    /// Outcomes under the keys and channels of `live` (same Redis, same key prefix).
    pub fn new(live: LiveFeed) -> Self {
        Self { live }
    }

    /// The channel `order`'s outcomes are announced on (subscribe to it before reading).
    pub fn channel(&self, order: &OrderId) -> String {
        self.live.commands_channel(order)
    }

    /// Keeps `outcome` for [`OUTCOME_TTL`] and publishes it on its order's channel.
    pub async fn record(&self, outcome: &CommandOutcome) -> Result<(), LiveFeedError> {
        let order = &outcome.order_id;
        let json = serde_json::to_string(outcome).map_err(|source| LiveFeedError::Json {
            order: order.clone(),
            source,
        })?;
        let mut conn = self.live.redis().clone();
        SCRIPT
            .key(self.live.command_key(order, &outcome.event_id))
            .arg(json)
            .arg(OUTCOME_TTL.as_millis() as u64)
            .arg(self.channel(order))
            .arg(self.live.publish_command())
            .invoke_async::<()>(&mut conn)
            .await
            .map_err(|source| Error::Command {
                command: "EVALSHA (command outcome)",
                source,
            })?;
        Ok(())
    }

    /// Records every outcome of `outcomes`, concurrently; returns how many.
    pub async fn record_all<'a>(
        &self,
        outcomes: impl IntoIterator<Item = &'a CommandOutcome>,
    ) -> Result<usize, LiveFeedError> {
        let done = try_join_all(outcomes.into_iter().map(|o| self.record(o))).await?;
        Ok(done.len())
    }

    /// The recorded outcome of `order`'s command `event`, if it was decided less than
    /// [`OUTCOME_TTL`] ago.
    pub async fn get(
        &self,
        order: &OrderId,
        event: &EventId,
    ) -> Result<Option<CommandOutcome>, LiveFeedError> {
        let json: Option<String> = self.live.get(&self.live.command_key(order, event)).await?;
        json.map(|j| serde_json::from_str(&j))
            .transpose()
            .map_err(|source| LiveFeedError::Json {
                order: order.clone(),
                source,
            })
    }

    /// The recorded outcomes of the given commands (those that have one), by event id: `MGET`s
    /// of up to [`READ_CHUNK`] keys (on a cluster the client splits each by slot).
    pub async fn get_many(
        &self,
        commands: Vec<(OrderId, EventId)>,
    ) -> Result<HashMap<EventId, CommandOutcome>, LiveFeedError> {
        let mut found = HashMap::new();
        for chunk in commands.chunks(READ_CHUNK) {
            let keys: Vec<String> = chunk
                .iter()
                .map(|(order, event)| self.live.command_key(order, event))
                .collect();
            let mut conn = self.live.redis().clone();
            let values: Vec<Option<String>> = redis::cmd("MGET")
                .arg(&keys)
                .query_async(&mut conn)
                .await
                .map_err(|source| Error::Command {
                    command: "MGET",
                    source,
                })?;
            for ((order, _), json) in chunk.iter().zip(values) {
                let Some(json) = json else { continue };
                let outcome: CommandOutcome =
                    serde_json::from_str(&json).map_err(|source| LiveFeedError::Json {
                        order: order.clone(),
                        source,
                    })?;
                found.insert(outcome.event_id.clone(), outcome);
            }
        }
        Ok(found)
    }
}
