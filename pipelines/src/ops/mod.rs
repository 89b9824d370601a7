//! Operations surface of every Doorstep process: Prometheus metrics and readiness checks,
//! served on `/metrics` and `/healthz`.

mod cql_requests;
mod health;
mod metric_set;
mod registry;
mod server;

pub use cql_requests::CqlRequests;
pub use health::{CachedHealth, Health, HealthReport};
pub use metric_set::MetricSet;
pub use registry::process_registry;
pub use server::{router, serve, spawn};
