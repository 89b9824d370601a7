//! Which orders the page can show: a view of recent orders built from `orders.status.v1`
//! (the canonical stream of accepted changes), read by a consumer group of its own.

use crate::assemble;
use crate::config::Config;
use crate::shutdown;
use doorstep_connectors::kafka::{ConsumerBuilder, OffsetReset};
use doorstep_schemas::avro::Catalog;
use doorstep_schemas::events::{StatusChange, topics};
use doorstep_schemas::model::{OrderStatus, Timestamp};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Orders kept in the view.
const MAX_ORDERS: usize = 2_000;
/// Orders listed by the page.
const MAX_LISTED: usize = 200;
/// Orders not changed for this long are forgotten, milliseconds.
const FORGET_AFTER_MS: i64 = 60 * 60 * 1_000;

/// An order as the page lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecentOrder {
    /// The order.
    pub order_id: String,
    /// Its customer (the subject of the tokens the page mints).
    #[serde(skip)]
    pub customer_id: String,
    /// The restaurant.
    pub restaurant_id: String,
    /// The current status.
    pub status: OrderStatus,
    /// The driver, when one is assigned.
    pub driver_id: Option<String>,
    /// History entries seen.
    pub changes: u32,
    /// Time of the last change, ms.
    pub updated_at: Timestamp,
}

/// The view of recent orders. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct RecentOrders {
    inner: Arc<Mutex<HashMap<String, RecentOrder>>>,
}

impl RecentOrders {
    /// An empty view.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one accepted change (changes of an order arrive in order; a re-read older
    /// change is ignored).
    pub fn apply(&self, c: &StatusChange) {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let id = c.order_id.to_string();
        let entry = map.entry(id.clone()).or_insert_with(|| RecentOrder {
            order_id: id,
            customer_id: c.customer_id.to_string(),
            restaurant_id: c.restaurant_id.to_string(),
            status: c.to,
            driver_id: None,
            changes: 0,
            updated_at: c.at,
        });
        if c.seq + 1 < entry.changes {
            return;
        }
        entry.status = c.to;
        entry.driver_id = c.driver_id.as_ref().map(|d| d.to_string());
        entry.changes = entry.changes.max(c.seq + 1);
        entry.updated_at = entry.updated_at.max(c.at);
        if map.len() > MAX_ORDERS {
            let cutoff = Timestamp::now().plus_millis(-FORGET_AFTER_MS);
            map.retain(|_, o| o.updated_at >= cutoff);
            if map.len() > MAX_ORDERS {
                let mut times: Vec<_> = map.values().map(|o| o.updated_at).collect();
                times.sort_unstable();
                let keep_from = times[times.len() - MAX_ORDERS];
                map.retain(|_, o| o.updated_at >= keep_from);
            }
        }
    }

    /// The order, when seen.
    pub fn get(&self, order_id: &str) -> Option<RecentOrder> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(order_id)
            .cloned()
    }

    /// The most recently changed orders first (at most 200, none older than an hour).
    pub fn list(&self) -> Vec<RecentOrder> {
        let cutoff = Timestamp::now().plus_millis(-FORGET_AFTER_MS);
        let mut all: Vec<_> = self
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|o| o.updated_at >= cutoff)
            .cloned()
            .collect();
        all.sort_by(|a, b| {
            b.updated_at
                .cmp(&a.updated_at)
                .then(a.order_id.cmp(&b.order_id))
        });
        all.truncate(MAX_LISTED);
        all
    }

    /// Feeds the view from `config`'s `orders.status.v1` until `stop` (a group of its own,
    /// from the earliest record, so orders placed before the gateway started show too).
    /// Errors are logged and retried: the page is an extra, never a reason to stop serving.
    pub fn spawn_feed(
        &self,
        config: &Config,
        catalog: &'static Catalog,
        mut stop: shutdown::Signal,
    ) -> tokio::task::JoinHandle<()> {
        let view = self.clone();
        let topic = config.topic(topics::ORDER_STATUS);
        let kafka = assemble::kafka_config(config, "doorstep-demo-page");
        let group = format!(
            "{}.demo-page.{}",
            config.group_prefix,
            uuid::Uuid::now_v7().simple()
        );
        tokio::spawn(async move {
            let consumer = match ConsumerBuilder::new(&kafka, group)
                .offset_reset(OffsetReset::Earliest)
                .subscribe(&[topic.as_str()])
            {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, %topic, "demo page: cannot consume the status topic");
                    return;
                }
            };
            loop {
                let record = tokio::select! {
                    _ = shutdown::stopped(&mut stop) => return,
                    r = consumer.recv() => r,
                };
                match record {
                    Ok(r) => match catalog
                        .decode::<StatusChange>(&r.payload.unwrap_or_default())
                        .await
                    {
                        Ok(c) => view.apply(&c),
                        Err(e) => {
                            tracing::debug!(error = %e, "demo page: undecodable status record")
                        }
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "demo page: status topic read failed; retrying");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
            }
        })
    }
}
