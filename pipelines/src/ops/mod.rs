//! Operations surface of every Doorstep process: Prometheus metrics and readiness checks,
//! served on `/metrics` and `/healthz`.

mod health;
mod server;

pub use health::{Health, HealthReport};
pub use server::{router, serve, spawn};
