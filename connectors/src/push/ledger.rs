//! The sent-ledger: FCM has no idempotency key, so Doorstep keeps one in Redis.
//!
//! One string key per notification, `{<prefix>push:<notification_id>}` (the whole key is a
//! hash tag, so it works on a Redis Cluster), holding either
//!
//! - `pending:<owner>` — a worker claimed it and is sending; expires after the *claim lease*
//!   (default 5 minutes) so that a worker that crashed mid-send does not block the
//!   notification forever, or
//! - `sent:<FCM message name>` — FCM accepted it; kept for the *sent TTL* (default 7 days,
//!   longer than any replay or redelivery Doorstep does).
//!
//! [`SentLedger::claim`] sets `pending` only if the key is absent (atomically, in a Lua
//! script that also reports what is there otherwise). After sending, the worker calls
//! [`SentLedger::mark_sent`]; on failure [`SentLedger::release_claim`], which deletes the key
//! only if it still holds this worker's own claim.
//!
//! Crashed owners: every ledger (one per process) keeps an *owner heartbeat* key,
//! `{<prefix>push-owner:<owner>}`, alive while it exists (refreshed every third of the
//! heartbeat TTL, default 10 s, by a background task started with its first claim). A claim
//! whose owner's heartbeat is gone belongs to a process that died (kill -9, lost machine):
//! [`SentLedger::claim`] takes it over at once — a compare-and-set on the claim key, so only
//! one worker wins — instead of waiting out the claim lease. The lease stays as a backstop.
//! The heartbeat and the claim are different keys (different Redis Cluster slots), so the
//! check and the takeover are two steps; the compare-and-set makes that safe.
//!
//! A `mark_sent` that fails (Redis unreachable or restarting) after FCM accepted the message
//! is remembered by the worker: the next attempt for that notification only writes the mark
//! again ([`SentLedger::unmarked`]) and never sends it a second time.
//!
//! What this guarantees, and the window it leaves: a replay, a redelivery after a restart or
//! a second worker never sends a notification that was marked sent, and never sends one
//! while a live worker holds its claim; a Redis outage alone sends nothing twice. A duplicate
//! push is still possible when a worker crashes after FCM accepted the message but before
//! `mark_sent` landed, and
//! when FCM accepted a request whose answer was lost (a timeout), and when a live worker is
//! stalled longer than the heartbeat TTL mid-send: the claim is taken over and the
//! notification is sent again. Pushes carry the order id as collapse key (`android.collapse_key`,
//! `apns-collapse-id`), so such a duplicate replaces the first on the device instead of
//! showing twice. The opposite failure — never sending — cannot come from the ledger alone:
//! a claim always expires.

use super::Error;
use crate::redis::Redis;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::OnceCell;

/// Claims KEYS[1] with ARGV[1] for ARGV[2] ms if absent. Returns {'', -2} when claimed,
/// otherwise {current value, PTTL}.
const CLAIM_SCRIPT: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {'', -2}
end
return {v, redis.call('PTTL', KEYS[1])}
";

/// Replaces KEYS[1] with ARGV[2] for ARGV[3] ms if it still holds ARGV[1] (a dead owner's
/// claim). Returns 1 when taken over.
const TAKEOVER_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
";

/// Deletes KEYS[1] if it holds ARGV[1]. Returns 1 when deleted.
const RELEASE_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// The outcome of [`SentLedger::claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Claim {
    /// This worker may send; it must then call `mark_sent` or `release_claim`.
    Claimed,
    /// The notification was sent already (by FCM message `message_name`): do nothing.
    AlreadySent {
        /// FCM's message name, as recorded.
        message_name: String,
    },
    /// Another worker (or a crashed one) holds the claim: retry after it expires.
    HeldElsewhere {
        /// Time left on the claim, if Redis reported it.
        expires_in: Option<Duration>,
    },
}

/// The sent-ledger. Cheap to clone; every clone shares one owner identity, so a clone can
/// release a claim another clone made.
#[derive(Debug, Clone)]
pub struct SentLedger {
    redis: Redis,
    prefix: String,
    owner: Arc<str>,
    claim_ttl: Duration,
    sent_ttl: Duration,
    heartbeat_ttl: Duration,
    claim: Arc<redis::Script>,
    release: Arc<redis::Script>,
    takeover: Arc<redis::Script>,
    /// Set once the heartbeat task runs; the task stops when every clone is dropped.
    heartbeat: Arc<OnceCell<()>>,
    /// Notifications this owner claimed and is sending right now. A `pending` claim of this
    /// owner that is not in here is a leftover of a send whose `mark_sent` or
    /// `release_claim` failed (Redis was unreachable): it is claimed again rather than
    /// waited out for the whole lease.
    sending: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// Notifications FCM accepted whose `sent` mark did not land, with FCM's message name:
    /// marked again before anything else is done with them, never sent again.
    unmarked: Arc<std::sync::Mutex<std::collections::HashMap<String, String>>>,
}

impl SentLedger {
    /// Default claim lease: longer than a send with all its retries.
    pub const DEFAULT_CLAIM_TTL: Duration = Duration::from_secs(5 * 60);
    /// Default retention of `sent` marks.
    pub const DEFAULT_SENT_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
    /// Default lifetime of the owner heartbeat: how soon a dead owner's claims are taken
    /// over.
    pub const DEFAULT_HEARTBEAT_TTL: Duration = Duration::from_secs(10);

    /// A ledger with keys under `key_prefix` (e.g. `doorstep:`; tests use a unique one) and
    /// a fresh owner identity for this process.
    pub fn new(redis: Redis, key_prefix: impl Into<String>) -> Self {
        Self {
            redis,
            prefix: key_prefix.into(),
            owner: uuid::Uuid::new_v4().simple().to_string().into(),
            claim_ttl: Self::DEFAULT_CLAIM_TTL,
            sent_ttl: Self::DEFAULT_SENT_TTL,
            heartbeat_ttl: Self::DEFAULT_HEARTBEAT_TTL,
            claim: Arc::new(redis::Script::new(CLAIM_SCRIPT)),
            release: Arc::new(redis::Script::new(RELEASE_SCRIPT)),
            takeover: Arc::new(redis::Script::new(TAKEOVER_SCRIPT)),
            heartbeat: Arc::new(OnceCell::new()),
            sending: Arc::default(),
            unmarked: Arc::default(),
        }
    }

    fn sending(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        self.sending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn unmarked_sends(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, String>> {
        self.unmarked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// FCM's message name for `notification_id` when this worker sent it but could not mark
    /// it sent: the caller must [`mark_sent`](Self::mark_sent) it again instead of sending.
    pub fn unmarked(&self, notification_id: &str) -> Option<String> {
        self.unmarked_sends().get(notification_id).cloned()
    }

    /// Sets the owner heartbeat's lifetime (at least 30 ms; refreshed every third of it).
    pub fn with_heartbeat_ttl(mut self, ttl: Duration) -> Self {
        self.heartbeat_ttl = ttl.max(Duration::from_millis(30));
        self
    }

    /// The heartbeat key of `owner`.
    fn owner_key(&self, owner: &str) -> String {
        let clean = |s: &str| s.replace(['{', '}'], "_");
        format!("{{{}push-owner:{}}}", clean(&self.prefix), clean(owner))
    }

    /// Writes this owner's heartbeat once, then keeps it alive from a background task for as
    /// long as a clone of this ledger exists.
    async fn ensure_heartbeat(&self) -> Result<(), Error> {
        self.heartbeat
            .get_or_try_init(|| async {
                let key = self.owner_key(&self.owner);
                beat(&self.redis, &key, self.heartbeat_ttl).await?;
                let alive: Weak<OnceCell<()>> = Arc::downgrade(&self.heartbeat);
                let (redis, ttl) = (self.redis.clone(), self.heartbeat_ttl);
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(ttl / 3).await;
                        if alive.upgrade().is_none() {
                            return;
                        }
                        if let Err(e) = beat(&redis, &key, ttl).await {
                            tracing::warn!(error = %e, "push ledger heartbeat failed; retrying");
                        }
                    }
                });
                Ok::<(), Error>(())
            })
            .await?;
        Ok(())
    }

    /// Whether `owner`'s heartbeat is alive.
    async fn owner_alive(&self, owner: &str) -> Result<bool, Error> {
        let mut conn = self.redis.clone();
        let n: i64 = redis::cmd("EXISTS")
            .arg(self.owner_key(owner))
            .query_async(&mut conn)
            .await
            .map_err(|source| crate::redis::Error::Command {
                command: "EXISTS",
                source,
            })?;
        Ok(n > 0)
    }

    /// Sets the claim lease (at least 1 ms).
    pub fn with_claim_ttl(mut self, ttl: Duration) -> Self {
        self.claim_ttl = ttl.max(Duration::from_millis(1));
        self
    }

    /// Sets how long `sent` marks are kept (at least 1 ms).
    pub fn with_sent_ttl(mut self, ttl: Duration) -> Self {
        self.sent_ttl = ttl.max(Duration::from_millis(1));
        self
    }

    /// The key of `notification_id`.
    pub fn key(&self, notification_id: &str) -> String {
        let clean = |s: &str| s.replace(['{', '}'], "_");
        format!("{{{}push:{}}}", clean(&self.prefix), clean(notification_id))
    }

    fn pending_value(&self) -> String {
        format!("pending:{}", self.owner)
    }

    /// Tries to claim `notification_id` for sending; takes over the claim of an owner whose
    /// heartbeat is gone.
    pub async fn claim(&self, notification_id: &str) -> Result<Claim, Error> {
        self.ensure_heartbeat().await?;
        let mut conn = self.redis.clone();
        let (value, pttl): (String, i64) = self
            .claim
            .key(self.key(notification_id))
            .arg(self.pending_value())
            .arg(millis(self.claim_ttl))
            .invoke_async(&mut conn)
            .await
            .map_err(|source| crate::redis::Error::Command {
                command: "EVALSHA",
                source,
            })?;
        if value.is_empty() {
            self.sending().insert(notification_id.to_owned());
            return Ok(Claim::Claimed);
        }
        if value == self.pending_value() && self.sending().insert(notification_id.to_owned()) {
            // Our own claim, and no send of ours is in flight now: a leftover (see
            // `sending`), unless a send of ours finished since the script read it. So take it
            // again only if it still is our `pending` (compare-and-set).
            let still_ours = self.take_if_still(notification_id, &value).await?;
            if still_ours {
                tracing::info!(
                    notification_id,
                    "re-claiming a push claim left by a failed ledger write of this worker"
                );
                return Ok(Claim::Claimed);
            }
            // Marked sent meanwhile: the next claim reads the mark.
            self.sending().remove(notification_id);
            return Ok(Claim::HeldElsewhere { expires_in: None });
        }
        if let Some(name) = value.strip_prefix("sent:") {
            return Ok(Claim::AlreadySent {
                message_name: name.to_owned(),
            });
        }
        if let Some(owner) = value.strip_prefix("pending:")
            && owner != &*self.owner
            && !self.owner_alive(owner).await?
        {
            let taken = self.take_if_still(notification_id, &value).await?;
            if taken {
                self.sending().insert(notification_id.to_owned());
                tracing::info!(
                    notification_id,
                    dead_owner = owner,
                    "took over the push claim of a worker whose heartbeat is gone"
                );
                return Ok(Claim::Claimed);
            }
        }
        let expires_in = u64::try_from(pttl).ok().map(Duration::from_millis);
        Ok(Claim::HeldElsewhere { expires_in })
    }

    /// Compare-and-set: claims `notification_id` for this worker only if its key still holds
    /// `expected` (a claim read just before); whether it did.
    async fn take_if_still(&self, notification_id: &str, expected: &str) -> Result<bool, Error> {
        let mut conn = self.redis.clone();
        let taken: i64 = self
            .takeover
            .key(self.key(notification_id))
            .arg(expected)
            .arg(self.pending_value())
            .arg(millis(self.claim_ttl))
            .invoke_async(&mut conn)
            .await
            .map_err(|source| crate::redis::Error::Command {
                command: "EVALSHA",
                source,
            })?;
        Ok(taken == 1)
    }

    /// Records that FCM accepted `notification_id` as `message_name` (replacing the claim).
    ///
    /// The send stays "in flight" in this worker until the mark has landed (or failed): a
    /// concurrent claim of the same notification that still sees our `pending` claim must not
    /// take it for a leftover and send again.
    pub async fn mark_sent(&self, notification_id: &str, message_name: &str) -> Result<(), Error> {
        let mut conn = self.redis.clone();
        let marked = redis::cmd("SET")
            .arg(self.key(notification_id))
            .arg(format!("sent:{message_name}"))
            .arg("PX")
            .arg(millis(self.sent_ttl))
            .query_async::<()>(&mut conn)
            .await
            .map_err(|source| crate::redis::Error::Command {
                command: "SET",
                source,
            });
        match &marked {
            Ok(()) => self.unmarked_sends().remove(notification_id),
            Err(_) => self
                .unmarked_sends()
                .insert(notification_id.to_owned(), message_name.to_owned()),
        };
        self.sending().remove(notification_id);
        Ok(marked?)
    }

    /// Gives up this worker's claim on `notification_id` so it can be sent again (after a
    /// failed send). Returns whether a claim of this worker was removed; another worker's
    /// claim or a `sent` mark is left alone.
    pub async fn release_claim(&self, notification_id: &str) -> Result<bool, Error> {
        let mut conn = self.redis.clone();
        let removed: Result<i64, Error> = self
            .release
            .key(self.key(notification_id))
            .arg(self.pending_value())
            .invoke_async(&mut conn)
            .await
            .map_err(|source| {
                crate::redis::Error::Command {
                    command: "EVALSHA",
                    source,
                }
                .into()
            });
        // Only now: until the claim is gone, our own `pending` is not a leftover.
        self.sending().remove(notification_id);
        Ok(removed? == 1)
    }
}

/// Sets the heartbeat `key` for `ttl`.
async fn beat(redis: &Redis, key: &str, ttl: Duration) -> Result<(), Error> {
    let mut conn = redis.clone();
    redis::cmd("SET")
        .arg(key)
        .arg("1")
        .arg("PX")
        .arg(millis(ttl))
        .query_async::<()>(&mut conn)
        .await
        .map_err(|source| crate::redis::Error::Command {
            command: "SET",
            source,
        })?;
    Ok(())
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    #[test]
    fn millis_is_at_least_one() {
        assert_eq!(super::millis(std::time::Duration::ZERO), 1);
        assert_eq!(super::millis(std::time::Duration::from_secs(2)), 2_000);
    }
}
