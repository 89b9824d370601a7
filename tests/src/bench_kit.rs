//! What the benchmarks in `tests/benches/` share: their settings (`DOORSTEP_BENCH_*`
//! variables), the `BENCH ...` line `scripts/bench` collects, percentiles, reading counters
//! off a metrics registry, the resident memory of a process, and raw limits:
//! `redis-benchmark`, and the Kafka produce → consume round trip ([`kafka_probe`]); the
//! closed-loop HTTP load tool ([`http_load`]) and the bare HTTP/1.1 connection an open-loop
//! load generator sends with ([`http1`]).

pub mod http1;

use crate::pipeline_harness::Scope;
use anyhow::{Context, bail, ensure};
use doorstep_connectors::kafka::{ConsumerBuilder, OffsetReset, Producer};
use doorstep_pipelines::assemble;
use prometheus::Registry;
use prometheus::proto::{Metric, MetricFamily};
use std::fmt::Display;
use std::process::Stdio;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Pause between two probes of a round trip.
pub const PROBE_EVERY: Duration = Duration::from_millis(10);

/// (send time, latency) samples, µs on the [`now_us`] clock.
pub type Samples = Vec<(u64, u64)>;

/// Microseconds since the first call: the clock of a benchmark's send and receive times.
pub fn now_us() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    u64::try_from(START.get_or_init(Instant::now).elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// The value of `name` (`default` when unset or blank), parsed.
///
/// # Errors
/// When the value does not parse; the message names the variable.
pub fn setting<T: FromStr>(name: &str, default: &str) -> anyhow::Result<T>
where
    T::Err: Display,
{
    let v = std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_owned());
    v.trim()
        .parse::<T>()
        .map_err(|e| anyhow::anyhow!("{name}: {v:?}: {e}"))
}

/// The measured pipeline process's settings a benchmark takes from its own environment (a
/// spawned `doorstep` gets no `DOORSTEP_*` variable of the bench's): `DOORSTEP_BENCH_LANES`
/// [unset: the binary's `pipeline.lanes` default] becomes the child's
/// `DOORSTEP_PIPELINE_LANES`.
///
/// # Errors
/// When `DOORSTEP_BENCH_LANES` is not a number.
pub fn pipeline_settings(
    env: &mut std::collections::BTreeMap<String, String>,
) -> anyhow::Result<()> {
    let lanes: usize = setting("DOORSTEP_BENCH_LANES", "0")?;
    if lanes > 0 {
        env.insert("DOORSTEP_PIPELINE_LANES".into(), lanes.to_string());
    }
    Ok(())
}

/// A figure as `BENCH` lines print it: no decimals from 100 up, three below.
pub fn figure(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// Prints the machine-readable line of one figure (see `scripts/bench`):
/// `BENCH name=... value=... unit=... limit_name=... limit_value=... ratio=...`.
pub fn bench_line(name: &str, value: f64, unit: &str, limit: Option<(&str, f64)>) {
    match limit {
        Some((limit_name, limit_value)) => println!(
            "BENCH name={name} value={} unit={unit} limit_name={limit_name} limit_value={} ratio={:.3}",
            figure(value),
            figure(limit_value),
            value / limit_value
        ),
        None => println!(
            "BENCH name={name} value={} unit={unit} limit_name=- limit_value=- ratio=-",
            figure(value)
        ),
    }
}

/// Logs to stderr (`RUST_LOG`; default `warn`).
pub fn init_bench_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The `q`-quantile (0..=1, nearest rank) of `sorted` (ascending); 0 when empty.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Sorts `samples` and returns (p50, p99, max).
pub fn p50_p99_max(samples: &mut [f64]) -> (f64, f64, f64) {
    samples.sort_by(f64::total_cmp);
    (
        quantile(samples, 0.50),
        quantile(samples, 0.99),
        samples.last().copied().unwrap_or(0.0),
    )
}

fn family<'a>(families: &'a [MetricFamily], name: &str) -> impl Iterator<Item = &'a Metric> {
    families
        .iter()
        .filter(move |f| f.name() == name)
        .flat_map(|f| f.get_metric())
}

fn label<'a>(m: &'a Metric, name: &str) -> Option<&'a str> {
    m.get_label()
        .iter()
        .find(|l| l.name() == name)
        .map(|l| l.value())
}

/// The sum of the counter `name` over its series (only those with label `with` when given).
pub fn counter(registry: &Registry, name: &str, with: Option<(&str, &str)>) -> f64 {
    family(&registry.gather(), name)
        .filter(|m| with.is_none_or(|(k, v)| label(m, k) == Some(v)))
        .map(|m| m.get_counter().get_value())
        .fold(0.0, |a, b| a + b)
}

/// The gauge `name` summed over its series.
pub fn gauge(registry: &Registry, name: &str) -> f64 {
    family(&registry.gather(), name)
        .map(|m| m.get_gauge().get_value())
        .fold(0.0, |a, b| a + b)
}

/// The (sample count, sample sum) of the histogram `name` over its series (only those with
/// label `with` when given).
pub fn histogram(registry: &Registry, name: &str, with: Option<(&str, &str)>) -> (u64, f64) {
    family(&registry.gather(), name)
        .filter(|m| with.is_none_or(|(k, v)| label(m, k) == Some(v)))
        .map(|m| {
            let h = m.get_histogram();
            (h.get_sample_count(), h.get_sample_sum())
        })
        .fold((0, 0.0), |(c, s), (c2, s2)| (c + c2, s + s2))
}

/// Every series of the counter `name` as (value of `label_name`, count), sorted by label.
pub fn counter_by(registry: &Registry, name: &str, label_name: &str) -> Vec<(String, f64)> {
    let mut v: Vec<(String, f64)> = family(&registry.gather(), name)
        .map(|m| {
            (
                label(m, label_name).unwrap_or("?").to_owned(),
                m.get_counter().get_value(),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// The runtime's progress on a backlog: every record read, every started batch finished,
/// each finished batch's offsets committed (or the commit attempted).
pub fn pipeline_caught_up(registry: &Registry, records: usize) -> bool {
    let records_in = counter(registry, "doorstep_pipeline_records_in_total", None);
    let started = histogram(registry, "doorstep_pipeline_batch_size_records", None).0 as f64;
    let done = counter(registry, "doorstep_pipeline_batches_total", None);
    let commits = counter(registry, "doorstep_pipeline_commits_total", None)
        + counter(registry, "doorstep_pipeline_commit_errors_total", None);
    records_in >= records as f64 && done >= started && commits >= done
}

/// The resident set size of process `pid` (`VmRSS` of `/proc/<pid>/status`), bytes.
///
/// # Errors
/// When the file cannot be read or has no `VmRSS` line (not Linux, or the process is gone).
pub fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .with_context(|| format!("no VmRSS in {path}"))?;
    let kb: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .with_context(|| format!("VmRSS line {line:?}"))?;
    Ok(kb * 1024)
}

/// Host, port and password of a `redis://[user:password@]host:port[/db]` URL.
fn redis_host_port(url: &str) -> anyhow::Result<(String, u16, Option<String>)> {
    let rest = url
        .strip_prefix("redis://")
        .with_context(|| format!("{url:?} is not a redis:// URL"))?;
    let rest = rest.split('/').next().unwrap_or(rest);
    let (auth, host_port) = match rest.rsplit_once('@') {
        Some((a, h)) => (Some(a), h),
        None => (None, rest),
    };
    let password = auth.map(|a| a.rsplit(':').next().unwrap_or(a).to_owned());
    let (host, port) = match host_port.rsplit_once(':') {
        Some((h, p)) => (h.to_owned(), p.parse().context("redis port")?),
        None => (host_port.to_owned(), 6379),
    };
    Ok((host, port, password))
}

/// Runs `redis-benchmark -q -P <pipeline> -n <requests> -r <keyspace> <command...>` (found
/// on `PATH`) against the Redis of `url` and returns its requests per second.
///
/// # Errors
/// When `redis-benchmark` is not installed, fails, or prints no rate.
pub async fn redis_benchmark(
    url: &str,
    pipeline: usize,
    requests: usize,
    keyspace: usize,
    command: &[&str],
) -> anyhow::Result<f64> {
    let (host, port, password) = redis_host_port(url)?;
    let mut cmd = tokio::process::Command::new("redis-benchmark");
    cmd.args(["-h", &host, "-p", &port.to_string(), "-q"])
        .args(["-P", &pipeline.to_string()])
        .args(["-n", &requests.to_string()])
        .args(["-r", &keyspace.to_string()]);
    if let Some(p) = &password {
        cmd.args(["-a", p, "--no-auth-warning"]);
    }
    cmd.args(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = cmd
        .output()
        .await
        .context("running redis-benchmark (is it installed and on PATH?)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "redis-benchmark failed ({}): {text}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // `-q` prints `<COMMAND ...>: 123456.78 requests per second, p50=... msec` (after
    // carriage-return progress lines).
    let line = text
        .split(['\r', '\n'])
        .rfind(|l| l.contains("requests per second"))
        .with_context(|| format!("no rate in redis-benchmark's output: {text:?}"))?;
    let rate = line
        .split("requests per second")
        .next()
        .and_then(|l| l.rsplit(' ').find(|w| !w.is_empty()))
        .and_then(|w| w.parse::<f64>().ok())
        .with_context(|| format!("no rate in {line:?}"))?;
    Ok(rate)
}

/// Produces a record to `topic` (one of the scope's that no pipeline of the benchmark writes)
/// and waits for a consumer of it to get it, every [`PROBE_EVERY`] until `stop` (or `count` times): (send time, round trip)
/// µs. The first round trip (group join) is not counted.
pub async fn kafka_probe(
    scope: &Scope,
    topic: &str,
    stop: Option<Arc<AtomicBool>>,
    count: usize,
    group: &str,
    fetch_wait_ms: Option<u32>,
) -> anyhow::Result<Samples> {
    let kafka = assemble::kafka_config(&scope.config, "doorstep-bench-probe");
    let producer = Producer::new(&kafka)?;
    // A consumer setting: given to the producer too, librdkafka warns that it ignores it.
    let consumer_kafka = match fetch_wait_ms {
        Some(ms) => kafka.with_override("fetch.wait.max.ms", ms.to_string()),
        None => kafka,
    };
    let consumer = ConsumerBuilder::new(&consumer_kafka, scope.config.group_id(group))
        .offset_reset(OffsetReset::Latest)
        .subscribe(&[topic])?;
    let mut got = Vec::new();
    let mut n = 0usize;
    // Until the group has joined, records may be produced before the consumer's position:
    // resend until one comes back.
    loop {
        let payload = format!("join-{n}");
        n += 1;
        producer
            .send(topic, b"probe", payload.as_bytes(), &[])
            .await?;
        if let Ok(r) = tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await {
            r?;
            break;
        }
        ensure!(
            n < 120,
            "the Kafka probe's consumer got nothing within a minute"
        );
    }
    // Drain what the join left behind.
    while let Ok(r) = tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await {
        r?;
    }
    for k in 0..count {
        if stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed)) {
            break;
        }
        let sent = now_us();
        let payload = format!("{sent}-{k}");
        producer
            .send(topic, b"probe", payload.as_bytes(), &[])
            .await?;
        loop {
            let r = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
                .await
                .context("the Kafka probe's record did not come back within 30 s")??;
            if r.payload.as_deref() == Some(payload.as_bytes()) {
                break;
            }
        }
        got.push((sent, now_us() - sent));
        tokio::time::sleep(PROBE_EVERY).await;
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(p50_p99_max(&mut v), (50.0, 99.0, 100.0));
        assert_eq!(quantile(&[], 0.5), 0.0);
        assert_eq!(quantile(&[3.0], 0.99), 3.0);
    }

    #[test]
    fn redis_urls_give_host_port_and_password() {
        assert_eq!(
            redis_host_port("redis://127.0.0.1:6380/0").unwrap(),
            ("127.0.0.1".into(), 6380, None)
        );
        assert_eq!(
            redis_host_port("redis://:pw@localhost").unwrap(),
            ("localhost".into(), 6379, Some("pw".into()))
        );
        assert!(redis_host_port("http://x").is_err());
    }

    #[test]
    fn own_rss_is_read() {
        let rss = rss_bytes(std::process::id()).unwrap();
        assert!(rss > 1024 * 1024, "{rss}");
    }
}

/// CPU time of processes and of the machine, from `/proc` (Linux; empty elsewhere).
pub mod cpu {
    use std::collections::BTreeMap;

    /// Clock ticks per second of `/proc`'s CPU times.
    pub fn ticks_per_second() -> f64 {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    }

    /// User + system ticks in a `/proc/.../stat` file.
    fn stat_ticks(path: &std::path::Path) -> Option<u64> {
        let stat = std::fs::read_to_string(path).ok()?;
        // After the command name (which may hold spaces) in parentheses: field 3 onwards.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 of `rest`.
        Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
    }

    /// User + system ticks of process `pid` (all its threads), and of each thread.
    pub fn process_ticks(pid: u32) -> Option<Ticks> {
        let dir = std::path::PathBuf::from(format!("/proc/{pid}"));
        let total = stat_ticks(&dir.join("stat"))?;
        let threads = std::fs::read_dir(dir.join("task"))
            .map(|tasks| {
                tasks
                    .flatten()
                    .filter_map(|t| {
                        let tid = t.file_name().to_str()?.parse::<u32>().ok()?;
                        Some((tid, stat_ticks(&t.path().join("stat"))?))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(Ticks { total, threads })
    }

    /// CPU ticks of one process.
    #[derive(Debug, Clone, Default)]
    pub struct Ticks {
        pub total: u64,
        pub threads: BTreeMap<u32, u64>,
    }

    impl Ticks {
        /// Ticks since `earlier`: of the process, and of its busiest thread.
        pub fn since(&self, earlier: &Self) -> (u64, u64) {
            let busiest = self
                .threads
                .iter()
                .map(|(tid, t)| t.saturating_sub(earlier.threads.get(tid).copied().unwrap_or(0)))
                .max()
                .unwrap_or(0);
            (self.total.saturating_sub(earlier.total), busiest)
        }
    }

    /// (busy, total) ticks of all CPUs since boot.
    pub fn machine_ticks() -> Option<(u64, u64)> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let line = stat.lines().find(|l| l.starts_with("cpu "))?;
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .take(8)
            .filter_map(|f| f.parse().ok())
            .collect();
        if v.len() < 8 {
            return None;
        }
        let idle = v[3] + v[4];
        let total: u64 = v.iter().sum();
        Some((total - idle, total))
    }

    /// The process listening on TCP `port` (any address), if it is on this machine and
    /// visible to this user.
    pub fn listener(port: u16) -> Option<u32> {
        let mut inodes = Vec::new();
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            let Ok(text) = std::fs::read_to_string(table) else {
                continue;
            };
            for line in text.lines().skip(1) {
                let f: Vec<&str> = line.split_whitespace().collect();
                let listening = f.get(3) == Some(&"0A");
                let local_port = f
                    .get(1)
                    .and_then(|a| a.rsplit(':').next())
                    .and_then(|p| u16::from_str_radix(p, 16).ok());
                if listening
                    && local_port == Some(port)
                    && let Some(inode) = f.get(9)
                {
                    inodes.push(format!("socket:[{inode}]"));
                }
            }
        }
        if inodes.is_empty() {
            return None;
        }
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
                continue;
            };
            for fd in fds.flatten() {
                if let Ok(target) = std::fs::read_link(fd.path())
                    && inodes.iter().any(|i| target.as_os_str() == i.as_str())
                {
                    return Some(pid);
                }
            }
        }
        None
    }

    /// One reading: ticks per named process, and of the machine.
    #[derive(Debug, Clone, Default)]
    pub struct Sample {
        pub processes: BTreeMap<String, Ticks>,
        pub machine: Option<(u64, u64)>,
    }

    pub fn sample(named: &[(String, u32)]) -> Sample {
        Sample {
            processes: named
                .iter()
                .filter_map(|(name, pid)| Some((name.clone(), process_ticks(*pid)?)))
                .collect(),
            machine: machine_ticks(),
        }
    }
}

/// The raw CQL limit the benchmarks compare against: single-row prepared inserts of a
/// timeline-shaped row (text partition key, int clustering key, a few short columns) into a
/// table of the scope's keyspace.
pub struct RawInserts {
    session: doorstep_connectors::scylla::Session,
    insert: doorstep_connectors::scylla::driver::statement::prepared::PreparedStatement,
}

impl RawInserts {
    /// Creates the keyspace (if missing) and the table, and prepares the insert.
    ///
    /// # Errors
    /// When CQL is unreachable or refuses the DDL.
    pub async fn prepare(config: &doorstep_pipelines::config::Config) -> anyhow::Result<Self> {
        use doorstep_connectors::scylla::{self as cql, Replication, ScyllaConfig};
        let session = cql::connect(&ScyllaConfig::new(config.endpoints.cql_nodes.clone())).await?;
        let ks = &config.cql_keyspace;
        cql::create_keyspace(&session, ks, &Replication::Simple(1)).await?;
        session
            .query_unpaged(
                format!(
                    "CREATE TABLE IF NOT EXISTS {ks}.bench_inserts (order_id text, seq int, \
                     event_id text, to_status text, at bigint, PRIMARY KEY ((order_id), seq))"
                ),
                (),
            )
            .await
            .context("creating the bench table")?;
        let mut insert = session
            .prepare(format!(
                "INSERT INTO {ks}.bench_inserts (order_id, seq, event_id, to_status, at) \
                 VALUES (?, ?, ?, ?, ?)"
            ))
            .await
            .context("preparing the bench insert")?;
        insert.set_is_idempotent(true);
        Ok(Self { session, insert })
    }

    /// Inserts rows `rows` (8 per order) with `concurrency` in flight; returns how long it took.
    ///
    /// # Errors
    /// The first failed insert.
    pub async fn run(
        &self,
        rows: std::ops::Range<usize>,
        concurrency: usize,
    ) -> anyhow::Result<std::time::Duration> {
        use futures::{StreamExt, TryStreamExt};
        let started = std::time::Instant::now();
        futures::stream::iter(rows)
            .map(|i| async move {
                let values = (
                    format!("raw-{:07}", i / 8),
                    i32::try_from(i % 8).unwrap_or_default(),
                    format!("raw-{i}"),
                    "DELIVERED",
                    i64::try_from(i).unwrap_or_default(),
                );
                self.session
                    .execute_unpaged(&self.insert, values)
                    .await
                    .map(|_| ())
            })
            .buffer_unordered(concurrency)
            .try_collect::<()>()
            .await
            .context("raw inserts")?;
        Ok(started.elapsed())
    }
}

/// A consumer group's committed offsets and a topic's end offsets, read from the broker
/// without joining the group: how far a pipeline in another process has got, without
/// scraping it.
pub struct GroupProgress {
    consumer: Arc<doorstep_connectors::kafka::rdkafka::consumer::BaseConsumer>,
    topic: String,
    partitions: i32,
}

impl GroupProgress {
    /// For `group` on `topic` (`partitions` partitions) of the broker at `brokers`.
    ///
    /// # Errors
    /// When the client cannot be created.
    pub fn new(brokers: &str, group: &str, topic: &str, partitions: i32) -> anyhow::Result<Self> {
        let consumer = doorstep_connectors::kafka::rdkafka::ClientConfig::new()
            .set("bootstrap.servers", brokers)
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

    /// The sum of the end offsets (records in the topic, when it started empty).
    ///
    /// # Errors
    /// When the broker does not answer.
    pub async fn end(&self) -> anyhow::Result<i64> {
        use doorstep_connectors::kafka::rdkafka::consumer::Consumer as _;
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
    /// When the broker does not answer.
    pub async fn committed(&self) -> anyhow::Result<i64> {
        use doorstep_connectors::kafka::rdkafka::TopicPartitionList;
        use doorstep_connectors::kafka::rdkafka::consumer::Consumer as _;
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

/// A backlog drained by pipeline processes, watched from outside the group: when its first
/// commit was seen (and how many records it covered) and when its commits reached the end,
/// with CPU samples of the named processes at both moments.
#[derive(Debug, Clone)]
pub struct Drain {
    /// When the watch began.
    pub started: std::time::Instant,
    /// When the first commit was seen.
    pub first_commit: std::time::Instant,
    /// Records the first commit covered.
    pub at_first_commit: i64,
    /// When the commits reached the backlog's end.
    pub done: std::time::Instant,
    /// CPU at the first commit.
    pub cpu_from: cpu::Sample,
    /// CPU at the end.
    pub cpu_to: cpu::Sample,
}

impl GroupProgress {
    /// Polls the group's committed offsets every 50 ms until they reach `records`. `alive`
    /// is asked every round and fails the drain when a pipeline process exited; so does a
    /// drain longer than `timeout`.
    ///
    /// # Errors
    /// When the broker does not answer, `alive` fails, or the time runs out.
    pub async fn drain(
        &self,
        named: &[(String, u32)],
        records: usize,
        timeout: Duration,
        mut alive: impl FnMut() -> anyhow::Result<()>,
    ) -> anyhow::Result<Drain> {
        let started = std::time::Instant::now();
        let mut first: Option<(std::time::Instant, i64, cpu::Sample)> = None;
        loop {
            let committed = self.committed().await?;
            let now = std::time::Instant::now();
            if first.is_none() && committed > 0 {
                first = Some((now, committed, cpu::sample(named)));
            }
            if committed >= i64::try_from(records).unwrap_or(i64::MAX) {
                let cpu_to = cpu::sample(named);
                let (first_commit, at_first_commit, cpu_from) =
                    first.context("no commit seen before the end")?;
                return Ok(Drain {
                    started,
                    first_commit,
                    at_first_commit,
                    done: now,
                    cpu_from,
                    cpu_to,
                });
            }
            alive()?;
            if started.elapsed() > timeout {
                anyhow::bail!(
                    "the drain did not finish within {timeout:?}: {committed} of {records} committed"
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The port of `host:port`, `scheme://host:port/...` or the first of a comma list of them.
pub fn port_of(address: &str) -> Option<u16> {
    let first = address.split(',').next()?.trim();
    let authority = first.split("://").last()?.split('/').next()?;
    authority.rsplit(':').next()?.parse().ok()
}

/// The services' processes on this machine (CQL server, broker, Redis), by name, found by
/// their listening ports.
pub fn service_processes() -> Vec<(String, u32)> {
    let e = crate::endpoints();
    [
        ("cql server", port_of(&e.cql_nodes.join(","))),
        ("broker", port_of(&e.kafka_brokers)),
        ("redis", port_of(&e.redis_url)),
    ]
    .into_iter()
    .filter_map(|(name, port)| Some((name.to_owned(), cpu::listener(port?)?)))
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

/// A free loopback address to listen on.
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> anyhow::Result<std::net::SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// Prints each named process's CPU between two samples (% of one core, and µs per record
/// when `records` is given); returns the µs per record of every process by name.
pub fn cpu_report(
    from: &cpu::Sample,
    to: &cpu::Sample,
    over: Duration,
    records: Option<f64>,
) -> std::collections::BTreeMap<String, f64> {
    let tick = cpu::ticks_per_second();
    let secs = over.as_secs_f64();
    let pct = |ticks: u64| 100.0 * ticks as f64 / tick / secs;
    let mut per_record = std::collections::BTreeMap::new();
    let mut line = format!("  CPU over {secs:.2} s, % of one core:");
    let mut named = 0;
    for (name, t1) in &to.processes {
        if let Some(t0) = from.processes.get(name) {
            let (all, busiest) = t1.since(t0);
            named += all;
            line.push_str(&format!(
                " {name} {:.0}% (busiest thread {:.0}%",
                pct(all),
                pct(busiest)
            ));
            if let Some(n) = records.filter(|n| *n > 0.0) {
                let us = all as f64 / tick * 1e6 / n;
                per_record.insert(name.clone(), us);
                line.push_str(&format!(", {us:.1} µs/record"));
            }
            line.push_str("),");
        }
    }
    if let (Some((b0, t0)), Some((b1, t1))) = (from.machine, to.machine) {
        let cores = (t1 - t0) as f64 / tick / secs;
        line.push_str(&format!(
            " everything else {:.0}%; machine {:.0}% busy of {cores:.0} cores",
            pct((b1 - b0).saturating_sub(named)),
            100.0 * (b1 - b0) as f64 / (t1 - t0).max(1) as f64,
        ));
    }
    println!("{}", line.trim_end_matches(','));
    per_record
}

/// What [`http_load`] measured.
#[derive(Debug, Clone, Copy)]
pub struct HttpLoad {
    /// Requests answered with the expected status.
    pub ok: u64,
    /// Requests answered otherwise, or failed.
    pub failed: u64,
    /// How long the load ran.
    pub elapsed: Duration,
}

impl HttpLoad {
    /// Expected answers per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The benchmarks' one HTTP load tool, closed loop: `connections` clients, each on one
/// kept-alive HTTP/1.1 connection of its own, send the requests `make(client, n)` builds one
/// after another (`n` counts every request of the load) for `duration`; an answer with status
/// `want` counts as ok.
///
/// # Errors
/// When a client cannot be built.
pub async fn http_load<F>(
    connections: usize,
    duration: Duration,
    want: u16,
    make: F,
) -> anyhow::Result<HttpLoad>
where
    F: Fn(&reqwest::Client, u64) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let client = reqwest::Client::builder()
            .http1_only()
            .pool_max_idle_per_host(1)
            .timeout(Duration::from_secs(10))
            .build()?;
        let (make, next) = (make.clone(), next.clone());
        tasks.spawn(async move {
            let (mut ok, mut failed) = (0u64, 0u64);
            while Instant::now() < deadline {
                let n = next.fetch_add(1, Ordering::Relaxed);
                match make(&client, n).send().await {
                    Ok(r) if r.status().as_u16() == want => {
                        // Read the body so the connection is reused.
                        let _ = r.bytes().await;
                        ok += 1;
                    }
                    Ok(r) => {
                        let _ = r.bytes().await;
                        failed += 1;
                    }
                    Err(_) => failed += 1,
                }
            }
            (ok, failed)
        });
    }
    let (mut ok, mut failed) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        let (o, f) = r?;
        ok += o;
        failed += f;
    }
    Ok(HttpLoad {
        ok,
        failed,
        elapsed: started.elapsed(),
    })
}
