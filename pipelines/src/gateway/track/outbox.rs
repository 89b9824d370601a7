//! One WebSocket client's outbox: the frames waiting to be written to its socket, filled by the
//! hub (never waiting) and drained by the client's own task.
//!
//! - Frames stay in the order they were published (by `seq`).
//! - A location frame replaces the location frame still waiting, if any (conflation): a slow
//!   client gets the latest position, not a backlog.
//! - Status and ETA frames are never dropped. When more than `capacity` of them wait, the
//!   outbox is *overflowed*: the client task closes the socket so the app reconnects and
//!   catches up (resuming with `since`, or from a snapshot), instead of the hub buffering
//!   without bound or blocking.

use axum::extract::ws::Utf8Bytes;
use doorstep_schemas::live::FrameKind;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// One frame to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Its sequence number.
    pub seq: u64,
    /// Its type.
    pub kind: FrameKind,
    /// The JSON text, as published.
    pub text: Utf8Bytes,
}

/// Why the client task must stop sending and close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closing {
    /// More undroppable frames waited than the outbox holds.
    Overflowed,
    /// The live feed was interrupted (Redis connection lost): frames may be missing.
    FeedInterrupted,
}

#[derive(Debug, Default)]
struct State {
    frames: VecDeque<Frame>,
    /// How many of `frames` are not conflatable.
    reliable: usize,
    closing: Option<Closing>,
    conflated: u64,
}

/// The outbox, shared by the hub (push) and the client task (take). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Outbox {
    state: Arc<Mutex<State>>,
    notify: Arc<Notify>,
    /// Woken (all waiters) when the outbox starts closing.
    closing: Arc<Notify>,
    capacity: usize,
}

/// What [`Outbox::push`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued.
    Queued,
    /// Queued, replacing a waiting location frame.
    Conflated,
    /// Not queued: the outbox is closing (now or already).
    Closing,
}

impl Outbox {
    /// An outbox holding at most `capacity` status/ETA frames (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            state: Arc::new(Mutex::new(State::default())),
            notify: Arc::new(Notify::new()),
            closing: Arc::new(Notify::new()),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the queue inconsistent (every
        // critical section is a few infallible VecDeque operations), so a poisoned lock is
        // used as is.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `frame` without waiting; wakes the client task.
    pub fn push(&self, frame: Frame) -> Pushed {
        let result = {
            let mut s = self.lock();
            if s.closing.is_some() {
                Pushed::Closing
            } else if frame.kind.is_conflatable() {
                let waiting = s.frames.iter().position(|f| f.kind == frame.kind);
                let result = match waiting {
                    Some(i) => {
                        s.frames.remove(i);
                        s.conflated += 1;
                        Pushed::Conflated
                    }
                    None => Pushed::Queued,
                };
                s.frames.push_back(frame);
                result
            } else if s.reliable >= self.capacity {
                s.closing = Some(Closing::Overflowed);
                s.frames.clear();
                s.reliable = 0;
                self.closing.notify_waiters();
                Pushed::Closing
            } else {
                s.reliable += 1;
                s.frames.push_back(frame);
                Pushed::Queued
            }
        };
        self.notify.notify_one();
        result
    }

    /// Tells the client task to close for `why` (the first reason wins).
    pub fn close(&self, why: Closing) {
        {
            let mut s = self.lock();
            s.closing.get_or_insert(why);
            s.frames.clear();
            s.reliable = 0;
        }
        self.closing.notify_waiters();
        self.notify.notify_one();
    }

    /// Waits until the outbox is closing, and says why: the client task races its (possibly
    /// blocked) socket writes against this.
    pub async fn closed(&self) -> Closing {
        loop {
            let woken = self.closing.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if let Some(why) = self.lock().closing {
                return why;
            }
            woken.await;
        }
    }

    /// Everything waiting, oldest first, or why to close. Empty when nothing waits.
    pub fn take(&self) -> Result<Vec<Frame>, Closing> {
        let mut s = self.lock();
        if let Some(why) = s.closing {
            return Err(why);
        }
        s.reliable = 0;
        Ok(s.frames.drain(..).collect())
    }

    /// Waits until something was pushed or a close was asked for since the last wake-up.
    pub async fn changed(&self) {
        self.notify.notified().await;
    }

    /// How many location frames were replaced before being sent.
    pub fn conflated(&self) -> u64 {
        self.lock().conflated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(seq: u64, kind: FrameKind) -> Frame {
        Frame {
            seq,
            kind,
            text: Utf8Bytes::from(format!("{seq}")),
        }
    }

    fn seqs(frames: &[Frame]) -> Vec<u64> {
        frames.iter().map(|f| f.seq).collect()
    }

    #[test]
    fn locations_conflate_and_status_keeps_its_place() {
        let o = Outbox::new(8);
        assert_eq!(o.push(frame(1, FrameKind::Location)), Pushed::Queued);
        assert_eq!(o.push(frame(2, FrameKind::Status)), Pushed::Queued);
        assert_eq!(o.push(frame(3, FrameKind::Location)), Pushed::Conflated);
        assert_eq!(o.push(frame(4, FrameKind::Eta)), Pushed::Queued);
        assert_eq!(o.push(frame(5, FrameKind::Location)), Pushed::Conflated);
        assert_eq!(seqs(&o.take().unwrap()), [2, 4, 5]);
        assert_eq!(o.conflated(), 2);
        assert!(o.take().unwrap().is_empty());
        assert_eq!(o.push(frame(6, FrameKind::Location)), Pushed::Queued);
        assert_eq!(seqs(&o.take().unwrap()), [6]);
    }

    #[test]
    fn too_many_undroppable_frames_close_the_outbox() {
        let o = Outbox::new(2);
        o.push(frame(1, FrameKind::Status));
        o.push(frame(2, FrameKind::Eta));
        assert_eq!(o.push(frame(3, FrameKind::Status)), Pushed::Closing);
        assert_eq!(o.take(), Err(Closing::Overflowed));
        assert_eq!(o.push(frame(4, FrameKind::Location)), Pushed::Closing);
        // Taking resets the count: a client that keeps up is never closed.
        let o = Outbox::new(2);
        for seq in 0..100 {
            o.push(frame(seq, FrameKind::Status));
            assert_eq!(o.take().map(|f| f.len()), Ok(1));
        }
    }

    #[test]
    fn the_first_close_reason_wins() {
        let o = Outbox::new(2);
        o.push(frame(1, FrameKind::Status));
        o.close(Closing::FeedInterrupted);
        o.close(Closing::Overflowed);
        assert_eq!(o.take(), Err(Closing::FeedInterrupted));
    }

    #[tokio::test]
    async fn an_overflow_wakes_a_task_blocked_elsewhere() {
        let o = Outbox::new(1);
        let waiter = {
            let o = o.clone();
            tokio::spawn(async move { o.closed().await })
        };
        tokio::task::yield_now().await;
        o.push(frame(1, FrameKind::Status));
        o.push(frame(2, FrameKind::Status));
        assert_eq!(waiter.await.unwrap(), Closing::Overflowed);
        // Already closing: answers at once.
        assert_eq!(o.closed().await, Closing::Overflowed);
    }

    #[tokio::test]
    async fn a_push_wakes_the_waiting_task() {
        let o = Outbox::new(2);
        let waiter = {
            let o = o.clone();
            tokio::spawn(async move {
                o.changed().await;
                o.take()
            })
        };
        tokio::task::yield_now().await;
        o.push(frame(1, FrameKind::Eta));
        let got = waiter.await.unwrap().unwrap();
        assert_eq!(seqs(&got), [1]);
    }
}
