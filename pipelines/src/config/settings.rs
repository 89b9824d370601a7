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
    /// Whether the value is a secret: masked in `doorstep config show` and in `Debug`, and
    /// checked at start (`config::secret`).
    pub secret: bool,
}

/// One row per setting: `key, env, default, doc;`, prefixed with `#[secret]` for secrets.
macro_rules! settings {
    ($($(#[$flag:ident])? $key:literal, $env:literal, $default:expr, $doc:literal;)*) => {
        /// Every setting Doorstep reads.
        pub const SETTINGS: &[Setting] = &[$(Setting {
            key: $key, env: $env, default: $default, doc: $doc, secret: settings!(@flag $($flag)?),
        }),*];
    };
    (@flag secret) => { true };
    (@flag) => { false };
}

settings! {
    "services.kafka_brokers", "DOORSTEP_KAFKA_BROKERS", "127.0.0.1:19092", "Kafka bootstrap servers, comma separated";
    "services.redis_url", "DOORSTEP_REDIS_URL", "redis://127.0.0.1:6379", "Redis URL (single node)";
    "services.redis_cluster_urls", "DOORSTEP_REDIS_CLUSTER_URLS", "", "Redis Cluster seed URLs, comma separated (used when redis.mode is `cluster`)";
    "services.cql_nodes", "DOORSTEP_CQL_NODES", "127.0.0.1:19042", "CQL contact points, comma separated (ScyllaDB in production, Apache Cassandra here)";
    "services.schema_registry_url", "DOORSTEP_SCHEMA_REGISTRY_URL", "http://127.0.0.1:18081", "Confluent-compatible schema registry";
    "schemas.auto_register", "DOORSTEP_SCHEMA_AUTO_REGISTER", "true", "Register this build's schemas (subjects `<topic>-value`) with the registry when a process starts; `false`: only look them up and refuse to start, naming the subject, when one is missing (register them with `doorstep topics ensure` first)";
    "services.osrm_url", "DOORSTEP_OSRM_URL", "http://127.0.0.1:15000", "OSRM-shaped routing API";
    "kafka.topic_prefix", "DOORSTEP_TOPIC_PREFIX", "", "Prefix for every topic name (tests use it to isolate runs)";
    "kafka.group_prefix", "DOORSTEP_GROUP_PREFIX", "doorstep", "Prefix of consumer group ids (`<prefix>.<pipeline>`)";
    "kafka.fetch_wait_ms", "DOORSTEP_KAFKA_FETCH_WAIT_MS", "500", "Longest a consumer fetch waits at the broker for records, ms (`fetch.wait.max.ms`). Kafka answers as soon as one record is there, so this adds no latency: it only sets how often an idle consumer asks again (librdkafka's default)";
    "kafka.partitions", "DOORSTEP_TOPIC_PARTITIONS", "12", "Partitions per topic when Doorstep creates topics";
    "kafka.instance_id", "DOORSTEP_INSTANCE_ID", "", "This process's stable name among the copies of a pipeline (e.g. a StatefulSet pod name); its lanes' transactional ids are `<group>.<instance>.<lane>`, so a restarted copy with as many lanes aborts what its predecessor left open at once. Empty: a random one per start (a crash then holds `read_committed` readers back until kafka.transaction_timeout_ms)";
    "kafka.exactly_once", "DOORSTEP_KAFKA_EXACTLY_ONCE", "true", "Write every pipeline's outputs in Kafka transactions with the consumed offsets (exactly-once for `read_committed` readers, through crashes and rebalances). `false`: at-least-once outputs (a crash can repeat records; effects outside Kafka are idempotent either way)";
    "pipeline.lanes", "DOORSTEP_PIPELINE_LANES", "2", "Lanes per pipeline process (1..=64): each a copy of the stage with its own Kafka producer (transactional id `<group>.<instance>.<lane>`) working the source partitions `p` with `p mod lanes` = its index, concurrently with the others, so one lane decodes and decides a batch while another's effects and transaction are in flight. Order within a partition holds with any value";
    "kafka.transaction_timeout_ms", "DOORSTEP_KAFKA_TRANSACTION_TIMEOUT_MS", "10000", "How long an output transaction may stay open before the broker aborts it, ms (`transaction.timeout.ms`; Kafka Streams' exactly-once default)";
    "cql.keyspace", "DOORSTEP_CQL_KEYSPACE", "doorstep", "Keyspace of the order tables";
    "redis.mode", "DOORSTEP_REDIS_MODE", "single", "`single` (redis_url) or `cluster` (redis_cluster_urls)";
    "cql.replication_factor", "DOORSTEP_CQL_REPLICATION_FACTOR", "1", "Replication factor (SimpleStrategy) used when Doorstep creates a missing keyspace; create it yourself in production";
    "redis.key_prefix", "DOORSTEP_REDIS_KEY_PREFIX", "", "Prefix of every Redis key and channel (tests isolate runs with it)";
    "payments.url", "DOORSTEP_PAYMENTS_URL", "", "Payment provider base URL (Stripe-shaped refunds API); required by the status pipeline unless side effects are suppressed";
    #[secret] "payments.secret_key", "DOORSTEP_PAYMENTS_SECRET_KEY", "", "Payment provider API key (Bearer)";
    "push.url", "DOORSTEP_PUSH_URL", "", "Push provider base URL (FCM HTTP v1 shape, e.g. https://fcm.googleapis.com); required by the notify pipeline";
    "push.project_id", "DOORSTEP_PUSH_PROJECT_ID", "doorstep", "FCM project id";
    #[secret] "push.access_token", "DOORSTEP_PUSH_ACCESS_TOKEN", "", "OAuth 2 access token for FCM (Bearer)";
    "ops.listen", "DOORSTEP_OPS_LISTEN", "127.0.0.1:9100", "Address of /metrics and /healthz";
    "gateway.listen", "DOORSTEP_GATEWAY_LISTEN", "127.0.0.1:8080", "Address of the HTTP/WebSocket gateway";
    #[secret] "gateway.auth_secret", "DOORSTEP_AUTH_SECRET", "", "HMAC secret for bearer tokens (at least 32 bytes; required by the gateway)";
    "gateway.auth_key_id", "DOORSTEP_AUTH_KEY_ID", "k1", "Key id of gateway.auth_secret, named in every token it signs (give a new secret a new id when rotating)";
    #[secret] "gateway.auth_previous_keys", "DOORSTEP_AUTH_PREVIOUS_KEYS", "", "Keys still accepted (not used to sign) during a rotation: `id=secret` pairs, comma separated; drop one once gateway.token_max_ttl_s has passed";
    "gateway.token_max_ttl_s", "DOORSTEP_TOKEN_MAX_TTL_S", "86400", "Longest lifetime of a bearer token, seconds: a token expiring later than this after it is checked is refused";
    "gateway.header_read_timeout_ms", "DOORSTEP_GATEWAY_HEADER_READ_TIMEOUT_MS", "10000", "Longest a client may take to send a request's headers (and to start the next request on a kept-alive connection), ms; then the connection is closed";
    "gateway.idle_timeout_ms", "DOORSTEP_GATEWAY_IDLE_TIMEOUT_MS", "60000", "Longest a gateway connection may go without a byte read or written, ms (WebSockets stay busy through their heartbeats)";
    "gateway.request_timeout_ms", "DOORSTEP_GATEWAY_REQUEST_TIMEOUT_MS", "15000", "Longest one HTTP request may take, body included, ms (408 `request_timeout` after)";
    "gateway.max_connections", "DOORSTEP_GATEWAY_MAX_CONNECTIONS", "10000", "Most connections a gateway process holds open at once (WebSockets included); more wait in the listen backlog";
    "gateway.rate_limit_per_s", "DOORSTEP_GATEWAY_RATE_LIMIT_PER_S", "20", "Requests per second one token subject (kind and id) may send, sustained (429 `rate_limited` above)";
    "gateway.rate_limit_burst", "DOORSTEP_GATEWAY_RATE_LIMIT_BURST", "40", "Requests one token subject may send at once above the sustained rate";
    "gateway.orders_per_hour", "DOORSTEP_GATEWAY_ORDERS_PER_HOUR", "30", "Orders one customer may place per hour (429 `order_quota_exceeded` above)";
    "gateway.max_open_orders", "DOORSTEP_GATEWAY_MAX_OPEN_ORDERS", "5", "Orders one customer may have open (not delivered or cancelled) at once, counted in Redis (429 `too_many_open_orders`); 0 turns the cap off";
    "gateway.restaurants", "DOORSTEP_GATEWAY_RESTAURANTS", "demo", "Restaurants that may receive orders: `id@lat,lng` entries separated by `;` (the order's restaurant_location must be within 250 m), `demo` (the simulator's six in Helsinki) or `*` (any: tests only) (422 `unknown_restaurant`)";
    "gateway.service_area", "DOORSTEP_GATEWAY_SERVICE_AREA", "59.9,24.5,60.5,25.5", "Where orders and GPS pings may be: `min_lat,min_lng,max_lat,max_lng`, or `*` for anywhere (422 `outside_service_area`)";
    "gateway.max_sockets_per_subject", "DOORSTEP_GATEWAY_MAX_SOCKETS_PER_SUBJECT", "8", "WebSockets one token subject may have open on a gateway process (429 `too_many_sockets`)";
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
    "security.allow_insecure_secrets", "DOORSTEP_ALLOW_INSECURE_SECRETS", "false", "Accept secrets published with Doorstep (the demo's, the compose file's) and too-short ones, with a warning: development and `scripts/demo` only";
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
            let name = s.key.rsplit('.').next().unwrap_or_default();
            let looks_secret = ["secret", "password", "access_token"]
                .iter()
                .any(|w| name.contains(w))
                || name.ends_with("_keys");
            assert!(
                !looks_secret || s.secret || s.key == "security.allow_insecure_secrets",
                "{} looks like a secret: flag it #[secret]",
                s.key
            );
        }
    }
}
