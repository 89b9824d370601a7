//! A pipeline's CQL requests as Prometheus counters, read from the driver's own counters of
//! its session when scraped (`doorstep_pipeline_cql_requests_total`,
//! `doorstep_pipeline_cql_request_errors_total`): the measured CQL cost of its records.

use doorstep_connectors::order_store::OrderStore;
use doorstep_connectors::scylla::RequestCounts;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounter, Opts};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// The counters; they stay at 0 until [`watch`](Self::watch) names the session to read.
/// Cheap to clone (clones share the session and the values).
#[derive(Clone)]
pub struct CqlRequests {
    store: Arc<OnceLock<OrderStore>>,
    /// What the counters were last brought up to.
    seen: Arc<Mutex<RequestCounts>>,
    requests: IntCounter,
    errors: IntCounter,
}

impl CqlRequests {
    /// The counters of `pipeline`'s session.
    pub fn new(pipeline: &str) -> prometheus::Result<Self> {
        Ok(Self {
            store: Arc::new(OnceLock::new()),
            seen: Arc::new(Mutex::new(RequestCounts::default())),
            requests: IntCounter::with_opts(
                Opts::new(
                    "doorstep_pipeline_cql_requests_total",
                    "CQL requests sent, counted by the driver (attempts, pages; a batch is one)",
                )
                .const_label("pipeline", pipeline),
            )?,
            errors: IntCounter::with_opts(
                Opts::new(
                    "doorstep_pipeline_cql_request_errors_total",
                    "CQL requests that failed, counted by the driver",
                )
                .const_label("pipeline", pipeline),
            )?,
        })
    }

    /// Reads the requests of `store`'s session from now on (the first call wins).
    pub fn watch(&self, store: &OrderStore) {
        let _ = self.store.set(store.clone());
    }

    /// Brings the counters up to the driver's.
    fn sync(&self) {
        let Some(store) = self.store.get() else {
            return;
        };
        let now = store.requests();
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        self.requests
            .inc_by(now.requests.saturating_sub(seen.requests));
        self.errors.inc_by(now.errors.saturating_sub(seen.errors));
        *seen = now;
    }
}

impl Collector for CqlRequests {
    fn desc(&self) -> Vec<&Desc> {
        let mut d = self.requests.desc();
        d.extend(self.errors.desc());
        d
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.sync();
        let mut families = self.requests.collect();
        families.extend(self.errors.collect());
        families
    }
}
