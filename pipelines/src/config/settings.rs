//! The table of every setting: its key in the config file, its environment variable, its
//! default and what it means. The loader, `doorstep config reference` and the README's
//! configuration reference all come from this one table.

/// One configurable value.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// Key in the TOML config file (`section.name`).
    pub key: &'static str,
    /// Environment variable that overrides the file.
    pub env: &'static str,
    /// Value when neither sets it (`""` = unset).
    pub default: &'static str,
    /// What it is for.
    pub doc: &'static str,
}

macro_rules! settings {
    ($($key:literal, $env:literal, $default:expr, $doc:literal;)*) => {
        /// Every setting Doorstep reads.
        pub const SETTINGS: &[Setting] = &[$(Setting { key: $key, env: $env, default: $default, doc: $doc }),*];
    };
}

settings! {
    "services.kafka_brokers", "DOORSTEP_KAFKA_BROKERS", "127.0.0.1:19092", "Kafka bootstrap servers, comma separated";
    "services.redis_url", "DOORSTEP_REDIS_URL", "redis://127.0.0.1:6379", "Redis URL (single node)";
    "services.redis_cluster_urls", "DOORSTEP_REDIS_CLUSTER_URLS", "", "Redis Cluster seed URLs, comma separated (used when redis.mode is `cluster`)";
    "services.cql_nodes", "DOORSTEP_CQL_NODES", "127.0.0.1:19042", "CQL contact points, comma separated (ScyllaDB in production, Apache Cassandra here)";
    "services.schema_registry_url", "DOORSTEP_SCHEMA_REGISTRY_URL", "http://127.0.0.1:18081", "Confluent-compatible schema registry";
    "services.osrm_url", "DOORSTEP_OSRM_URL", "http://127.0.0.1:15000", "OSRM-shaped routing API";
    "kafka.topic_prefix", "DOORSTEP_TOPIC_PREFIX", "", "Prefix for every topic name (tests use it to isolate runs)";
    "kafka.group_prefix", "DOORSTEP_GROUP_PREFIX", "doorstep", "Prefix of consumer group ids (`<prefix>.<pipeline>`)";
    "kafka.fetch_wait_ms", "DOORSTEP_KAFKA_FETCH_WAIT_MS", "500", "Longest a consumer fetch waits at the broker for records, ms (`fetch.wait.max.ms`). Kafka answers as soon as one record is there, so this adds no latency: it only sets how often an idle consumer asks again (librdkafka's default)";
    "kafka.partitions", "DOORSTEP_TOPIC_PARTITIONS", "12", "Partitions per topic when Doorstep creates topics";
    "kafka.instance_id", "DOORSTEP_INSTANCE_ID", "", "This process's stable name among the copies of a pipeline (e.g. a StatefulSet pod name); its transactional id is `<group>.<instance>`, so a restarted copy aborts what its predecessor left open at once. Empty: a random one per start (a crash then holds `read_committed` readers back until kafka.transaction_timeout_ms)";
    "kafka.exactly_once", "DOORSTEP_KAFKA_EXACTLY_ONCE", "true", "Write every pipeline's outputs in Kafka transactions with the consumed offsets (exactly-once for `read_committed` readers). `false`: at-least-once outputs (a crash can repeat records), for brokers without transactions and for the benchmark's comparison";
    "kafka.transaction_timeout_ms", "DOORSTEP_KAFKA_TRANSACTION_TIMEOUT_MS", "10000", "How long an output transaction may stay open before the broker aborts it, ms (`transaction.timeout.ms`; Kafka Streams' exactly-once default)";
    "cql.keyspace", "DOORSTEP_CQL_KEYSPACE", "doorstep", "Keyspace of the order tables";
    "redis.mode", "DOORSTEP_REDIS_MODE", "single", "`single` (redis_url) or `cluster` (redis_cluster_urls)";
    "cql.replication_factor", "DOORSTEP_CQL_REPLICATION_FACTOR", "1", "Replication factor (SimpleStrategy) used when Doorstep creates a missing keyspace; create it yourself in production";
    "redis.key_prefix", "DOORSTEP_REDIS_KEY_PREFIX", "", "Prefix of every Redis key and channel (tests isolate runs with it)";
    "payments.url", "DOORSTEP_PAYMENTS_URL", "", "Payment provider base URL (Stripe-shaped refunds API); required by the status pipeline unless side effects are suppressed";
    "payments.secret_key", "DOORSTEP_PAYMENTS_SECRET_KEY", "", "Payment provider API key (Bearer)";
    "push.url", "DOORSTEP_PUSH_URL", "", "Push provider base URL (FCM HTTP v1 shape, e.g. https://fcm.googleapis.com); required by the notify pipeline";
    "push.project_id", "DOORSTEP_PUSH_PROJECT_ID", "doorstep", "FCM project id";
    "push.access_token", "DOORSTEP_PUSH_ACCESS_TOKEN", "", "OAuth 2 access token for FCM (Bearer)";
    "ops.listen", "DOORSTEP_OPS_LISTEN", "127.0.0.1:9100", "Address of /metrics and /healthz";
    "gateway.listen", "DOORSTEP_GATEWAY_LISTEN", "127.0.0.1:8080", "Address of the HTTP/WebSocket gateway";
    "gateway.auth_secret", "DOORSTEP_AUTH_SECRET", "", "HMAC secret for bearer tokens (at least 32 bytes; required by the gateway)";
    "gateway.ws_heartbeat_ms", "DOORSTEP_WS_HEARTBEAT_MS", "15000", "WebSocket ping interval, ms; a client silent for two intervals is closed";
    "gateway.ws_outbox_capacity", "DOORSTEP_WS_OUTBOX_CAPACITY", "64", "Status/ETA frames a slow customer socket may have waiting before it is closed with 4408 (locations are conflated, never queued)";
    "gateway.ws_send_timeout_ms", "DOORSTEP_WS_SEND_TIMEOUT_MS", "10000", "Longest one WebSocket frame write may take before the client is dropped, ms";
    "gateway.socket_send_buffer", "DOORSTEP_GATEWAY_SOCKET_SEND_BUFFER", "0", "Kernel send buffer per gateway connection (SO_SNDBUF), bytes; 0 keeps the OS's auto-tuned one";
    "location.max_speed_mps", "DOORSTEP_LOCATION_MAX_SPEED_MPS", "70", "Fastest believable speed between two fixes of a driver, m/s (faster: `impossible_speed`)";
    "location.max_age_ms", "DOORSTEP_LOCATION_MAX_AGE_MS", "120000", "Oldest believable fix relative to when the gateway got it, ms (older: `stale`)";
    "location.region_cell_deg", "DOORSTEP_LOCATION_REGION_CELL_DEG", "0.5", "Grid cell of the active-drivers GEO sets, degrees (one Redis key per cell)";
    "policy.auto_confirm_after_ms", "DOORSTEP_AUTO_CONFIRM_AFTER_MS", "120000", "Auto-confirm a PLACED order after this many milliseconds";
    "policy.customer_cancellation_fee_cents", "DOORSTEP_CANCELLATION_FEE_CENTS", "500", "Fee kept when a customer cancels from PREPARING on";
    "eta.recompute_interval_s", "DOORSTEP_ETA_RECOMPUTE_INTERVAL_S", "30", "Seconds between ETA recomputations of an active order (also recomputed at once on every status change)";
    "eta.geohash_precision", "DOORSTEP_ETA_GEOHASH_PRECISION", "7", "Geohash characters of the routing cache's origin and destination cells (1..=12; 7 ≈ 150 m)";
    "eta.time_bucket_min", "DOORSTEP_ETA_TIME_BUCKET_MIN", "15", "Minutes per time-of-day bucket of the routing cache key";
    "eta.cache_ttl_s", "DOORSTEP_ETA_CACHE_TTL_S", "300", "Seconds a cached route is used";
    "eta.routing_timeout_ms", "DOORSTEP_ETA_ROUTING_TIMEOUT_MS", "2000", "Timeout of one routing request (connect timeout: a quarter of it)";
    "eta.breaker_failures", "DOORSTEP_ETA_BREAKER_FAILURES", "5", "Consecutive routing failures that open the circuit breaker";
    "eta.breaker_open_s", "DOORSTEP_ETA_BREAKER_OPEN_S", "15", "Seconds the routing circuit breaker stays open before a probe";
    "eta.road_factor", "DOORSTEP_ETA_ROAD_FACTOR", "1.4", "Road distance ÷ straight-line distance of the fallback estimate when routing fails";
    "eta.fallback_speed_kmh", "DOORSTEP_ETA_FALLBACK_SPEED_KMH", "25", "Average speed (km/h) of the fallback estimate when routing fails";
    "eta.default_prep_s", "DOORSTEP_ETA_DEFAULT_PREP_S", "900", "Expected preparation time (seconds) of a restaurant without enough history";
    "eta.prep_min_observations", "DOORSTEP_ETA_PREP_MIN_OBSERVATIONS", "3", "Observed preparations (restaurant × hour of day) before their average replaces the default";
    "log.format", "DOORSTEP_LOG_FORMAT", "text", "`text` or `json`";
    "log.filter", "DOORSTEP_LOG", "info", "tracing filter, e.g. `info,doorstep_pipelines=debug`";
}

/// The setting with this file key.
pub fn by_key(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.key == key)
}

/// The setting with this environment variable.
pub fn by_env(env: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.env == env)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn keys_and_variables_are_unique_and_well_formed() {
        let mut keys = HashSet::new();
        let mut envs = HashSet::new();
        for s in SETTINGS {
            assert!(keys.insert(s.key), "duplicate key {}", s.key);
            assert!(envs.insert(s.env), "duplicate env {}", s.env);
            assert!(s.env.starts_with("DOORSTEP_"), "{}", s.env);
            assert_eq!(s.key.split('.').count(), 2, "{}", s.key);
            assert!(!s.doc.is_empty());
        }
    }
}
