//! Settings shared by every Kafka client.

use rdkafka::ClientConfig;
use std::collections::BTreeMap;
use std::time::Duration;

/// Compression codec for produced batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Compression {
    /// No compression.
    None,
    /// LZ4: cheap on CPU.
    Lz4,
    /// Zstandard: best ratio; the default.
    #[default]
    Zstd,
}

impl Compression {
    fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// Where a consumer group with no committed offset starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OffsetReset {
    /// From the oldest retained record (the default: nothing is skipped).
    #[default]
    Earliest,
    /// Only records produced after the group first joins.
    Latest,
}

/// Connection and tuning settings for producers, consumers and the admin client.
///
/// `overrides` are raw librdkafka properties applied last, for anything not modelled here.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct KafkaConfig {
    /// `bootstrap.servers`: comma-separated `host:port` list.
    pub brokers: String,
    /// `client.id`: shows up in broker logs and metrics.
    pub client_id: String,
    /// Upper bound for one request to a broker (`socket.timeout.ms`, `request.timeout.ms`).
    pub request_timeout: Duration,
    /// How long a produced record may wait for acknowledgement, retries included
    /// (`message.timeout.ms`). After this, [`Producer::send`](super::Producer::send) fails.
    pub delivery_timeout: Duration,
    /// How long a metadata probe ([`Producer::ping`](super::Producer::ping)) waits.
    pub connect_timeout: Duration,
    /// Producer batching delay (`linger.ms`).
    pub linger: Duration,
    /// Producer compression codec.
    pub compression: Compression,
    /// Consumer group session timeout (`session.timeout.ms`).
    pub session_timeout: Duration,
    /// Longest a consumer's fetch waits for records at the broker (`fetch.wait.max.ms`).
    /// Kafka answers a fetch as soon as one record is there (`fetch.min.bytes` 1), so this
    /// adds no latency; it only sets how often an idle consumer asks again.
    pub fetch_wait: Duration,
    /// Longest a consumer's revoke waits for its batches in flight before it lets the
    /// partitions go (see [`RebalanceFence`](super::RebalanceFence)); below the group's
    /// rebalance timeout (`max.poll.interval.ms`, 300 s).
    pub handover_bound: Duration,
    /// How long a producer transaction may stay open before the broker aborts it
    /// (`transaction.timeout.ms`): after a crash, `read_committed` readers of the partitions
    /// it wrote wait at most this long for the dead transaction to end.
    pub transaction_timeout: Duration,
    /// Raw librdkafka properties, applied after everything above.
    pub overrides: BTreeMap<String, String>,
}

/// Default consumer fetch wait, ms (librdkafka's own default).
pub const DEFAULT_FETCH_WAIT_MS: u64 = 500;

impl KafkaConfig {
    /// Settings for `brokers` with defaults suited to a low-latency pipeline.
    pub fn new(brokers: impl Into<String>, client_id: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            client_id: client_id.into(),
            request_timeout: Duration::from_secs(30),
            delivery_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            linger: Duration::from_millis(5),
            compression: Compression::default(),
            session_timeout: Duration::from_secs(10),
            fetch_wait: Duration::from_millis(DEFAULT_FETCH_WAIT_MS),
            // Kafka Streams' exactly-once default: long enough for a batch's effects, short
            // enough that a crash holds downstream readers back only briefly.
            transaction_timeout: Duration::from_secs(10),
            handover_bound: Duration::from_secs(60),
            overrides: BTreeMap::new(),
        }
    }

    /// Sets the request timeout.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets the delivery timeout.
    pub fn with_delivery_timeout(mut self, timeout: Duration) -> Self {
        self.delivery_timeout = timeout;
        self
    }

    /// Sets how long [`Producer::ping`](super::Producer::ping) and the admin client wait for
    /// a broker.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the consumer group session timeout.
    pub fn with_session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = timeout;
        self
    }

    /// Sets the consumer's fetch wait.
    pub fn with_fetch_wait(mut self, wait: Duration) -> Self {
        self.fetch_wait = wait;
        self
    }

    /// Sets the transaction timeout.
    pub fn with_transaction_timeout(mut self, timeout: Duration) -> Self {
        self.transaction_timeout = timeout;
        self
    }

    /// Sets the producer batching delay (`linger.ms`).
    pub fn with_linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// Sets the compression codec.
    pub fn with_compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Adds a raw librdkafka property.
    pub fn with_override(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.overrides.insert(key.into(), value.into());
        self
    }

    /// Properties every client gets.
    pub(crate) fn base(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("client.id", &self.client_id)
            .set("socket.timeout.ms", millis(self.request_timeout))
            // Fail fast and loudly on a wrong address instead of retrying quietly forever.
            .set("reconnect.backoff.max.ms", "2000")
            .set("log.connection.close", "false");
        c
    }

    /// Producer properties: idempotent, `acks=all`, ordered per partition.
    pub(crate) fn producer(&self) -> ClientConfig {
        let mut c = self.base();
        // A producer property: librdkafka warns when a consumer is given it.
        c.set("request.timeout.ms", millis(self.request_timeout))
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("max.in.flight.requests.per.connection", "5")
            .set("message.timeout.ms", millis(self.delivery_timeout))
            .set("linger.ms", millis(self.linger))
            .set("compression.type", self.compression.as_str());
        self.apply_overrides(&mut c);
        c
    }

    /// Transactional producer properties: [`producer`](Self::producer) plus the
    /// transactional id and timeout.
    pub(crate) fn transactional_producer(&self, transactional_id: &str) -> ClientConfig {
        let mut c = self.producer();
        // librdkafka requires the socket and delivery timeouts within the transaction's.
        let within = |d: Duration| millis(d.min(self.transaction_timeout));
        c.set("transactional.id", transactional_id)
            .set("transaction.timeout.ms", millis(self.transaction_timeout))
            .set("socket.timeout.ms", within(self.request_timeout))
            .set("request.timeout.ms", within(self.request_timeout))
            .set("message.timeout.ms", within(self.delivery_timeout));
        self.apply_overrides(&mut c);
        c
    }

    /// Consumer properties: no auto-commit, no auto offset store, partition EOF silenced,
    /// and only committed records of transactional producers (`read_committed`: records of
    /// an aborted or still open transaction are never handed out).
    pub(crate) fn consumer(&self, group_id: &str, reset: OffsetReset) -> ClientConfig {
        let mut c = self.base();
        c.set("group.id", group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("session.timeout.ms", millis(self.session_timeout))
            .set("fetch.wait.max.ms", millis(self.fetch_wait))
            .set("isolation.level", "read_committed")
            .set(
                "auto.offset.reset",
                match reset {
                    OffsetReset::Earliest => "earliest",
                    OffsetReset::Latest => "latest",
                },
            );
        self.apply_overrides(&mut c);
        c
    }

    /// Admin client properties.
    pub(crate) fn admin(&self) -> ClientConfig {
        let mut c = self.base();
        c.set("request.timeout.ms", millis(self.request_timeout));
        self.apply_overrides(&mut c);
        c
    }

    fn apply_overrides(&self, c: &mut ClientConfig) {
        for (k, v) in &self.overrides {
            c.set(k, v);
        }
    }
}

fn millis(d: Duration) -> String {
    d.as_millis().max(1).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producer_is_idempotent_and_consumer_never_autocommits() {
        let cfg = KafkaConfig::new("b:1", "t").with_override("linger.ms", "0");
        let p = cfg.producer();
        assert_eq!(p.get("enable.idempotence"), Some("true"));
        assert_eq!(p.get("acks"), Some("all"));
        assert_eq!(p.get("compression.type"), Some("zstd"));
        assert_eq!(p.get("linger.ms"), Some("0"), "overrides win");
        let c = cfg.consumer("g", OffsetReset::Earliest);
        assert_eq!(c.get("enable.auto.commit"), Some("false"));
        assert_eq!(c.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(c.get("group.id"), Some("g"));
        assert_eq!(c.get("auto.offset.reset"), Some("earliest"));
        assert_eq!(c.get("fetch.wait.max.ms"), Some("500"));
        assert_eq!(c.get("isolation.level"), Some("read_committed"));
        let t = cfg.transactional_producer("doorstep.status.a");
        assert_eq!(t.get("transactional.id"), Some("doorstep.status.a"));
        assert_eq!(t.get("transaction.timeout.ms"), Some("10000"));
        assert_eq!(t.get("enable.idempotence"), Some("true"));
        let c = cfg
            .with_fetch_wait(Duration::from_millis(10))
            .consumer("g", OffsetReset::Latest);
        assert_eq!(c.get("fetch.wait.max.ms"), Some("10"));
    }
}
