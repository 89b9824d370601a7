//! What the benchmarks that run the real `doorstep` binary as a separate process share: the
//! consumer group's progress read from outside (committed and end offsets, without joining
//! the group), the services' processes by their listening ports (for CPU per process from
//! `/proc`, with [`crate::bench_kit::cpu`]), and the process's own `/metrics`, scraped
//! rarely (at the start and the end of a measurement, never in a loop).

use crate::pipeline_harness::Scope;
use crate::process::DoorstepProcess;
use anyhow::Context;
use doorstep_connectors::kafka::rdkafka::consumer::{BaseConsumer, Consumer as _};
use doorstep_connectors::kafka::rdkafka::{ClientConfig, TopicPartitionList};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Reads a group's committed offsets and a topic's end offsets without joining the group.
pub struct Offsets {
    consumer: Arc<BaseConsumer>,
    topic: String,
    partitions: i32,
}

impl Offsets {
    /// For group `group` on `topic` (of `partitions` partitions).
    ///
    /// # Errors
    /// When the client cannot be created.
    pub fn new(scope: &Scope, group: &str, topic: &str, partitions: i32) -> anyhow::Result<Self> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &scope.config.endpoints.kafka_brokers)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("log_level", "3")
            .create()?;
        Ok(Self {
            consumer: Arc::new(consumer),
            topic: topic.to_owned(),
            partitions,
        })
    }

    /// The sum of the end offsets (records in the topic, which starts empty).
    ///
    /// # Errors
    /// When the broker does not answer within 5 s.
    pub async fn end(&self) -> anyhow::Result<i64> {
        let (consumer, topic, partitions) =
            (self.consumer.clone(), self.topic.clone(), self.partitions);
        tokio::task::spawn_blocking(move || {
            let mut sum = 0;
            for p in 0..partitions {
                sum += consumer
                    .fetch_watermarks(&topic, p, Duration::from_secs(5))?
                    .1;
            }
            anyhow::Ok(sum)
        })
        .await?
    }

    /// The sum of the group's committed offsets (0 where it has none).
    ///
    /// # Errors
    /// When the broker does not answer within 5 s.
    pub async fn committed(&self) -> anyhow::Result<i64> {
        let (consumer, topic, partitions) =
            (self.consumer.clone(), self.topic.clone(), self.partitions);
        tokio::task::spawn_blocking(move || {
            let mut tpl = TopicPartitionList::new();
            for p in 0..partitions {
                tpl.add_partition(&topic, p);
            }
            let committed = consumer.committed_offsets(tpl, Duration::from_secs(5))?;
            anyhow::Ok(
                committed
                    .elements()
                    .iter()
                    .filter_map(|e| e.offset().to_raw())
                    .filter(|o| *o >= 0)
                    .sum(),
            )
        })
        .await?
    }
}

/// The port of `host:port`, `scheme://host:port/...` or the first of a comma list of them.
pub fn port_of(address: &str) -> Option<u16> {
    let first = address.split(',').next()?.trim();
    let authority = first.split("://").last()?.split('/').next()?;
    authority.rsplit(':').next()?.parse().ok()
}

/// The services' processes on this machine, by name (`cql server`, `broker`, `redis`), found
/// by their listening ports; those not local or not visible are left out.
pub fn service_processes() -> Vec<(String, u32)> {
    let e = crate::endpoints();
    [
        ("cql server", port_of(&e.cql_nodes.join(","))),
        ("broker", port_of(&e.kafka_brokers)),
        ("redis", port_of(&e.redis_url)),
    ]
    .into_iter()
    .filter_map(|(name, port)| Some((name.to_owned(), crate::bench_kit::cpu::listener(port?)?)))
    .collect()
}

/// The sum of a metric's series in Prometheus text format (`name` exactly, e.g. a counter or
/// a histogram's `_sum`), only those with label `with` when given.
pub fn scraped(text: &str, name: &str, with: Option<(&str, &str)>) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            if !(rest.starts_with('{') || rest.starts_with(' ')) {
                return None;
            }
            if let Some((k, v)) = with
                && !rest.contains(&format!("{k}=\"{v}\""))
            {
                return None;
            }
            rest.rsplit(' ').next()?.parse::<f64>().ok()
        })
        .fold(0.0, |a, b| a + b)
}

/// Every series of `name` in Prometheus text format as (value of label `label`, value),
/// sorted by label.
pub fn scraped_by(text: &str, name: &str, label: &str) -> Vec<(String, f64)> {
    let key = format!("{label}=\"");
    let mut v: Vec<(String, f64)> = text
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?.strip_prefix('{')?;
            let at = rest.find(&key)? + key.len();
            let value = &rest[at..rest[at..].find('"')? + at];
            Some((
                value.to_owned(),
                rest.rsplit(' ').next()?.parse::<f64>().ok()?,
            ))
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// A free loopback port for a process's ops listener.
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> anyhow::Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// One `doorstep pipeline <name>` process of a benchmark, with its ops listener and log.
pub struct PipelineProcess {
    /// The process.
    pub process: DoorstepProcess,
    /// Its `/metrics` and `/healthz` listener.
    pub ops: SocketAddr,
    /// Its log file.
    pub log: PathBuf,
}

impl PipelineProcess {
    /// Starts `doorstep pipeline <pipeline>` in `scope` (its `DOORSTEP_*` environment plus
    /// `extra`), logging to a file named after the scope and `tag` in the temporary directory.
    ///
    /// # Errors
    /// When no port is free or the process cannot be started.
    pub fn spawn(
        scope: &Scope,
        pipeline: &str,
        tag: &str,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let ops = free_port()?;
        let log = std::env::temp_dir().join(format!(
            "{}-{pipeline}-{tag}.log",
            scope.env["DOORSTEP_GROUP_PREFIX"]
        ));
        let mut env: BTreeMap<String, String> = scope.env.clone();
        env.insert("DOORSTEP_OPS_LISTEN".into(), ops.to_string());
        env.insert("DOORSTEP_LOG".into(), "info,scylla=off".into());
        for (k, v) in extra {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        let process = DoorstepProcess::spawn(&["pipeline", pipeline], &env, &log)?;
        Ok(Self { process, ops, log })
    }

    /// Its `/metrics` text.
    ///
    /// # Errors
    /// When it does not answer.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        Ok(reqwest::get(format!("http://{}/metrics", self.ops))
            .await?
            .error_for_status()?
            .text()
            .await?)
    }

    /// Its `/metrics` text once it answers (within `timeout`).
    ///
    /// # Errors
    /// When it does not answer in time, or exits.
    pub async fn metrics_when_up(&mut self, timeout: Duration) -> anyhow::Result<String> {
        let started = std::time::Instant::now();
        loop {
            if let Ok(text) = self.metrics().await {
                return Ok(text);
            }
            if let Some(status) = self.process.exited()? {
                anyhow::bail!("doorstep exited on its own: {status}\n{}", self.tail(30));
            }
            if started.elapsed() > timeout {
                anyhow::bail!("doorstep's /metrics did not answer within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The last `lines` lines of its log.
    pub fn tail(&self, lines: usize) -> String {
        crate::process::log_tail(&self.log, lines)
    }

    /// Kills it (SIGKILL) and removes its log.
    ///
    /// # Errors
    /// When it had exited on its own, or cannot be killed.
    pub async fn stop(self) -> anyhow::Result<()> {
        let log = self.log.clone();
        self.process.kill9().await.context("stopping doorstep")?;
        let _ = std::fs::remove_file(&log);
        Ok(())
    }
}

/// Whether the file at `path` mentions `needle` how many times (0 when unreadable).
pub fn log_mentions(path: &Path, needle: &str) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .matches(needle)
        .count()
}
