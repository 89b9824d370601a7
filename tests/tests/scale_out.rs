//! Scale-out: several processes of one pipeline in one consumer group share the partitions of
//! its source topic. When one dies (kill -9) its partitions move to the others, which load
//! the keyed state and the durable timers of those partitions; when one joins, partitions
//! move to it. The results must equal a single-process run (the crash harness's oracle, no
//! duplicate on any output topic), and timers owned by a dead process must still fire,
//! exactly once. Outputs are transactional (`kafka.exactly_once`): a duplicate on an output
//! topic fails a run. The status and ETA pipelines are covered here, the location pipeline in
//! `location_crash.rs` (its oracle lives there). `scripts/soak --scale-out N` repeats all
//! three.

use anyhow::{Context, ensure};
use doorstep_schemas::model::{OrderId, OrderStatus, Timestamp};
use doorstep_tests::crash_kit::{CrashRun, log_path, reported, seed};
use doorstep_tests::order_events::OrderScript;
use doorstep_tests::pipeline_harness::Scope;
use doorstep_tests::process::DoorstepProcess;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_processes_dying_and_joining_give_the_results_of_a_single_process()
-> anyhow::Result<()> {
    let name = "scale_out";
    let seed = seed(name);
    let scope = Scope::new(
        name,
        &[
            ("DOORSTEP_AUTO_CONFIRM_AFTER_MS", "600000"),
            ("DOORSTEP_CANCELLATION_FEE_CENTS", "500"),
            ("DOORSTEP_KAFKA_EXACTLY_ONCE", "true"),
        ],
    )
    .await?;
    let log = log_path(&scope);
    reported(name, seed, &log, async {
        let mut run =
            CrashRun::start(&scope, &["status", "status", "notify"], 2_400, seed, &log).await?;
        let died = run.rng.fraction(0.2, 0.4);
        run.reach(died).await?;
        // One of the two dies for good: the other takes over all partitions.
        run.kill(0, false).await?;
        let joins = run.rng.fraction(0.55, 0.75);
        run.reach(joins).await?;
        // A new one joins: partitions are shared again.
        run.add_process("status")?;
        run.note_fault("a third status process joined");
        run.finish().await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eta_processes_dying_and_joining_keep_every_timer_and_leave_none_behind()
-> anyhow::Result<()> {
    let name = "eta_scale_out";
    let seed = seed(name);
    let scope = Scope::new(
        name,
        &[
            ("DOORSTEP_AUTO_CONFIRM_AFTER_MS", "600000"),
            ("DOORSTEP_CANCELLATION_FEE_CENTS", "500"),
            // Recompute every 2 s, so a timer lost in a hand-over shows within the run.
            ("DOORSTEP_ETA_RECOMPUTE_INTERVAL_S", "2"),
            ("DOORSTEP_KAFKA_EXACTLY_ONCE", "true"),
        ],
    )
    .await?;
    let log = log_path(&scope);
    reported(name, seed, &log, async {
        // A takeover waits for the dead member's session (10 s): the stream must outlast it.
        let mut run = CrashRun::start_paced(
            &scope,
            &["status", "notify", "eta", "eta"],
            360,
            seed,
            &log,
            Duration::from_secs(30),
        )
        .await?;
        let died = run.rng.fraction(0.2, 0.4);
        run.reach(died).await?;
        // One ETA process dies for good: the other takes its partitions and their timers.
        run.kill(2, false).await?;
        let joins = run.rng.fraction(0.55, 0.75);
        run.reach(joins).await?;
        run.add_process("eta")?;
        run.note_fault("a third ETA process joined");
        run.finish().await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_confirm_timers_of_a_dead_process_fire_in_the_process_that_takes_its_partitions()
-> anyhow::Result<()> {
    let scope = Scope::new(
        "scale_timers",
        &[("DOORSTEP_AUTO_CONFIRM_AFTER_MS", "12000")],
    )
    .await?;
    let log = log_path(&scope);
    let mut env = scope.env.clone();
    env.insert("DOORSTEP_OPS_LISTEN".into(), "127.0.0.1:0".into());
    env.insert("DOORSTEP_LOG".into(), "info,scylla=off".into());
    let first = DoorstepProcess::spawn(&["pipeline", "status"], &env, &log)?;
    let second = DoorstepProcess::spawn(&["pipeline", "status"], &env, &log)?;
    // Placed orders nobody confirms, spread over every partition.
    let now = Timestamp::now().as_millis();
    let ids: Vec<OrderId> = (0..24).map(|i| OrderId::new(format!("t{i}"))).collect();
    for id in &ids {
        let mut s = OrderScript::new(id.as_str(), now);
        scope.produce(&[s.place()]).await?;
    }
    let store = scope.store().await?;
    let placed = Scope::eventually(Duration::from_secs(60), || async {
        for id in &ids {
            store.load(id).await.ok()??;
        }
        Some(())
    })
    .await;
    placed.context("the orders were not placed")?;
    // Both processes own partitions now (3 partitions, 2 members): kill one.
    first.kill9().await?;
    let confirmed = Scope::eventually(Duration::from_secs(60), || async {
        for id in &ids {
            let s = store.load(id).await.ok()??;
            if s.order.status != OrderStatus::Confirmed {
                return None;
            }
        }
        Some(())
    })
    .await;
    let mut second = second;
    if let Some(status) = second.exited()? {
        anyhow::bail!("the surviving process exited: {status}");
    }
    let tail = second.log_tail(40);
    second.kill9().await?;
    confirmed.with_context(|| format!("timers of the dead process did not fire; log:\n{tail}"))?;
    for id in &ids {
        let s = store.load(id).await?.context("gone")?;
        let confirms = s
            .history
            .iter()
            .filter(|h| h.to == OrderStatus::Confirmed)
            .count();
        ensure!(confirms == 1, "{id} confirmed {confirms} times");
    }
    let _ = std::fs::remove_file(&log);
    Ok(())
}
