//! Where the external services live.
//!
//! Every endpoint comes from one environment variable with a loopback default that matches
//! what `scripts/services up` starts, so a developer needs no configuration at all and a
//! deployment overrides only what differs. Values are validated once, here, so a typo fails at
//! start-up with the variable's name instead of as a connection error minutes later.

use std::fmt;

/// One external service Doorstep talks to, with the environment variable that locates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Service {
    /// Single-node Redis.
    Redis,
    /// Redis Cluster (seed nodes).
    RedisCluster,
    /// Kafka-protocol brokers.
    Kafka,
    /// CQL nodes (ScyllaDB in production, Apache Cassandra in development and tests).
    Cql,
    /// Confluent-compatible schema registry.
    SchemaRegistry,
    /// OSRM routing engine.
    Osrm,
}

impl Service {
    /// Every service, in a stable order.
    pub const ALL: [Service; 6] = [
        Service::Redis,
        Service::RedisCluster,
        Service::Kafka,
        Service::Cql,
        Service::SchemaRegistry,
        Service::Osrm,
    ];

    /// The environment variable that locates this service.
    pub const fn env_var(self) -> &'static str {
        match self {
            Service::Redis => "DOORSTEP_REDIS_URL",
            Service::RedisCluster => "DOORSTEP_REDIS_CLUSTER_URLS",
            Service::Kafka => "DOORSTEP_KAFKA_BROKERS",
            Service::Cql => "DOORSTEP_CQL_NODES",
            Service::SchemaRegistry => "DOORSTEP_SCHEMA_REGISTRY_URL",
            Service::Osrm => "DOORSTEP_OSRM_URL",
        }
    }

    /// The value used when the variable is unset: the loopback port `scripts/services` uses.
    pub const fn default_value(self) -> &'static str {
        match self {
            Service::Redis => "redis://127.0.0.1:6379",
            Service::RedisCluster => {
                "redis://127.0.0.1:17000,redis://127.0.0.1:17001,redis://127.0.0.1:17002"
            }
            Service::Kafka => "127.0.0.1:19092",
            Service::Cql => "127.0.0.1:19042",
            Service::SchemaRegistry => "http://127.0.0.1:18081",
            Service::Osrm => "http://127.0.0.1:15000",
        }
    }

    /// A human name for messages.
    pub const fn name(self) -> &'static str {
        match self {
            Service::Redis => "Redis",
            Service::RedisCluster => "Redis Cluster",
            Service::Kafka => "Kafka broker",
            Service::Cql => "CQL server",
            Service::SchemaRegistry => "schema registry",
            Service::Osrm => "OSRM routing engine",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An endpoint variable that is set but unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The variable is set to something that is not UTF-8.
    #[error("{var} is not valid UTF-8")]
    NotUnicode {
        /// The offending variable.
        var: &'static str,
    },
    /// The variable is set but its value cannot be used.
    #[error("{var}={value:?} is invalid: {reason}")]
    Invalid {
        /// The offending variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The address of every external service, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceEndpoints {
    /// `DOORSTEP_REDIS_URL`: one `redis://` or `rediss://` URL.
    pub redis_url: String,
    /// `DOORSTEP_REDIS_CLUSTER_URLS`: comma-separated seed node URLs.
    pub redis_cluster_urls: Vec<String>,
    /// `DOORSTEP_KAFKA_BROKERS`: comma-separated `host:port` bootstrap list, as librdkafka takes it.
    pub kafka_brokers: String,
    /// `DOORSTEP_CQL_NODES`: `host:port` contact points.
    pub cql_nodes: Vec<String>,
    /// `DOORSTEP_SCHEMA_REGISTRY_URL`: base URL of the registry.
    pub schema_registry_url: String,
    /// `DOORSTEP_OSRM_URL`: base URL of the OSRM server.
    pub osrm_url: String,
}

impl Default for ServiceEndpoints {
    /// The loopback defaults (what `scripts/services up` starts).
    fn default() -> Self {
        Self {
            redis_url: Service::Redis.default_value().to_owned(),
            redis_cluster_urls: split_list(Service::RedisCluster.default_value()),
            kafka_brokers: Service::Kafka.default_value().to_owned(),
            cql_nodes: split_list(Service::Cql.default_value()),
            schema_registry_url: Service::SchemaRegistry.default_value().to_owned(),
            osrm_url: Service::Osrm.default_value().to_owned(),
        }
    }
}

impl ServiceEndpoints {
    /// Reads every `DOORSTEP_*` endpoint variable, falling back to the loopback defaults, and
    /// validates them. An empty variable counts as unset.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|var| match std::env::var(var) {
            Ok(v) => Ok(Some(v)),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(ConfigError::NotUnicode { var }),
        })
    }

    /// Like [`from_env`](Self::from_env) but reading variables through `lookup`, for tests and
    /// for configuration files layered over the environment.
    pub fn from_lookup<F>(mut lookup: F) -> Result<Self, ConfigError>
    where
        F: FnMut(&'static str) -> Result<Option<String>, ConfigError>,
    {
        let mut get = |service: Service| -> Result<String, ConfigError> {
            Ok(lookup(service.env_var())?
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| service.default_value().to_owned()))
        };

        let redis_url = get(Service::Redis)?;
        validate_redis_url(Service::Redis, &redis_url, &redis_url)?;

        let cluster_raw = get(Service::RedisCluster)?;
        let redis_cluster_urls = split_list(&cluster_raw);
        if redis_cluster_urls.is_empty() {
            return Err(invalid(Service::RedisCluster, &cluster_raw, "no URL given"));
        }
        for url in &redis_cluster_urls {
            validate_redis_url(Service::RedisCluster, &cluster_raw, url)?;
        }

        let kafka_brokers = get(Service::Kafka)?;
        let brokers = split_list(&kafka_brokers);
        if brokers.is_empty() {
            return Err(invalid(Service::Kafka, &kafka_brokers, "no broker given"));
        }
        for broker in &brokers {
            validate_host_port(Service::Kafka, &kafka_brokers, broker)?;
        }
        let kafka_brokers = brokers.join(",");

        let cql_raw = get(Service::Cql)?;
        let cql_nodes = split_list(&cql_raw);
        if cql_nodes.is_empty() {
            return Err(invalid(Service::Cql, &cql_raw, "no node given"));
        }
        for node in &cql_nodes {
            validate_host_port(Service::Cql, &cql_raw, node)?;
        }

        let schema_registry_url = get(Service::SchemaRegistry)?;
        validate_http_url(Service::SchemaRegistry, &schema_registry_url)?;

        let osrm_url = get(Service::Osrm)?;
        validate_http_url(Service::Osrm, &osrm_url)?;

        Ok(Self {
            redis_url,
            redis_cluster_urls,
            kafka_brokers,
            cql_nodes,
            schema_registry_url,
            osrm_url,
        })
    }

    /// The configured location of `service`, as one string (lists comma-joined), for messages.
    pub fn describe(&self, service: Service) -> String {
        match service {
            Service::Redis => self.redis_url.clone(),
            Service::RedisCluster => self.redis_cluster_urls.join(","),
            Service::Kafka => self.kafka_brokers.clone(),
            Service::Cql => self.cql_nodes.join(","),
            Service::SchemaRegistry => self.schema_registry_url.clone(),
            Service::Osrm => self.osrm_url.clone(),
        }
    }
}

fn split_list(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn invalid(service: Service, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        var: service.env_var(),
        value: value.to_owned(),
        reason: reason.into(),
    }
}

fn validate_redis_url(service: Service, whole: &str, url: &str) -> Result<(), ConfigError> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| invalid(service, whole, format!("{url:?} is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "redis" | "rediss") {
        return Err(invalid(
            service,
            whole,
            format!("{url:?} must start with redis:// or rediss://"),
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid(service, whole, format!("{url:?} has no host")));
    }
    Ok(())
}

fn validate_host_port(service: Service, whole: &str, entry: &str) -> Result<(), ConfigError> {
    let Some((host, port)) = entry.rsplit_once(':') else {
        return Err(invalid(
            service,
            whole,
            format!("{entry:?} must be host:port"),
        ));
    };
    if host.trim_matches(['[', ']']).is_empty() {
        return Err(invalid(service, whole, format!("{entry:?} has no host")));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(invalid(
            service,
            whole,
            format!("{entry:?} has no valid port (1-65535)"),
        )),
    }
}

fn validate_http_url(service: Service, url: &str) -> Result<(), ConfigError> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| invalid(service, url, format!("not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid(service, url, "must start with http:// or https://"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid(service, url, "has no host"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with(vars: &[(&'static str, &str)]) -> Result<ServiceEndpoints, ConfigError> {
        let map: HashMap<&str, String> = vars.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        ServiceEndpoints::from_lookup(|var| Ok(map.get(var).cloned()))
    }

    #[test]
    fn defaults_are_valid() {
        let e = with(&[]).unwrap();
        assert_eq!(e.redis_url, "redis://127.0.0.1:6379");
        assert_eq!(e.redis_cluster_urls.len(), 3);
        assert_eq!(e.kafka_brokers, "127.0.0.1:19092");
        assert_eq!(e.cql_nodes, vec!["127.0.0.1:19042".to_owned()]);
        assert_eq!(e.schema_registry_url, "http://127.0.0.1:18081");
        assert_eq!(e.osrm_url, "http://127.0.0.1:15000");
        assert_eq!(ServiceEndpoints::default(), e);
    }

    #[test]
    fn overrides_and_lists_are_trimmed() {
        let e = with(&[
            ("DOORSTEP_KAFKA_BROKERS", " a:1 , b:2 ,"),
            ("DOORSTEP_CQL_NODES", "n1:9042,n2:9042"),
            ("DOORSTEP_REDIS_URL", ""),
        ])
        .unwrap();
        assert_eq!(e.kafka_brokers, "a:1,b:2");
        assert_eq!(e.cql_nodes.len(), 2);
        assert_eq!(e.redis_url, "redis://127.0.0.1:6379");
    }

    #[test]
    fn errors_name_the_variable() {
        let cases: [(&'static str, &str); 6] = [
            ("DOORSTEP_REDIS_URL", "http://x:1"),
            ("DOORSTEP_REDIS_CLUSTER_URLS", "redis://a:1,nope"),
            ("DOORSTEP_KAFKA_BROKERS", "localhost"),
            ("DOORSTEP_CQL_NODES", "host:99999"),
            ("DOORSTEP_SCHEMA_REGISTRY_URL", "ftp://x"),
            ("DOORSTEP_OSRM_URL", "not a url"),
        ];
        for (var, value) in cases {
            let err = with(&[(var, value)]).unwrap_err();
            let msg = err.to_string();
            assert!(msg.starts_with(var), "{msg}");
        }
    }
}
