//! Configuration: a TOML file plus `DOORSTEP_*` environment variables (12-factor), validated
//! once at start with a message that names the setting. [`settings::SETTINGS`] is the
//! reference of every key.

mod edge;
mod live;
pub mod secret;
pub mod settings;
mod source;

pub use edge::{
    DEFAULT_SERVICE_AREA, EdgeConfig, RegisteredRestaurant, Restaurants, ServiceArea,
    demo_restaurants,
};
pub use live::LiveConfig;
pub use secret::Secret;
pub use source::Source;

use doorstep_connectors::ServiceEndpoints;
use doorstep_operators::order::OrderPolicy;
use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file is unreadable or malformed.
    #[error("config file {path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A value is invalid.
    #[error("setting {key} ({env}) = {value:?} is invalid: {reason}")]
    Invalid {
        /// File key.
        key: &'static str,
        /// Environment variable.
        env: &'static str,
        /// The value given.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// A service endpoint is invalid.
    #[error(transparent)]
    Endpoints(#[from] doorstep_connectors::config::ConfigError),
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The ETA pipeline's settings (`eta.*`).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct EtaConfig {
    /// Seconds between recomputations of an active order.
    pub recompute_interval_s: u32,
    /// Geohash characters of the routing cache key's cells.
    pub geohash_precision: usize,
    /// Minutes per time-of-day bucket of the routing cache key.
    pub time_bucket_min: u32,
    /// Seconds a cached route is used.
    pub cache_ttl_s: u64,
    /// Timeout of one routing request, milliseconds.
    pub routing_timeout_ms: u64,
    /// Consecutive routing failures that open the breaker.
    pub breaker_failures: u32,
    /// Seconds the breaker stays open.
    pub breaker_open_s: u64,
    /// Road factor of the fallback.
    pub road_factor: f64,
    /// Average speed of the fallback, km/h.
    pub fallback_speed_kmh: f64,
    /// Default preparation time, seconds.
    pub default_prep_s: u32,
    /// Observations before the learned average is used.
    pub prep_min_observations: u32,
}

impl EtaConfig {
    fn from_source(src: &Source) -> Result<Self, ConfigError> {
        let c = Self {
            recompute_interval_s: parse(src, "eta.recompute_interval_s")?,
            geohash_precision: parse(src, "eta.geohash_precision")?,
            time_bucket_min: parse(src, "eta.time_bucket_min")?,
            cache_ttl_s: parse(src, "eta.cache_ttl_s")?,
            routing_timeout_ms: parse(src, "eta.routing_timeout_ms")?,
            breaker_failures: parse(src, "eta.breaker_failures")?,
            breaker_open_s: parse(src, "eta.breaker_open_s")?,
            road_factor: parse(src, "eta.road_factor")?,
            fallback_speed_kmh: parse(src, "eta.fallback_speed_kmh")?,
            default_prep_s: parse(src, "eta.default_prep_s")?,
            prep_min_observations: parse(src, "eta.prep_min_observations")?,
        };
        let check = |ok: bool, key: &'static str, value: String, reason: &str| {
            if ok {
                Ok(())
            } else {
                Err(invalid(key, &value, reason))
            }
        };
        check(
            c.recompute_interval_s >= 1,
            "eta.recompute_interval_s",
            c.recompute_interval_s.to_string(),
            "must be ≥ 1",
        )?;
        check(
            (1..=12).contains(&c.geohash_precision),
            "eta.geohash_precision",
            c.geohash_precision.to_string(),
            "must be 1..=12",
        )?;
        check(
            (1..=1440).contains(&c.time_bucket_min),
            "eta.time_bucket_min",
            c.time_bucket_min.to_string(),
            "must be 1..=1440",
        )?;
        check(
            c.routing_timeout_ms >= 10,
            "eta.routing_timeout_ms",
            c.routing_timeout_ms.to_string(),
            "must be ≥ 10",
        )?;
        check(
            c.breaker_failures >= 1,
            "eta.breaker_failures",
            c.breaker_failures.to_string(),
            "must be ≥ 1",
        )?;
        check(
            c.road_factor.is_finite() && c.road_factor >= 1.0,
            "eta.road_factor",
            c.road_factor.to_string(),
            "must be ≥ 1",
        )?;
        check(
            c.fallback_speed_kmh.is_finite() && c.fallback_speed_kmh > 0.0,
            "eta.fallback_speed_kmh",
            c.fallback_speed_kmh.to_string(),
            "must be > 0",
        )?;
        check(
            c.prep_min_observations >= 1,
            "eta.prep_min_observations",
            c.prep_min_observations.to_string(),
            "must be ≥ 1",
        )?;
        Ok(c)
    }
}

/// The payment provider (`payments.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PaymentsSettings {
    /// Base URL.
    pub url: String,
    /// API key (Bearer).
    pub secret_key: Secret,
}

/// The push provider (`push.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PushSettings {
    /// Base URL.
    pub url: String,
    /// FCM project id.
    pub project_id: String,
    /// OAuth 2 access token (Bearer).
    pub access_token: Secret,
}

/// A token key still accepted during a rotation (`gateway.auth_previous_keys`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PreviousKey {
    /// Its key id.
    pub key_id: String,
    /// Its secret.
    pub secret: Secret,
}

/// Everything a Doorstep process is configured with. Its `Debug` masks every secret
/// ([`Secret`]).
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the external services are.
    pub endpoints: ServiceEndpoints,
    /// Prefix for topic names.
    pub topic_prefix: String,
    /// Prefix for consumer group ids.
    pub group_prefix: String,
    /// Partitions per topic when creating topics.
    pub partitions: i32,
    /// Longest a consumer fetch waits at the broker.
    pub kafka_fetch_wait: std::time::Duration,
    /// Whether pipelines write their outputs in Kafka transactions.
    pub exactly_once: bool,
    /// Whether a process registers this build's schemas with the registry at start (else it
    /// only looks them up and refuses to start when a subject lacks one).
    pub schema_auto_register: bool,
    /// This process's stable name among the copies of a pipeline, if it has one.
    pub instance_id: Option<String>,
    /// How long an output transaction may stay open.
    pub kafka_transaction_timeout: std::time::Duration,
    /// Lanes per pipeline process (see [`crate::runtime::Lane`]).
    pub lanes: usize,
    /// Keyspace of the order tables.
    pub cql_keyspace: String,
    /// Address of `/metrics` and `/healthz`.
    pub ops_listen: SocketAddr,
    /// Address of the gateway.
    pub gateway_listen: SocketAddr,
    /// HMAC secret for bearer tokens, when configured.
    pub auth_secret: Option<Secret>,
    /// Key id of `auth_secret`.
    pub auth_key_id: String,
    /// Keys still accepted during a rotation.
    pub auth_previous_keys: Vec<PreviousKey>,
    /// Longest lifetime of a bearer token, seconds.
    pub token_max_ttl_s: i64,
    /// Order rules.
    pub policy: OrderPolicy,
    /// Prefix of Redis keys and channels.
    pub redis_key_prefix: String,
    /// Whether Redis is a cluster (`redis.mode = cluster`).
    pub redis_cluster: bool,
    /// Replication factor for a keyspace Doorstep creates.
    pub cql_replication_factor: u8,
    /// Payment provider, when configured.
    pub payments: Option<PaymentsSettings>,
    /// Push provider, when configured.
    pub push: Option<PushSettings>,
    /// ETA pipeline settings.
    pub eta: EtaConfig,
    /// Location filter limits and WebSocket tuning.
    pub live: LiveConfig,
    /// The public edge's limits.
    pub edge: EdgeConfig,
    /// Log format.
    pub log_format: LogFormat,
    /// tracing filter.
    pub log_filter: String,
}

impl Config {
    /// Loads from `file` (optional) and the environment, and validates.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::from_source(&Source::load(file)?)
    }

    /// Types and validates raw values.
    pub fn from_source(src: &Source) -> Result<Self, ConfigError> {
        let endpoints = ServiceEndpoints::from_lookup(|env| Ok(src.get_env_named(env)))?;
        let topic_prefix = src.get(setting("kafka.topic_prefix")).unwrap_or_default();
        if !topic_prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return Err(invalid(
                "kafka.topic_prefix",
                &topic_prefix,
                "only letters, digits, '.', '_' and '-'",
            ));
        }
        let partitions: i32 = parse(src, "kafka.partitions")?;
        if !(1..=10_000).contains(&partitions) {
            return Err(invalid(
                "kafka.partitions",
                &partitions.to_string(),
                "must be 1..=10000",
            ));
        }
        let cql_keyspace = required(src, "cql.keyspace")?;
        if !cql_keyspace
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
            || cql_keyspace.len() > 48
        {
            return Err(invalid(
                "cql.keyspace",
                &cql_keyspace,
                "a CQL identifier: letters, digits, '_' (≤ 48)",
            ));
        }
        let allow_insecure: bool = parse(src, "security.allow_insecure_secrets")?;
        let auth_secret = src.get(setting("gateway.auth_secret"));
        if let Some(s) = &auth_secret {
            if s.len() < 32 {
                return Err(invalid(
                    "gateway.auth_secret",
                    secret::MASK,
                    "must be at least 32 bytes",
                ));
            }
            secret::check("gateway.auth_secret", s, 32, allow_insecure)?;
        }
        let auth_key_id = required(src, "gateway.auth_key_id")?;
        if !crate::auth::valid_key_id(&auth_key_id) {
            return Err(invalid(
                "gateway.auth_key_id",
                &auth_key_id,
                "1 to 32 letters, digits, '_' or '-'",
            ));
        }
        let mut auth_previous_keys = Vec::new();
        for pair in src
            .get(setting("gateway.auth_previous_keys"))
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let Some((id, value)) = pair.split_once('=') else {
                return Err(invalid(
                    "gateway.auth_previous_keys",
                    secret::MASK,
                    "expected `id=secret` pairs, comma separated",
                ));
            };
            let id = id.trim();
            if !crate::auth::valid_key_id(id) || id == auth_key_id {
                return Err(invalid(
                    "gateway.auth_previous_keys",
                    secret::MASK,
                    &format!(
                        "key id {id:?}: 1 to 32 letters, digits, '_' or '-', other than gateway.auth_key_id"
                    ),
                ));
            }
            if value.len() < 32 {
                return Err(invalid(
                    "gateway.auth_previous_keys",
                    secret::MASK,
                    &format!("the secret of key {id} must be at least 32 bytes"),
                ));
            }
            secret::check("gateway.auth_previous_keys", value, 32, allow_insecure)?;
            auth_previous_keys.push(PreviousKey {
                key_id: id.to_owned(),
                secret: Secret::new(value),
            });
        }
        let token_max_ttl_s: i64 = parse(src, "gateway.token_max_ttl_s")?;
        if !(60..=31 * 86_400).contains(&token_max_ttl_s) {
            return Err(invalid(
                "gateway.token_max_ttl_s",
                &token_max_ttl_s.to_string(),
                "must be 60..=2678400 (one minute to 31 days)",
            ));
        }
        let payments = match src.get(setting("payments.url")) {
            None => None,
            Some(url) => {
                let key = src.get(setting("payments.secret_key")).unwrap_or_default();
                secret::check("payments.secret_key", &key, 16, allow_insecure)?;
                Some(PaymentsSettings {
                    url,
                    secret_key: Secret::new(key),
                })
            }
        };
        let push = match src.get(setting("push.url")) {
            None => None,
            Some(url) => {
                let token = src.get(setting("push.access_token")).unwrap_or_default();
                secret::check("push.access_token", &token, 16, allow_insecure)?;
                Some(PushSettings {
                    url,
                    project_id: src.get(setting("push.project_id")).unwrap_or_default(),
                    access_token: Secret::new(token),
                })
            }
        };
        let auto_confirm_after_ms: i64 = parse(src, "policy.auto_confirm_after_ms")?;
        let fee: i64 = parse(src, "policy.customer_cancellation_fee_cents")?;
        if auto_confirm_after_ms < 0 {
            return Err(invalid(
                "policy.auto_confirm_after_ms",
                &auto_confirm_after_ms.to_string(),
                "must be ≥ 0",
            ));
        }
        if fee < 0 {
            return Err(invalid(
                "policy.customer_cancellation_fee_cents",
                &fee.to_string(),
                "must be ≥ 0",
            ));
        }
        let lanes: usize = parse(src, "pipeline.lanes")?;
        if !(1..=64).contains(&lanes) {
            return Err(invalid(
                "pipeline.lanes",
                &lanes.to_string(),
                "must be 1..=64",
            ));
        }
        let log_format = match required(src, "log.format")?.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => return Err(invalid("log.format", other, "expected `text` or `json`")),
        };
        Ok(Self {
            endpoints,
            topic_prefix,
            group_prefix: required(src, "kafka.group_prefix")?,
            partitions,
            kafka_fetch_wait: std::time::Duration::from_millis(parse(src, "kafka.fetch_wait_ms")?),
            exactly_once: parse(src, "kafka.exactly_once")?,
            schema_auto_register: parse(src, "schemas.auto_register")?,
            instance_id: src.get(setting("kafka.instance_id")),
            kafka_transaction_timeout: std::time::Duration::from_millis(parse(
                src,
                "kafka.transaction_timeout_ms",
            )?),
            lanes,
            cql_keyspace,
            ops_listen: parse(src, "ops.listen")?,
            gateway_listen: parse(src, "gateway.listen")?,
            auth_secret: auth_secret.map(Secret::new),
            auth_key_id,
            auth_previous_keys,
            token_max_ttl_s,
            policy: OrderPolicy {
                auto_confirm_after_ms,
                customer_cancellation_fee_cents: fee,
            },
            redis_key_prefix: src.get(setting("redis.key_prefix")).unwrap_or_default(),
            redis_cluster: match required(src, "redis.mode")?.as_str() {
                "single" => false,
                "cluster" => true,
                other => {
                    return Err(invalid(
                        "redis.mode",
                        other,
                        "expected `single` or `cluster`",
                    ));
                }
            },
            cql_replication_factor: parse(src, "cql.replication_factor")?,
            payments,
            push,
            eta: EtaConfig::from_source(src)?,
            live: LiveConfig::from_source(src)?,
            edge: EdgeConfig::from_source(src)?,
            log_format,
            log_filter: required(src, "log.filter")?,
        })
    }

    /// The full name of a topic (with the configured prefix).
    pub fn topic(&self, name: &str) -> String {
        format!("{}{name}", self.topic_prefix)
    }

    /// The consumer group id of a pipeline.
    pub fn group_id(&self, pipeline: &str) -> String {
        format!("{}.{pipeline}", self.group_prefix)
    }
}

fn setting(key: &str) -> &'static settings::Setting {
    // Keys are literals from this module, all present in SETTINGS (checked by a unit test).
    settings::by_key(key).unwrap_or(&settings::SETTINGS[0])
}

fn invalid(key: &'static str, value: &str, reason: &str) -> ConfigError {
    let s = setting(key);
    ConfigError::Invalid {
        key: s.key,
        env: s.env,
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

fn required(src: &Source, key: &'static str) -> Result<String, ConfigError> {
    src.get(setting(key))
        .ok_or_else(|| invalid(key, "", "must not be empty"))
}

fn parse<T: FromStr>(src: &Source, key: &'static str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    let raw = required(src, key)?;
    raw.parse()
        .map_err(|e: T::Err| invalid(key, &raw, &e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::io::Write;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn every_key_used_here_exists() {
        for key in [
            "kafka.topic_prefix",
            "kafka.partitions",
            "cql.keyspace",
            "gateway.auth_secret",
            "policy.auto_confirm_after_ms",
            "policy.customer_cancellation_fee_cents",
            "log.format",
            "redis.key_prefix",
            "redis.mode",
            "cql.replication_factor",
            "payments.url",
            "payments.secret_key",
            "push.url",
            "push.project_id",
            "push.access_token",
            "kafka.group_prefix",
            "ops.listen",
            "gateway.listen",
            "log.filter",
            "eta.recompute_interval_s",
            "eta.geohash_precision",
            "eta.time_bucket_min",
            "eta.cache_ttl_s",
            "eta.routing_timeout_ms",
            "eta.breaker_failures",
            "eta.breaker_open_s",
            "eta.road_factor",
            "eta.fallback_speed_kmh",
            "eta.default_prep_s",
            "eta.prep_min_observations",
            "security.allow_insecure_secrets",
            "gateway.auth_key_id",
            "gateway.auth_previous_keys",
            "gateway.token_max_ttl_s",
        ] {
            assert!(settings::by_key(key).is_some(), "{key}");
        }
    }

    #[test]
    fn defaults_are_valid() {
        let c = Config::from_source(&Source::from_parts(None, env(&[])).unwrap()).unwrap();
        assert_eq!(c.edge, EdgeConfig::default());
        assert_eq!(c.policy, OrderPolicy::default());
        assert_eq!(c.topic("orders.events.v1"), "orders.events.v1");
        assert!(c.auth_secret.is_none());
    }

    #[test]
    fn env_beats_file_beats_default() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(
            f,
            "[kafka]\ntopic_prefix = \"file-\"\npartitions = 3\n[log]\nformat = \"json\""
        )
        .unwrap();
        let src =
            Source::from_parts(Some(f.path()), env(&[("DOORSTEP_TOPIC_PREFIX", "env-")])).unwrap();
        let c = Config::from_source(&src).unwrap();
        assert_eq!(c.topic_prefix, "env-");
        assert_eq!(c.partitions, 3);
        assert_eq!(c.log_format, LogFormat::Json);
    }

    #[test]
    fn errors_name_the_setting() {
        let src = Source::from_parts(None, env(&[("DOORSTEP_TOPIC_PARTITIONS", "many")])).unwrap();
        let e = Config::from_source(&src).unwrap_err().to_string();
        assert!(
            e.contains("kafka.partitions") && e.contains("DOORSTEP_TOPIC_PARTITIONS"),
            "{e}"
        );
        let src = Source::from_parts(None, env(&[("DOORSTEP_AUTH_SECRET", "short")])).unwrap();
        let e = Config::from_source(&src).unwrap_err().to_string();
        assert!(e.contains("at least 32") && !e.contains("short"), "{e}");
        let src =
            Source::from_parts(None, env(&[("DOORSTEP_KAFKA_BROKERS", "nohostport")])).unwrap();
        assert!(
            Config::from_source(&src)
                .unwrap_err()
                .to_string()
                .contains("DOORSTEP_KAFKA_BROKERS")
        );
    }

    #[test]
    fn secrets_are_masked_and_weak_ones_refused() {
        let strong = [
            ("DOORSTEP_AUTH_SECRET", "0f3a9c1e7b2d4f6a8c0e1b3d5f7a9c2e"),
            ("DOORSTEP_PUSH_URL", "http://127.0.0.1:1"),
            ("DOORSTEP_PUSH_ACCESS_TOKEN", "ya29.a0-push-token-for-tests"),
            ("DOORSTEP_PAYMENTS_URL", "http://127.0.0.1:2"),
            ("DOORSTEP_PAYMENTS_SECRET_KEY", "sk_test_51HxYz-payments"),
        ];
        let src = Source::from_parts(None, env(&strong)).unwrap();
        let c = Config::from_source(&src).unwrap();
        let debug = format!("{c:?}");
        for (_, v) in &strong[..] {
            if !v.starts_with("http") {
                assert!(!debug.contains(v), "Debug shows a secret: {debug}");
            }
        }
        let shown: Vec<_> = src.describe().into_iter().map(|(_, v, _)| v).collect();
        for (_, v) in &strong[..] {
            if !v.starts_with("http") {
                assert!(!shown.iter().any(|s| s == v), "config show prints {v}");
            }
        }
        // Published defaults are refused, naming the setting and not the value, unless the
        // development flag is set.
        for (var, value) in [
            (
                "DOORSTEP_AUTH_SECRET",
                "demo-only-secret-change-me-0123456789",
            ),
            ("DOORSTEP_PUSH_ACCESS_TOKEN", "demo-access-token"),
            ("DOORSTEP_PAYMENTS_SECRET_KEY", "sk_test_demo"),
            ("DOORSTEP_PAYMENTS_SECRET_KEY", "short"),
        ] {
            let mut vars = strong.to_vec();
            vars.retain(|(k, _)| *k != var);
            vars.push((var, value));
            let e = Config::from_source(&Source::from_parts(None, env(&vars)).unwrap())
                .unwrap_err()
                .to_string();
            assert!(e.contains(var) && !e.contains(value), "{e}");
            vars.push(("DOORSTEP_ALLOW_INSECURE_SECRETS", "true"));
            assert!(Config::from_source(&Source::from_parts(None, env(&vars)).unwrap()).is_ok());
        }
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "[kafka]\ntopic_prefx = \"x\"").unwrap();
        let e = Source::from_parts(Some(f.path()), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown setting `kafka.topic_prefx`"), "{e}");
    }
}
