//! The rebalance fence: partitions leave a consumer only when no batch of theirs is in
//! flight.
//!
//! A batch holds a [`FenceGuard`] over its partitions from before its first effect until its
//! transaction is committed or aborted. When the group takes partitions away, the consumer's
//! rebalance callback ([`RebalanceFence::revoke`]) first marks them as leaving, so that no
//! new batch of theirs starts, then waits until every guard over them is dropped. The group
//! cannot hand the partitions to another member until the callback returns, so two members
//! never work on one partition at once. [`RebalanceFence::assign`] clears the mark of
//! partitions that come (back) to this consumer.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// One partition of one topic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
}

impl TopicPartition {
    /// `topic[partition]`.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    /// Batches in flight per partition.
    in_flight: BTreeMap<TopicPartition, usize>,
    /// Partitions being taken away: no new batch of theirs may start.
    leaving: BTreeSet<TopicPartition>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

/// Shared between a consumer's rebalance callback and the runtime that processes its
/// batches; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct RebalanceFence {
    shared: Arc<Shared>,
}

/// What [`RebalanceFence::revoke`] waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Handover {
    /// No batch of the partitions was in flight.
    Free,
    /// Batches were in flight and finished within the bound; how long that took.
    Waited(Duration),
    /// Batches were still in flight when the bound passed; the partitions were let go anyway
    /// (their transaction will fail to commit under the group's new generation).
    TimedOut(Duration),
}

impl RebalanceFence {
    /// A fence with nothing in flight.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves counters that are still meaningful.
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Of `partitions`, those being taken away right now (a batch must leave them out).
    pub fn leaving(&self, partitions: &BTreeSet<TopicPartition>) -> BTreeSet<TopicPartition> {
        let state = self.lock();
        partitions.intersection(&state.leaving).cloned().collect()
    }

    /// Marks a batch over `partitions` as in flight until the guard is dropped. Partitions
    /// being taken away are refused: the `Err` names them, and nothing is marked.
    pub fn enter(
        &self,
        partitions: BTreeSet<TopicPartition>,
    ) -> Result<FenceGuard, BTreeSet<TopicPartition>> {
        let mut state = self.lock();
        let leaving: BTreeSet<TopicPartition> =
            partitions.intersection(&state.leaving).cloned().collect();
        if !leaving.is_empty() {
            return Err(leaving);
        }
        for p in &partitions {
            *state.in_flight.entry(p.clone()).or_default() += 1;
        }
        Ok(FenceGuard {
            fence: self.clone(),
            partitions,
        })
    }

    /// Called by the rebalance callback before `partitions` are taken away: marks them as
    /// leaving and blocks the calling thread until no batch of theirs is in flight, or
    /// `bound` passed.
    pub fn revoke(&self, partitions: &[TopicPartition], bound: Duration) -> Handover {
        let started = Instant::now();
        let mut state = self.lock();
        state.leaving.extend(partitions.iter().cloned());
        let busy = |s: &State| {
            partitions
                .iter()
                .any(|p| s.in_flight.get(p).is_some_and(|n| *n > 0))
        };
        if !busy(&state) {
            return Handover::Free;
        }
        loop {
            let left = bound.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Handover::TimedOut(started.elapsed());
            }
            let (next, _) = self
                .shared
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner);
            state = next;
            if !busy(&state) {
                return Handover::Waited(started.elapsed());
            }
        }
    }

    /// Called by the rebalance callback when `partitions` are assigned: batches of theirs
    /// may start again.
    pub fn assign(&self, partitions: &[TopicPartition]) {
        let mut state = self.lock();
        for p in partitions {
            state.leaving.remove(p);
        }
    }
}

/// A batch in flight over some partitions; dropping it lets a waiting revoke go on.
#[derive(Debug)]
pub struct FenceGuard {
    fence: RebalanceFence,
    partitions: BTreeSet<TopicPartition>,
}

impl Drop for FenceGuard {
    fn drop(&mut self) {
        let mut state = self.fence.lock();
        for p in &self.partitions {
            if let Some(n) = state.in_flight.get_mut(p) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    state.in_flight.remove(p);
                }
            }
        }
        drop(state);
        self.fence.shared.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(ps: &[i32]) -> BTreeSet<TopicPartition> {
        ps.iter().map(|p| TopicPartition::new("t", *p)).collect()
    }

    #[test]
    fn a_free_partition_is_handed_over_at_once() {
        let fence = RebalanceFence::new();
        let _other = fence.enter(parts(&[1])).expect("enter");
        let v: Vec<TopicPartition> = parts(&[0]).into_iter().collect();
        assert_eq!(fence.revoke(&v, Duration::from_secs(5)), Handover::Free);
    }

    #[test]
    fn a_revoke_waits_for_the_batch_in_flight_and_refuses_new_ones() {
        let fence = RebalanceFence::new();
        let guard = fence.enter(parts(&[0, 1])).expect("enter");
        let waiter = {
            let fence = fence.clone();
            std::thread::spawn(move || {
                let v: Vec<TopicPartition> = parts(&[0]).into_iter().collect();
                fence.revoke(&v, Duration::from_secs(10))
            })
        };
        // The revoke marks the partition as leaving before it waits.
        let deadline = Instant::now() + Duration::from_secs(5);
        while fence.leaving(&parts(&[0])).is_empty() {
            assert!(
                Instant::now() < deadline,
                "the revoke never marked the partition"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(fence.enter(parts(&[0, 2])).err(), Some(parts(&[0])));
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            !waiter.is_finished(),
            "the revoke did not wait for the batch"
        );
        drop(guard);
        match waiter.join().expect("join") {
            Handover::Waited(d) => assert!(d >= Duration::from_millis(100), "{d:?}"),
            other => panic!("expected a wait, got {other:?}"),
        }
        fence.assign(&[TopicPartition::new("t", 0)]);
        assert!(
            fence.enter(parts(&[0])).is_ok(),
            "an assigned partition is free again"
        );
    }

    #[test]
    fn a_revoke_gives_up_after_its_bound() {
        let fence = RebalanceFence::new();
        let _guard = fence.enter(parts(&[3])).expect("enter");
        let v: Vec<TopicPartition> = parts(&[3]).into_iter().collect();
        assert!(matches!(
            fence.revoke(&v, Duration::from_millis(50)),
            Handover::TimedOut(_)
        ));
    }
}
