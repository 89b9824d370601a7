//! Waiting for one command's outcome without polling: the command follows its order's command
//! channel through the process's hub (one shared Redis subscription; the channel is
//! subscribed once however many commands of the order wait) *before* the outcome is read or
//! the command produced, so the outcome is either read or heard.

use crate::gateway::track::{Follower, Following, Heard, HubError, TrackingHub};
use doorstep_schemas::model::EventId;
use doorstep_schemas::outcome::CommandOutcome;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A command following its order's command channel; dropping it leaves the channel.
pub(super) struct Waiting {
    heard: mpsc::UnboundedReceiver<Heard>,
    _following: Following,
}

/// How a wait ended.
pub(super) enum Waited {
    /// The outcome was published.
    Outcome(Arc<CommandOutcome>),
    /// The deadline passed first.
    TimedOut,
    /// The Redis connection dropped: an outcome published meanwhile was lost (read it).
    Interrupted,
}

impl Waiting {
    /// Follows `channel` for the outcome of `event_id`. When this returns `Ok`, an outcome
    /// published from now on is heard.
    pub(super) async fn start(
        hub: &TrackingHub,
        channel: &str,
        event_id: &EventId,
    ) -> Result<Self, HubError> {
        let (tx, heard) = mpsc::unbounded_channel();
        let follower = Follower::Command {
            event_id: event_id.clone(),
            heard: tx,
        };
        let following = hub.follow(channel, follower).await?;
        Ok(Self {
            heard,
            _following: following,
        })
    }

    /// The outcome, if it is published before `deadline`.
    pub(super) async fn until(&mut self, deadline: Instant) -> Waited {
        match tokio::time::timeout_at(deadline, self.heard.recv()).await {
            Ok(Some(Heard::Outcome(outcome))) => Waited::Outcome(outcome),
            Ok(Some(Heard::Interrupted) | None) => Waited::Interrupted,
            Err(_) => Waited::TimedOut,
        }
    }
}
