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
//! - `{<prefix>order:<order_id>}:history`: the order's recent non-location frames (status, ETA,
//!   rejected) as published, a stream whose entry ids are their sequence numbers (`<seq>-0`),
//!   capped at [`HISTORY_CAP`] entries; `{<prefix>order:<order_id>}:history_floor` says from
//!   where it is complete (every such frame numbered above the floor is in it). Written by the
//!   publishing script in the same step as the publish. Both expire [`HISTORY_TTL_AFTER_END`]
//!   after the order's final status (after [`SEQ_TTL`] without frames otherwise).
//! - `{<prefix>order:<order_id>}:location`: the order's latest `location` frame as published.
//!
//! A reconnecting customer resumes from the last `seq` it saw with [`LiveFeed::resume`]: the
//! history frames after it and the latest location, read in one step with the counter.
//! - `{<prefix>order:<order_id>}:command:<event_id>` and the channel
//!   `{<prefix>order:<order_id>}:commands`: the outcomes of the order's commands
//!   ([`crate::command_outcomes`]).
//!
//! The keys share a hash tag, so on a Redis Cluster they live in one slot and the scripts
//! (which touch a key and publish on a channel) stay on one shard.

use crate::redis::{Batch, Error, Redis};
use crate::retry::{RetryClass, Retryable};
use doorstep_schemas::events::EtaUpdate;
use doorstep_schemas::live::LiveEvent;
use doorstep_schemas::model::{EventId, OrderId};
use std::sync::LazyLock;
use std::time::Duration;

/// How long an order's sequence counter lives after its last frame.
pub const SEQ_TTL: Duration = Duration::from_secs(48 * 3600);
/// How long an order's current ETA is kept after it was last written.
pub const ETA_TTL: Duration = Duration::from_secs(12 * 3600);

/// How many non-location frames an order's history keeps (the oldest are dropped first).
pub const HISTORY_CAP: usize = 200;
/// How long an order's history is kept after its final status (delivered or cancelled).
pub const HISTORY_TTL_AFTER_END: Duration = Duration::from_secs(3600);

/// `KEYS` = counter, history, history floor, latest location; `ARGV[1]` = channel, `ARGV[2]` =
/// event JSON (an object), `ARGV[3]` = counter TTL in ms, `ARGV[4]` = `PUBLISH` or `SPUBLISH`,
/// `ARGV[5]` = `location`, `frame` or `final` (a status ending the order), `ARGV[6]` = history
/// cap, `ARGV[7]` = history TTL after the end in ms. Returns the frame's sequence number.
///
/// A history created by a frame numbered `seq` is complete above `seq - 1` (earlier frames
/// were locations, or a history that expired). Trimming raises the floor to the dropped
/// entry's number. Once the order is over, frames no longer extend the history's life.
const PUBLISH_SCRIPT: &str = r#"
local seq = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local frame = '{"seq":' .. seq .. ',' .. string.sub(ARGV[2], 2)
if ARGV[5] == 'location' then
  redis.call('SET', KEYS[4], frame, 'PX', ARGV[3])
else
  local left = redis.call('PTTL', KEYS[2])
  if redis.call('EXISTS', KEYS[3]) == 0 then
    redis.call('SET', KEYS[3], seq - 1)
  end
  redis.call('XADD', KEYS[2], seq .. '-0', 'f', frame)
  local cap = tonumber(ARGV[6])
  local over = redis.call('XLEN', KEYS[2]) - cap
  if over > 0 then
    local old = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', over)
    for _, e in ipairs(old) do
      redis.call('XDEL', KEYS[2], e[1])
      redis.call('SET', KEYS[3], string.match(e[1], '^(%d+)'))
    end
  end
  local after_end = tonumber(ARGV[7])
  local ttl = tonumber(ARGV[3])
  if ARGV[5] == 'final' then
    ttl = after_end
  elseif left > 0 and left <= after_end then
    ttl = left
  end
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('PEXPIRE', KEYS[3], ttl)
end
redis.call(ARGV[4], ARGV[1], frame)
return seq
"#;

static SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(PUBLISH_SCRIPT));

/// The publishing script in errors.
const PUBLISH_NAME: &str = "EVALSHA (live feed publish)";

/// `KEYS` = counter, history, history floor, latest location; `ARGV[1]` = the sequence number
/// a client resumes after. Returns `{counter, floor or "", location or "", frames...}` with
/// the history frames numbered above `ARGV[1]`, oldest first.
const RESUME_SCRIPT: &str = r#"
local cur = redis.call('GET', KEYS[1]) or '0'
local floor = redis.call('GET', KEYS[3]) or ''
local location = redis.call('GET', KEYS[4]) or ''
local out = {cur, floor, location}
local since = tonumber(ARGV[1])
if since < tonumber(cur) then
  local entries = redis.call('XRANGE', KEYS[2], (since + 1) .. '-0', '+')
  for _, e in ipairs(entries) do
    out[#out + 1] = e[2][2]
  end
end
return out
"#;

static RESUME: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(RESUME_SCRIPT));

/// What a client resuming after a sequence number gets ([`LiveFeed::resume`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// Everything it missed is at hand.
    Replay {
        /// The order's last sequence number when read: the replay reflects every frame up to it.
        seq: u64,
        /// The status, ETA and rejected frames numbered after `since`, oldest first, as
        /// published.
        frames: Vec<String>,
        /// The latest location frame, when it is numbered after `since`.
        location: Option<String>,
    },
    /// `since` is older than the history (trimmed or expired) or newer than the counter: the
    /// client needs a snapshot.
    Gone,
}

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

impl Retryable for LiveFeedError {
    fn retry_class(&self) -> RetryClass {
        RetryClass::of(self.is_retriable(), None)
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

    /// The history stream of `order` (non-location frames, by sequence number).
    pub fn history_key(&self, order: &OrderId) -> String {
        format!("{}:history", self.tag(order))
    }

    /// The key of the number above which `order`'s history is complete.
    pub fn history_floor_key(&self, order: &OrderId) -> String {
        format!("{}:history_floor", self.tag(order))
    }

    /// The latest-location key of `order` (its last `location` frame).
    pub fn location_key(&self, order: &OrderId) -> String {
        format!("{}:location", self.tag(order))
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
        let mut conn = self.redis.clone();
        let seq: u64 = self
            .invocation(event)?
            .invoke_async(&mut conn)
            .await
            .map_err(|source| Error::Command {
                command: PUBLISH_NAME,
                source,
            })?;
        Ok(seq)
    }

    /// Publishes `events` in one [`Batch`] (one round trip on a single node): in the given
    /// order within an order. Returns how many were published.
    pub async fn publish_all(&self, events: &[LiveEvent]) -> Result<usize, LiveFeedError> {
        if events.is_empty() {
            return Ok(0);
        }
        let mut batch = Batch::new();
        for event in events {
            let order = event.order_id();
            let keys = self.frame_keys(order);
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            batch.add_script(&SCRIPT, PUBLISH_NAME, &keys, self.frame_args(event)?);
        }
        self.redis.run_batch(&batch).await?;
        Ok(events.len())
    }

    /// The keys the publishing script touches for `order`.
    fn frame_keys(&self, order: &OrderId) -> [String; 4] {
        [
            self.seq_key(order),
            self.history_key(order),
            self.history_floor_key(order),
            self.location_key(order),
        ]
    }

    /// The publishing script's arguments for `event`.
    fn frame_args(&self, event: &LiveEvent) -> Result<redis::Cmd, LiveFeedError> {
        let order = event.order_id();
        let json = serde_json::to_string(event).map_err(|source| LiveFeedError::Json {
            order: order.clone(),
            source,
        })?;
        let kind = match event {
            LiveEvent::Location(_) => "location",
            LiveEvent::Status(s) if s.status.is_final() => "final",
            _ => "frame",
        };
        let mut args = redis::Cmd::new();
        args.arg(self.channel(order))
            .arg(json)
            .arg(SEQ_TTL.as_millis() as u64)
            .arg(self.publish_command())
            .arg(kind)
            .arg(HISTORY_CAP)
            .arg(HISTORY_TTL_AFTER_END.as_millis() as u64);
        Ok(args)
    }

    /// The publishing script's run for `event`.
    fn invocation(
        &self,
        event: &LiveEvent,
    ) -> Result<redis::ScriptInvocation<'static>, LiveFeedError> {
        let mut invocation = SCRIPT.prepare_invoke();
        for key in self.frame_keys(event.order_id()) {
            invocation.key(key);
        }
        for arg in self.frame_args(event)?.args_iter() {
            if let redis::Arg::Simple(bytes) = arg {
                invocation.arg(bytes);
            }
        }
        Ok(invocation)
    }

    /// The last sequence number published for `order` (0 when none yet).
    pub async fn current_seq(&self, order: &OrderId) -> Result<u64, LiveFeedError> {
        Ok(self.get::<u64>(&self.seq_key(order)).await?.unwrap_or(0))
    }

    /// What a client that saw every frame of `order` up to `since` missed: the history frames
    /// after it and the latest location, read in one step with the counter, or
    /// [`Resume::Gone`] when the history no longer reaches back to `since`.
    pub async fn resume(&self, order: &OrderId, since: u64) -> Result<Resume, LiveFeedError> {
        let mut conn = self.redis.clone();
        let mut out: Vec<String> = RESUME
            .key(self.seq_key(order))
            .key(self.history_key(order))
            .key(self.history_floor_key(order))
            .key(self.location_key(order))
            .arg(since)
            .invoke_async(&mut conn)
            .await
            .map_err(|source| Error::Command {
                command: "EVALSHA (live feed resume)",
                source,
            })?;
        let frames = out.split_off(3.min(out.len()));
        let mut head = out.into_iter();
        let (cur, floor, location) = (head.next(), head.next(), head.next());
        let cur: u64 = cur.and_then(|c| c.parse().ok()).unwrap_or(0);
        let floor: Option<u64> = floor.and_then(|f| f.parse().ok());
        Ok(decide_resume(
            since,
            cur,
            floor,
            location.filter(|l| !l.is_empty()),
            frames,
        ))
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

/// Whether a client at `since` can resume, given the counter `cur`, the history's `floor` and
/// the latest location frame.
fn decide_resume(
    since: u64,
    cur: u64,
    floor: Option<u64>,
    location: Option<String>,
    frames: Vec<String>,
) -> Resume {
    let complete = since == cur || floor.is_some_and(|f| since >= f);
    if since > cur || !complete {
        return Resume::Gone;
    }
    let location = location.filter(|l| {
        serde_json::from_str::<doorstep_schemas::live::FrameHeader>(l).is_ok_and(|h| h.seq > since)
    });
    Resume::Replay {
        seq: cur,
        frames,
        location,
    }
}

#[cfg(test)]
mod tests {
    use super::{Resume, decide_resume};

    #[test]
    fn resuming_needs_a_history_reaching_back_to_since() {
        let replay = |seq| Resume::Replay {
            seq,
            frames: Vec::new(),
            location: None,
        };
        assert_eq!(decide_resume(5, 5, None, None, Vec::new()), replay(5));
        assert_eq!(decide_resume(4, 5, None, None, Vec::new()), Resume::Gone);
        assert_eq!(decide_resume(4, 5, Some(4), None, Vec::new()), replay(5));
        assert_eq!(decide_resume(3, 5, Some(4), None, Vec::new()), Resume::Gone);
        assert_eq!(decide_resume(6, 5, Some(0), None, Vec::new()), Resume::Gone);
        let old = r#"{"seq":4,"type":"location"}"#.to_owned();
        assert_eq!(
            decide_resume(4, 5, Some(0), Some(old), Vec::new()),
            replay(5)
        );
        let new = r#"{"seq":5,"type":"location"}"#.to_owned();
        assert_eq!(
            decide_resume(4, 5, Some(0), Some(new.clone()), Vec::new()),
            Resume::Replay {
                seq: 5,
                frames: Vec::new(),
                location: Some(new)
            }
        );
    }

    #[test]
    fn frames_put_seq_first_and_keep_the_event() {
        // The script's string surgery, done in Rust on the same input.
        let json = r#"{"type":"status","order_id":"o-1"}"#;
        let frame = format!("{{\"seq\":{},{}", 12, &json[1..]);
        assert_eq!(frame, r#"{"seq":12,"type":"status","order_id":"o-1"}"#);
    }
}
