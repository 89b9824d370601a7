//! The prep-time history the ETA reads: observations per (restaurant, hour of day) from the
//! order store, refreshed every [`REFRESH_MS`] of the pipeline's clock, plus the
//! observations this process saw itself (PREPARING → READY_FOR_PICKUP in its own stream), so
//! a new observation counts at once even before the store has it. Observations are keyed
//! by order id, so one seen both ways counts once.

use doorstep_connectors::order_store::{OrderStore, PrepTimeObservation};
use doorstep_operators::eta::{PrepExpectation, PrepModel};
use doorstep_schemas::model::{OrderId, RestaurantId, Timestamp};
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// How long loaded history is used before it is read again, milliseconds.
pub const REFRESH_MS: i64 = 300_000;

/// Reads of the store in flight at once.
const CONCURRENCY: usize = 16;

/// A restaurant at an hour of day.
pub type PrepKey = (RestaurantId, u8);

#[derive(Debug, Default)]
struct Entry {
    /// From the store, oldest first.
    loaded: Vec<(OrderId, f64)>,
    /// Seen by this process.
    local: BTreeMap<OrderId, (Timestamp, f64)>,
    /// When `loaded` was read (`None`: never).
    loaded_at: Option<Timestamp>,
}

impl Entry {
    fn seconds(&self) -> Vec<f64> {
        let known: BTreeSet<&OrderId> = self.loaded.iter().map(|(o, _)| o).collect();
        let mut extra: Vec<(Timestamp, f64)> = self
            .local
            .iter()
            .filter(|(o, _)| !known.contains(o))
            .map(|(_, v)| *v)
            .collect();
        extra.sort_by_key(|(at, _)| *at);
        self.loaded
            .iter()
            .map(|(_, s)| *s)
            .chain(extra.into_iter().map(|(_, s)| s))
            .collect()
    }
}

/// Prep-time history with its model.
#[derive(Debug)]
pub struct PrepHistory {
    model: PrepModel,
    entries: HashMap<PrepKey, Entry>,
}

impl PrepHistory {
    /// Empty history judged by `model`.
    pub fn new(model: PrepModel) -> Self {
        Self {
            model,
            entries: HashMap::new(),
        }
    }

    /// The model.
    pub fn model(&self) -> &PrepModel {
        &self.model
    }

    /// Adds an observation this process made.
    pub fn observe(&mut self, o: &PrepTimeObservation) {
        // Seconds of a preparation: far below f64's exact integer range.
        let seconds = o.seconds as f64;
        let local = &mut self
            .entries
            .entry((o.restaurant_id.clone(), o.hour_of_day))
            .or_default()
            .local;
        local.insert(o.order_id.clone(), (o.observed_at, seconds));
        // Only the latest `window` can count: keep memory bounded.
        let keep = self.model.window.max(1);
        while local.len() > keep {
            let oldest = local
                .iter()
                .min_by_key(|(id, (at, _))| (*at, (*id).clone()))
                .map(|(id, _)| id.clone());
            match oldest {
                Some(id) => local.remove(&id),
                None => break,
            };
        }
    }

    /// Reads from `store` the keys never loaded or loaded more than [`REFRESH_MS`] before
    /// `now`.
    pub async fn refresh(
        &mut self,
        store: &OrderStore,
        keys: impl IntoIterator<Item = PrepKey>,
        now: Timestamp,
    ) -> Result<(), doorstep_connectors::order_store::Error> {
        let stale: BTreeSet<PrepKey> = keys
            .into_iter()
            .filter(|k| {
                self.entries
                    .get(k)
                    .and_then(|e| e.loaded_at)
                    .is_none_or(|at| now.millis_since(at) >= REFRESH_MS)
            })
            .collect();
        let loaded: Vec<_> = futures::stream::iter(stale)
            .map(|(restaurant, hour)| async move {
                let r = store.prep_times(&restaurant, hour).await;
                ((restaurant, hour), r)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        for (key, result) in loaded {
            let observations = result?;
            let entry = self.entries.entry(key).or_default();
            entry.loaded = observations
                .into_iter()
                .map(|o| (o.order_id, o.seconds as f64))
                .collect();
            entry.loaded_at = Some(now);
        }
        Ok(())
    }

    /// What the model expects of `key` from the history held.
    pub fn expect(&self, key: &PrepKey) -> PrepExpectation {
        let seconds = self
            .entries
            .get(key)
            .map(Entry::seconds)
            .unwrap_or_default();
        self.model.expect(&seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_observations_are_bounded_by_the_window() {
        let mut model = PrepModel::new(900.0, 1);
        model.window = 2;
        let mut h = PrepHistory::new(model);
        for (i, s) in [100, 200, 300].into_iter().enumerate() {
            h.observe(&PrepTimeObservation::new(
                RestaurantId::new("r"),
                1,
                OrderId::new(format!("o-{i}")),
                s,
                Timestamp::from_millis(i as i64),
            ));
        }
        let key: PrepKey = (RestaurantId::new("r"), 1);
        assert_eq!(h.entries[&key].local.len(), 2);
        assert_eq!(h.expect(&key).mean_s, 250.0);
    }

    #[test]
    fn local_observations_count_once_and_after_the_loaded_ones() {
        let mut h = PrepHistory::new(PrepModel::new(900.0, 2));
        let key: PrepKey = (RestaurantId::new("r"), 12);
        assert!(!h.expect(&key).is_learned());
        let obs = |o: &str, s: i64| {
            PrepTimeObservation::new(
                RestaurantId::new("r"),
                12,
                OrderId::new(o),
                s,
                Timestamp::from_millis(s),
            )
        };
        h.observe(&obs("o-1", 600));
        h.observe(&obs("o-1", 600));
        assert!(!h.expect(&key).is_learned());
        h.observe(&obs("o-2", 800));
        assert_eq!(h.expect(&key).mean_s, 700.0);
        // The store knows o-1 too: still counted once.
        h.entries.get_mut(&key).expect("entry").loaded = vec![(OrderId::new("o-1"), 600.0)];
        assert_eq!(h.expect(&key).observations, 2);
    }
}
