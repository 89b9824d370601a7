//! [`DriverOrders`]: which order each driver is delivering, cached in memory for the location
//! pipeline so that a ping of a known driver costs no Redis read.
//!
//! The source of truth is the driver hash [`crate::driver_state`] keeps (written by the status
//! pipeline). A reader fills the cache with what it read from the hashes
//! ([`DriverOrders::fill`]); every change [`DriverState`](crate::driver_state::DriverState)
//! makes is announced on `{<prefix>drivers}:changes`, and this cache, subscribed there, drops
//! the driver's entry. Three rules keep it from serving a stale order:
//!
//! - a fill names the moment its read began ([`DriverOrders::ticket`]); an entry of a driver
//!   announced since then is not kept (the read may predate the change);
//! - while the subscription is down (a lost connection, messages gone) the cache is empty and
//!   answers nothing, until it is subscribed again;
//! - entries also expire after a time to live, a bound on what a lost announcement can cost.

use crate::driver_state::changes_channel;
use crate::redis::{Error, Redis, SharedEvent};
use doorstep_schemas::model::{DriverId, OrderId};
use futures::StreamExt;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Announcements remembered to judge fills that began before them; a fill older than the
/// oldest remembered one is not kept at all.
const RECENT: usize = 4096;
/// Pause between attempts to subscribe again after the subscription was lost.
const RESUBSCRIBE_PAUSE: Duration = Duration::from_millis(250);

/// A cached answer: the driver's order (`None`: not on a delivery).
pub type CachedOrder = Option<OrderId>;

/// The moment a read began, for [`DriverOrders::fill`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u64);

#[derive(Debug)]
struct Invalidations {
    /// Bumped by every announcement and by every loss or gain of the subscription.
    generation: u64,
    /// Whether the subscription is up (the cache answers only then).
    live: bool,
    /// Fills with a ticket before this are not kept.
    floor: u64,
    /// The latest announcements: (generation, driver).
    recent: VecDeque<(u64, DriverId)>,
}

struct Inner {
    cache: moka::sync::Cache<DriverId, CachedOrder>,
    state: Mutex<Invalidations>,
    follower: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = self
            .follower
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
    }
}

/// The driver → order cache. Cheap to clone; the subscription ends with the last clone.
#[derive(Clone)]
pub struct DriverOrders {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for DriverOrders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriverOrders")
            .field("entries", &self.inner.cache.entry_count())
            .finish_non_exhaustive()
    }
}

impl DriverOrders {
    /// A cache of at most `capacity` drivers, each kept at most `ttl`, not yet following
    /// announcements (it answers nothing until [`follow`](Self::follow)ed).
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                cache: moka::sync::Cache::builder()
                    .max_capacity(capacity)
                    .time_to_live(ttl)
                    .build(),
                state: Mutex::new(Invalidations {
                    generation: 0,
                    live: false,
                    floor: 0,
                    recent: VecDeque::new(),
                }),
                follower: Mutex::new(None),
            }),
        }
    }

    /// Subscribes to the announcements of the drivers under `key_prefix` (the prefix of
    /// [`DriverState`](crate::driver_state::DriverState)) and follows them in a task; returns
    /// once subscribed.
    pub async fn follow(&self, redis: &Redis, key_prefix: &str) -> Result<(), Error> {
        let channel = changes_channel(key_prefix);
        let (subscription, mut events) = redis.shared_subscription().await?;
        subscription.subscribe(&channel).await?;
        self.set_live(true);
        let weak = Arc::downgrade(&self.inner);
        let task = tokio::spawn(async move {
            while let Some(event) = events.next().await {
                let Some(inner) = weak.upgrade() else { return };
                let orders = DriverOrders { inner };
                match event {
                    SharedEvent::Message(m) => {
                        let driver = String::from_utf8_lossy(&m.payload);
                        orders.invalidate(&DriverId::new(driver.as_ref()));
                    }
                    SharedEvent::Disconnected => {
                        tracing::warn!(%channel, "driver announcements lost: cache emptied until subscribed again");
                        orders.set_live(false);
                        while let Err(e) = subscription.subscribe(&channel).await {
                            tracing::warn!(%channel, error = %e, "subscribing to driver announcements again");
                            tokio::time::sleep(RESUBSCRIBE_PAUSE).await;
                        }
                        orders.set_live(true);
                    }
                }
            }
            if let Some(inner) = weak.upgrade() {
                DriverOrders { inner }.set_live(false);
            }
        });
        if let Some(old) = self
            .inner
            .follower
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(task)
        {
            old.abort();
        }
        Ok(())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Invalidations> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached order of `driver`: `None` when it must be read.
    pub fn get(&self, driver: &DriverId) -> Option<CachedOrder> {
        if !self.state().live {
            return None;
        }
        self.inner.cache.get(driver)
    }

    /// The moment a read of driver hashes begins.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.state().generation)
    }

    /// Keeps what a read begun at `ticket` found, except for drivers announced since.
    pub fn fill(&self, ticket: Ticket, read: impl IntoIterator<Item = (DriverId, CachedOrder)>) {
        let state = self.state();
        if !state.live || ticket.0 < state.floor {
            return;
        }
        for (driver, order) in read {
            let changed = state
                .recent
                .iter()
                .rev()
                .take_while(|(g, _)| *g > ticket.0)
                .any(|(_, d)| *d == driver);
            if !changed {
                self.inner.cache.insert(driver, order);
            }
        }
    }

    /// Drops `driver`'s entry (its hash changed).
    pub fn invalidate(&self, driver: &DriverId) {
        let mut state = self.state();
        state.generation += 1;
        let generation = state.generation;
        state.recent.push_back((generation, driver.clone()));
        if state.recent.len() > RECENT
            && let Some((oldest, _)) = state.recent.pop_front()
        {
            state.floor = oldest;
        }
        self.inner.cache.invalidate(driver);
    }

    fn set_live(&self, live: bool) {
        let mut state = self.state();
        state.generation += 1;
        state.floor = state.generation;
        state.live = live;
        state.recent.clear();
        self.inner.cache.invalidate_all();
    }

    /// Entries held (approximate).
    pub fn len(&self) -> u64 {
        self.inner.cache.entry_count()
    }

    /// Whether no entry is held (approximate).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live() -> DriverOrders {
        let orders = DriverOrders::new(100, Duration::from_secs(60));
        orders.set_live(true);
        orders
    }

    #[test]
    fn fills_that_began_before_an_announcement_of_the_driver_are_not_kept() {
        let orders = live();
        let (d1, d2) = (DriverId::new("d-1"), DriverId::new("d-2"));
        let ticket = orders.ticket();
        orders.invalidate(&d1);
        orders.fill(
            ticket,
            [(d1.clone(), None), (d2.clone(), Some(OrderId::new("o-2")))],
        );
        assert_eq!(orders.get(&d1), None, "read before d-1 changed");
        assert_eq!(orders.get(&d2), Some(Some(OrderId::new("o-2"))));
        // A fill begun after the announcement is kept; the next announcement drops it.
        orders.fill(orders.ticket(), [(d1.clone(), Some(OrderId::new("o-1")))]);
        assert_eq!(orders.get(&d1), Some(Some(OrderId::new("o-1"))));
        orders.invalidate(&d1);
        assert_eq!(orders.get(&d1), None);
    }

    #[test]
    fn nothing_is_answered_or_kept_while_not_subscribed() {
        let orders = live();
        let d = DriverId::new("d-1");
        orders.fill(orders.ticket(), [(d.clone(), None)]);
        assert_eq!(orders.get(&d), Some(None));
        let ticket = orders.ticket();
        orders.set_live(false);
        assert_eq!(orders.get(&d), None);
        orders.fill(orders.ticket(), [(d.clone(), None)]);
        orders.set_live(true);
        assert_eq!(
            orders.get(&d),
            None,
            "emptied when the subscription was lost"
        );
        orders.fill(ticket, [(d.clone(), None)]);
        assert_eq!(
            orders.get(&d),
            None,
            "a read from before the loss is not kept"
        );
    }

    #[test]
    fn fills_older_than_the_remembered_announcements_are_not_kept() {
        let orders = live();
        let ticket = orders.ticket();
        for i in 0..=RECENT {
            orders.invalidate(&DriverId::new(format!("x-{i}")));
        }
        let d = DriverId::new("d-1");
        orders.fill(ticket, [(d.clone(), None)]);
        assert_eq!(orders.get(&d), None);
    }
}
