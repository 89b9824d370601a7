//! The order store (ScyllaDB, `connectors::order_store`) as the gateway's [`OrderReader`],
//! connected lazily: the gateway starts and takes orders while the store is down, and
//! `GET /v1/orders/{order_id}` answers 503 `store_unavailable` until a connection succeeds
//! (each request retries it, bounded by the read timeout).

use super::OrderReader;
use doorstep_connectors::order_store::OrderStore;
use doorstep_connectors::scylla::{self as cql, ScyllaConfig};
use doorstep_operators::order::OrderState;
use doorstep_schemas::model::OrderId;
use futures::future::BoxFuture;
use std::sync::Arc;
use tokio::sync::OnceCell;

impl OrderReader for OrderStore {
    fn load<'a>(&'a self, order_id: &'a str) -> BoxFuture<'a, Result<Option<OrderState>, String>> {
        Box::pin(async move {
            OrderStore::load(self, &OrderId::new(order_id))
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// An [`OrderStore`] opened on first use, and again after a failed attempt.
#[derive(Debug)]
pub struct LazyOrderStore {
    config: ScyllaConfig,
    keyspace: String,
    store: OnceCell<OrderStore>,
}

impl LazyOrderStore {
    /// A store on `keyspace` of the cluster `config` describes, not connected yet.
    pub fn new(config: ScyllaConfig, keyspace: impl Into<String>) -> Self {
        Self {
            config,
            keyspace: keyspace.into(),
            store: OnceCell::new(),
        }
    }

    async fn store(&self) -> Result<&OrderStore, String> {
        self.store
            .get_or_try_init(|| async {
                let session = cql::connect(&self.config)
                    .await
                    .map_err(|e| e.to_string())?;
                let store = OrderStore::new(Arc::new(session), &self.keyspace)
                    .await
                    .map_err(|e| e.to_string())?;
                tracing::info!(keyspace = %self.keyspace, "order store connected");
                Ok(store)
            })
            .await
    }
}

impl OrderReader for LazyOrderStore {
    fn load<'a>(&'a self, order_id: &'a str) -> BoxFuture<'a, Result<Option<OrderState>, String>> {
        Box::pin(async move { OrderReader::load(self.store().await?, order_id).await })
    }
}
