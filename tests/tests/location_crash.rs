//! kill -9 of the location pipeline (the real `doorstep pipeline location` binary) at random
//! points while a fleet streams pings, good and bad, each kill followed by a restart. The
//! end state is compared with the run without a fault, computed by the pure location filter:
//! every accepted ping on `orders.tracking.v1` and in the order's trip (ScyllaDB), every
//! refused one on `orders.rejected.v1` with its reason and nothing else refused (a ping
//! re-read after a crash is not judged against its own batch's result), and each driver's
//! stored position the last accepted ping. With transactional outputs (`kafka.exactly_once`)
//! no record may repeat either.
//!
//! The same comparison follows a restart of the pipeline's Redis mid-stream (a private
//! instance with an append-only file, answering `LOADING` for a while as it reads its data
//! back): the pipeline waits and resumes by itself; and a scale-out run: two processes of one
//! group, one killed for good (its partitions and drivers move to the other), later a third
//! joining.
//!
//! `LOCATION_KILLS` sets the number of kills (default 10; `scripts/soak` raises it),
//! `CRASH_TEST_SEED` draws the same kill points again.

use anyhow::{Context, ensure};
use doorstep_connectors::driver_state::DriverState;
use doorstep_connectors::kafka::Producer;
use doorstep_connectors::location_store::LocationStore;
use doorstep_operators::location::{LastPing, LocationFilter};
use doorstep_pipelines::assemble;
use doorstep_pipelines::simulate::SplitMix;
use doorstep_schemas::events::{LocationPing, RejectedRecord, topics};
use doorstep_schemas::model::{DriverId, EventId, GeoPoint, OrderId, Timestamp, TrackingUpdate};
use doorstep_tests::crash_kit::{
    DEADLINE, GroupProbe, TopicLog, fault_points, follow, kills_from_env, log_path, reported, seed,
};
use doorstep_tests::pipeline_harness::Scope;
use doorstep_tests::private_services::PrivateRedis;
use doorstep_tests::process::DoorstepProcess;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{Duration, Instant};

const DRIVERS: usize = 30;
const ROUNDS: usize = 80;
const KILLS_VAR: &str = "LOCATION_KILLS";

/// The stream and what the run without a fault makes of it.
struct Expected {
    /// Pings in production order (each driver's in its own order).
    pings: Vec<LocationPing>,
    /// Accepted ping ids per driver, in order.
    accepted: BTreeMap<DriverId, Vec<EventId>>,
    /// Refused pings: (ping id, reason code).
    rejected: BTreeSet<(String, String)>,
}

fn order_of(driver: &DriverId) -> OrderId {
    OrderId::new(format!("o-{driver}"))
}

/// Every driver moves ~22 m north every 5 s; among its good pings, deterministic resends
/// (duplicates), late fixes (out of order) and jumps of 11 km (impossible speed).
fn stream(start_ms: i64) -> Expected {
    let ping = |id: String, d: usize, lat: f64, recorded: i64, received: i64| LocationPing {
        ping_id: EventId::new(id),
        driver_id: DriverId::new(format!("drv-{d}")),
        location: GeoPoint { lat, lng: 24.94 },
        accuracy_m: Some(5.0),
        heading_deg: Some(0.0),
        speed_mps: Some(4.4),
        recorded_at: Timestamp::from_millis(recorded),
        received_at: Timestamp::from_millis(received),
    };
    let mut pings = Vec::new();
    for r in 0..ROUNDS {
        for d in 0..DRIVERS {
            let lat = 60.15 + d as f64 * 0.001 + r as f64 * 0.0002;
            let t = start_ms + r as i64 * 5_000;
            let good = ping(format!("d{d}-r{r}"), d, lat, t, t + 100);
            let mut resend = good.clone();
            resend.received_at = Timestamp::from_millis(t + 150);
            pings.push(good);
            if (r + d) % 7 == 3 {
                pings.push(resend);
            }
            if (r + d) % 11 == 5 {
                pings.push(ping(format!("d{d}-r{r}-late"), d, lat, t - 2_500, t + 200));
            }
            if (r + d) % 13 == 8 {
                pings.push(ping(
                    format!("d{d}-r{r}-jump"),
                    d,
                    lat + 0.1,
                    t + 1_000,
                    t + 1_100,
                ));
            }
        }
    }
    let filter = LocationFilter::default();
    let mut last: BTreeMap<DriverId, LastPing> = BTreeMap::new();
    let mut accepted: BTreeMap<DriverId, Vec<EventId>> = BTreeMap::new();
    let mut rejected = BTreeSet::new();
    for p in &pings {
        match filter.decide(last.get(&p.driver_id), p, p.received_at) {
            Ok(()) => {
                last.insert(p.driver_id.clone(), LastPing::of(p));
                accepted
                    .entry(p.driver_id.clone())
                    .or_default()
                    .push(p.ping_id.clone());
            }
            Err(why) => {
                rejected.insert((p.ping_id.to_string(), why.code().to_owned()));
            }
        }
    }
    Expected {
        pings,
        accepted,
        rejected,
    }
}

/// What the run measured.
#[derive(Default)]
struct Report {
    pings: usize,
    accepted: usize,
    rejected: usize,
    tracking_records: usize,
    reject_records: usize,
    /// Per fault: accepted pings seen before it, and restart (of the pipeline, or of Redis
    /// once it serves again) → first new tracking record.
    kills: Vec<(usize, Option<Duration>)>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} pings ({} accepted, {} refused); orders.tracking.v1 {} records, \
             orders.rejected.v1 {} records; faults (accepted seen, restart → first output):",
            self.pings, self.accepted, self.rejected, self.tracking_records, self.reject_records
        )?;
        for (at, first) in &self.kills {
            write!(f, " [{at}, {first:?}]")?;
        }
        Ok(())
    }
}

/// Produces the stream in rounds spread over `span`: the drivers of a round concurrently,
/// each driver's pings one after the other (so in order).
async fn produce(
    config: doorstep_pipelines::config::Config,
    pings: Vec<LocationPing>,
    span: Duration,
) -> anyhow::Result<()> {
    let catalog = doorstep_tests::catalog().await?;
    let producer = Producer::new(&assemble::kafka_config(&config, "location-crash"))?;
    let topic = config.topic(topics::DRIVER_LOCATIONS);
    let per_round = span / u32::try_from(ROUNDS)?;
    let mut rounds: BTreeMap<i64, BTreeMap<DriverId, Vec<Vec<u8>>>> = BTreeMap::new();
    for p in &pings {
        // Every ping of round r is recorded within (r·5 s − 2.5 s, r·5 s + 1 s].
        let round = (p.recorded_at.as_millis() + 2_500) / 5_000;
        rounds
            .entry(round)
            .or_default()
            .entry(p.driver_id.clone())
            .or_default()
            .push(catalog.encode(p)?);
    }
    for drivers in rounds.values() {
        let started = Instant::now();
        futures::future::try_join_all(drivers.iter().map(|(driver, records)| {
            let (producer, topic) = (&producer, &topic);
            async move {
                for bytes in records {
                    producer
                        .send(topic, driver.as_str().as_bytes(), bytes, &[])
                        .await?;
                }
                anyhow::Ok(())
            }
        }))
        .await?;
        tokio::time::sleep(per_round.saturating_sub(started.elapsed())).await;
    }
    Ok(())
}

struct Run<'a> {
    scope: &'a Scope,
    env: BTreeMap<String, String>,
    log: std::path::PathBuf,
    process: Option<DoorstepProcess>,
    /// More processes of the same group (scale-out runs).
    others: Vec<DoorstepProcess>,
    tracking: TopicLog<TrackingUpdate>,
}

impl Run<'_> {
    fn spawn(&mut self) -> anyhow::Result<()> {
        self.process = Some(DoorstepProcess::spawn(
            &["pipeline", "location"],
            &self.env,
            &self.log,
        )?);
        Ok(())
    }

    /// Starts one more process of the pipeline beside the others.
    fn spawn_another(&mut self) -> anyhow::Result<()> {
        self.others.push(DoorstepProcess::spawn(
            &["pipeline", "location"],
            &self.env,
            &self.log,
        )?);
        Ok(())
    }

    fn alive(&mut self) -> anyhow::Result<()> {
        for p in self.process.iter_mut().chain(self.others.iter_mut()) {
            if let Some(status) = p.exited()? {
                anyhow::bail!("doorstep pipeline location exited on its own: {status}");
            }
        }
        Ok(())
    }

    /// Waits until `n` distinct accepted pings were seen on the tracking topic.
    async fn reach(&mut self, n: usize) -> anyhow::Result<()> {
        let started = Instant::now();
        while self.tracking.distinct() < n {
            ensure!(
                started.elapsed() < DEADLINE,
                "stuck at {} of {n} tracking records",
                self.tracking.distinct()
            );
            self.alive()?;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }
}

/// The fault a run injects mid-stream.
enum Fault<'a> {
    /// This many kill -9s of the pipeline, each followed by a restart.
    Kills(u32),
    /// One restart of the pipeline's (private) Redis, which then answers `LOADING` a while.
    RedisRestart(&'a mut PrivateRedis),
    /// Two processes in one group; one dies for good (kill -9), later a third joins.
    ScaleOut,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9s_of_the_location_pipeline_lose_nothing_and_refuse_nothing_twice()
-> anyhow::Result<()> {
    let name = "location_kills";
    // Outputs in Kafka transactions: a duplicate on any output topic fails the run.
    let scope = Scope::new(name, &[("DOORSTEP_KAFKA_EXACTLY_ONCE", "true")]).await?;
    let kills = kills_from_env(KILLS_VAR, 10);
    location_run(name, &scope, Fault::Kills(kills)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn location_processes_dying_and_joining_give_the_results_of_a_single_process()
-> anyhow::Result<()> {
    let name = "location_scale_out";
    let scope = Scope::new(name, &[("DOORSTEP_KAFKA_EXACTLY_ONCE", "true")]).await?;
    location_run(name, &scope, Fault::ScaleOut).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_under_the_location_pipeline_loses_nothing_and_refuses_nothing_twice()
-> anyhow::Result<()> {
    let name = "location_redis_restart";
    let mut redis = PrivateRedis::start().await?;
    let url = redis.url();
    let scope = Scope::new(name, &[("DOORSTEP_REDIS_URL", &url)]).await?;
    location_run(name, &scope, Fault::RedisRestart(&mut redis)).await
}

/// Streams the fleet's pings through `doorstep pipeline location`, injects `fault` and
/// compares the end state with the run without a fault (see the module docs).
async fn location_run(name: &str, scope: &Scope, mut fault: Fault<'_>) -> anyhow::Result<()> {
    let seed = seed(name);
    let log = log_path(scope);
    reported(name, seed, &log, async {
        let config = &scope.config;
        // Rounds start on a multiple of 5 s, so `produce` can group a round's pings.
        let now = Timestamp::now().as_millis();
        let expected = stream(now - now % 5_000);
        let total: usize = expected.accepted.values().map(Vec::len).sum();
        let redis = assemble::redis(config).await?;
        let drivers = DriverState::new(redis.clone(), config.redis_key_prefix.clone());
        for driver in expected.accepted.keys() {
            drivers.occupy(driver, &order_of(driver)).await?;
        }

        let brokers = config.endpoints.kafka_brokers.clone();
        let mut env = scope.env.clone();
        env.insert("DOORSTEP_OPS_LISTEN".into(), "127.0.0.1:0".into());
        env.insert("DOORSTEP_LOG".into(), "info,scylla=off".into());
        let mut run = Run {
            scope,
            env,
            log: log.clone(),
            process: None,
            others: Vec::new(),
            tracking: follow(&brokers, &scope.topic(topics::ORDER_TRACKING)).await?,
        };
        let rejects: TopicLog<RejectedRecord> =
            follow(&brokers, &scope.topic(topics::ORDER_REJECTED)).await?;
        let group = GroupProbe::new(
            &brokers,
            &config.group_id("location"),
            &scope.topic(topics::DRIVER_LOCATIONS),
        )?;
        run.spawn()?;
        if matches!(fault, Fault::ScaleOut) {
            run.spawn_another()?;
        }
        // A restart waits out the dead member's consumer session (10 s): the stream must
        // outlast the kills.
        let span = match &fault {
            Fault::Kills(kills) => Duration::from_secs(12) * *kills,
            Fault::RedisRestart(_) => Duration::from_secs(20),
            Fault::ScaleOut => Duration::from_secs(30),
        };
        let producer = tokio::spawn(produce(config.clone(), expected.pings.clone(), span));

        let mut rng = SplitMix(seed);
        let mut report = Report {
            pings: expected.pings.len(),
            accepted: total,
            rejected: expected.rejected.len(),
            ..Report::default()
        };
        match &mut fault {
            Fault::Kills(kills) => {
                for point in fault_points(&mut rng, *kills) {
                    run.reach((point * total as f64) as usize).await?;
                    let seen = run.tracking.distinct();
                    ensure!(seen < total, "the kill came after the whole stream");
                    run.process
                        .take()
                        .context("the pipeline is running")?
                        .kill9()
                        .await?;
                    tokio::time::sleep(Duration::from_millis(rng.below(500))).await;
                    run.spawn()?;
                    let restarted = Instant::now();
                    run.reach(run.tracking.distinct() + 1).await?;
                    report.kills.push((seen, Some(restarted.elapsed())));
                }
            }
            Fault::ScaleOut => {
                run.reach((rng.fraction(0.2, 0.4) * total as f64) as usize)
                    .await?;
                let seen = run.tracking.distinct();
                ensure!(seen < total, "the kill came after the whole stream");
                run.process
                    .take()
                    .context("the first process is running")?
                    .kill9()
                    .await?;
                let died = Instant::now();
                run.reach(seen + 1).await?;
                report.kills.push((seen, Some(died.elapsed())));
                run.reach((rng.fraction(0.55, 0.75) * total as f64) as usize)
                    .await?;
                let seen = run.tracking.distinct();
                ensure!(seen < total, "the join came after the whole stream");
                run.spawn_another()?;
                let joined = Instant::now();
                run.reach(seen + 1).await?;
                report.kills.push((seen, Some(joined.elapsed())));
            }
            Fault::RedisRestart(redis) => {
                run.reach((rng.fraction(0.25, 0.5) * total as f64) as usize)
                    .await?;
                let seen = run.tracking.distinct();
                ensure!(seen < total, "the restart came after the whole stream");
                redis
                    .restart_through_loading(Duration::from_secs(3))
                    .await?;
                let back = Instant::now();
                run.reach(seen + 1).await?;
                report.kills.push((seen, Some(back.elapsed())));
            }
        }
        producer.await??;
        run.reach(total).await?;
        let started = Instant::now();
        while group.lag().await? > 0 {
            ensure!(
                started.elapsed() < DEADLINE,
                "the location group never caught up"
            );
            run.alive()?;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // orders.tracking.v1: every accepted ping once, none other, keyed by its order.
        let strict = doorstep_tests::crash_kit::exactly_once(&scope.env);
        ensure!(
            !strict || run.tracking.duplicates() == 0,
            "{} duplicate records on orders.tracking.v1 (exactly-once broken)",
            run.tracking.duplicates()
        );
        let tracking = run.tracking.take()?;
        report.tracking_records = tracking.len();
        let want: BTreeSet<String> = expected
            .accepted
            .values()
            .flatten()
            .map(ToString::to_string)
            .collect();
        let got: BTreeSet<String> = tracking
            .iter()
            .map(|(_, t)| t.update_id.to_string())
            .collect();
        ensure!(
            got == want,
            "tracking: {} missing (e.g. {:?}), {} unexpected (e.g. {:?})",
            want.difference(&got).count(),
            want.difference(&got).next(),
            got.difference(&want).count(),
            got.difference(&want).next()
        );
        for (key, t) in &tracking {
            let driver = t
                .driver_id
                .as_ref()
                .context("tracking update without driver")?;
            ensure!(key == order_of(driver).as_str(), "{t:?} keyed {key}");
        }

        // orders.rejected.v1: exactly the refusals of the run without a fault.
        let started = Instant::now();
        while rejects.distinct() < expected.rejected.len() && started.elapsed() < DEADLINE {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        ensure!(
            !strict || rejects.duplicates() == 0,
            "{} duplicate records on orders.rejected.v1 (exactly-once broken)",
            rejects.duplicates()
        );
        let rejects = rejects.take()?;
        report.reject_records = rejects.len();
        let got: BTreeSet<(String, String)> = rejects
            .iter()
            .map(|(_, r)| {
                let id = r.event_id.as_ref().map_or("", |e| e.as_str());
                (id.to_owned(), r.reason_code.clone())
            })
            .collect();
        ensure!(
            got == expected.rejected,
            "rejects: {} missing (e.g. {:?}), {} unexpected (e.g. {:?})",
            expected.rejected.difference(&got).count(),
            expected.rejected.difference(&got).next(),
            got.difference(&expected.rejected).count(),
            got.difference(&expected.rejected).next()
        );

        // Redis: each driver's last accepted ping. ScyllaDB: each order's whole trip.
        // A fresh connection: the first command on one opened before a Redis restart fails.
        drop(redis);
        let redis = assemble::redis(config).await?;
        let store = LocationStore::new(redis, config.redis_key_prefix.clone());
        let ids: Vec<DriverId> = expected.accepted.keys().cloned().collect();
        let snapshots = store.snapshots(&ids).await?;
        let trips = run.scope.store().await?;
        for (driver, accepted) in &expected.accepted {
            let last = snapshots
                .get(driver)
                .and_then(|s| s.last.as_ref())
                .with_context(|| format!("{driver} has no stored position"))?;
            ensure!(
                Some(&last.ping_id) == accepted.last(),
                "{driver}: stored {} instead of {:?}",
                last.ping_id,
                accepted.last()
            );
            let trip: Vec<EventId> = trips
                .trip(&order_of(driver))
                .await?
                .into_iter()
                .map(|p| p.ping_id)
                .collect();
            ensure!(
                &trip == accepted,
                "{driver}: trip of {} points instead of {}",
                trip.len(),
                accepted.len()
            );
        }
        Ok(report)
    })
    .await
}
