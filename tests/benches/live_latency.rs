//! Benchmark (not a test: nothing here asserts on timing): the latency from a driver's GPS
//! `POST` to the customer's WebSocket frame, at an offered load of `RATE` pings/s, open loop,
//! through the gateway and the location pipeline running as their own processes (the release
//! `doorstep` binary), next to the Kafka produce → consume and Redis PUBLISH → SUBSCRIBE round
//! trips measured in the same run under the same load (hops every location frame takes), the
//! gateway's POST latency alone, and each process's CPU per ping.
//!
//! In a fresh [`Scope`]:
//!
//! 1. **Production-shaped drivers.** `DRIVERS` drivers (by default `RATE × 5 / BATCH`: each
//!    pings every 5 s), of which the first `TRACKED` are on a delivery of their own order
//!    (`DriverState::occupy`: what the status pipeline does on an assignment); the others are
//!    available (their pings are stored, no frame).
//! 2. **The measured processes, children of this one.** `doorstep pipeline location` and
//!    `doorstep gateway` (live tracking on; the per-subject rate limit and the connection cap
//!    raised out of the way, as a load from one machine needs; the scope's token secret),
//!    default settings otherwise, each with its own ops listener and log file
//!    ([`BenchProcess`]; the binary is the workspace's release build, or
//!    `DOORSTEP_TEST_BINARY`). The bench waits for the gateway's `/healthz` and the
//!    pipeline's `/metrics` to answer.
//! 3. **In this process, only the clients:** one customer WebSocket per tracked order, each
//!    read by its own task (which sleeps until a frame or the end: no polling); the load
//!    generator; the probes (6.). Once the sockets are open, a ping of driver 0 is sent (again
//!    every 2 s) until its frame reaches order 0's socket: the whole path is up before the
//!    load starts.
//! 4. **Open-loop load.** Request `j` (driver `j mod DRIVERS`, `BATCH` pings, default 1: one
//!    `POST /v1/drivers/{id}/location` per ping) is due at `j × BATCH / RATE` s, whatever
//!    happened to the ones before. The load generator runs on a thread of its own
//!    (`load-generator`, a single-threaded runtime, so its CPU is read apart from the rest of
//!    this process): `IN_FLIGHT` senders, each with one kept-alive HTTP/1.1 connection of its
//!    own ([`http1`]: the request bytes written into a reused buffer from a head built once
//!    per driver with its token, the answer read into a reused buffer; no allocation per
//!    request), take the requests in order and send each at its due time; when all are busy,
//!    requests start late, and since every ping carries its *due* time, the lateness counts
//!    in its latency (no coordinated omission). Latencies (frame arrival − due time) go into
//!    an HDR histogram (`hdrhistogram`); the first `WARMUP_SECS` are not counted. Fix times are strictly increasing per driver and about now; positions creep
//!    north at ~11 m/s, so the location filter accepts every ping.
//! 5. **Accounting.** Every ping of a tracked driver due in the measured window is one of:
//!    delivered (its frame arrived), conflated (no frame of its own, but a later ping of the
//!    same order arrived: the pipeline and the gateway send only the latest position, by
//!    design), refused (the POST was not answered 202) or lost (none of these).
//! 6. Meanwhile two probes, every 10 ms, under the same load (and before it, idle): one
//!    publishes on a Redis channel of its own and waits for its subscriber to get it (the
//!    pub/sub round trip), the other produces a record to a topic of the scope nobody else
//!    uses and waits for a consumer to get it (the Kafka round trip). A ping's path has at
//!    least one of each (gateway → `drivers.locations.v1` → pipeline; pipeline → channel →
//!    gateway), so their sum is the floor the latency is compared with.
//! 7. **CPU.** User + system time (`/proc`) over the measured window of the gateway, the
//!    location pipeline, the load generator's thread, this whole process (the load generator,
//!    the socket readers and the probes) and the services (broker, Redis, CQL server), per
//!    ping: the gateway's per ping it accepted in the window, the pipeline's per ping its
//!    consumer group committed in the window (read from the broker, not scraped), the others'
//!    per ping offered in the window. With the rate offered against the target, the requests
//!    that started late and the machine's busy share, this tells whether the load generator or
//!    the system under test is the limit.
//!
//! Nothing scrapes the children while the load runs: their `/metrics` are read once at the
//! end (the pipeline's ping results; the gateway's WebSocket and live-tracking counters).
//!
//! Output: human-readable lines, then `BENCH ...` lines for `scripts/bench`: latency p50 and
//! p99 against the probes' summed p50 and p99 under load, the p99 against the goal (50 ms),
//! lost pings (lost + refused), the POST latency (send → 202, which includes the broker's
//! acknowledgement), the ping rate offered against the target, and the CPU per ping
//! (`gateway_cpu_per_ping`, `pipeline_cpu_per_ping`, `load_generator_cpu_per_ping`: its
//! thread only).
//!
//! When the machine cannot carry the offered rate, the backlog between the gateway and the
//! pipeline grows for the whole run and the latency measures that queue; after the load the
//! bench waits up to `DRAIN_SECS` for the pipeline's committed offsets to reach the end of
//! `drivers.locations.v1` and says how far behind it still was.
//!
//! Settings (environment): `DOORSTEP_BENCH_RATE` [20000,2000 pings/s: one run per rate, each
//! in its own scope with its own children], `DOORSTEP_BENCH_BATCH` [1 ping per request, at
//! most 100], `DOORSTEP_BENCH_DRIVERS` [RATE × 5 / BATCH, at least TRACKED],
//! `DOORSTEP_BENCH_TRACKED` [1000], `DOORSTEP_BENCH_SECS` [10, measured],
//! `DOORSTEP_BENCH_WARMUP_SECS` [2], `DOORSTEP_BENCH_DRAIN_SECS` [30],
//! `DOORSTEP_BENCH_IN_FLIGHT` [512: senders, i.e. connections and requests outstanding at
//! most], `DOORSTEP_BENCH_LANES` [unset: the binary's default `pipeline.lanes`, for the
//! location pipeline], plus the usual `DOORSTEP_*` service addresses (`eval "$(scripts/services env)"`) and
//! `DOORSTEP_TEST_BINARY` for a `doorstep` binary other than the workspace's (built in release
//! by the bench otherwise). Logs: `RUST_LOG`; the children log (`warn`) to files in the
//! temporary directory, removed on success.

use anyhow::{Context, bail, ensure};
use doorstep_connectors::driver_state::DriverState;
use doorstep_connectors::redis::Redis;
use doorstep_pipelines::assemble;
use doorstep_pipelines::auth::{Claims, TokenKey, unix_now};
use doorstep_schemas::events::topics;
use doorstep_schemas::model::{ActorKind, DriverId, OrderId, Timestamp};
use doorstep_tests::bench_kit::http1::{self, Http1};
use doorstep_tests::bench_kit::{
    GroupProgress, PROBE_EVERY, Samples, bench_line, cpu, cpu_report, init_bench_tracing,
    kafka_probe, now_us, p50_p99_max, scraped_by, service_processes, setting,
};
use doorstep_tests::drain_kit::BenchProcess;
use doorstep_tests::live_client::{LiveClient, Received};
use doorstep_tests::pipeline_harness::{Scope, TEST_PARTITIONS};
use futures::{StreamExt, TryStreamExt};
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Most pings the gateway takes in one request.
const MAX_BATCH: usize = 100;
/// Idle pub/sub round trips measured before the load.
const IDLE_PROBES: usize = 300;
/// Idle Kafka round trips measured before the load (each configuration).
const KAFKA_IDLE_PROBES: usize = 40;
/// A load connection idle for longer is opened again before its next request (the gateway
/// closes a connection that does not start a request within
/// `gateway.header_read_timeout_ms`, 10 s by default).
const IDLE_REOPEN: Duration = Duration::from_secs(5);
/// How long the children have to come up, and the first ping to reach its customer.
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// Refusals each sender logs (the rest are only counted).
const REFUSALS_LOGGED: u32 = 3;

#[derive(Clone)]
struct Settings {
    /// The rate of this run (one of `rates`).
    rate: f64,
    rates: Vec<f64>,
    batch: usize,
    /// 0: `RATE × 5 / BATCH` (every driver sends every 5 s).
    drivers: usize,
    tracked: usize,
    secs: f64,
    warmup: f64,
    drain: Duration,
    in_flight: usize,
}

impl Settings {
    fn from_env() -> anyhow::Result<Self> {
        let s = Self {
            rate: 0.0,
            rates: setting::<String>("DOORSTEP_BENCH_RATE", "20000,2000")?
                .split(',')
                .map(|r| {
                    r.trim()
                        .parse::<f64>()
                        .map_err(|e| anyhow::anyhow!("DOORSTEP_BENCH_RATE: {r:?}: {e}"))
                })
                .collect::<anyhow::Result<_>>()?,
            batch: setting("DOORSTEP_BENCH_BATCH", "1")?,
            drivers: setting("DOORSTEP_BENCH_DRIVERS", "0")?,
            tracked: setting("DOORSTEP_BENCH_TRACKED", "1000")?,
            secs: setting("DOORSTEP_BENCH_SECS", "10")?,
            warmup: setting("DOORSTEP_BENCH_WARMUP_SECS", "2")?,
            drain: Duration::from_secs(setting("DOORSTEP_BENCH_DRAIN_SECS", "30")?),
            in_flight: setting("DOORSTEP_BENCH_IN_FLIGHT", "512")?,
        };
        ensure!(
            s.rates.iter().all(|r| *r > 0.0) && s.secs > 0.0 && s.warmup >= 0.0,
            "rate and secs > 0"
        );
        ensure!(
            (1..=MAX_BATCH).contains(&s.batch),
            "DOORSTEP_BENCH_BATCH must be 1..={MAX_BATCH}"
        );
        ensure!(
            s.tracked > 0 && s.in_flight > 0,
            "tracked drivers and in-flight > 0"
        );
        ensure!(
            s.drivers == 0 || s.drivers >= s.tracked,
            "DOORSTEP_BENCH_DRIVERS must be at least DOORSTEP_BENCH_TRACKED"
        );
        Ok(s)
    }

    /// Drivers of this run's rate.
    fn drivers(&self) -> usize {
        if self.drivers > 0 {
            self.drivers
        } else {
            ((self.rate * 5.0 / self.batch as f64).ceil() as usize).max(self.tracked)
        }
    }
}

fn driver(i: usize) -> String {
    format!("bench-d{i:05}")
}

fn order(i: usize) -> String {
    format!("bench-o{i:05}")
}

fn token(key: &TokenKey, kind: ActorKind, id: &str, order: Option<&str>) -> anyhow::Result<String> {
    let mut claims = Claims::new(kind, id, unix_now() + 3_600);
    claims.order_id = order.map(str::to_owned);
    Ok(key.sign(&claims)?)
}

/// The due time (µs) and the per-driver number a ping id `t<due>-<driver>-<n>` carries.
fn due_of(update_id: &str) -> Option<(u64, i64)> {
    let mut parts = update_id.strip_prefix('t')?.split('-');
    let due = parts.next()?.parse().ok()?;
    let n = parts.nth(1)?.parse().ok()?;
    Some((due, n))
}

/// A frame as a customer got it: (due time of its ping, ping number, arrival), µs.
type Arrival = (u64, i64, u64);

/// Reads one customer's socket until `stop` turns true (no polling: the read waits for a frame
/// or for `stop`).
async fn customer(
    mut ws: LiveClient,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Vec<Arrival>> {
    let mut got = Vec::new();
    loop {
        let next = tokio::select! {
            _ = stop.wait_for(|stop| *stop) => return Ok(got),
            next = ws.next(Duration::from_secs(3_600)) => next?,
        };
        match next {
            Some(Received::Frame(f)) if f["type"] == "location" => {
                let received = now_us();
                let (due, n) = f["update_id"]
                    .as_str()
                    .and_then(due_of)
                    .with_context(|| format!("a frame not from the bench: {f}"))?;
                got.push((due, n, received));
            }
            None | Some(Received::Frame(_)) => {}
            Some(Received::Closed(code, reason)) => bail!("socket closed: {code} {reason}"),
        }
    }
}

/// Publishes on a channel of its own and waits for the subscriber to get it, every
/// [`PROBE_EVERY`] until `stop` (or `count` times): (send time, round trip) µs.
async fn pubsub_probe(
    redis: &Redis,
    channel: &str,
    stop: Option<Arc<AtomicBool>>,
    count: usize,
) -> anyhow::Result<Samples> {
    let mut subscription = redis.subscribe(channel).await?;
    let mut publisher = redis.clone();
    let mut got = Vec::new();
    for n in 0..count {
        if stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed)) {
            break;
        }
        let sent = now_us();
        let payload = format!("{sent}-{n}");
        publisher.publish(channel, payload.as_bytes()).await?;
        let m = tokio::time::timeout(Duration::from_secs(10), subscription.next())
            .await
            .context("the probe's message did not come back within 10 s")?
            .context("the probe's subscription ended")?;
        ensure!(m.payload == payload.as_bytes(), "another probe message");
        got.push((sent, now_us() - sent));
        tokio::time::sleep(PROBE_EVERY).await;
    }
    Ok(got)
}

/// What the load sends, fixed before it starts: the schedule and, per driver, the head of its
/// requests (request line, host, its token).
struct Plan {
    heads: Vec<Box<[u8]>>,
    batch: usize,
    /// µs between two requests' due times.
    period_us: f64,
    /// Requests in all (warm-up and measured window).
    total: u64,
    /// Due time of request 0, µs on the [`now_us`] clock.
    begin_us: u64,
    /// Per driver, its next free fix time (ms since the epoch).
    next_fix: Vec<AtomicI64>,
    /// The wall-clock ms the positions are counted from.
    origin_ms: i64,
}

impl Plan {
    fn new(s: &Settings, host: SocketAddr, key: &TokenKey) -> anyhow::Result<Self> {
        let host = host.to_string();
        let drivers = s.drivers();
        let heads = (0..drivers)
            .map(|i| {
                let auth = format!(
                    "authorization: Bearer {}",
                    token(key, ActorKind::Driver, &driver(i), None)?
                );
                let path = format!("/v1/drivers/{}/location", driver(i));
                Ok(http1::request_head("POST", &host, &path, &[&auth]).into_boxed_slice())
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            heads,
            batch: s.batch,
            period_us: s.batch as f64 * 1e6 / s.rate,
            total: ((s.secs + s.warmup) * s.rate / s.batch as f64).ceil() as u64,
            begin_us: 0,
            next_fix: (0..drivers).map(|_| AtomicI64::new(0)).collect(),
            origin_ms: Timestamp::now().as_millis(),
        })
    }

    fn drivers(&self) -> usize {
        self.heads.len()
    }

    /// The driver of request `j`.
    fn driver_of(&self, j: u64) -> usize {
        usize::try_from(j % self.drivers() as u64).unwrap_or_default()
    }

    /// The due time of request `j`, µs.
    fn due_us(&self, j: u64) -> u64 {
        self.begin_us + (j as f64 * self.period_us) as u64
    }

    /// Claims `batch` consecutive fix times (ms) for driver `d`: after every earlier one of
    /// the driver, about now. Returns the first.
    fn fixes(&self, d: usize) -> i64 {
        let batch = self.batch as i64;
        let now = Timestamp::now().as_millis();
        let slot = &self.next_fix[d];
        let mut current = slot.load(Ordering::Relaxed);
        loop {
            let first = current.max(now - batch);
            match slot.compare_exchange_weak(
                current,
                first + batch,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return first,
                Err(v) => current = v,
            }
        }
    }

    /// Writes the body of a request of driver `d` due at `due_us` into `out`: its pings, fix
    /// times `first..first + batch`, each ping id `t<due>-<driver>-<fix time>` (the frame
    /// carries it as its `update_id`), positions creeping north (1e-7° ≈ 1.1 cm per ms of fix
    /// time: ~11 m/s, however far apart two pings are).
    fn body(&self, out: &mut Vec<u8>, d: usize, due_us: u64, first: i64) {
        out.clear();
        let lat0 = 60.15 + (d % 100) as f64 * 0.001;
        let lng = 24.90 + (d / 100 % 100) as f64 * 0.001;
        if self.batch > 1 {
            out.extend_from_slice(br#"{"pings":["#);
        }
        for k in 0..self.batch as i64 {
            if k > 0 {
                out.push(b',');
            }
            let n = first + k;
            // Writing into a Vec cannot fail.
            let _ = write!(
                out,
                r#"{{"lat":{:.7},"lng":{lng:.5},"accuracy_m":5.0,"recorded_at":{n},"ping_id":"t{due_us}-{d}-{n}"}}"#,
                lat0 + (n - self.origin_ms) as f64 * 1e-7
            );
        }
        if self.batch > 1 {
            out.extend_from_slice(b"]}");
        }
    }
}

/// One request as the load generator saw it.
#[derive(Debug, Clone, Copy)]
struct Sent {
    /// Its number in the schedule.
    j: u64,
    /// The fix time of its first ping (the pings are numbered by fix time).
    first: i64,
    /// When it was started, µs.
    sent_us: u64,
    /// Send → answer, µs.
    took_us: u64,
    /// Answered 202.
    ok: bool,
}

/// One sender: on its own connection, takes the next request of the schedule, waits for its
/// due time, sends it, reads the answer; until the schedule is done.
async fn sender(
    plan: Arc<Plan>,
    next: Arc<AtomicU64>,
    mut conn: Http1,
    clock: (tokio::time::Instant, u64),
    share: usize,
) -> Vec<Sent> {
    let mut out = Vec::with_capacity(share);
    let mut body = Vec::with_capacity(256 * plan.batch);
    let mut request = Vec::with_capacity(1024 + 256 * plan.batch);
    let mut logged = 0;
    loop {
        let j = next.fetch_add(1, Ordering::Relaxed);
        if j >= plan.total {
            return out;
        }
        let due = plan.due_us(j);
        tokio::time::sleep_until(clock.0 + Duration::from_micros(due.saturating_sub(clock.1)))
            .await;
        let d = plan.driver_of(j);
        let first = plan.fixes(d);
        plan.body(&mut body, d, due, first);
        let sent_us = now_us();
        let answer = conn
            .send(
                Http1::request(&mut request, &plan.heads[d], &body),
                IDLE_REOPEN,
            )
            .await;
        let took_us = now_us() - sent_us;
        let ok = match answer {
            Ok(202) => true,
            Ok(status) => {
                if logged < REFUSALS_LOGGED {
                    logged += 1;
                    let text = String::from_utf8_lossy(conn.body());
                    tracing::warn!(status, body = %text, "ping request refused");
                }
                false
            }
            Err(e) => {
                if logged < REFUSALS_LOGGED {
                    logged += 1;
                    tracing::warn!(error = %e, "ping request failed");
                }
                false
            }
        };
        out.push(Sent {
            j,
            first,
            sent_us,
            took_us,
            ok,
        });
    }
}

/// What the load generator did.
#[derive(Default)]
struct Load {
    requests: u64,
    refused: u64,
    /// Requests started more than 10 ms after their due time.
    late: u64,
    /// Every request.
    sent: Vec<Sent>,
    /// Per tracked driver, its pings: (due time µs, ping number, answered 202).
    tracked: Vec<Vec<(u64, i64, bool)>>,
    /// When the last request was started, µs.
    last_start_us: u64,
}

/// The load generator on a thread of its own (`load-generator`, a single-threaded runtime,
/// so that its CPU is read apart from the socket readers' and the probes'): opens `senders`
/// connections to `api`, sends its thread id and the schedule's begin (200 ms later) on
/// `started`, runs the schedule of `plan` (one sender per connection), and returns what it did.
fn spawn_load(
    mut plan: Plan,
    api: SocketAddr,
    senders: usize,
    tracked: usize,
    started: tokio::sync::oneshot::Sender<(Option<u32>, u64)>,
) -> anyhow::Result<std::thread::JoinHandle<anyhow::Result<Load>>> {
    Ok(std::thread::Builder::new()
        .name("load-generator".into())
        .spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(async move {
                    let conns: Vec<Http1> = futures::stream::iter(0..senders)
                        .map(|_| Http1::connect(api))
                        .buffer_unordered(32)
                        .try_collect()
                        .await?;
                    plan.begin_us = now_us() + 200_000;
                    started
                        .send((own_thread_id(), plan.begin_us))
                        .map_err(|_| anyhow::anyhow!("nobody waits for the load"))?;
                    load(Arc::new(plan), conns, tracked).await
                })
        })?)
}

/// This thread's id (`/proc/thread-self` is `<pid>/task/<tid>`); `None` off Linux.
fn own_thread_id() -> Option<u32> {
    std::fs::read_link("/proc/thread-self")
        .ok()?
        .file_name()?
        .to_str()?
        .parse()
        .ok()
}

/// Runs the schedule of `plan` on `conns` (one sender each).
async fn load(plan: Arc<Plan>, conns: Vec<Http1>, tracked: usize) -> anyhow::Result<Load> {
    let clock = (tokio::time::Instant::now(), now_us());
    let next = Arc::new(AtomicU64::new(0));
    // Each sender's share of the requests, with room for the uneven split.
    let share = usize::try_from(plan.total).unwrap_or(usize::MAX) / conns.len().max(1) * 2 + 16;
    let mut tasks = tokio::task::JoinSet::new();
    for conn in conns {
        tasks.spawn(sender(plan.clone(), next.clone(), conn, clock, share));
    }
    let mut out = Load {
        tracked: vec![Vec::new(); tracked],
        ..Load::default()
    };
    while let Some(done) = tasks.join_next().await {
        out.sent.extend(done?);
    }
    out.sent.sort_unstable_by_key(|r| r.j);
    for r in &out.sent {
        let due = plan.due_us(r.j);
        out.requests += 1;
        out.refused += u64::from(!r.ok);
        out.late += u64::from(r.sent_us > due + 10_000);
        out.last_start_us = out.last_start_us.max(r.sent_us);
        if let Some(pings) = out.tracked.get_mut(plan.driver_of(r.j)) {
            pings.extend((0..plan.batch as i64).map(|k| (due, r.first + k, r.ok)));
        }
    }
    Ok(out)
}

/// Sends a ping of driver 0 (again every 2 s) until its frame reaches `customer` (order 0's
/// socket): the gateway, the broker, the pipeline and the live channel are all up.
async fn first_frame(
    plan: &Plan,
    conn: &mut Http1,
    customer: &mut LiveClient,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let (mut body, mut request) = (Vec::new(), Vec::new());
    loop {
        plan.body(&mut body, 0, now_us(), plan.fixes(0));
        let status = conn
            .send(
                Http1::request(&mut request, &plan.heads[0], &body),
                IDLE_REOPEN,
            )
            .await?;
        ensure!(
            status == 202,
            "the gateway answered {status} to the first ping: {}",
            String::from_utf8_lossy(conn.body())
        );
        let until = Instant::now() + Duration::from_secs(2);
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            match customer.next(left).await? {
                Some(Received::Frame(f)) if f["type"] == "location" => {
                    return Ok(started.elapsed());
                }
                Some(Received::Closed(code, reason)) => bail!("socket closed: {code} {reason}"),
                Some(Received::Frame(_)) | None => {}
            }
        }
        ensure!(
            started.elapsed() < READY_TIMEOUT,
            "no ping reached its customer within {READY_TIMEOUT:?}"
        );
    }
}

/// What became of the tracked pings due in the window.
#[derive(Debug, Default)]
struct Accounting {
    delivered: u64,
    conflated: u64,
    refused: u64,
    lost: u64,
}

/// Sorts every tracked ping due in `window` into delivered, conflated, refused or lost.
fn account(sent: &[Vec<(u64, i64, bool)>], got: &[Vec<Arrival>], window: (u64, u64)) -> Accounting {
    let mut a = Accounting::default();
    for (pings, frames) in sent.iter().zip(got) {
        let arrived: std::collections::HashSet<i64> = frames.iter().map(|(_, n, _)| *n).collect();
        let latest = frames.iter().map(|(_, n, _)| *n).max();
        for &(due, n, ok) in pings {
            if !(window.0..window.1).contains(&due) {
                continue;
            }
            if !ok {
                a.refused += 1;
            } else if arrived.contains(&n) {
                a.delivered += 1;
            } else if latest.is_some_and(|l| l > n) {
                a.conflated += 1;
            } else {
                a.lost += 1;
            }
        }
    }
    a
}

fn ms(us: f64) -> f64 {
    us / 1000.0
}

/// µs of CPU of process `name` between two samples, per one of `count` (NaN without either).
fn cpu_per(from: &cpu::Sample, to: &cpu::Sample, name: &str, count: f64) -> f64 {
    match (from.processes.get(name), to.processes.get(name)) {
        (Some(a), Some(b)) if count > 0.0 => {
            b.since(a).0 as f64 / cpu::ticks_per_second() * 1e6 / count
        }
        _ => f64::NAN,
    }
}

/// µs of CPU of thread `tid` of process `name` between two samples, per one of `count`.
fn thread_cpu_per(
    from: &cpu::Sample,
    to: &cpu::Sample,
    name: &str,
    tid: Option<u32>,
    count: f64,
) -> f64 {
    let ticks = |s: &cpu::Sample| {
        s.processes
            .get(name)
            .and_then(|p| p.threads.get(&tid?).copied())
    };
    match (ticks(from), ticks(to)) {
        (Some(a), Some(b)) if count > 0.0 => {
            b.saturating_sub(a) as f64 / cpu::ticks_per_second() * 1e6 / count
        }
        _ => f64::NAN,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench` (and any filter); this binary has a single benchmark.
    init_bench_tracing();
    let _ = now_us();
    let settings = Settings::from_env()?;
    for &rate in &settings.rates {
        one_rate(&Settings {
            rate,
            ..settings.clone()
        })
        .await?;
    }
    Ok(())
}

/// CPU samples at both ends of the measured window, and the pipeline group's committed
/// offsets then.
struct Window {
    from: cpu::Sample,
    to: cpu::Sample,
    over: Duration,
    committed: i64,
}

/// Samples the CPU of `named` and the group's progress at `window` (µs), while the load runs.
async fn watch_window(
    named: Vec<(String, u32)>,
    progress: Arc<GroupProgress>,
    window: (u64, u64),
) -> anyhow::Result<Window> {
    let clock = (tokio::time::Instant::now(), now_us());
    let at = |us: u64| clock.0 + Duration::from_micros(us.saturating_sub(clock.1));
    tokio::time::sleep_until(at(window.0)).await;
    let from = cpu::sample(&named);
    let started = Instant::now();
    let c0 = progress.committed().await?;
    tokio::time::sleep_until(at(window.1)).await;
    let to = cpu::sample(&named);
    let over = started.elapsed();
    let c1 = progress.committed().await?;
    Ok(Window {
        from,
        to,
        over,
        committed: c1 - c0,
    })
}

/// The whole measurement at `s.rate`, in a scope of its own.
async fn one_rate(s: &Settings) -> anyhow::Result<()> {
    let drivers = s.drivers();
    println!(
        "\n## live_latency [rate={}]: pings offered in requests of {} pings, {drivers} drivers \
         (each sending every {:.1} s), {} of them on deliveries with one customer socket each, \
         {} s measured after {} s warm-up, {} senders; gateway and location pipeline in their \
         own processes; {} CPUs",
        s.rate,
        s.batch,
        drivers as f64 * s.batch as f64 / s.rate,
        s.tracked,
        s.secs,
        s.warmup,
        s.in_flight,
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    ensure!(
        drivers as f64 * 1000.0 >= s.rate,
        "{drivers} drivers at {} pings/s would each send more than one request per ms: fix \
         times could not stay about now (raise DOORSTEP_BENCH_DRIVERS)",
        s.rate
    );
    let scope = Arc::new(Scope::new("bench_live", &[]).await?);
    let config = &scope.config;
    // The order store's keyspace and tables (snapshots read it).
    scope.store().await?;
    let redis = assemble::redis(config).await?;
    let state = DriverState::new(redis.clone(), config.redis_key_prefix.clone());
    futures::stream::iter(0..s.tracked)
        .map(|i| {
            let state = &state;
            async move {
                state
                    .occupy(&DriverId::new(driver(i)), &OrderId::new(order(i)))
                    .await
            }
        })
        .buffer_unordered(64)
        .try_collect::<()>()
        .await?;

    // The measured processes.
    let quiet = ("DOORSTEP_LOG", "warn,scylla=off");
    let mut pipeline = BenchProcess::spawn(&scope, "location", "live", &[quiet])?;
    let connections = (s.tracked + s.in_flight + 64).max(10_000).to_string();
    let mut gateway = BenchProcess::gateway(
        &scope,
        &[],
        "live",
        &[
            quiet,
            ("DOORSTEP_GATEWAY_RATE_LIMIT_PER_S", "1000000"),
            ("DOORSTEP_GATEWAY_RATE_LIMIT_BURST", "1000000"),
            ("DOORSTEP_GATEWAY_MAX_CONNECTIONS", connections.as_str()),
        ],
    )?;
    gateway.healthy(READY_TIMEOUT).await?;
    pipeline.metrics_when_up(READY_TIMEOUT).await?;
    let api = gateway.api.context("the gateway has no API address")?;
    let ws_base = format!("ws://{api}");
    let mut named = service_processes();
    named.push(("gateway".to_owned(), gateway.pid()?));
    named.push(("pipeline".to_owned(), pipeline.pid()?));
    named.push(("bench".to_owned(), std::process::id()));
    let progress = Arc::new(GroupProgress::new(
        &config.endpoints.kafka_brokers,
        &config.group_id("location"),
        &scope.topic(topics::DRIVER_LOCATIONS),
        TEST_PARTITIONS,
    )?);

    let secret = scope
        .env
        .get("DOORSTEP_AUTH_SECRET")
        .context("the scope sets no DOORSTEP_AUTH_SECRET")?;
    let key = TokenKey::new(secret.as_bytes())?;
    let plan = Plan::new(s, api, &key)?;
    let stop = Arc::new(AtomicBool::new(false));
    let (stop_readers, readers_stop) = tokio::sync::watch::channel(false);
    let connected = Instant::now();
    let mut clients: Vec<(usize, LiveClient)> = futures::stream::iter(0..s.tracked)
        .map(|i| {
            let (key, ws_base) = (&key, ws_base.as_str());
            async move {
                let t = token(
                    key,
                    ActorKind::Customer,
                    &format!("bench-c{i}"),
                    Some(&order(i)),
                )?;
                let mut c = LiveClient::open(ws_base, &order(i), &t).await?;
                let snapshot = c.frame(Duration::from_secs(30)).await?;
                ensure!(snapshot["type"] == "snapshot", "{snapshot}");
                Ok::<_, anyhow::Error>((i, c))
            }
        })
        .buffer_unordered(32)
        .try_collect()
        .await?;
    println!(
        "  {} customer sockets open (snapshot read) in {:.1} s",
        clients.len(),
        connected.elapsed().as_secs_f64()
    );
    // In driver order: the accounting pairs each tracked driver with its customer.
    clients.sort_by_key(|(i, _)| *i);
    let mut conn = Http1::connect(api).await?;
    let first_ping = match clients.first_mut() {
        Some((_, customer)) => first_frame(&plan, &mut conn, customer).await,
        None => Err(anyhow::anyhow!("no customer")),
    };
    let first_ping = first_ping.with_context(|| {
        format!(
            "gateway log:\n{}\npipeline log:\n{}",
            gateway.tail(20),
            pipeline.tail(20)
        )
    })?;
    println!(
        "  the first ping reached its customer {:.1} s after the sockets were open",
        first_ping.as_secs_f64()
    );
    let readers: Vec<_> = clients
        .into_iter()
        .map(|(_, c)| tokio::spawn(customer(c, readers_stop.clone())))
        .collect();

    let probe_channel = format!("{}bench-probe", config.redis_key_prefix);
    let idle = pubsub_probe(&redis, &probe_channel, None, IDLE_PROBES).await?;
    let probe = {
        let (redis, channel, stop) = (redis.clone(), probe_channel.clone(), stop.clone());
        tokio::spawn(async move { pubsub_probe(&redis, &channel, Some(stop), usize::MAX).await })
    };
    let probe_topic = scope.topic(topics::NOTIFICATIONS);
    let kafka_idle = kafka_probe(
        &scope,
        &probe_topic,
        None,
        KAFKA_IDLE_PROBES,
        "bench-probe-idle",
        None,
    )
    .await?;
    // The same with the consumer's `fetch.wait.max.ms` (librdkafka: 500) at 10 ms: tells
    // whether the round trip is the broker holding a fetch rather than moving data.
    let kafka_short_wait = kafka_probe(
        &scope,
        &probe_topic,
        None,
        KAFKA_IDLE_PROBES,
        "bench-probe-short-wait",
        Some(10),
    )
    .await?;
    let kafka_loaded = {
        let (scope, stop, topic) = (scope.clone(), stop.clone(), probe_topic.clone());
        tokio::spawn(async move {
            kafka_probe(
                &scope,
                &topic,
                Some(stop),
                usize::MAX,
                "bench-probe-loaded",
                None,
            )
            .await
        })
    };

    // The load generator's connections are opened last: the gateway closes idle ones.
    let (started, begun) = tokio::sync::oneshot::channel();
    let generator = spawn_load(plan, api, s.in_flight, s.tracked, started)?;
    let (load_thread, begin_us) = begun
        .await
        .context("the load generator stopped before it began")?;
    let window = (
        begin_us + (s.warmup * 1e6) as u64,
        begin_us + ((s.warmup + s.secs) * 1e6) as u64,
    );
    let watcher = tokio::spawn(watch_window(named, progress.clone(), window));
    let done = tokio::task::spawn_blocking(move || generator.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the load generator panicked"))??;
    let load_end_us = now_us();
    let measured = watcher.await??;
    // Let the pipeline drain what was accepted (its group's commits reach the topic's end),
    // then a little more for the sockets.
    let end = progress.end().await?;
    let drain = Instant::now();
    let mut committed = progress.committed().await?;
    while committed < end && drain.elapsed() < s.drain {
        if let Some(status) = pipeline.process.exited()? {
            bail!(
                "the location pipeline exited on its own ({status}):\n{}",
                pipeline.tail(30)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        committed = progress.committed().await?;
    }
    let drained_in = drain.elapsed();
    let behind = end - committed;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let _ = stop_readers.send(true);
    let mut latencies = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)?;
    let mut frames = 0usize;
    let mut arrivals = Vec::with_capacity(readers.len());
    for r in readers {
        let got = r.await??;
        frames += got.len();
        for (due, _, at) in &got {
            if (window.0..window.1).contains(due) {
                latencies.saturating_record(at.saturating_sub(*due).max(1));
            }
        }
        arrivals.push(got);
    }
    let fate = account(&done.tracked, &arrivals, window);
    let loaded = probe.await??;
    let kafka_loaded = kafka_loaded.await??;
    // The children's metrics, once.
    let pipeline_metrics = pipeline.metrics().await?;
    let gateway_metrics = reqwest::get(format!("http://{}/metrics", gateway.ops))
        .await?
        .error_for_status()?
        .text()
        .await?;
    pipeline.stop().await?;
    gateway.stop().await?;
    let results = scraped_by(&pipeline_metrics, "doorstep_location_pings_total", "result");

    let in_window = |v: &Samples| -> Vec<f64> {
        v.iter()
            .filter(|(sent, _)| (window.0..window.1).contains(sent))
            .map(|(_, l)| *l as f64)
            .collect()
    };
    // The rate actually offered: pings of the requests started within the window.
    let started: Vec<&Sent> = done
        .sent
        .iter()
        .filter(|r| (window.0..window.1).contains(&r.sent_us))
        .collect();
    let offered_pings = (started.len() * s.batch) as f64;
    let offered = offered_pings / s.secs;
    let accepted_pings = (started.iter().filter(|r| r.ok).count() * s.batch) as f64;
    let mut posts: Vec<f64> = started
        .iter()
        .filter(|r| r.ok)
        .map(|r| r.took_us as f64)
        .collect();
    let mut loaded_rtt = in_window(&loaded);
    let mut idle_rtt: Vec<f64> = idle.iter().map(|(_, l)| *l as f64).collect();
    let (p50, p99, max) = (
        latencies.value_at_quantile(0.50) as f64,
        latencies.value_at_quantile(0.99) as f64,
        latencies.max() as f64,
    );
    let (rtt50, rtt99, rttmax) = p50_p99_max(&mut loaded_rtt);
    let (irtt50, irtt99, _) = p50_p99_max(&mut idle_rtt);
    let mut kafka_rtt = in_window(&kafka_loaded);
    let mut kafka_idle_rtt: Vec<f64> = kafka_idle.iter().map(|(_, l)| *l as f64).collect();
    let (krtt50, krtt99, krttmax) = p50_p99_max(&mut kafka_rtt);
    let (kirtt50, kirtt99, _) = p50_p99_max(&mut kafka_idle_rtt);
    let mut kafka_short: Vec<f64> = kafka_short_wait.iter().map(|(_, l)| *l as f64).collect();
    let (ksrtt50, ksrtt99, _) = p50_p99_max(&mut kafka_short);
    let (post50, post99, postmax) = p50_p99_max(&mut posts);
    println!(
        "  load: {} requests ({} pings), {} refused, {} started >10 ms late; last started {:.1} s \
         after the scheduled end, the load ended {:.1} s after it; {:.1} s after the load the \
         pipeline was {behind} pings behind (latencies below are of the frames that arrived: \
         under overload they understate)",
        done.requests,
        done.requests * s.batch as u64,
        done.refused,
        done.late,
        (done.last_start_us.saturating_sub(window.1)) as f64 / 1e6,
        (load_end_us.saturating_sub(window.1)) as f64 / 1e6,
        drained_in.as_secs_f64()
    );
    println!("  pipeline results: {results:?}");
    println!(
        "  offered: {offered:.0} pings/s in the measured window (target {}, {:.0} %); \
         {accepted_pings} pings accepted in the window; {frames} location frames received in all",
        s.rate,
        100.0 * offered / s.rate
    );
    let per_offered = cpu_report(
        &measured.from,
        &measured.to,
        measured.over,
        Some(offered_pings),
    );
    let gateway_cpu = cpu_per(&measured.from, &measured.to, "gateway", accepted_pings);
    let pipeline_cpu = cpu_per(
        &measured.from,
        &measured.to,
        "pipeline",
        measured.committed as f64,
    );
    let bench_cpu = per_offered.get("bench").copied().unwrap_or(f64::NAN);
    let load_cpu = thread_cpu_per(
        &measured.from,
        &measured.to,
        "bench",
        load_thread,
        offered_pings,
    );
    println!(
        "  CPU per ping in the window: gateway {gateway_cpu:.1} µs (per ping accepted), location \
         pipeline {pipeline_cpu:.1} µs (per ping committed: {} in the window), load generator \
         thread {load_cpu:.1} µs and the whole bench process (with the socket readers and the \
         probes) {bench_cpu:.1} µs (per ping offered)",
        measured.committed
    );
    println!(
        "  tracked pings due in the window: {} delivered, {} conflated (a later ping of the order \
         arrived), {} refused by the gateway, {} lost",
        fate.delivered, fate.conflated, fate.refused, fate.lost
    );
    println!(
        "  POST due -> WebSocket (HDR, {} frames): p50 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms, \
         max {:.1} ms",
        latencies.len(),
        ms(p50),
        ms(p99),
        ms(latencies.value_at_quantile(0.999) as f64),
        ms(max)
    );
    println!(
        "  gateway POST alone (send -> 202): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(post50),
        ms(post99),
        ms(postmax)
    );
    println!(
        "  Redis PUBLISH -> SUBSCRIBE round trip: under load p50 {:.2} ms, p99 {:.2} ms, max \
         {:.2} ms ({} probes); idle p50 {:.2} ms, p99 {:.2} ms ({IDLE_PROBES} probes)",
        ms(rtt50),
        ms(rtt99),
        ms(rttmax),
        loaded_rtt.len(),
        ms(irtt50),
        ms(irtt99)
    );
    println!(
        "  Kafka produce -> consume round trip: under load p50 {:.2} ms, p99 {:.2} ms, max {:.2} \
         ms ({} probes); idle p50 {:.2} ms, p99 {:.2} ms ({} probes); idle with \
         fetch.wait.max.ms=10: p50 {:.2} ms, p99 {:.2} ms",
        ms(krtt50),
        ms(krtt99),
        ms(krttmax),
        kafka_rtt.len(),
        ms(kirtt50),
        ms(kirtt99),
        kafka_idle_rtt.len(),
        ms(ksrtt50),
        ms(ksrtt99),
    );
    for line in gateway_metrics.lines().filter(|l| {
        (l.starts_with("doorstep_gateway_websocket_") || l.starts_with("doorstep_gateway_live_"))
            && !l.contains("_bucket")
    }) {
        println!("  gateway metric: {line}");
    }
    if latencies.is_empty() {
        bail!("no location frame of the measured window reached a customer");
    }
    let name = format!("live_latency[rate={}]", s.rate);
    bench_line(
        &format!("{name}.p50"),
        ms(p50),
        "ms",
        Some(("kafka_rtt+redis_pubsub_rtt_p50_ms", ms(krtt50 + rtt50))),
    );
    bench_line(
        &format!("{name}.p99"),
        ms(p99),
        "ms",
        Some(("kafka_rtt+redis_pubsub_rtt_p99_ms", ms(krtt99 + rtt99))),
    );
    bench_line(
        &format!("{name}.p99_vs_goal"),
        ms(p99),
        "ms",
        Some(("goal_p99_ms", 50.0)),
    );
    bench_line(
        &format!("{name}.lost"),
        (fate.lost + fate.refused) as f64,
        "pings",
        None,
    );
    bench_line(&format!("{name}.post_p50"), ms(post50), "ms", None);
    bench_line(&format!("{name}.post_p99"), ms(post99), "ms", None);
    bench_line(
        &format!("{name}.offered"),
        offered,
        "pings/s",
        Some(("target_pings/s", s.rate)),
    );
    bench_line(
        &format!("{name}.gateway_cpu_per_ping"),
        gateway_cpu,
        "us/ping",
        None,
    );
    bench_line(
        &format!("{name}.pipeline_cpu_per_ping"),
        pipeline_cpu,
        "us/ping",
        None,
    );
    bench_line(
        &format!("{name}.load_generator_cpu_per_ping"),
        load_cpu,
        "us/ping",
        None,
    );
    Ok(())
}
