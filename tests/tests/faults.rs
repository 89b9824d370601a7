//! Fault tolerance while a simulated workload runs: every test drives the crash harness's
//! stream (`doorstep_tests::crash_kit`) through the real `doorstep` binary, injects faults
//! mid-stream and compares the end state — order rows and timelines in the CQL store,
//! `orders.status.v1`, rejects, pushes, refunds, drivers in Redis — with the run without a
//! fault, computed by the pure state machine.
//!
//! - kill -9 trials: ten kills of the status or the notify pipeline at random points (more
//!   in `scripts/soak`);
//! - Redis (a private instance with an append-only file) killed and restarted mid-run, then
//!   answering `LOADING` for a while as it reads its data back;
//! - the broker (a private Apache Kafka node) killed and restarted mid-run;
//! - the CQL server (a private Apache Cassandra node) killed and restarted mid-run;
//! - poison records: undecodable records on the events and notifications topics, and a
//!   record that makes a stage fail for good, go to the reject topic with their reason and
//!   do not hold back the records behind them.
//!
//! The pipelines are never told about a fault: they must wait (with backoff, saying in the
//! log what they wait for) and resume by themselves.

use anyhow::{Context, ensure};
use doorstep_connectors::kafka::{ConsumerBuilder, Producer};
use doorstep_connectors::redis::driver as redis;
use doorstep_connectors::redis::{Redis, RedisOptions, RedisTarget};
use doorstep_pipelines::runtime::{
    Emitter, Lane, POISON_REASON, PoisonRejects, Runtime, RuntimeConfig, RuntimeMetrics,
    SourceRecord, Stage, StageError,
};
use doorstep_pipelines::shutdown;
use doorstep_schemas::events::{RejectedRecord, topics};
use doorstep_schemas::model::{OrderStatus, Timestamp};
use doorstep_tests::crash_kit::{CrashRun, fault_points, kills_from_env, log_path, reported, seed};
use doorstep_tests::order_events::OrderScript;
use doorstep_tests::pipeline_harness::Scope;
use doorstep_tests::private_services::{PrivateBroker, PrivateCassandra, PrivateRedis};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Settings every fault test uses: timers must not fire mid-test (the oracle has no clock).
const QUIET_TIMERS: [(&str, &str); 2] = [
    ("DOORSTEP_AUTO_CONFIRM_AFTER_MS", "600000"),
    ("DOORSTEP_CANCELLATION_FEE_CENTS", "500"),
];

fn settings<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    QUIET_TIMERS
        .iter()
        .copied()
        .chain(extra.iter().copied())
        .collect()
}

/// The variable that sets the number of kills (`scripts/soak` raises it; default 10).
const KILLS_VAR: &str = "FAULTS_KILLS";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_kill_9s_of_status_and_notify_at_random_points_lose_and_duplicate_nothing()
-> anyhow::Result<()> {
    let name = "kill_trials";
    let seed = seed(name);
    let kills = kills_from_env(KILLS_VAR, 10);
    // Outputs in Kafka transactions: a duplicate on any output topic fails the run.
    let scope = Scope::new(name, &settings(&[("DOORSTEP_KAFKA_EXACTLY_ONCE", "true")])).await?;
    let log = log_path(&scope);
    reported(name, seed, &log, async {
        let orders = 200 * usize::try_from(kills)?;
        // A restart takes the consumer session timeout (10 s): the stream must outlast the
        // kills.
        let span = Duration::from_secs(12) * kills;
        let mut run =
            CrashRun::start_paced(&scope, &["status", "notify"], orders, seed, &log, span).await?;
        for point in fault_points(&mut run.rng, kills) {
            run.reach(point).await?;
            let victim = usize::try_from(run.rng.below(2)).unwrap_or(0);
            run.kill(victim, true).await?;
        }
        run.finish().await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_mid_run_loses_nothing_and_pushes_nothing_twice()
-> anyhow::Result<()> {
    let name = "redis_restart";
    let seed = seed(name);
    let mut redis = PrivateRedis::start().await?;
    let url = redis.url();
    let scope = Scope::new(name, &settings(&[("DOORSTEP_REDIS_URL", &url)])).await?;
    let log = log_path(&scope);
    reported(name, seed, &log, async {
        let mut run = CrashRun::start(&scope, &["status", "notify"], 1_200, seed, &log).await?;
        let point = run.rng.fraction(0.25, 0.5);
        run.reach(point).await?;
        run.note_fault("redis restart (3 s down, then 2 s answering LOADING)");
        redis
            .restart_through_loading(Duration::from_secs(3))
            .await?;
        // No process dies: a push FCM accepted while its `sent` mark could not be written is
        // marked later, never pushed again. So no copy is tolerated here.
        run.finish().await
    })
    .await
}

/// A Redis reading its data back after a restart answers `LOADING` for a while. That is a
/// reason to wait, not a wrong request: taken for one, the status pipeline once sent an
/// event to the reject topic as poison and its status change was lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_still_loading_its_data_is_waited_for_not_taken_for_a_wrong_request()
-> anyhow::Result<()> {
    let mut private = PrivateRedis::start().await?;
    let options = RedisOptions::default().with_connect_timeout(Duration::from_secs(3));
    let mut conn = Redis::connect(RedisTarget::Single(private.url()), options).await?;
    // Many keys, so the slow load answers clients between them.
    let mut fill = redis::pipe();
    for i in 0..2_000 {
        fill.cmd("SET").arg(format!("filler:{i}")).arg(i).ignore();
    }
    let _: () = fill.query_async(&mut conn).await?;
    let key = "drivers:{hel}:geo";
    conn.geo_add(key, &[(24.9384, 60.1699, "d1")]).await?;

    private
        .restart(Duration::from_millis(200), Duration::from_secs(3))
        .await?;
    let end = std::time::Instant::now() + Duration::from_secs(30);
    let mut loading = 0;
    loop {
        match conn.geo_add(key, &[(24.9458, 60.1718, "d2")]).await {
            Ok(_) => break,
            Err(e) => {
                ensure!(e.is_retriable(), "taken for a wrong request: {e}");
                if e.to_string().to_lowercase().contains("loading") {
                    loading += 1;
                }
            }
        }
        ensure!(
            std::time::Instant::now() < end,
            "Redis did not serve within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ensure!(
        loading > 0,
        "the connector never met a LOADING answer: the restart missed the window"
    );
    ensure!(
        conn.geo_pos(key, "d1").await?.is_some(),
        "d1 was lost over the restart"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cassandra_killed_and_restarted_mid_run_loses_nothing() -> anyhow::Result<()> {
    let name = "cql_restart";
    let seed = seed(name);
    let mut cassandra = PrivateCassandra::start().await?;
    let nodes = cassandra.nodes();
    let scope = Scope::new(name, &settings(&[("DOORSTEP_CQL_NODES", &nodes)])).await?;
    let log = log_path(&scope);
    let result = reported(name, seed, &log, async {
        let mut run = CrashRun::start(&scope, &["status", "notify"], 1_200, seed, &log).await?;
        let point = run.rng.fraction(0.25, 0.5);
        run.reach(point).await?;
        run.note_fault("Cassandra kill -9 and restart (3 s down)");
        let before = run.changes();
        cassandra.restart(Duration::from_secs(3)).await?;
        // Nothing can be persisted while CQL is away, so the status pipeline holds its
        // batch: only records already written before the kill may trickle out.
        let during = run.changes();
        ensure!(
            during < run.total(),
            "the stream finished while Cassandra was down ({before} → {during} changes)"
        );
        let said = std::fs::read_to_string(&log).unwrap_or_default();
        ensure!(
            said.contains("waiting for cql"),
            "the status pipeline's log does not say it waits for CQL"
        );
        run.finish().await
    })
    .await;
    result.with_context(|| format!("cassandra log tail:\n{}", cassandra.log_tail(30)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_killed_and_restarted_mid_run_loses_nothing() -> anyhow::Result<()> {
    let name = "broker_restart";
    let seed = seed(name);
    let mut broker = PrivateBroker::start().await?;
    let brokers = broker.brokers();
    // Transactional outputs: the transaction open at the kill outlives the transaction
    // timeout while the broker is down and restarting, so the coordinator aborts it and
    // fences its producer; the pipelines renew their producers and redo the batch.
    let scope = Scope::new(
        name,
        &settings(&[
            ("DOORSTEP_KAFKA_BROKERS", &brokers),
            ("DOORSTEP_KAFKA_EXACTLY_ONCE", "true"),
        ]),
    )
    .await?;
    let log = log_path(&scope);
    let result = reported(name, seed, &log, async {
        let mut run = CrashRun::start(&scope, &["status", "notify"], 1_200, seed, &log).await?;
        let point = run.rng.fraction(0.25, 0.5);
        run.reach(point).await?;
        let cut = run.pending_pushes().await?;
        run.note_cut(cut);
        run.note_fault("broker restart (3 s down)");
        broker.restart(Duration::from_secs(3)).await?;
        run.finish().await
    })
    .await;
    result.with_context(|| format!("broker log tail:\n{}", broker.log_tail(30)))
}

// ---------------------------------------------------------------------------------------
// Poison records.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_records_are_rejected_with_the_reason_and_do_not_block_their_partition()
-> anyhow::Result<()> {
    let scope = Scope::new("poison_undecodable", &QUIET_TIMERS).await?;
    let running = scope.start().await?;
    let mut s = OrderScript::new(&doorstep_tests::unique("o"), Timestamp::now().as_millis());
    // Same key: the same partition as the order's events, right before them.
    scope
        .produce_raw(&s.order_id, b"\x00\x00\x00\x00\x01garbage")
        .await?;
    let customer = s.customer.clone();
    scope.produce(&s.full_life()).await?;
    // A poison record on the outbox, keyed like the customer's pushes (same partition).
    let producer = Producer::new(&doorstep_pipelines::assemble::kafka_config(
        &scope.config,
        "poison-test",
    ))?;
    producer
        .send(
            &scope.topic(topics::NOTIFICATIONS),
            customer.as_bytes(),
            b"not avro",
            &[],
        )
        .await?;
    let store = scope.store().await?;
    let order_id = doorstep_schemas::model::OrderId::new(s.order_id.clone());
    let delivered = Scope::eventually(Duration::from_secs(60), || async {
        let state = store.load(&order_id).await.ok().flatten()?;
        (state.order.status == OrderStatus::Delivered).then_some(())
    })
    .await;
    ensure!(
        delivered.is_some(),
        "the order behind the poison record was not processed"
    );
    let pushes = Scope::eventually(Duration::from_secs(60), || async {
        let n = scope
            .fcm
            .messages()
            .iter()
            .filter(|m| m.target == customer)
            .count();
        (n >= 5).then_some(n)
    })
    .await;
    ensure!(
        pushes.is_some(),
        "the pushes behind the poison outbox record were not sent"
    );
    let rejects = read_rejects(&scope, 2).await?;
    let by = |who: &str| {
        rejects
            .iter()
            .find(|r| r.rejected_by == who && r.reason_code == "undecodable")
    };
    let status = by("status").context("no undecodable reject from the status pipeline")?;
    ensure!(status.original_value == b"\x00\x00\x00\x00\x01garbage".to_vec());
    ensure!(!status.message.is_empty(), "a reject needs a reason");
    let notify = by("notify").context("no undecodable reject from the notify pipeline")?;
    ensure!(notify.original_value == b"not avro".to_vec());
    running.stop().await
}

/// A stage that fails for good on records whose value is `poison`, and remembers the rest.
struct PickyStage {
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Stage for PickyStage {
    async fn process_batch(&mut self, batch: &[SourceRecord]) -> Result<(), StageError> {
        if batch
            .iter()
            .any(|r| r.payload.as_deref() == Some(b"poison"))
        {
            return Err(StageError::Refused {
                sink: "test sink",
                source: "the sink refuses this record".into(),
            });
        }
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.extend(batch.iter().filter_map(|r| r.payload.clone()));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_a_sink_refuses_for_good_is_rejected_and_the_partition_moves_on()
-> anyhow::Result<()> {
    let scope = Scope::new("poison_sink", &QUIET_TIMERS).await?;
    let kafka = doorstep_pipelines::assemble::kafka_config(&scope.config, "poison-sink");
    let topic = scope.topic(topics::ORDER_EVENTS);
    let producer = Producer::new(&kafka)?;
    // One key: one partition, in this order.
    for v in ["a", "b", "poison", "c", "d"] {
        producer.send(&topic, b"k1", v.as_bytes(), &[]).await?;
    }
    let consumer = ConsumerBuilder::new(&kafka, scope.config.group_id("picky"))
        .subscribe(&[topic.as_str()])?;
    let registry = prometheus::Registry::new();
    let metrics = RuntimeMetrics::register(&registry, "picky")?;
    let runtime = Runtime::new(
        consumer,
        topic.clone(),
        RuntimeConfig::default(),
        metrics.clone(),
    );
    let poison = PoisonRejects::new(
        Emitter::new(Producer::new(&kafka)?, doorstep_tests::catalog().await?),
        scope.topic(topics::ORDER_REJECTED),
        "picky",
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (trigger, signal) = shutdown::channel();
    let lane = Lane::new(PickyStage { seen: seen.clone() }).with_poison_rejects(poison);
    let task = tokio::spawn(runtime.run([lane], signal));
    let all = Scope::eventually(Duration::from_secs(60), || async {
        let s = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
        (s.len() >= 4).then_some(s)
    })
    .await
    .context("the records behind the poison record were not processed")?;
    let want: Vec<Vec<u8>> = ["a", "b", "c", "d"]
        .iter()
        .map(|v| v.as_bytes().to_vec())
        .collect();
    ensure!(all == want, "processed {all:?}");
    let rejects = read_rejects(&scope, 1).await?;
    let r = &rejects[0];
    ensure!(
        r.reason_code == POISON_REASON && r.rejected_by == "picky",
        "{r:?}"
    );
    ensure!(
        r.original_value == b"poison".to_vec() && r.source_offset >= 2,
        "{r:?}"
    );
    ensure!(
        r.message.contains("the sink refuses this record"),
        "the reason is kept: {}",
        r.message
    );
    ensure!(metrics.poison_records.get() == 1);
    let _ = trigger.send(true);
    task.await??;
    Ok(())
}

/// Reads at least `n` records from the scope's reject topic.
async fn read_rejects(scope: &Scope, n: usize) -> anyhow::Result<Vec<RejectedRecord>> {
    let kafka = doorstep_pipelines::assemble::kafka_config(&scope.config, "reject-reader");
    let consumer = ConsumerBuilder::new(&kafka, doorstep_tests::unique("rejects"))
        .subscribe(&[scope.topic(topics::ORDER_REJECTED).as_str()])?;
    let catalog = doorstep_tests::catalog().await?;
    let mut out = Vec::new();
    let end = tokio::time::Instant::now() + Duration::from_secs(60);
    while out.len() < n {
        let r = tokio::time::timeout_at(end, consumer.recv())
            .await
            .with_context(|| format!("only {} of {n} rejects arrived: {out:?}", out.len()))??;
        out.push(
            catalog
                .decode::<RejectedRecord>(r.payload.as_deref().unwrap_or_default())
                .await?,
        );
    }
    Ok(out)
}
