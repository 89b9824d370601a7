//! `doorstep replay` against the real broker and CQL server:
//!
//! - after a live run of the crash harness's stream (every kind of order life, rejects,
//!   cancellations with refunds), a replay into the live keyspace writes nothing and sends
//!   nothing (no push, no refund, no topic record), and a replay through the real binary into
//!   a fresh keyspace rebuilds the same order rows, timelines and prep-time history;
//! - a replay from a point in time starts at the first record at or after it, whether the
//!   offsets come from the broker's time index or from a scan, and stops at the end time.

use anyhow::{Context, ensure};
use doorstep_connectors::kafka::{Lookup, TopicSeeker};
use doorstep_connectors::order_store::OrderStore;
use doorstep_operators::order::OrderState;
use doorstep_pipelines::assemble;
use doorstep_pipelines::replay::{self, ReplayOptions};
use doorstep_pipelines::shutdown;
use doorstep_schemas::events::{OrderEvent, topics};
use doorstep_schemas::model::{OrderId, OrderStatus, RestaurantId, Timestamp};
use doorstep_tests::crash_kit::{Expected, order_events, produce};
use doorstep_tests::order_events::OrderScript;
use doorstep_tests::pipeline_harness::Scope;
use futures::StreamExt;
use std::collections::BTreeMap;
use std::time::Duration;

const QUIET_TIMERS: [(&str, &str); 1] = [("DOORSTEP_AUTO_CONFIRM_AFTER_MS", "600000")];

/// Orders in the live run.
const ORDERS: usize = 400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_into_the_live_keyspace_changes_nothing_and_into_a_fresh_one_rebuilds_it()
-> anyhow::Result<()> {
    let scope = Scope::new("replay_live", &QUIET_TIMERS).await?;
    let start_ms = Timestamp::now().as_millis();
    let stream: Vec<Vec<OrderEvent>> = (0..ORDERS)
        .map(|i| order_events(i, start_ms + i64::try_from(i).unwrap_or_default() * 1_000))
        .collect();
    let events = stream.iter().map(Vec::len).sum::<usize>();
    let expected = Expected::of(&stream, &scope.config.policy);

    // The live run.
    let running = scope.start().await?;
    produce(scope.config.clone(), stream).await?;
    let live = scope.store().await?;
    let done = Scope::eventually(Duration::from_secs(90), || async {
        let states = load_all(&live, &expected).await.ok()?;
        let same = states
            .iter()
            .all(|(id, s)| s.as_ref().map(|(s, _)| s) == expected.states.get(id));
        let pushes = scope.fcm.messages().len() == expected.notifications.len();
        (same && pushes).then_some(())
    })
    .await;
    running.stop().await?;
    done.context("the live run did not reach the expected state")?;
    let before = load_all(&live, &expected).await?;
    let pushes = scope.fcm.requests().len();
    let refunds = scope.stripe.requests().len();
    let ends = topic_ends(&scope).await?;

    // Replay into the live keyspace.
    let options = ReplayOptions::default();
    let plan = replay::plan(&scope.config, &options).await?;
    ensure!(
        plan.total() == i64::try_from(events)?,
        "the plan reads {} records, the topic holds {events}",
        plan.total()
    );
    let (_trigger, signal) = shutdown::channel();
    let summary = replay::replay(
        &scope.config,
        &plan,
        &options,
        &prometheus::Registry::new(),
        signal,
    )
    .await?;
    eprintln!("replay into the live keyspace: {summary}");
    ensure!(
        summary.records == u64::try_from(events)? && summary.accepted == 0,
        "{summary}"
    );
    ensure!(
        summary.orders_written == 0,
        "rows were rewritten: {summary}"
    );
    ensure!(
        load_all(&live, &expected).await? == before,
        "the live keyspace changed"
    );
    ensure!(scope.fcm.requests().len() == pushes, "a replay pushed");
    ensure!(
        scope.stripe.requests().len() == refunds,
        "a replay refunded"
    );
    ensure!(
        topic_ends(&scope).await? == ends,
        "a replay wrote to a topic"
    );

    // Rebuild into a fresh keyspace with the real binary.
    let fresh = doorstep_tests::unique_ident("rebuilt");
    let out = run_binary(&scope, &["replay", "--into", &fresh, "--prep-times"]).await?;
    eprintln!("{out}");
    ensure!(
        out.contains(&format!("replayed {events} records")),
        "unexpected output:\n{out}"
    );
    let mut rebuilt_config = scope.config.clone();
    rebuilt_config.cql_keyspace.clone_from(&fresh);
    let rebuilt = assemble::order_store(&rebuilt_config).await?;
    let again = load_all(&rebuilt, &expected).await?;
    let differ: Vec<_> = expected
        .states
        .keys()
        .filter(|id| {
            again.get(*id).map(|s| s.as_ref().map(|(s, _)| s))
                != before.get(*id).map(|s| s.as_ref().map(|(s, _)| s))
        })
        .take(5)
        .collect();
    ensure!(
        differ.is_empty(),
        "rebuilt orders differ from the live ones: {differ:?}"
    );
    let restaurant = RestaurantId::new("r-kamppi");
    let (mut live_prep, mut fresh_prep) = (0, 0);
    for hour in 0..24 {
        let a = live.prep_times(&restaurant, hour).await?;
        let b = rebuilt.prep_times(&restaurant, hour).await?;
        ensure!(
            a == b,
            "prep times at hour {hour} differ: {} live, {} rebuilt",
            a.len(),
            b.len()
        );
        live_prep += a.len();
        fresh_prep += b.len();
    }
    let ready = expected
        .states
        .values()
        .filter(|s| {
            s.history
                .iter()
                .any(|h| h.to == OrderStatus::ReadyForPickup)
        })
        .count();
    ensure!(
        fresh_prep == ready && live_prep == ready,
        "{ready} orders were prepared: {live_prep} live and {fresh_prep} rebuilt observations"
    );
    ensure!(scope.fcm.requests().len() == pushes && scope.stripe.requests().len() == refunds);
    ensure!(
        topic_ends(&scope).await? == ends,
        "a rebuild wrote to a topic"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_from_a_point_in_time_reads_from_the_first_later_record_to_the_end_time()
-> anyhow::Result<()> {
    let scope = Scope::new("replay_window", &QUIET_TIMERS).await?;
    let now = Timestamp::now().as_millis();
    let phase = |tag: &str, n: usize| -> Vec<OrderEvent> {
        (0..n)
            .flat_map(|i| OrderScript::new(&format!("{tag}{i}"), now).full_life())
            .collect()
    };
    let (a, b, c) = (phase("a", 10), phase("b", 12), phase("c", 8));
    scope.produce(&a).await?;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let from = Timestamp::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    scope.produce(&b).await?;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let until = Timestamp::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    scope.produce(&c).await?;

    let kafka = assemble::kafka_config(&scope.config, "replay-window");
    let seeker = TopicSeeker::new(&kafka, scope.topic(topics::ORDER_EVENTS))?;
    let (by_broker, how) = seeker
        .ranges(Some(from.as_millis()), Some(until.as_millis()), false)
        .await?;
    let (by_scan, scanned) = seeker
        .ranges(Some(from.as_millis()), Some(until.as_millis()), true)
        .await?;
    eprintln!("offsets found by {how:?}: {by_broker:?}");
    ensure!(scanned == Some(Lookup::Scan));
    ensure!(
        by_broker == by_scan,
        "broker {by_broker:?} vs scan {by_scan:?}"
    );
    let total: i64 = by_scan.iter().map(|r| r.len()).sum();
    ensure!(
        total == i64::try_from(b.len())?,
        "{total} records in the window, {} produced",
        b.len()
    );

    let fresh = doorstep_tests::unique_ident("window");
    let options = ReplayOptions {
        from: Some(from),
        until: Some(until),
        keyspace: Some(fresh.clone()),
        ..ReplayOptions::default()
    };
    let plan = replay::plan(&scope.config, &options).await?;
    let (_trigger, signal) = shutdown::channel();
    let summary = replay::replay(
        &scope.config,
        &plan,
        &options,
        &prometheus::Registry::new(),
        signal,
    )
    .await?;
    ensure!(summary.records == u64::try_from(b.len())? && summary.accepted == summary.records);
    let mut config = scope.config.clone();
    config.cql_keyspace = fresh;
    let store = assemble::order_store(&config).await?;
    for (tag, present) in [("a", false), ("b", true), ("c", false)] {
        let got = store.load(&OrderId::new(format!("{tag}0"))).await?;
        ensure!(
            got.is_some() == present,
            "order {tag}0 {} in the window's rebuild",
            if present { "missing" } else { "present" }
        );
    }
    let b0 = store
        .load(&OrderId::new("b0"))
        .await?
        .context("b0 missing")?;
    ensure!(b0.order.status == OrderStatus::Delivered);
    Ok(())
}

type Loaded = BTreeMap<OrderId, Option<(OrderState, i64)>>;

/// Every expected order's state and recorded offset in `store`.
async fn load_all(store: &OrderStore, expected: &Expected) -> anyhow::Result<Loaded> {
    let results: Vec<_> = futures::stream::iter(expected.states.keys().cloned())
        .map(|id| async move {
            let r = store.load_processed(&id).await;
            (id, r)
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let mut out = BTreeMap::new();
    for (id, r) in results {
        out.insert(id, r?.map(|s| (s.state, s.last_source_offset)));
    }
    Ok(out)
}

/// The end offsets of the topics a pipeline writes.
async fn topic_ends(scope: &Scope) -> anyhow::Result<Vec<i64>> {
    let kafka = assemble::kafka_config(&scope.config, "replay-ends");
    let mut ends = Vec::new();
    for t in [
        topics::ORDER_STATUS,
        topics::NOTIFICATIONS,
        topics::ORDER_REJECTED,
        topics::ORDER_EVENTS,
    ] {
        let seeker = TopicSeeker::new(&kafka, scope.topic(t))?;
        for p in seeker.partitions().await? {
            ends.push(seeker.watermarks(p).await?.1);
        }
    }
    Ok(ends)
}

/// Runs the `doorstep` binary with the scope's configuration; returns its stdout.
async fn run_binary(scope: &Scope, args: &[&str]) -> anyhow::Result<String> {
    let binary = doorstep_tests::process::doorstep_binary()?;
    let mut command = tokio::process::Command::new(binary);
    command.args(args);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("DOORSTEP_") {
            command.env_remove(k);
        }
    }
    let out = command
        .envs(&scope.env)
        .env("DOORSTEP_LOG", "warn,scylla=off")
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure!(
        out.status.success(),
        "doorstep {args:?} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(stdout)
}
