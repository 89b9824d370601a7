//! What may be committed: the highest offset per partition of the batches whose effects
//! were all acknowledged.

use std::collections::BTreeMap;

/// Highest processed offset per partition since the last commit.
#[derive(Debug, Default, Clone)]
pub struct OffsetTracker {
    pending: BTreeMap<i32, i64>,
}

impl OffsetTracker {
    /// Records that `offset` of `partition` is fully processed.
    pub fn done(&mut self, partition: i32, offset: i64) {
        let e = self.pending.entry(partition).or_insert(offset);
        *e = (*e).max(offset);
    }

    /// The (partition, last processed offset) pairs to commit; clears them.
    pub fn take(&mut self) -> Vec<(i32, i64)> {
        std::mem::take(&mut self.pending).into_iter().collect()
    }

    /// Forgets partitions this process no longer owns.
    pub fn forget(&mut self, partitions: &[i32]) {
        for p in partitions {
            self.pending.remove(p);
        }
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_highest_offset_per_partition() {
        let mut t = OffsetTracker::default();
        t.done(0, 5);
        t.done(0, 3);
        t.done(1, 7);
        t.done(0, 9);
        t.forget(&[2]);
        assert_eq!(t.take(), vec![(0, 9), (1, 7)]);
        assert!(t.is_empty());
    }
}
