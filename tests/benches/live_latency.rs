//! Benchmark (not a test: nothing here asserts on timing): the latency from a driver's GPS
//! `POST` to the customer's WebSocket frame, at an offered load of `RATE` pings/s, open loop,
//! next to the Kafka produce → consume and Redis PUBLISH → SUBSCRIBE round trips measured in
//! the same run under the same load (hops every location frame takes), and the gateway's POST
//! latency alone.
//!
//! In a fresh [`Scope`], all in this process:
//!
//! 1. **Production-shaped drivers.** `DRIVERS` drivers (by default `RATE × 5`: each pings
//!    every 5 s, one ping per POST), of which the first `TRACKED` are on a delivery of their
//!    own order (`DriverState::occupy`: what the status pipeline does on an assignment); the
//!    others are available (their pings are stored, no frame).
//! 2. The location pipeline (`assemble::location_pipeline`, default settings) and a gateway
//!    with live tracking ([`GatewayUnderTest`]).
//! 3. One customer WebSocket per tracked order, each read by its own task.
//! 4. **Open-loop load.** Request `j` (driver `j mod DRIVERS`, `BATCH` pings, default 1) is
//!    due at `j × BATCH / RATE` s, whatever happened to the ones before; at most `IN_FLIGHT`
//!    are outstanding, so when the machine cannot keep up requests start late, and since
//!    every ping carries its *due* time, the lateness counts in its latency (no coordinated
//!    omission). Latencies (frame arrival − due time) go into an HDR histogram
//!    (`hdrhistogram`); the first `WARMUP_SECS` are not counted.
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
//!
//! Output: human-readable lines, then `BENCH ...` lines for `scripts/bench`: latency p50 and
//! p99 against the probes' summed p50 and p99 under load, the p99 against the goal (50 ms),
//! lost pings, the POST latency (send → 202, which includes the broker's acknowledgement),
//! and the ping rate offered against the target.
//!
//! When the machine cannot carry the offered rate, the backlog between the gateway and the
//! pipeline grows for the whole run and the latency measures that queue; after the load the
//! bench waits up to `DRAIN_SECS` for the pipeline to catch up and says how far behind it
//! still was.
//!
//! Settings (environment): `DOORSTEP_BENCH_RATE` [20000,2000 pings/s: one run per rate],
//! `DOORSTEP_BENCH_BATCH` [1 ping per request, at most 100], `DOORSTEP_BENCH_DRIVERS`
//! [RATE × 5], `DOORSTEP_BENCH_TRACKED` [1000], `DOORSTEP_BENCH_SECS` [10, measured],
//! `DOORSTEP_BENCH_WARMUP_SECS` [2], `DOORSTEP_BENCH_DRAIN_SECS` [30],
//! `DOORSTEP_BENCH_IN_FLIGHT` [512], plus the usual `DOORSTEP_*` service addresses
//! (`eval "$(scripts/services env)"`). Logs: `RUST_LOG`.

use anyhow::{Context, bail, ensure};
use doorstep_connectors::driver_state::DriverState;
use doorstep_connectors::redis::Redis;
use doorstep_pipelines::assemble::{self, LocationOptions};
use doorstep_pipelines::auth::{Claims, TokenKey, unix_now};
use doorstep_pipelines::gateway::track::TrackingConfig;
use doorstep_pipelines::shutdown;
use doorstep_schemas::events::topics;
use doorstep_schemas::model::{ActorKind, DriverId, OrderId, Timestamp};
use doorstep_tests::bench_kit::{
    PROBE_EVERY, Samples, bench_line, counter, counter_by, init_bench_tracing, kafka_probe, now_us,
    p50_p99_max, setting,
};
use doorstep_tests::live_client::{GatewayUnderTest, LiveClient, Received};
use doorstep_tests::pipeline_harness::Scope;
use futures::{StreamExt, TryStreamExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The scope's token secret (see `pipeline_harness`).
const SECRET: &str = "test-secret-test-secret-test-secret-0001";
/// Most pings the gateway takes in one request.
const MAX_BATCH: usize = 100;
/// Idle pub/sub round trips measured before the load.
const IDLE_PROBES: usize = 300;
/// Idle Kafka round trips measured before the load (each configuration).
const KAFKA_IDLE_PROBES: usize = 40;

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

/// Reads one customer's socket until `stop`.
async fn customer(mut ws: LiveClient, stop: Arc<AtomicBool>) -> anyhow::Result<Vec<Arrival>> {
    let mut got = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match ws.next(Duration::from_millis(200)).await? {
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
    Ok(got)
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

/// What the load generator did.
#[derive(Default)]
struct Load {
    requests: u64,
    pings: u64,
    refused: u64,
    /// Requests started more than 10 ms after their scheduled time.
    late: u64,
    /// (send time, POST latency) µs of every accepted request.
    posts: Samples,
    /// Per tracked driver, its pings: (due time µs, ping number, answered 202).
    tracked: Vec<Vec<(u64, i64, bool)>>,
    /// When the last request was started, µs.
    last_start_us: u64,
}

/// POSTs pings on the open-loop schedule from `begin_us` for `secs` s.
async fn load(
    s: &Settings,
    base: &str,
    tokens: Arc<Vec<String>>,
    begin_us: u64,
) -> anyhow::Result<Load> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(s.in_flight)
        .build()?;
    let drivers = s.drivers();
    let period_us = s.batch as f64 * 1e6 / s.rate;
    let total = ((s.secs + s.warmup) * s.rate / s.batch as f64).ceil() as u64;
    let permits = Arc::new(tokio::sync::Semaphore::new(s.in_flight));
    let refused = Arc::new(AtomicU64::new(0));
    let mut next_fix: Vec<i64> = vec![0; drivers];
    let mut tasks = tokio::task::JoinSet::new();
    let mut out = Load {
        tracked: vec![Vec::new(); s.tracked],
        ..Load::default()
    };
    for j in 0..total {
        let due_us = begin_us + (j as f64 * period_us) as u64;
        let wait = due_us.saturating_sub(now_us());
        if wait > 0 {
            tokio::time::sleep(Duration::from_micros(wait)).await;
        }
        let permit = permits.clone().acquire_owned().await?;
        let sent = now_us();
        if sent > due_us + 10_000 {
            out.late += 1;
        }
        let d = (j % drivers as u64) as usize;
        // Fix times strictly increasing per driver, about now; the position creeps north
        // (1e-7° ≈ 1 cm per ping, so even 1 ms apart the speed is plausible).
        let wall_ms = Timestamp::now().as_millis();
        let first = next_fix[d].max(wall_ms - s.batch as i64);
        next_fix[d] = first + s.batch as i64;
        let lat0 = 60.15 + (d % 100) as f64 * 0.001;
        let lng = 24.90 + (d / 100 % 100) as f64 * 0.001;
        let pings: Vec<String> = (0..s.batch)
            .map(|k| {
                let n = first + k as i64;
                format!(
                    r#"{{"lat":{:.7},"lng":{lng:.5},"accuracy_m":5.0,"recorded_at":{n},"ping_id":"t{due_us}-{d}-{n}"}}"#,
                    lat0 + (n % 100_000) as f64 * 1e-7
                )
            })
            .collect();
        let body = if s.batch == 1 {
            pings.concat()
        } else {
            format!(r#"{{"pings":[{}]}}"#, pings.join(","))
        };
        let request = http
            .post(format!("{base}/v1/drivers/{}/location", driver(d)))
            .bearer_auth(&tokens[d])
            .header("content-type", "application/json")
            .body(body);
        let refused = refused.clone();
        let numbers: Vec<i64> = (0..s.batch as i64).map(|k| first + k).collect();
        tasks.spawn(async move {
            let _permit = permit;
            let ok = match request.send().await {
                Ok(r) if r.status().as_u16() == 202 => true,
                Ok(r) => {
                    let status = r.status();
                    let text = r.text().await.unwrap_or_default();
                    tracing::warn!(%status, body = %text, "ping request refused");
                    false
                }
                Err(e) => {
                    tracing::warn!(error = %e, "ping request failed");
                    false
                }
            };
            if !ok {
                refused.fetch_add(1, Ordering::Relaxed);
            }
            (d, due_us, numbers, ok, (sent, now_us() - sent))
        });
        out.requests += 1;
        out.pings += s.batch as u64;
        out.last_start_us = sent;
        // Collect finished requests as we go.
        while let Some(done) = tasks.try_join_next() {
            out.record(done?);
        }
    }
    while let Some(done) = tasks.join_next().await {
        out.record(done?);
    }
    out.refused = refused.load(Ordering::Relaxed);
    Ok(out)
}

impl Load {
    /// Notes a finished request of driver `d`: its pings `numbers`, due at `due`.
    fn record(&mut self, (d, due, numbers, ok, post): (usize, u64, Vec<i64>, bool, (u64, u64))) {
        if ok {
            self.posts.push(post);
        }
        if let Some(pings) = self.tracked.get_mut(d) {
            pings.extend(numbers.into_iter().map(|n| (due, n, ok)));
        }
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

/// The whole measurement at `s.rate`, in a scope of its own.
async fn one_rate(s: &Settings) -> anyhow::Result<()> {
    println!(
        "\n## live_latency [rate={}]: pings offered in requests of {} pings, {} drivers (each \
         sending every {:.1} s), {} of them on deliveries with one customer socket each, {} s \
         measured after {} s warm-up, {} CPUs",
        s.rate,
        s.batch,
        s.drivers(),
        s.drivers() as f64 * s.batch as f64 / s.rate,
        s.tracked,
        s.secs,
        s.warmup,
        std::thread::available_parallelism().map_or(0, usize::from)
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

    let registry = prometheus::Registry::new();
    let (stop_pipeline, signal) = shutdown::channel();
    let (rt, stage) =
        assemble::location_pipeline(config, LocationOptions::default(), &registry).await?;
    let pipeline = tokio::spawn(rt.run(stage, signal));
    let gw = GatewayUnderTest::start(config, TrackingConfig::default()).await?;

    let key = TokenKey::new(SECRET.as_bytes())?;
    let driver_tokens: Vec<String> = (0..s.drivers())
        .map(|i| token(&key, ActorKind::Driver, &driver(i), None))
        .collect::<anyhow::Result<_>>()?;
    let stop = Arc::new(AtomicBool::new(false));
    let connected = Instant::now();
    let mut clients: Vec<(usize, LiveClient)> = futures::stream::iter(0..s.tracked)
        .map(|i| {
            let (key, ws_base) = (&key, gw.ws_base.as_str());
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
    let readers: Vec<_> = clients
        .into_iter()
        .map(|(_, c)| tokio::spawn(customer(c, stop.clone())))
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

    let begin_us = now_us() + 100_000;
    let window = (
        begin_us + (s.warmup * 1e6) as u64,
        begin_us + ((s.warmup + s.secs) * 1e6) as u64,
    );
    let done = load(s, &gw.base, Arc::new(driver_tokens), begin_us).await?;
    let load_end_us = now_us();
    // Let the pipeline drain what was accepted, then a little more for the sockets.
    let accepted_pings = (done.requests - done.refused) * s.batch as u64;
    let drain = Instant::now();
    while counter(&registry, "doorstep_pipeline_records_in_total", None) < accepted_pings as f64
        && drain.elapsed() < s.drain
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drained_in = drain.elapsed();
    let behind =
        accepted_pings as f64 - counter(&registry, "doorstep_pipeline_records_in_total", None);
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
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
    let in_window = |v: &Samples| -> Vec<f64> {
        v.iter()
            .filter(|(sent, _)| (window.0..window.1).contains(sent))
            .map(|(_, l)| *l as f64)
            .collect()
    };
    let mut loaded_rtt = in_window(&loaded);
    let mut idle_rtt: Vec<f64> = idle.iter().map(|(_, l)| *l as f64).collect();
    let mut posts = in_window(&done.posts);
    let tracking = gw.metrics();
    let results = counter_by(&registry, "doorstep_location_pings_total", "result");
    let _ = stop_pipeline.send(true);
    pipeline.await?.context("location pipeline")?;
    gw.stop().await?;

    // The rate actually offered: pings of requests started within the window.
    let window_posts = done
        .posts
        .iter()
        .filter(|(sent, _)| (window.0..window.1).contains(sent))
        .count()
        + done.refused as usize;
    let span_s = (window.1.min(done.last_start_us.max(window.0)) - window.0) as f64 / 1e6;
    let offered = (window_posts * s.batch) as f64 / span_s.max(s.secs.min(1.0));
    let posted_in_window = (posts.len() * s.batch) as f64;
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
         after the scheduled end; {:.1} s after the load the pipeline was {behind} pings behind \
         (latencies below are of the frames that arrived: under overload they understate)",
        done.requests,
        done.pings,
        done.refused,
        done.late,
        (load_end_us.saturating_sub(window.1)) as f64 / 1e6,
        drained_in.as_secs_f64()
    );
    println!("  pipeline results: {results:?}");
    println!(
        "  offered: {offered:.0} pings/s in the measured window (target {}); {posted_in_window} \
         pings accepted in the window; {frames} location frames received in all",
        s.rate,
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
    for line in tracking.lines().filter(|l| {
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
    Ok(())
}
