//! kill -9 of the ETA pipeline at random points while the crash harness's stream runs
//! through real `doorstep pipeline status`, `notify` and `eta` processes
//! (`doorstep_tests::crash_kit`).
//!
//! The status and notify end state must equal the fault-free run as in every crash test;
//! for the ETA pipeline (whose values depend on the clock and on routing) the check is
//! `doorstep_tests::eta_watch`: after the last restart every active order is recomputed by
//! its durable timer and has its ETA on the row, and no finished order keeps a timer or a
//! current ETA. `ETA_KILLS` sets the number of kills (default 10; `scripts/soak` raises it).

use doorstep_tests::crash_kit::{CrashRun, fault_points, kills_from_env, log_path, reported, seed};
use doorstep_tests::pipeline_harness::Scope;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9s_of_the_eta_pipeline_lose_no_timer_and_leave_none_behind() -> anyhow::Result<()> {
    let name = "eta_kills";
    let seed = seed(name);
    let kills = kills_from_env("ETA_KILLS", 10);
    let scope = Scope::new(
        name,
        &[
            // Timers of the status pipeline must not fire mid-test (the oracle has no clock).
            ("DOORSTEP_AUTO_CONFIRM_AFTER_MS", "600000"),
            ("DOORSTEP_CANCELLATION_FEE_CENTS", "500"),
            // Recompute every 2 s, so a lost timer shows within the run.
            ("DOORSTEP_ETA_RECOMPUTE_INTERVAL_S", "2"),
            // Outputs in Kafka transactions: a duplicate on any output topic fails the run.
            ("DOORSTEP_KAFKA_EXACTLY_ONCE", "true"),
        ],
    )
    .await?;
    let log = log_path(&scope);
    reported(name, seed, &log, async {
        let orders = 120 * usize::try_from(kills)?;
        // A restart takes the consumer session timeout (10 s): the stream must outlast it.
        let span = Duration::from_secs(12) * kills;
        let mut run = CrashRun::start_paced(
            &scope,
            &["status", "notify", "eta"],
            orders,
            seed,
            &log,
            span,
        )
        .await?;
        for point in fault_points(&mut run.rng, kills) {
            run.reach(point).await?;
            run.kill(2, true).await?;
        }
        run.finish().await
    })
    .await
}
