//! Shared helpers for Doorstep's tests against real services.
//!
//! Every service test needs the same three things: where the services are
//! ([`endpoints`]), names nobody else uses ([`unique`]), so tests run in parallel and leave
//! no interference behind, and a loud, specific failure when a service is not running
//! ([`ServiceDown`]) — a service test never skips silently.

pub mod bench_kit;
pub mod crash_kit;
pub mod drain_kit;
pub mod edge_harness;
pub mod eta_watch;
pub mod live_client;
pub mod location_pings;
pub mod metrics_catalogue;
pub mod order_events;
pub mod pipeline_harness;
pub mod private_services;
pub mod process;
pub mod topic_reader;

use doorstep_connectors::config::{Service, ServiceEndpoints};
use std::fmt::Display;
use std::sync::Once;

/// The endpoints from the `DOORSTEP_*` variables (loopback defaults).
///
/// # Panics
/// When a variable is set to an invalid value: the test cannot run, and the message names the
/// variable.
pub fn endpoints() -> ServiceEndpoints {
    init_tracing();
    match ServiceEndpoints::from_env() {
        Ok(e) => e,
        Err(e) => panic!("service endpoint configuration is invalid: {e}"),
    }
}

/// The `DOORSTEP_*` service variables for a Doorstep configuration that points at the same
/// services as [`endpoints`], so a test's pipelines and gateway never fall back to the
/// defaults when the services run elsewhere.
pub fn service_env() -> std::collections::BTreeMap<String, String> {
    let e = endpoints();
    [
        ("DOORSTEP_KAFKA_BROKERS", e.kafka_brokers.clone()),
        ("DOORSTEP_REDIS_URL", e.redis_url.clone()),
        (
            "DOORSTEP_REDIS_CLUSTER_URLS",
            e.redis_cluster_urls.join(","),
        ),
        ("DOORSTEP_CQL_NODES", e.cql_nodes.join(",")),
        (
            "DOORSTEP_SCHEMA_REGISTRY_URL",
            e.schema_registry_url.clone(),
        ),
        ("DOORSTEP_OSRM_URL", e.osrm_url.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The codec of the tests: this build's schemas registered with the schema registry of
/// [`endpoints`] (under `doorstep-tests.<topic>-value`), so records the tests write and read
/// carry the same registry ids as the pipelines' (the registry gives one id per schema text,
/// whatever the subject). A registry that is down is a [`ServiceDown`] error.
pub async fn catalog() -> anyhow::Result<&'static doorstep_schemas::avro::Catalog> {
    use doorstep_schemas::avro::Catalog;
    use doorstep_schemas::avro::registry::{RegistryConfig, RegistryError};
    let e = endpoints();
    let config = RegistryConfig::new(&e.schema_registry_url).with_topic_prefix("doorstep-tests.");
    match Catalog::connect(&config).await {
        Ok(c) => Ok(Box::leak(Box::new(c))),
        Err(err @ RegistryError::Unreachable { .. }) => {
            Err(ServiceDown::new(Service::SchemaRegistry, &e, err).into())
        }
        Err(err) => Err(err.into()),
    }
}

/// A name no other test (or test run) uses: `prefix` plus 12 random hex digits. Only
/// `[a-z0-9_-]` characters, so it works as a topic, key, channel or subject name; use
/// [`unique_ident`] for CQL identifiers.
pub fn unique(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..12])
}

/// Like [`unique`], but a valid CQL identifier: `prefix_` plus 12 hex digits.
pub fn unique_ident(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}_{}", &id[..12])
}

/// The error a test returns when it cannot reach a service: names the service, where it was
/// looked for, the variable to change, and how to start the local services.
#[derive(Debug)]
pub struct ServiceDown {
    message: String,
}

impl ServiceDown {
    /// `service` could not be reached at the configured endpoint because of `cause`.
    pub fn new(service: Service, endpoints: &ServiceEndpoints, cause: impl Display) -> Self {
        let var = service.env_var();
        Self {
            message: format!(
                "{service} is not reachable at {at} ({var}): {cause}\n\
                 Start the local services with `scripts/services up`, or set {var} to a running one.",
                at = endpoints.describe(service),
            ),
        }
    }
}

impl Display for ServiceDown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ServiceDown {}

/// Turns a connection failure into a [`ServiceDown`] error.
pub trait OrServiceDown<T> {
    /// Maps the error to [`ServiceDown`] for `service`.
    fn or_service_down(
        self,
        service: Service,
        endpoints: &ServiceEndpoints,
    ) -> Result<T, ServiceDown>;
}

impl<T, E: Display> OrServiceDown<T> for Result<T, E> {
    fn or_service_down(
        self,
        service: Service,
        endpoints: &ServiceEndpoints,
    ) -> Result<T, ServiceDown> {
        self.map_err(|e| ServiceDown::new(service, endpoints, e))
    }
}

/// Installs a `tracing` subscriber writing through the test harness (`RUST_LOG` filters;
/// default `warn`). Safe to call from every test.
pub fn init_tracing() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,scylla=error"));
        // Another subscriber may already be installed by the test binary: that is fine.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_differ_and_are_identifiers() {
        assert_ne!(unique("t"), unique("t"));
        let ident = unique_ident("t");
        assert!(doorstep_connectors::scylla::validate_identifier(&ident).is_ok());
    }

    #[test]
    fn service_down_names_service_variable_and_script() {
        let e = ServiceDown::new(Service::Kafka, &ServiceEndpoints::default(), "refused");
        let msg = e.to_string();
        assert!(msg.contains("Kafka broker"), "{msg}");
        assert!(msg.contains("DOORSTEP_KAFKA_BROKERS"), "{msg}");
        assert!(msg.contains("127.0.0.1:19092"), "{msg}");
        assert!(msg.contains("scripts/services up"), "{msg}");
    }
}
