//! The rebalance fence: partitions leave a consumer only when no batch of theirs is in
//! flight, and records read under an earlier assignment of a partition are never processed.
//!
//! Every assignment of a partition to this consumer gets a fresh *epoch*; each record is
//! stamped with the epoch of its partition when it is read ([`Record::epoch`]). A batch
//! holds a [`FenceGuard`] over its partitions from before its first effect until its
//! transaction is committed or aborted, and may enter only with records of the current
//! epoch. When the group takes partitions away, the consumer's rebalance callback
//! ([`RebalanceFence::revoke`]) first ends their epoch, so that no new batch of theirs
//! starts, then waits until every guard over them is dropped. The group cannot hand the
//! partitions to another member until the callback returns, so two members never work on one
//! partition at once. [`RebalanceFence::assign`] opens a new epoch for partitions that come
//! (back) to this consumer: records of theirs still queued from before were read past the
//! group's committed offset, and the consumer reads them again from there.
//!
//! [`Record::epoch`]: super::Record::epoch

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

/// Which assignment of a partition a record was read under; `0` is never assigned.
pub type Epoch = u64;

#[derive(Debug, Default)]
struct State {
    /// Partitions assigned to this consumer now, with the epoch of that assignment.
    assigned: BTreeMap<TopicPartition, Epoch>,
    /// The last epoch handed out.
    last_epoch: Epoch,
    /// Batches in flight per partition.
    in_flight: BTreeMap<TopicPartition, usize>,
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
    /// A fence with nothing assigned and nothing in flight.
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

    /// The epoch of `partition`'s current assignment; `None` when it is not assigned.
    pub fn epoch(&self, partition: &TopicPartition) -> Option<Epoch> {
        self.lock().assigned.get(partition).copied()
    }

    /// The partitions of `topic` assigned now, with their epochs.
    pub fn assigned(&self, topic: &str) -> BTreeMap<i32, Epoch> {
        self.lock()
            .assigned
            .iter()
            .filter(|(tp, _)| tp.topic == topic)
            .map(|(tp, e)| (tp.partition, *e))
            .collect()
    }

    /// Marks a batch over `partitions` (each with the epoch its records were read under) as
    /// in flight until the guard is dropped. Partitions not assigned under that epoch any
    /// more are refused: the `Err` names them, and nothing is marked.
    pub fn enter(
        &self,
        partitions: BTreeMap<TopicPartition, Epoch>,
    ) -> Result<FenceGuard, BTreeSet<TopicPartition>> {
        let mut state = self.lock();
        let stale: BTreeSet<TopicPartition> = partitions
            .iter()
            .filter(|(p, e)| state.assigned.get(*p) != Some(*e))
            .map(|(p, _)| p.clone())
            .collect();
        if !stale.is_empty() {
            return Err(stale);
        }
        for p in partitions.keys() {
            *state.in_flight.entry(p.clone()).or_default() += 1;
        }
        Ok(FenceGuard {
            fence: self.clone(),
            partitions: partitions.into_keys().collect(),
        })
    }

    /// Called by the rebalance callback before `partitions` are taken away: ends their
    /// epoch (no new batch of theirs may start) and blocks the calling thread until no batch
    /// of theirs is in flight, or `bound` passed.
    pub fn revoke(&self, partitions: &[TopicPartition], bound: Duration) -> Handover {
        let started = Instant::now();
        let mut state = self.lock();
        for p in partitions {
            state.assigned.remove(p);
        }
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

    /// [`revoke`](Self::revoke) of every partition assigned now (librdkafka drops the whole
    /// assignment after a failed rebalance).
    pub fn revoke_all(&self, bound: Duration) -> Handover {
        let all: Vec<TopicPartition> = self.lock().assigned.keys().cloned().collect();
        self.revoke(&all, bound)
    }

    /// Called by the rebalance callback when `partitions` are assigned (and when a consumer
    /// is assigned partitions directly): each gets a new epoch, so records of theirs read
    /// under an earlier assignment are refused.
    pub fn assign(&self, partitions: &[TopicPartition]) {
        let mut state = self.lock();
        for p in partitions {
            state.last_epoch += 1;
            let epoch = state.last_epoch;
            state.assigned.insert(p.clone(), epoch);
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

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new("t", p)
    }

    /// A fence with partitions `ps` assigned.
    fn fence_with(ps: &[i32]) -> RebalanceFence {
        let fence = RebalanceFence::new();
        fence.assign(&ps.iter().map(|p| tp(*p)).collect::<Vec<_>>());
        fence
    }

    /// `ps` at their current epochs.
    fn current(fence: &RebalanceFence, ps: &[i32]) -> BTreeMap<TopicPartition, Epoch> {
        ps.iter()
            .map(|p| (tp(*p), fence.epoch(&tp(*p)).expect("assigned")))
            .collect()
    }

    #[test]
    fn a_free_partition_is_handed_over_at_once() {
        let fence = fence_with(&[0, 1]);
        let _other = fence.enter(current(&fence, &[1])).expect("enter");
        assert_eq!(
            fence.revoke(&[tp(0)], Duration::from_secs(5)),
            Handover::Free
        );
        assert_eq!(fence.assigned("t").keys().copied().collect::<Vec<_>>(), [1]);
    }

    #[test]
    fn a_revoke_waits_for_the_batch_in_flight_and_refuses_new_ones() {
        let fence = fence_with(&[0, 1, 2]);
        let guard = fence.enter(current(&fence, &[0, 1])).expect("enter");
        let before = current(&fence, &[0, 2]);
        let waiter = {
            let fence = fence.clone();
            std::thread::spawn(move || fence.revoke(&[tp(0)], Duration::from_secs(10)))
        };
        // The revoke ends the partition's epoch before it waits.
        let deadline = Instant::now() + Duration::from_secs(5);
        while fence.epoch(&tp(0)).is_some() {
            assert!(
                Instant::now() < deadline,
                "the revoke never ended the epoch"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(
            fence.enter(before.clone()).err(),
            Some(BTreeSet::from([tp(0)]))
        );
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
        fence.assign(&[tp(0)]);
        assert_eq!(
            fence.enter(before).err(),
            Some(BTreeSet::from([tp(0)])),
            "records read before the partition came back are stale"
        );
        assert!(
            fence.enter(current(&fence, &[0, 2])).is_ok(),
            "records of the new assignment enter"
        );
    }

    #[test]
    fn every_assignment_of_a_partition_has_a_new_epoch() {
        let fence = fence_with(&[0]);
        let first = fence.epoch(&tp(0)).expect("assigned");
        assert_eq!(fence.revoke(&[tp(0)], Duration::ZERO), Handover::Free);
        assert_eq!(fence.epoch(&tp(0)), None);
        fence.assign(&[tp(0)]);
        let second = fence.epoch(&tp(0)).expect("assigned again");
        assert_ne!(first, second);
        // An assignment without a revoke between (a consumer told twice) moves on too.
        fence.assign(&[tp(0)]);
        assert_ne!(fence.epoch(&tp(0)), Some(second));
    }

    #[test]
    fn a_revoke_gives_up_after_its_bound() {
        let fence = fence_with(&[3]);
        let _guard = fence.enter(current(&fence, &[3])).expect("enter");
        assert!(matches!(
            fence.revoke(&[tp(3)], Duration::from_millis(50)),
            Handover::TimedOut(_)
        ));
    }
}
