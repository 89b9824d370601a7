//! The hub: one Redis subscription per order channel for the whole gateway process, shared by
//! every socket following that order, and the fan-out of each published frame to their
//! outboxes.
//!
//! - Subscribing and unsubscribing go through one task, in the order asked, so an
//!   `UNSUBSCRIBE` of a channel whose last follower left can never overtake the `SUBSCRIBE` of
//!   a follower that arrived just after.
//! - The fan-out never waits on a socket: it pushes into outboxes ([`super::outbox`]), which
//!   conflate locations and close clients that cannot keep up.
//! - When the Redis connection drops, frames may have been lost: every follower is told to
//!   close ([`Closing::FeedInterrupted`]) so its app reconnects and gets a fresh snapshot,
//!   and new followers subscribe again.

use super::metrics::TrackingMetrics;
use super::outbox::{Closing, Frame, Outbox, Pushed};
use axum::extract::ws::Utf8Bytes;
use doorstep_connectors::redis::{SharedEvent, SharedEvents, SharedSubscription};
use doorstep_schemas::live::{FrameHeader, LiveEvent};
use doorstep_schemas::model::Timestamp;
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

struct Feed {
    generation: u64,
    followers: HashMap<u64, Outbox>,
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

    /// Adds `outbox` to `channel`'s followers, subscribing the process to the channel if it
    /// is the first. When this returns `Ok`, every frame published from now on reaches
    /// `outbox`.
    pub async fn follow(&self, channel: &str, outbox: Outbox) -> Result<Following, HubError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (ready, generation) = {
            let mut feeds = self.inner.feeds();
            let feed = feeds.entry(channel.to_owned()).or_insert_with(|| Feed {
                generation: id,
                followers: HashMap::new(),
                ready: Arc::new(OnceCell::new()),
            });
            feed.followers.insert(id, outbox);
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
    }
}

fn deliver(hub: &HubInner, channel: &str, payload: Vec<u8>) {
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
    for outbox in feed.followers.values() {
        match outbox.push(frame.clone()) {
            Pushed::Conflated => m.conflated.with_label_values(&["track"]).inc(),
            Pushed::Queued | Pushed::Closing => {}
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
        for outbox in feed.followers.values() {
            outbox.close(Closing::FeedInterrupted);
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
    }
}
