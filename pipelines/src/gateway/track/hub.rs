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
//!   close ([`Closing::FeedInterrupted`]) so its app reconnects and gets a fresh snapshot (a
//!   waiting command is told [`Heard::Interrupted`]), and new followers subscribe again.

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
}

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
    commands: mpsc::UnboundedSender<Command>,
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
            let _ = self
                .hub
                .commands
                .send(Command::Unsubscribe(self.channel.clone()));
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
        let (commands, rx) = mpsc::unbounded_channel();
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
                    .send(Command::Subscribe(channel.to_owned(), tx));
                match asked {
                    Ok(()) => rx
                        .await
                        .unwrap_or_else(|_| Err("the hub stopped".to_owned())),
                    Err(_) => Err("the hub stopped".to_owned()),
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
                Err(HubError::Subscribe(e))
            }
        }
    }
}

async fn apply_commands(
    subscription: SharedSubscription,
    mut rx: mpsc::UnboundedReceiver<Command>,
) {
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
    let lag_ms = Timestamp::now().as_millis() - event_time(&event).as_millis();
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
        let _ = hub.commands.send(Command::Unsubscribe(channel));
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
    }
}
