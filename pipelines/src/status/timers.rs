//! The in-memory view of the durable timers of the partitions this process owns: which
//! order's auto-confirm is due next.

use doorstep_schemas::model::{OrderId, Timestamp};
use std::collections::{BTreeSet, HashMap};

/// Pending auto-confirm timers by due time.
#[derive(Debug, Default)]
pub struct TimerWheel {
    by_due: BTreeSet<(Timestamp, OrderId)>,
    by_order: HashMap<OrderId, (Timestamp, i32)>,
}

impl TimerWheel {
    /// Sets (or moves) the order's timer.
    pub fn put(&mut self, partition: i32, order_id: OrderId, due: Timestamp) {
        self.remove(&order_id);
        self.by_due.insert((due, order_id.clone()));
        self.by_order.insert(order_id, (due, partition));
    }

    /// Drops the order's timer.
    pub fn remove(&mut self, order_id: &OrderId) {
        if let Some((due, _)) = self.by_order.remove(order_id) {
            self.by_due.remove(&(due, order_id.clone()));
        }
    }

    /// The timers due at `now`, earliest first, as (partition, order, due). They stay
    /// pending until [`remove`](Self::remove)d (when the order leaves PLACED), but are not
    /// returned again before `refire_after` ms have passed.
    pub fn due(&mut self, now: Timestamp, refire_after_ms: i64) -> Vec<(i32, OrderId, Timestamp)> {
        let due: Vec<(Timestamp, OrderId)> = self
            .by_due
            .iter()
            .take_while(|(d, _)| *d <= now)
            .cloned()
            .collect();
        let mut out = Vec::with_capacity(due.len());
        for (d, order_id) in due {
            let partition = self.by_order.get(&order_id).map_or(0, |(_, p)| *p);
            out.push((partition, order_id.clone(), d));
            // Re-arm later in case the fired event is lost before it is processed.
            self.by_due.remove(&(d, order_id.clone()));
            let next = now.plus_millis(refire_after_ms);
            self.by_due.insert((next, order_id.clone()));
            self.by_order.insert(order_id, (next, partition));
        }
        out
    }

    /// Forgets every timer of the given partitions (they moved to another process).
    pub fn drop_partitions(&mut self, partitions: &[i32]) {
        let gone: Vec<OrderId> = self
            .by_order
            .iter()
            .filter(|(_, (_, p))| partitions.contains(p))
            .map(|(o, _)| o.clone())
            .collect();
        for o in gone {
            self.remove(&o);
        }
    }

    /// Number of pending timers.
    pub fn len(&self) -> usize {
        self.by_order.len()
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.by_order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_due_timers_in_order_and_rearms_them() {
        let mut w = TimerWheel::default();
        w.put(0, "b".into(), Timestamp(200));
        w.put(1, "a".into(), Timestamp(100));
        w.put(0, "c".into(), Timestamp(300));
        let due = w.due(Timestamp(250), 10_000);
        assert_eq!(
            due,
            vec![
                (1, "a".into(), Timestamp(100)),
                (0, "b".into(), Timestamp(200))
            ]
        );
        assert!(w.due(Timestamp(260), 10_000).is_empty());
        assert_eq!(w.due(Timestamp(10_250), 10_000).len(), 3);
        w.remove(&"a".into());
        w.drop_partitions(&[0]);
        assert!(w.is_empty());
    }
}
