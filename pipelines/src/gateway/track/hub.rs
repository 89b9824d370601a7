//! The hub: one Redis subscription per order channel for the whole gateway process, shared by
//! every socket following that order, and the fan-out of each published frame to their
//! outboxes. The same subscription carries the orders' command channels, followed by the
//! commands waiting for their outcome ([`Follower::Command`]): each hears the outcome
//! published for its event id.
//!
//! - Subscribing and unsubscribing go through one task, in the order asked, so an
//!   `UNSUBSCRIBE` of a channel whose last follower left can never overtake the `SUBSCRIBE` of
//!   a follower that arrived just after.
//! - The fan-out never waits on a socket: it pushes into outboxes ([`super::outbox`]), which
//!   conflate locations and close clients that cannot keep up.
//! - When the Redis connection drops, frames may have been lost: every follower is told to
//!   close ([`Closing::FeedInterrupted`]) so its app reconnects and catches up (resuming with
//!   `since`: what was published meanwhile is in the order's history; a waiting command is
//!   told [`Heard::Interrupted`]), and new followers subscribe again.
//! - The queue of subscription changes is bounded ([`COMMAND_QUEUE`]): when Redis is too slow
//!   to keep up, a new follower is refused (the socket answers 503 `live_unavailable`) instead
//!   of the queue growing without bound; an unsubscription waits for room instead.
//! - Frames are untrusted input (anything can `PUBLISH` on a channel): their times are used
//!   with saturating arithmetic, never with a subtraction that can overflow.

use super::metrics::TrackingMetrics;
use super::outbox::{Closing, Frame, Outbox, Pushed};
use axum::extract::ws::Utf8Bytes;
use doorstep_connectors::redis::{SharedEvent, SharedEvents, SharedSubscription};
use doorstep_schemas::live::{FrameHeader, LiveEvent};
use doorstep_schemas::model::{EventId, Timestamp};
use doorstep_schemas::outcome::CommandOutcome;
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use tokio::sync::{OnceCell, mpsc, oneshot};

/// Why following an order's channel failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    /// Redis refused or did not confirm the subscription.
    #[error("subscribing to the order's live channel failed: {0}")]
    Subscribe(String),
    /// Too many subscription changes wait already.
    #[error("too many live channel subscriptions are waiting")]
    Busy,
}

/// Most subscription changes waiting for the Redis connection.
pub const COMMAND_QUEUE: usize = 4096;

enum Command {
    Subscribe(String, oneshot::Sender<Result<(), String>>),
    Unsubscribe(String),
}

/// Who follows a channel.
#[derive(Debug, Clone)]
pub enum Follower {
    /// A customer socket, following an order's tracking channel: every frame goes to its
    /// outbox.
    Socket(Outbox),
    /// A command waiting for its outcome, following its order's command channel: the
    /// outcome published for `event_id` goes to `heard`.
    Command {
        /// The command's event id.
        event_id: EventId,
        /// Where the outcome (or an interruption) is sent.
        heard: mpsc::UnboundedSender<Heard>,
    },
}

/// What a waiting command hears.
#[derive(Debug, Clone)]
pub enum Heard {
    /// Its outcome was recorded.
    Outcome(Arc<CommandOutcome>),
    /// The Redis connection dropped: an outcome published meanwhile was lost.
    Interrupted,
}

/// What a channel carries, decided by its first follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FeedKind {
    /// Live frames of an order.
    Tracking,
    /// Outcomes of an order's commands.
    Commands,
}

impl Follower {
    fn kind(&self) -> FeedKind {
        match self {
            Self::Socket(_) => FeedKind::Tracking,
            Self::Command { .. } => FeedKind::Commands,
        }
    }
}

struct Feed {
    generation: u64,
    kind: FeedKind,
    followers: HashMap<u64, Follower>,
    ready: Arc<OnceCell<Result<(), String>>>,
}

struct HubInner {
    feeds: Mutex<HashMap<String, Feed>>,
    commands: mpsc::Sender<Command>,
    next_id: AtomicU64,
    metrics: TrackingMetrics,
}

impl HubInner {
    fn feeds(&self) -> MutexGuard<'_, HashMap<String, Feed>> {
        // Every critical section is a few infallible map operations: a poisoned lock still
        // holds a consistent map.
        self.feeds.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The shared subscriptions of one gateway process. Cheap to clone.
#[derive(Clone)]
pub struct TrackingHub {
    inner: Arc<HubInner>,
}

impl std::fmt::Debug for TrackingHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrackingHub")
            .field("channels", &self.channels())
            .finish_non_exhaustive()
    }
}

/// A follower's place in a feed; dropping it leaves the feed (and the last one out
/// unsubscribes).
pub struct Following {
    hub: Arc<HubInner>,
    channel: String,
    id: u64,
    generation: u64,
}

impl std::fmt::Debug for Following {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Following")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl Drop for Following {
    fn drop(&mut self) {
        let mut feeds = self.hub.feeds();
        let Some(feed) = feeds.get_mut(&self.channel) else {
            return;
        };
        if feed.generation != self.generation {
            return;
        }
        feed.followers.remove(&self.id);
        if feed.followers.is_empty() {
            feeds.remove(&self.channel);
            self.hub.metrics.channels.set(feeds.len() as i64);
            unsubscribe(&self.hub.commands, self.channel.clone());
        }
    }
}

impl TrackingHub {
    /// Starts the hub's two tasks (subscription changes, fan-out) on `subscription` and its
    /// `events`. They stop when the hub and every [`Following`] are dropped.
    pub fn start(
        subscription: SharedSubscription,
        events: SharedEvents,
        metrics: TrackingMetrics,
    ) -> Self {
        let (commands, rx) = mpsc::channel(COMMAND_QUEUE);
        let inner = Arc::new(HubInner {
            feeds: Mutex::new(HashMap::new()),
            commands,
            next_id: AtomicU64::new(1),
            metrics,
        });
        tokio::spawn(apply_commands(subscription, rx));
        tokio::spawn(fan_out(Arc::downgrade(&inner), events));
        Self { inner }
    }

    /// Order channels followed now.
    pub fn channels(&self) -> usize {
        self.inner.feeds().len()
    }

    /// Adds `follower` to `channel`'s followers, subscribing the process to the channel if it
    /// is the first. When this returns `Ok`, every message published from now on reaches
    /// `follower`. (A channel carries one kind of message: follow tracking channels with
    /// sockets and command channels with commands.)
    pub async fn follow(&self, channel: &str, follower: Follower) -> Result<Following, HubError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (ready, generation) = {
            let mut feeds = self.inner.feeds();
            let feed = feeds.entry(channel.to_owned()).or_insert_with(|| Feed {
                generation: id,
                kind: follower.kind(),
                followers: HashMap::new(),
                ready: Arc::new(OnceCell::new()),
            });
            feed.followers.insert(id, follower);
            let r = (feed.ready.clone(), feed.generation);
            self.inner.metrics.channels.set(feeds.len() as i64);
            r
        };
        let following = Following {
            hub: self.inner.clone(),
            channel: channel.to_owned(),
            id,
            generation,
        };
        let result = ready
            .get_or_init(|| async {
                let (tx, rx) = oneshot::channel();
                let asked = self
                    .inner
                    .commands
                    .try_send(Command::Subscribe(channel.to_owned(), tx));
                match asked {
                    Ok(()) => rx
                        .await
                        .unwrap_or_else(|_| Err("the hub stopped".to_owned())),
                    Err(mpsc::error::TrySendError::Full(_)) => Err(BUSY.to_owned()),
                    Err(mpsc::error::TrySendError::Closed(_)) => Err("the hub stopped".to_owned()),
                }
            })
            .await
            .clone();
        match result {
            Ok(()) => Ok(following),
            Err(e) => {
                // Forget the failed feed so that the next follower subscribes again.
                let mut feeds = self.inner.feeds();
                if feeds
                    .get(channel)
                    .is_some_and(|f| f.generation == generation)
                {
                    feeds.remove(channel);
                    self.inner.metrics.channels.set(feeds.len() as i64);
                }
                if e == BUSY {
                    return Err(HubError::Busy);
                }
                Err(HubError::Subscribe(e))
            }
        }
    }
}

/// The failure a full command queue gives a follower.
const BUSY: &str = "busy";

/// Queues the unsubscription of `channel`: at once when there is room, else from a task that
/// waits for room (a lost unsubscription would leave the channel subscribed).
fn unsubscribe(commands: &mpsc::Sender<Command>, channel: String) {
    match commands.try_send(Command::Unsubscribe(channel)) {
        Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
        Err(mpsc::error::TrySendError::Full(command)) => {
            let commands = commands.clone();
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    let _ = commands.send(command).await;
                });
            }
        }
    }
}

async fn apply_commands(subscription: SharedSubscription, mut rx: mpsc::Receiver<Command>) {
    while let Some(command) = rx.recv().await {
        match command {
            Command::Subscribe(channel, reply) => {
                let result = subscription
                    .subscribe(&channel)
                    .await
                    .map_err(|e| e.to_string());
                if let Err(e) = &result {
                    tracing::warn!(%channel, error = %e, "live channel subscription failed");
                }
                let _ = reply.send(result);
            }
            Command::Unsubscribe(channel) => {
                if let Err(e) = subscription.unsubscribe(&channel).await {
                    tracing::warn!(%channel, error = %e, "live channel unsubscription failed");
                }
            }
        }
    }
}

async fn fan_out(hub: Weak<HubInner>, mut events: SharedEvents) {
    while let Some(event) = events.next().await {
        let Some(hub) = hub.upgrade() else {
            return;
        };
        match event {
            SharedEvent::Message(m) => deliver(&hub, &m.channel, m.payload),
            SharedEvent::Disconnected => interrupt(&hub),
            _ => {}
        }
    }
}

/// The time an event happened, for the end-to-end lag.
fn event_time(event: &LiveEvent) -> Timestamp {
    match event {
        LiveEvent::Location(l) => l.at,
        LiveEvent::Status(s) => s.entry.at,
        LiveEvent::Eta(e) => e.computed_at,
        LiveEvent::Rejected(r) => r.at,
    }
}

/// The metric label (`type`) of command outcomes received on command channels.
pub const OUTCOME_LABEL: &str = "outcome";

fn deliver(hub: &HubInner, channel: &str, payload: Vec<u8>) {
    let kind = hub.feeds().get(channel).map(|feed| feed.kind);
    match kind {
        Some(FeedKind::Tracking) => deliver_frame(hub, channel, payload),
        Some(FeedKind::Commands) => deliver_outcome(hub, channel, &payload),
        None => hub.metrics.unrouted.inc(),
    }
}

fn deliver_frame(hub: &HubInner, channel: &str, payload: Vec<u8>) {
    let m = &hub.metrics;
    let parsed = serde_json::from_slice::<FrameHeader>(&payload).and_then(|header| {
        serde_json::from_slice::<LiveEvent>(&payload).map(|event| (header, event))
    });
    let (header, event) = match parsed {
        Ok(p) => p,
        Err(e) => {
            m.bad_frames.inc();
            tracing::warn!(%channel, error = %e, "a live frame that is not the live contract; not forwarded");
            return;
        }
    };
    let kind = header.kind;
    let label = kind_label(kind);
    m.received.with_label_values(&[label]).inc();
    // The event's time comes from the frame: saturate, a forged one must not overflow.
    let lag_ms = Timestamp::now()
        .as_millis()
        .saturating_sub(event_time(&event).as_millis());
    m.lag
        .with_label_values(&[label])
        .observe(lag_ms.max(0) as f64 / 1000.0);
    let text = match Utf8Bytes::try_from(payload) {
        Ok(t) => t,
        Err(_) => {
            // Unreachable after a successful JSON parse, which checks UTF-8; counted anyway.
            m.bad_frames.inc();
            return;
        }
    };
    let frame = Frame {
        seq: header.seq,
        kind,
        text,
    };
    let feeds = hub.feeds();
    let Some(feed) = feeds.get(channel) else {
        m.unrouted.inc();
        return;
    };
    for follower in feed.followers.values() {
        let Follower::Socket(outbox) = follower else {
            continue;
        };
        match outbox.push(frame.clone()) {
            Pushed::Conflated => m.conflated.with_label_values(&["track"]).inc(),
            Pushed::Queued | Pushed::Closing => {}
        }
    }
}

/// Hands an outcome published on a command channel to the commands waiting for it.
fn deliver_outcome(hub: &HubInner, channel: &str, payload: &[u8]) {
    let m = &hub.metrics;
    let outcome = match serde_json::from_slice::<CommandOutcome>(payload) {
        Ok(o) => Arc::new(o),
        Err(e) => {
            m.bad_frames.inc();
            tracing::warn!(%channel, error = %e, "a command outcome that is not the outcome contract; ignored");
            return;
        }
    };
    m.received.with_label_values(&[OUTCOME_LABEL]).inc();
    let lag_ms = Timestamp::now().as_millis() - outcome.at.as_millis();
    m.lag
        .with_label_values(&[OUTCOME_LABEL])
        .observe(lag_ms.max(0) as f64 / 1000.0);
    let feeds = hub.feeds();
    let Some(feed) = feeds.get(channel) else {
        m.unrouted.inc();
        return;
    };
    for follower in feed.followers.values() {
        if let Follower::Command { event_id, heard } = follower
            && *event_id == outcome.event_id
        {
            // The waiter may have given up meanwhile: nothing to do then.
            let _ = heard.send(Heard::Outcome(outcome.clone()));
        }
    }
}

fn interrupt(hub: &HubInner) {
    let drained: Vec<(String, Feed)> = {
        let mut feeds = hub.feeds();
        let drained = feeds.drain().collect();
        hub.metrics.channels.set(0);
        drained
    };
    tracing::warn!(
        channels = drained.len(),
        "the Redis live-feed connection dropped; closing followers so they resynchronise"
    );
    hub.metrics.interruptions.inc();
    for (channel, feed) in drained {
        for follower in feed.followers.values() {
            match follower {
                Follower::Socket(outbox) => outbox.close(Closing::FeedInterrupted),
                Follower::Command { heard, .. } => {
                    let _ = heard.send(Heard::Interrupted);
                }
            }
        }
        unsubscribe(&hub.commands, channel);
    }
}

/// The metric label of a frame type.
pub fn kind_label(kind: doorstep_schemas::live::FrameKind) -> &'static str {
    use doorstep_schemas::live::FrameKind;
    match kind {
        FrameKind::Snapshot => "snapshot",
        FrameKind::Location => "location",
        FrameKind::Status => "status",
        FrameKind::Eta => "eta",
        FrameKind::Rejected => "rejected",
        FrameKind::Resumed => "resumed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub() -> (HubInner, mpsc::Receiver<Command>) {
        let (commands, rx) = mpsc::channel(2);
        let metrics = TrackingMetrics::register(&prometheus::Registry::new()).unwrap();
        let inner = HubInner {
            feeds: Mutex::new(HashMap::new()),
            commands,
            next_id: AtomicU64::new(1),
            metrics,
        };
        (inner, rx)
    }

    /// A frame whose time is the far past (anything can be published on a channel) does not
    /// overflow the lag computation: in a debug build the subtraction panicked the fan-out.
    #[tokio::test]
    async fn a_frame_from_the_far_past_or_future_does_not_panic_the_fan_out() {
        let (inner, _rx) = hub();
        let outbox = Outbox::new(4);
        inner.feeds().insert(
            "ch".into(),
            Feed {
                generation: 1,
                kind: FeedKind::Tracking,
                followers: HashMap::from([(1, Follower::Socket(outbox.clone()))]),
                ready: Arc::new(OnceCell::new()),
            },
        );
        for at in [i64::MIN, i64::MAX, -1] {
            let frame = format!(
                r#"{{"seq":{},"type":"location","order_id":"o-1","update_id":"u","driver_id":"d-1","location":{{"lat":60.1,"lng":24.9}},"at":{at}}}"#,
                at.unsigned_abs() % 1000 + 1
            );
            deliver(&inner, "ch", frame.into_bytes());
        }
        assert!(outbox.take().is_ok_and(|f| !f.is_empty()));
    }

    /// The command queue is bounded: when it is full a new follower is refused at once
    /// instead of the queue growing.
    #[tokio::test]
    async fn a_full_command_queue_refuses_new_followers() {
        let (inner, _rx) = hub();
        let hub = TrackingHub {
            inner: Arc::new(inner),
        };
        for i in 0..2 {
            let (tx, _rx) = oneshot::channel();
            hub.inner
                .commands
                .try_send(Command::Subscribe(format!("busy-{i}"), tx))
                .unwrap();
        }
        let r = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            hub.follow("ch", Follower::Socket(Outbox::new(4))),
        )
        .await
        .expect("answers at once");
        assert!(matches!(r, Err(HubError::Busy)), "{r:?}");
        assert_eq!(hub.channels(), 0, "the failed feed is forgotten");
    }
}
