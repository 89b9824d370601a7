//! Benchmark (not a test: nothing here asserts on timing): what `Prefer: wait` costs on the
//! command path. The latency of a command `POST` that waits for the status pipeline's
//! decision (send → 200 with the outcome, or 409 with the rejection), p50/p99, next to the
//! Kafka produce → consume round trip measured in the same run (the hop every command takes
//! to reach the pipeline), and a command `POST` without the preference (send → 202: the
//! broker's acknowledgement alone).
//!
//! In a fresh [`Scope`], all in this process: the status (and notify) pipelines with their
//! default settings, and a gateway with live tracking (so it can wait) on an ephemeral port.
//! Then, one request at a time (closed loop, so each figure is the path's latency and not a
//! queue's):
//!
//! 1. `WARMUP` orders placed and waited for (not counted): the consumer group joins, the
//!    connections open.
//! 2. The idle Kafka round trip, `PROBES` times: a record produced to a topic of the scope
//!    nothing else writes, read back by a consumer with the pipelines' settings.
//! 3. `COMMANDS` orders, each: placed with `Prefer: wait=10` (accepted), confirmed by the
//!    restaurant with `Prefer: wait=10` (accepted), marked ready with `Prefer: wait=10`
//!    (refused: `invalid_transition`, a 409), and moved to PREPARING without the preference
//!    (a 202). Each with an `Idempotency-Key`, as the simulator sends them.
//!
//! Output: human-readable lines, then `BENCH ...` lines for `scripts/bench`: the waited
//! commands' p50 and p99 (accepted, refused) against the Kafka round trip's, and the plain
//! command's (202).
//!
//! Settings (environment): `DOORSTEP_BENCH_COMMANDS` [200 orders, 3 waited commands each],
//! `DOORSTEP_BENCH_WARMUP` [20], `DOORSTEP_BENCH_PROBES` [200], plus the usual `DOORSTEP_*`
//! service addresses (`eval "$(scripts/services env)"`). Logs: `RUST_LOG`.

use anyhow::{Context, ensure};
use doorstep_pipelines::auth::{Claims, TokenKey, unix_now};
use doorstep_pipelines::gateway::track::TrackingConfig;
use doorstep_schemas::events::topics;
use doorstep_schemas::model::ActorKind;
use doorstep_tests::bench_kit::{
    bench_line, init_bench_tracing, kafka_probe, now_us, p50_p99_max, setting,
};
use doorstep_tests::live_client::GatewayUnderTest;
use doorstep_tests::pipeline_harness::Scope;
use serde_json::{Value, json};
use std::time::Duration;

/// The scope's token secret (see `pipeline_harness`).
const SECRET: &str = "test-secret-test-secret-test-secret-0001";

fn token(key: &TokenKey, kind: ActorKind, id: &str) -> anyhow::Result<String> {
    Ok(key.sign(&Claims::new(kind, id, unix_now() + 3_600))?)
}

fn place_body() -> Value {
    json!({"restaurant_id": "bench-r",
        "items": [{"item_id": "soup", "name": "Soup", "quantity": 1, "unit_price_cents": 900}],
        "total_cents": 900,
        "restaurant_location": {"lat": 60.1699, "lng": 24.9384},
        "delivery_location": {"lat": 60.1718, "lng": 24.9458}})
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    /// POSTs a command (waiting when `wait`): the answer's status and body, and the latency,
    /// µs.
    async fn send(
        &self,
        path: &str,
        tok: &str,
        body: &Value,
        wait: bool,
    ) -> anyhow::Result<(u16, Value, u64)> {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(tok)
            .header("idempotency-key", uuid::Uuid::new_v4().to_string())
            .json(body);
        if wait {
            req = req.header("prefer", "wait=10");
        }
        let sent = now_us();
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        Ok((status, body, now_us() - sent))
    }

    /// [`Self::send`], expecting `want`.
    async fn command(
        &self,
        path: &str,
        tok: &str,
        body: &Value,
        wait: bool,
        want: u16,
    ) -> anyhow::Result<(Value, u64)> {
        let (status, body, took) = self.send(path, tok, body, wait).await?;
        ensure!(
            status == want,
            "{path}: expected {want}, got {status} {body}"
        );
        Ok((body, took))
    }
}

fn ms(us: f64) -> f64 {
    us / 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench` (and any filter); this binary has a single benchmark.
    init_bench_tracing();
    let _ = now_us();
    let commands: usize = setting("DOORSTEP_BENCH_COMMANDS", "200")?;
    let warmup: usize = setting("DOORSTEP_BENCH_WARMUP", "20")?;
    let probes: usize = setting("DOORSTEP_BENCH_PROBES", "200")?;
    ensure!(commands > 0 && probes > 0, "commands and probes > 0");
    println!(
        "\n## command_wait: {commands} orders (3 waited commands and 1 plain each), one request \
         at a time, after {warmup} warm-up orders; {probes} Kafka round trips; {} CPUs",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    let scope = Scope::new("bench_commands", &[]).await?;
    let running = scope.start().await?;
    let gw = GatewayUnderTest::start(&scope.config, TrackingConfig::default()).await?;
    let key = TokenKey::new(SECRET.as_bytes())?;
    let restaurant = token(&key, ActorKind::Restaurant, "bench-r")?;
    let api = Client {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?,
        base: gw.base.clone(),
    };

    // Warm-up: until the pipeline answers waited commands (its group has joined).
    let warm = std::time::Instant::now();
    let mut warmed = 0;
    while warmed < warmup.max(1) {
        let customer = token(&key, ActorKind::Customer, &format!("bench-w{warmed}"))?;
        let (status, body, _) = api
            .send("/v1/orders", &customer, &place_body(), true)
            .await?;
        match status {
            200 => warmed += 1,
            202 => ensure!(
                warm.elapsed() < Duration::from_secs(120),
                "the status pipeline decided nothing within 2 minutes"
            ),
            other => anyhow::bail!("warm-up placement answered {other} {body}"),
        }
    }
    println!(
        "  warm-up: {warmed} orders decided after {:.1} s",
        warm.elapsed().as_secs_f64()
    );

    let probe_topic = scope.topic(topics::ORDER_ETA);
    let kafka = kafka_probe(&scope, &probe_topic, None, probes, "bench-probe", None).await?;
    let mut kafka_rtt: Vec<f64> = kafka.iter().map(|(_, l)| *l as f64).collect();

    let (mut accepted, mut rejected, mut plain) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..commands {
        let customer = token(&key, ActorKind::Customer, &format!("bench-c{i}"))?;
        let (placed, took) = api
            .command("/v1/orders", &customer, &place_body(), true, 200)
            .await?;
        accepted.push(took as f64);
        let order = placed["order_id"].as_str().context("order_id")?.to_owned();
        let status = format!("/v1/orders/{order}/status");
        let (confirmed, took) = api
            .command(
                &status,
                &restaurant,
                &json!({"status": "CONFIRMED"}),
                true,
                200,
            )
            .await?;
        ensure!(confirmed["status"] == "CONFIRMED", "{confirmed}");
        accepted.push(took as f64);
        let (refused, took) = api
            .command(
                &status,
                &restaurant,
                &json!({"status": "READY_FOR_PICKUP"}),
                true,
                409,
            )
            .await?;
        ensure!(refused["error"] == "invalid_transition", "{refused}");
        rejected.push(took as f64);
        let (_, took) = api
            .command(
                &status,
                &restaurant,
                &json!({"status": "PREPARING"}),
                false,
                202,
            )
            .await?;
        plain.push(took as f64);
    }
    gw.stop().await?;
    running.stop().await?;

    let (a50, a99, amax) = p50_p99_max(&mut accepted);
    let (r50, r99, rmax) = p50_p99_max(&mut rejected);
    let (p50, p99, pmax) = p50_p99_max(&mut plain);
    let (k50, k99, kmax) = p50_p99_max(&mut kafka_rtt);
    println!(
        "  waited, accepted (send -> 200 with the outcome): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} commands)",
        ms(a50),
        ms(a99),
        ms(amax),
        accepted.len()
    );
    println!(
        "  waited, refused (send -> 409 with the reason): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} commands)",
        ms(r50),
        ms(r99),
        ms(rmax),
        rejected.len()
    );
    println!(
        "  not waited (send -> 202, the broker's acknowledgement): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(p50),
        ms(p99),
        ms(pmax)
    );
    println!(
        "  Kafka produce -> consume round trip (idle): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} probes)",
        ms(k50),
        ms(k99),
        ms(kmax),
        kafka_rtt.len()
    );
    bench_line(
        "command_wait.accepted_p50",
        ms(a50),
        "ms",
        Some(("kafka_rtt_p50_ms", ms(k50))),
    );
    bench_line(
        "command_wait.accepted_p99",
        ms(a99),
        "ms",
        Some(("kafka_rtt_p99_ms", ms(k99))),
    );
    bench_line(
        "command_wait.rejected_p50",
        ms(r50),
        "ms",
        Some(("kafka_rtt_p50_ms", ms(k50))),
    );
    bench_line(
        "command_wait.rejected_p99",
        ms(r99),
        "ms",
        Some(("kafka_rtt_p99_ms", ms(k99))),
    );
    bench_line("command_wait.not_waited_p50", ms(p50), "ms", None);
    bench_line("command_wait.not_waited_p99", ms(p99), "ms", None);
    Ok(())
}
