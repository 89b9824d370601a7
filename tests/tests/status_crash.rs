//! Crash test of the status pipeline: the real `doorstep` binary is killed with SIGKILL twice
//! in the middle of a stream of 2,400 orders and restarted each time. Afterwards every
//! order's state in ScyllaDB, the accepted changes on `orders.status.v1`, the rejects, the
//! pushes at the fake FCM, the refunds at the fake Stripe and the drivers in Redis must be
//! exactly what a run without a crash produces.
//!
//! The run without a crash is computed in the test: the same events folded through the pure
//! state machine (`operators::order::decide`) and the pipeline's pure mapping of decisions
//! to effects (`status::Outputs`). That is deterministic, because the state machine's clock
//! is each event's `occurred_at`.
//!
//! What may differ after a crash, and is measured rather than forbidden: records on the
//! output topics may repeat (at-least-once); a repeat must be identical to the first copy.
//! What must not: a history that differs, a missing or extra change, a push sent twice or
//! not at all, a second refund. The test also prints how long a restarted process takes
//! to write its first record and to commit its first offsets.
//!
//! Two variants: `doorstep pipeline status` killed while `doorstep pipeline notify` runs on
//! in its own process (the status pipeline's replays reach the notify pipeline as duplicate
//! outbox records), and `doorstep pipeline all` killed, which also cuts pushes mid-send (the
//! killed process's push claims are taken over once its ledger heartbeat expires, ~10 s,
//! instead of the 5-minute claim lease).
//!
//! The harness (stream, oracle, observers, checks) is `doorstep_tests::crash_kit`; the
//! `faults` tests use it for more kill points and for service faults.
//!
//! The kill points are drawn from a seed printed at the start (`CRASH_TEST_SEED=<n>` draws
//! the same ones again; timing still varies). The processes log to one file in the
//! temporary directory, named when the test fails.

use doorstep_tests::crash_kit::{CrashRun, log_path, reported, seed};
use doorstep_tests::pipeline_harness::Scope;

/// Orders in the stream.
const ORDERS: usize = 2_400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_status_pipeline_mid_stream_changes_no_history_and_sends_nothing_twice()
-> anyhow::Result<()> {
    crash_test("status_crash", &["status", "notify"]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_every_pipeline_mid_stream_loses_nothing_and_sends_nothing_twice()
-> anyhow::Result<()> {
    crash_test("all_crash", &["all"]).await
}

/// Runs `processes`, kills the first one twice (at 20–60 % and 65–90 % of the stream) and
/// restarts it each time, then compares everything with the run without a crash.
async fn crash_test(name: &str, processes: &[&str]) -> anyhow::Result<()> {
    let seed = seed(name);
    let scope = Scope::new(
        name,
        &[
            // Timers must not fire mid-test: the oracle has no wall clock.
            ("DOORSTEP_AUTO_CONFIRM_AFTER_MS", "600000"),
            ("DOORSTEP_CANCELLATION_FEE_CENTS", "500"),
            // Outputs in Kafka transactions: a duplicate on any output topic fails the run.
            ("DOORSTEP_KAFKA_EXACTLY_ONCE", "true"),
        ],
    )
    .await?;
    let log = log_path(&scope);
    reported(name, seed, &log, async {
        let mut run = CrashRun::start(&scope, processes, ORDERS, seed, &log).await?;
        let points = [run.rng.fraction(0.20, 0.60), run.rng.fraction(0.65, 0.90)];
        for point in points {
            run.reach(point).await?;
            run.kill(0, true).await?;
        }
        run.finish().await
    })
    .await
}
