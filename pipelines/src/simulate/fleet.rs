//! The drivers: who is free and where each one is. Dispatch takes the free driver nearest to
//! the restaurant (waiting when everyone is busy) and gets them back when they are done.

use super::{SplitMix, random_delivery_point};
use doorstep_schemas::model::GeoPoint;
use std::sync::Mutex;
use tokio::sync::Notify;

/// A driver and where they are.
#[derive(Debug, Clone, PartialEq)]
pub struct Driver {
    /// Driver id (`d-<n>`).
    pub id: String,
    /// Last position.
    pub at: GeoPoint,
}

/// The pool of free drivers.
#[derive(Debug)]
pub struct Fleet {
    free: Mutex<Vec<Driver>>,
    returned: Notify,
}

impl Fleet {
    /// `size` drivers, each starting at a customer address (chosen by `seed`), ids prefixed with
    /// `prefix` (so parallel runs never share a driver).
    pub fn new(size: u32, prefix: &str, seed: u64) -> Self {
        let mut r = SplitMix(seed ^ 0xD71E_5EED);
        let free = (0..size.max(1))
            .map(|n| Driver {
                id: format!("{prefix}d{n}"),
                at: random_delivery_point(r.unit()),
            })
            .collect();
        Self {
            free: Mutex::new(free),
            returned: Notify::new(),
        }
    }

    /// The free driver nearest to `near`, waiting for one when all are busy.
    pub async fn acquire(&self, near: GeoPoint) -> Driver {
        loop {
            let notified = self.returned.notified();
            if let Some(d) = self.take_nearest(near) {
                return d;
            }
            notified.await;
        }
    }

    fn take_nearest(&self, near: GeoPoint) -> Option<Driver> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        let best = free
            .iter()
            .enumerate()
            .min_by(|(_, a), (_, b)| a.at.distance_m(&near).total_cmp(&b.at.distance_m(&near)))
            .map(|(i, _)| i)?;
        Some(free.swap_remove(best))
    }

    /// Puts a driver back, at their current position.
    pub fn release(&self, driver: Driver) {
        self.free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(driver);
        self.returned.notify_waiters();
    }

    /// Free drivers now.
    pub fn free_count(&self) -> usize {
        self.free.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::RESTAURANTS;
    use std::time::Duration;

    #[tokio::test]
    async fn nearest_free_driver_is_taken_and_waiters_wake_on_release() {
        let fleet = std::sync::Arc::new(Fleet::new(2, "t-", 1));
        let (_, kluuvi) = RESTAURANTS[0];
        let a = fleet.acquire(kluuvi).await;
        let b = fleet.acquire(kluuvi).await;
        assert!(a.at.distance_m(&kluuvi) <= b.at.distance_m(&kluuvi));
        assert_eq!(fleet.free_count(), 0);
        let f2 = fleet.clone();
        let waiter = tokio::spawn(async move { f2.acquire(kluuvi).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        fleet.release(a.clone());
        let c = tokio::time::timeout(Duration::from_secs(2), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c, a);
    }
}
