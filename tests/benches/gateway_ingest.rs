//! Benchmark (not a test: nothing here asserts on timing): GPS ingest by the gateway, one ping
//! per `POST /v1/drivers/{id}/location`, against the same gateway process's `/healthz` (served
//! on its ops listener, answered from a cached report) under the same load tool, measured in
//! the same run, and the gateway's CPU per ping.
//!
//! In a fresh [`Scope`]:
//!
//! 1. The `doorstep gateway` binary (release build, `--no-order-store`: ingest needs only the
//!    broker) is spawned with the per-subject rate limit raised out of the way (the load tool
//!    sends far more per driver than a phone does).
//! 2. **Raw limit.** [`http_load`] (`CONNECTIONS` kept-alive connections, closed loop) sends
//!    `GET /healthz` to the ops listener for `SECS` seconds: requests/s, and the gateway's CPU
//!    per request (`/proc`).
//! 3. **Ingest.** The same tool sends `POST /v1/drivers/{id}/location`, one ping each, the
//!    drivers (`DRIVERS`, each with its own token) in turn, for `SECS` seconds: 202s per
//!    second (each one acknowledged by the broker before it was answered), the gateway's CPU
//!    per ping, and the records the topic holds afterwards (every 202 must be there).
//!
//! Output: human-readable lines, then `BENCH` lines for `scripts/bench`: pings/s against
//! `/healthz` requests/s (goal ≥ 0.5) and µs of gateway CPU per ping.
//!
//! Settings (environment): `DOORSTEP_BENCH_CONNECTIONS` [64], `DOORSTEP_BENCH_DRIVERS`
//! [2000], `DOORSTEP_BENCH_SECS` [10], plus the usual `DOORSTEP_*` service addresses and
//! `DOORSTEP_TEST_BINARY` (see `location_pipeline`). Logs: the gateway logs to a file in the
//! temporary directory, removed on success.

use anyhow::{Context, bail};
use doorstep_pipelines::auth::{Claims, TokenKey, unix_now};
use doorstep_schemas::events::topics;
use doorstep_schemas::model::ActorKind;
use doorstep_tests::bench_kit::{
    GroupProgress, HttpLoad, bench_line, cpu, cpu_report, http_load, init_bench_tracing, setting,
};
use doorstep_tests::drain_kit::BenchProcess;
use doorstep_tests::pipeline_harness::{Scope, TEST_PARTITIONS};
use std::sync::Arc;
use std::time::Duration;

struct Settings {
    connections: usize,
    drivers: usize,
    secs: u64,
}

fn driver(i: usize) -> String {
    format!("bench-d{i:05}")
}

/// Runs `load` while sampling the gateway's CPU; prints the CPU line.
async fn measured<F>(
    named: &[(String, u32)],
    label: &str,
    load: F,
) -> anyhow::Result<(HttpLoad, f64)>
where
    F: std::future::Future<Output = anyhow::Result<HttpLoad>>,
{
    let from = cpu::sample(named);
    let got = load.await?;
    let to = cpu::sample(named);
    println!(
        "  {label}: {} ok, {} failed in {:.2} s: {:.0}/s",
        got.ok,
        got.failed,
        got.elapsed.as_secs_f64(),
        got.rate()
    );
    let per = cpu_report(&from, &to, got.elapsed, Some(got.ok as f64));
    Ok((got, per.get("gateway").copied().unwrap_or(f64::NAN)))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_bench_tracing();
    let s = Settings {
        connections: setting("DOORSTEP_BENCH_CONNECTIONS", "64")?,
        drivers: setting("DOORSTEP_BENCH_DRIVERS", "2000")?,
        secs: setting("DOORSTEP_BENCH_SECS", "10")?,
    };
    if s.connections == 0 || s.drivers == 0 || s.secs == 0 {
        bail!("connections, drivers and seconds must be positive");
    }
    let duration = Duration::from_secs(s.secs);
    println!(
        "gateway_ingest: {} connections, {} drivers, {} s per load, {} CPUs",
        s.connections,
        s.drivers,
        s.secs,
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    let scope = Scope::new(
        "bench_ingest",
        &[
            ("DOORSTEP_GATEWAY_RATE_LIMIT_PER_S", "1000000"),
            ("DOORSTEP_GATEWAY_RATE_LIMIT_BURST", "1000000"),
        ],
    )
    .await?;
    let secret = scope
        .env
        .get("DOORSTEP_AUTH_SECRET")
        .context("the scope sets no DOORSTEP_AUTH_SECRET")?;
    let key = TokenKey::new(secret.as_bytes())?;
    let tokens: Arc<Vec<String>> = Arc::new(
        (0..s.drivers)
            .map(|i| {
                let claims = Claims::new(ActorKind::Driver, driver(i), unix_now() + 3_600);
                Ok(format!("Bearer {}", key.sign(&claims)?))
            })
            .collect::<anyhow::Result<_>>()?,
    );

    let mut gateway = BenchProcess::gateway(
        &scope,
        &["--no-order-store"],
        "ingest",
        &[("DOORSTEP_LOG", "warn")],
    )?;
    gateway.healthy(Duration::from_secs(60)).await?;
    let named = vec![("gateway".to_owned(), gateway.pid()?)];
    let healthz = format!("http://{}/healthz", gateway.ops);
    let api = gateway.api.context("the gateway has no API address")?;

    // Warm up both paths (connections, the producer's metadata) untimed.
    let url = healthz.clone();
    http_load(s.connections, Duration::from_secs(1), 200, move |c, _| {
        c.get(&url)
    })
    .await?;
    let base = format!("http://{api}");
    let post = {
        let (base, tokens, drivers) = (base.clone(), tokens.clone(), s.drivers);
        move |c: &reqwest::Client, n: u64| {
            let i = usize::try_from(n).unwrap_or_default() % drivers;
            // A ping somewhere in central Helsinki.
            let lat = 60.15 + (i % 100) as f64 * 0.0005;
            let lng = 24.90 + (i / 100 % 100) as f64 * 0.001;
            c.post(format!("{base}/v1/drivers/{}/location", driver(i)))
                .header("authorization", &tokens[i])
                .header("content-type", "application/json")
                .body(format!("{{\"lat\":{lat},\"lng\":{lng}}}"))
        }
    };
    http_load(s.connections, Duration::from_secs(1), 202, post.clone()).await?;

    let url = healthz.clone();
    let (health, health_cpu) = measured(&named, "GET /healthz", async {
        http_load(s.connections, duration, 200, move |c, _| c.get(&url)).await
    })
    .await?;
    let topic = scope.topic(topics::DRIVER_LOCATIONS);
    let progress = GroupProgress::new(
        &scope.config.endpoints.kafka_brokers,
        "bench-ingest-nobody",
        &topic,
        TEST_PARTITIONS,
    )?;
    let before = progress.end().await?;
    let (ingest, ingest_cpu) = measured(&named, "POST one ping", async {
        http_load(s.connections, duration, 202, post).await
    })
    .await?;
    let after = progress.end().await?;
    let stored = after - before;
    println!(
        "  the topic gained {stored} records during the POST load ({} answered 202)",
        ingest.ok
    );
    if stored < ingest.ok as i64 {
        bail!(
            "{} pings answered 202 but only {stored} are in the topic; log {}:\n{}",
            ingest.ok,
            gateway.log.display(),
            gateway.tail(30)
        );
    }
    gateway.stop().await?;
    println!(
        "  ratio: ingest/healthz = {:.3}; gateway CPU {ingest_cpu:.1} µs per ping, \
         {health_cpu:.1} µs per /healthz",
        ingest.rate() / health.rate()
    );
    bench_line(
        "gateway_ingest.pings",
        ingest.rate(),
        "pings/s",
        Some(("healthz_requests/s", health.rate())),
    );
    bench_line("gateway_ingest.cpu_per_ping", ingest_cpu, "us/ping", None);
    Ok(())
}
