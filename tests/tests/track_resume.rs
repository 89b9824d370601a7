//! Resuming the customer's live view (`GET /v1/orders/{id}/track?since=SEQ`) on the real
//! Redis and CQL server, with real WebSocket clients. Orders change the way the status
//! pipeline changes them: the state machine decides, the order store saves, then the frames
//! are published with the live feed's script (which also keeps the order's history).
//!
//! - a customer away while the order moves through two statuses (an ETA and locations in
//!   between), on a single Redis and on a cluster, resumes with `since` and gets a `resumed` frame (`recovered: true`), exactly
//!   the missed status and ETA frames once, in order, with the latest location in its place,
//!   then live frames;
//! - a `since` the history no longer reaches (trimmed), or one from the future, gets a
//!   snapshot with `recovered: false`; a malformed one is refused with 400 `invalid_since`;
//! - a status change landing while the snapshot is read (made to land exactly between the
//!   snapshot's sequence read and its order-store read, or right after the store read) is
//!   shown exactly once;
//! - the history outlives an open order and expires an hour after its final status.

use anyhow::{Context, ensure};
use doorstep_connectors::live_feed::{HISTORY_CAP, HISTORY_TTL_AFTER_END, LiveFeed};
use doorstep_connectors::order_store::OrderStore;
use doorstep_operators::order::{OrderPolicy, OrderState, decide};
use doorstep_pipelines::assemble;
use doorstep_pipelines::auth::{Claims, TokenKey, unix_now};
use doorstep_pipelines::config::{Config, EdgeConfig};
use doorstep_pipelines::gateway::track::TrackingConfig;
use doorstep_pipelines::gateway::{Gateway, OrderReader};
use doorstep_pipelines::shutdown;
use doorstep_schemas::events::{EtaUpdate, OrderCommand, OrderEvent};
use doorstep_schemas::live::{LiveEvent, LiveLocation, LiveStatus};
use doorstep_schemas::model::{
    Actor, ActorKind, DriverId, EventId, GeoPoint, OrderId, OrderStatus, Timestamp,
};
use doorstep_tests::live_client::LiveClient;
use doorstep_tests::pipeline_harness::Scope;
use futures::future::BoxFuture;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);
const SECRET: &str = "test-secret-test-secret-test-secret-0001";

fn token(order: &OrderId) -> anyhow::Result<String> {
    let mut claims = Claims::new(ActorKind::Customer, "c-1", unix_now() + 600);
    claims.order_id = Some(order.as_str().to_owned());
    Ok(TokenKey::new(SECRET.as_bytes())?.sign(&claims)?)
}

/// An order changed as the status pipeline changes one: decide, save, publish.
struct Order {
    id: OrderId,
    state: OrderState,
    store: OrderStore,
    live: LiveFeed,
    events: u32,
}

impl Order {
    async fn place(store: OrderStore, live: LiveFeed) -> anyhow::Result<Self> {
        let id = OrderId::new(doorstep_tests::unique("o"));
        let place = doorstep_tests::order_events::soup_order(1, 900);
        let event = event(&id, 0, Actor::customer("c-1"), OrderCommand::Place(place));
        let decision = decide(None, &event, &OrderPolicy::default());
        let accepted = decision.accepted().context("placement refused")?;
        let mut order = Self {
            id,
            state: accepted.state.clone(),
            store,
            live: live.clone(),
            events: 1,
        };
        order.commit(&accepted.entries).await?;
        Ok(order)
    }

    /// Applies `command` by `actor`; returns the sequence numbers of the published frames.
    async fn change(&mut self, actor: Actor, command: OrderCommand) -> anyhow::Result<Vec<u64>> {
        let event = event(&self.id, self.events, actor, command);
        self.events += 1;
        let decision = decide(Some(&self.state), &event, &OrderPolicy::default());
        let accepted = decision
            .accepted()
            .with_context(|| format!("refused: {decision:?}"))?;
        self.state = accepted.state.clone();
        self.commit(&accepted.entries).await
    }

    async fn to(&mut self, status: OrderStatus) -> anyhow::Result<u64> {
        let actor = if status.is_picked_up() {
            Actor::driver("d-1")
        } else {
            Actor::restaurant("r-1")
        };
        let seqs = self
            .change(actor, OrderCommand::Transition { to: status })
            .await?;
        seqs.last().copied().context("no frame published")
    }

    async fn commit(
        &mut self,
        entries: &[doorstep_schemas::model::StatusHistoryEntry],
    ) -> anyhow::Result<Vec<u64>> {
        self.store.save(&self.state, entries, 0).await?;
        let mut seqs = Vec::new();
        for entry in entries {
            let frame = LiveEvent::Status(LiveStatus {
                order_id: self.id.clone(),
                status: entry.to,
                entry: entry.clone(),
            });
            seqs.push(self.live.publish(&frame).await?);
        }
        Ok(seqs)
    }

    async fn eta(&self, minutes: u32) -> anyhow::Result<u64> {
        let now = Timestamp::now();
        let eta = EtaUpdate {
            order_id: self.id.clone(),
            computed_at: now,
            prep_remaining_s: 60.0,
            pickup_travel_s: 120.0,
            delivery_travel_s: f64::from(minutes) * 60.0,
            estimated_delivery_at: now.plus_millis(i64::from(minutes) * 60_000),
            range_low_min: minutes.saturating_sub(2),
            range_high_min: minutes + 2,
            fallback: false,
        };
        self.live.set_eta(&eta).await?;
        Ok(self.live.publish(&LiveEvent::Eta(eta)).await?)
    }

    async fn location(&self, n: u32) -> anyhow::Result<u64> {
        let frame = LiveEvent::Location(LiveLocation {
            order_id: self.id.clone(),
            update_id: EventId::new(format!("{}-p{n}", self.id)),
            driver_id: DriverId::new("d-1"),
            location: GeoPoint::new(60.17 + f64::from(n) * 1e-4, 24.94)?,
            at: Timestamp::now(),
        });
        Ok(self.live.publish(&frame).await?)
    }
}

fn event(order: &OrderId, n: u32, actor: Actor, command: OrderCommand) -> OrderEvent {
    OrderEvent {
        event_id: EventId::new(format!("{order}-e{n}")),
        order_id: order.clone(),
        occurred_at: Timestamp::now(),
        actor,
        command,
    }
}

/// What a reader does around one order-store read of a snapshot.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Land {
    /// The change lands after the snapshot's sequence read, before its store read.
    BeforeTheRead,
    /// The change lands after the store read, before the snapshot is sent.
    AfterTheRead,
}

type Hook = Box<dyn FnOnce() -> BoxFuture<'static, anyhow::Result<()>> + Send>;

/// The order store as the gateway reads it, with a change landing around the next read.
struct Racing {
    store: OrderStore,
    hook: Mutex<Option<(Land, Hook)>>,
}

impl OrderReader for Racing {
    fn load<'a>(&'a self, order_id: &'a str) -> BoxFuture<'a, Result<Option<OrderState>, String>> {
        Box::pin(async move {
            let hook = self.hook.lock().map_err(|e| e.to_string())?.take();
            let run = |hook: Hook| async move { hook().await.map_err(|e| format!("{e:#}")) };
            let (before, after) = match hook {
                Some((Land::BeforeTheRead, h)) => (Some(h), None),
                Some((Land::AfterTheRead, h)) => (None, Some(h)),
                None => (None, None),
            };
            if let Some(h) = before {
                run(h).await?;
            }
            let state = self
                .store
                .load(&OrderId::new(order_id))
                .await
                .map_err(|e| e.to_string())?;
            if let Some(h) = after {
                run(h).await?;
            }
            Ok(state)
        })
    }
}

struct Setup {
    _scope: Scope,
    config: Config,
    reader: Arc<Racing>,
    ws_base: String,
    stop: shutdown::Trigger,
    task: tokio::task::JoinHandle<Result<(), doorstep_pipelines::gateway::GatewayError>>,
}

impl Setup {
    async fn start(name: &str, extra: &[(&str, &str)]) -> anyhow::Result<Self> {
        let scope = Scope::new(name, extra).await?;
        let mut config = scope.config.clone();
        config.edge = EdgeConfig::unlimited();
        let reader = Arc::new(Racing {
            store: scope.store().await?,
            hook: Mutex::new(None),
        });
        let gateway = Gateway::from_config(&config, Duration::from_secs(5))
            .await?
            .with_order_reader(reader.clone())
            .with_live_tracking(&config, TrackingConfig::default())?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, signal) = shutdown::channel();
        let task = tokio::spawn(gateway.serve(listener, signal));
        Ok(Self {
            _scope: scope,
            config,
            reader,
            ws_base: format!("ws://{addr}"),
            stop,
            task,
        })
    }

    async fn order(&self) -> anyhow::Result<Order> {
        let live = LiveFeed::new(
            assemble::redis(&self.config).await?,
            self.config.redis_key_prefix.clone(),
        );
        Order::place(self.reader.store.clone(), live).await
    }

    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        tokio::time::timeout(Duration::from_secs(10), self.task).await???;
        Ok(())
    }
}

fn seq(f: &Value) -> anyhow::Result<u64> {
    f["seq"].as_u64().with_context(|| format!("no seq: {f}"))
}

/// The timeline entry numbers of a snapshot.
fn timeline(snapshot: &Value) -> Vec<u64> {
    snapshot["timeline"]
        .as_array()
        .map(|t| t.iter().filter_map(|e| e["seq"].as_u64()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_customer_away_for_two_status_changes_resumes_with_exactly_the_missed_frames()
-> anyhow::Result<()> {
    away_for_two_status_changes("track_resume", &[]).await
}

#[tokio::test]
async fn resuming_on_a_redis_cluster_gets_exactly_the_missed_frames() -> anyhow::Result<()> {
    let urls = doorstep_tests::endpoints().redis_cluster_urls.join(",");
    away_for_two_status_changes(
        "track_resume_cluster",
        &[
            ("DOORSTEP_REDIS_MODE", "cluster"),
            ("DOORSTEP_REDIS_CLUSTER_URLS", urls.as_str()),
        ],
    )
    .await
}

async fn away_for_two_status_changes(name: &str, extra: &[(&str, &str)]) -> anyhow::Result<()> {
    let setup = Setup::start(name, extra).await?;
    let mut order = setup.order().await?;
    order.to(OrderStatus::Confirmed).await?;
    order
        .change(
            Actor::system("dispatch"),
            OrderCommand::AssignDriver {
                driver_id: DriverId::new("d-1"),
            },
        )
        .await?;
    let tok = token(&order.id)?;

    let mut live = LiveClient::open(&setup.ws_base, order.id.as_str(), &tok).await?;
    let snapshot = live.frame(WAIT).await?;
    ensure!(snapshot["type"] == "snapshot", "{snapshot}");
    ensure!(snapshot["status"] == "CONFIRMED", "{snapshot}");
    ensure!(snapshot.get("recovered").is_none(), "{snapshot}");
    let since = seq(&snapshot)?;
    live.close().await?;

    // Away: two statuses, an ETA between them, two driver positions.
    let mut missed = vec![order.to(OrderStatus::Preparing).await?];
    order.location(1).await?;
    missed.push(order.eta(25).await?);
    let latest = order.location(2).await?;
    missed.push(order.to(OrderStatus::ReadyForPickup).await?);

    let mut live = LiveClient::resume(&setup.ws_base, order.id.as_str(), &tok, since).await?;
    let first = live.frame(WAIT).await?;
    ensure!(
        first["type"] == "resumed" && first["recovered"] == true && seq(&first)? == since,
        "{first}"
    );
    let mut got = Vec::new();
    for _ in 0..missed.len() + 1 {
        got.push(live.frame(WAIT).await?);
    }
    let kinds: Vec<(&str, u64)> = got
        .iter()
        .map(|f| {
            (
                f["type"].as_str().unwrap_or_default(),
                f["seq"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    // The missed status and ETA frames and the latest location (not the one it replaced),
    // in `seq` order.
    let expected = vec![
        ("status", missed[0]),
        ("eta", missed[1]),
        ("location", latest),
        ("status", missed[2]),
    ];
    ensure!(kinds == expected, "got {kinds:?}, expected {expected:?}");
    ensure!(got[0]["status"] == "PREPARING", "{}", got[0]);
    ensure!(got[1]["range_high_min"] == 27, "{}", got[1]);
    ensure!(
        got[2]["location"]["lat"].as_f64() == Some(60.17 + 2e-4),
        "{}",
        got[2]
    );
    ensure!(got[3]["status"] == "READY_FOR_PICKUP", "{}", got[3]);

    // Then live, nothing repeated: the next frame is the next change.
    let picked = order.to(OrderStatus::PickedUp).await?;
    let next = live.frame(WAIT).await?;
    ensure!(
        next["type"] == "status" && seq(&next)? == picked && next["status"] == "PICKED_UP",
        "{next}"
    );
    // A resume with nothing missed: the `resumed` frame, then only live frames.
    live.close().await?;
    let mut live = LiveClient::resume(&setup.ws_base, order.id.as_str(), &tok, picked).await?;
    let first = live.frame(WAIT).await?;
    ensure!(
        first["type"] == "resumed" && first["recovered"] == true,
        "{first}"
    );
    let en_route = order.to(OrderStatus::EnRoute).await?;
    let next = live.frame(WAIT).await?;
    ensure!(
        seq(&next)? == en_route && next["status"] == "EN_ROUTE",
        "{next}"
    );
    setup.stop().await
}

#[tokio::test]
async fn a_since_the_history_no_longer_reaches_gets_a_snapshot() -> anyhow::Result<()> {
    let setup = Setup::start("track_resume_gone", &[]).await?;
    let mut order = setup.order().await?;
    let tok = token(&order.id)?;
    let since = order.to(OrderStatus::Confirmed).await?;
    // More non-location frames than the history keeps: the frame after `since` is trimmed.
    for n in 0..=HISTORY_CAP {
        order.eta(20 + (n % 5) as u32).await?;
    }
    let preparing = order.to(OrderStatus::Preparing).await?;

    let mut live = LiveClient::resume(&setup.ws_base, order.id.as_str(), &tok, since).await?;
    let snapshot = live.frame(WAIT).await?;
    ensure!(
        snapshot["type"] == "snapshot" && snapshot["recovered"] == false,
        "{snapshot}"
    );
    ensure!(
        snapshot["status"] == "PREPARING" && seq(&snapshot)? == preparing,
        "{snapshot}"
    );
    live.close().await?;

    // The history still reaches a recent `since`.
    let mut live =
        LiveClient::resume(&setup.ws_base, order.id.as_str(), &tok, preparing - 1).await?;
    let first = live.frame(WAIT).await?;
    ensure!(first["type"] == "resumed", "{first}");
    let next = live.frame(WAIT).await?;
    ensure!(
        seq(&next)? == preparing && next["status"] == "PREPARING",
        "{next}"
    );
    live.close().await?;

    // A `since` from the future (another deployment's numbers, a forged one): a snapshot.
    let mut live =
        LiveClient::resume(&setup.ws_base, order.id.as_str(), &tok, preparing + 100).await?;
    let snapshot = live.frame(WAIT).await?;
    ensure!(
        snapshot["type"] == "snapshot" && snapshot["recovered"] == false,
        "{snapshot}"
    );
    live.close().await?;

    // An order with no history at all (its keys expired): a snapshot.
    let fresh = setup.order().await?;
    let mut redis = assemble::redis(&setup.config).await?;
    let keys = [
        fresh.live.history_key(&fresh.id),
        fresh.live.history_floor_key(&fresh.id),
    ];
    redis::cmd("DEL")
        .arg(&keys[..])
        .query_async::<()>(&mut redis)
        .await?;
    let mut live =
        LiveClient::resume(&setup.ws_base, fresh.id.as_str(), &token(&fresh.id)?, 0).await?;
    let snapshot = live.frame(WAIT).await?;
    ensure!(
        snapshot["type"] == "snapshot" && snapshot["recovered"] == false,
        "{snapshot}"
    );
    ensure!(snapshot["status"] == "PLACED", "{snapshot}");
    live.close().await?;

    // A malformed `since` is refused before the upgrade, with the reason.
    for bad in ["-1", "abc", "1.5", "99999999999999999999999"] {
        match LiveClient::connect_since(&setup.ws_base, order.id.as_str(), &tok, bad).await {
            Err(Ok(r)) => ensure!(
                r.status == 400 && r.body["error"] == "invalid_since",
                "{bad}: {} {}",
                r.status,
                r.body
            ),
            Ok(_) => anyhow::bail!("since={bad} was accepted"),
            Err(Err(e)) => return Err(e),
        }
    }
    setup.stop().await
}

/// Connects while `status` lands at `land` around the snapshot's store read; then one more
/// change, and checks that the landed change was shown exactly once before it.
async fn a_change_landing_during_the_snapshot(land: Land) -> anyhow::Result<()> {
    let setup = Setup::start("track_resume_race", &[]).await?;
    let order = Arc::new(tokio::sync::Mutex::new(setup.order().await?));
    let (id, tok) = {
        let mut o = order.lock().await;
        o.to(OrderStatus::Confirmed).await?;
        (o.id.clone(), token(&o.id)?)
    };
    let landed = Arc::new(Mutex::new(None::<(u64, u32)>));
    {
        let (order, landed) = (order.clone(), landed.clone());
        let hook: Hook = Box::new(move || {
            Box::pin(async move {
                let mut o = order.lock().await;
                let seq = o.to(OrderStatus::Preparing).await?;
                let entry = o.state.history.last().map(|e| e.seq).context("no entry")?;
                *landed.lock().map_err(|e| anyhow::anyhow!("{e}"))? = Some((seq, entry));
                Ok(())
            })
        });
        *setup
            .reader
            .hook
            .lock()
            .map_err(|e| anyhow::anyhow!("{e}"))? = Some((land, hook));
    }

    let mut live = LiveClient::open(&setup.ws_base, id.as_str(), &tok).await?;
    let snapshot = live.frame(WAIT).await?;
    ensure!(snapshot["type"] == "snapshot", "{snapshot}");
    let (frame_seq, entry) = landed
        .lock()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .context("the change did not land during the snapshot")?;
    let in_snapshot = timeline(&snapshot).contains(&u64::from(entry));
    match land {
        // The store read saw it, the sequence read did not.
        Land::BeforeTheRead => ensure!(
            in_snapshot && seq(&snapshot)? < frame_seq && snapshot["status"] == "PREPARING",
            "the snapshot shows the change: {snapshot}"
        ),
        Land::AfterTheRead => ensure!(!in_snapshot, "{snapshot}"),
    }

    let next = order.lock().await.to(OrderStatus::ReadyForPickup).await?;
    let frames = live
        .until(WAIT, |f| f["seq"].as_u64() == Some(next))
        .await?;
    let shown_live = frames
        .iter()
        .filter(|f| f["type"] == "status" && f["entry"]["seq"].as_u64() == Some(u64::from(entry)))
        .count();
    let shown = shown_live + usize::from(in_snapshot);
    ensure!(
        shown == 1,
        "the change landing during the snapshot was shown {shown} times \
         (snapshot {snapshot}, then {frames:?})"
    );
    let statuses: Vec<&Value> = frames.iter().map(|f| &f["status"]).collect();
    let expected: Vec<Value> = if in_snapshot {
        vec!["READY_FOR_PICKUP".into()]
    } else {
        vec!["PREPARING".into(), "READY_FOR_PICKUP".into()]
    };
    ensure!(statuses.iter().copied().eq(expected.iter()), "{statuses:?}");
    setup.stop().await
}

#[tokio::test]
async fn a_status_change_between_the_snapshot_reads_is_shown_once() -> anyhow::Result<()> {
    a_change_landing_during_the_snapshot(Land::BeforeTheRead).await
}

#[tokio::test]
async fn a_status_change_after_the_snapshot_read_is_not_lost() -> anyhow::Result<()> {
    a_change_landing_during_the_snapshot(Land::AfterTheRead).await
}

#[tokio::test]
async fn the_history_expires_an_hour_after_the_order_ends() -> anyhow::Result<()> {
    let setup = Setup::start("track_resume_ttl", &[]).await?;
    let mut order = setup.order().await?;
    let redis = assemble::redis(&setup.config).await?;
    let history = order.live.history_key(&order.id);
    let floor = order.live.history_floor_key(&order.id);
    let after_end = HISTORY_TTL_AFTER_END.as_millis() as i64;
    let ttl = |key: String| {
        let mut redis = redis.clone();
        async move {
            redis::cmd("PTTL")
                .arg(key)
                .query_async::<i64>(&mut redis)
                .await
        }
    };
    let len: usize = redis::cmd("XLEN")
        .arg(&history)
        .query_async(&mut redis.clone())
        .await?;
    ensure!(len == 1, "the placement is in the history: {len}");
    let open = ttl(history.clone()).await?;
    ensure!(
        open > after_end,
        "an open order's history lives on: {open} ms"
    );
    order
        .change(
            Actor::customer("c-1"),
            OrderCommand::Cancel {
                reason: "changed my mind".into(),
            },
        )
        .await?;
    for key in [history.clone(), floor.clone()] {
        let left = ttl(key.clone()).await?;
        ensure!(
            0 < left && left <= after_end,
            "{key}: {left} ms after the end"
        );
    }
    // A late frame (an ETA computed before the cancellation) does not extend it.
    order.eta(10).await?;
    let left = ttl(history).await?;
    ensure!(
        0 < left && left <= after_end,
        "{left} ms after a late frame"
    );
    setup.stop().await
}
