//! Live tracking end to end on the real broker, Redis (single node and cluster) and CQL
//! server, with real WebSocket clients:
//!
//! - an order placed and driven through the gateway's HTTP API: the customer's socket gets a
//!   snapshot, then status frames from the status pipeline and location frames from the
//!   location pipeline, numbered in order; a reconnect's snapshot has the driver's current
//!   position (`GEOPOS`); a customer away for two status changes resumes with `since` and
//!   gets exactly the frames published meanwhile; the accepted positions are the order's trip in ScyllaDB; refused
//!   pings never reach the socket, Redis or the trip;
//! - refusals: another order's or another customer's token, a driver's, an expired or forged
//!   token, no token, not a WebSocket; a token expiring while connected closes with 4401;
//! - one stuck client does not hold back 100 others: they get every frame while it has read
//!   nothing, and it is closed (4408) instead of being buffered for;
//! - a driver streams pings over its WebSocket: one answer per frame, errors as the POST's.

use anyhow::{Context, ensure};
use doorstep_connectors::live_feed::LiveFeed;
use doorstep_pipelines::assemble::{self, LocationOptions};
use doorstep_pipelines::auth::{Claims, TokenKey, unix_now};
use doorstep_pipelines::gateway::track::TrackingConfig;
use doorstep_pipelines::runtime::RuntimeConfig;
use doorstep_pipelines::shutdown;
use doorstep_schemas::events::{RejectedRecord, topics};
use doorstep_schemas::live::{LiveEvent, LiveLocation, LiveStatus};
use doorstep_schemas::model::{
    Actor, ActorKind, DriverId, EventId, GeoPoint, HistoryEntryKind, OrderId, OrderStatus,
    StatusHistoryEntry, Timestamp,
};
use doorstep_tests::live_client::{GatewayUnderTest, LiveClient, Received, stuck_client};
use doorstep_tests::pipeline_harness::Scope;
use doorstep_tests::topic_reader::read_topic;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);
const SECRET: &str = "test-secret-test-secret-test-secret-0001";

fn token(kind: ActorKind, id: &str, order: Option<&str>, ttl_s: i64) -> anyhow::Result<String> {
    let mut claims = Claims::new(kind, id, unix_now() + ttl_s);
    claims.order_id = order.map(str::to_owned);
    Ok(TokenKey::new(SECRET.as_bytes())?.sign(&claims)?)
}

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn post(&self, path: &str, tok: &str, body: Value) -> anyhow::Result<(u16, Value)> {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(tok)
            .json(&body)
            .send()
            .await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    async fn accepted(&self, path: &str, tok: &str, body: Value) -> anyhow::Result<Value> {
        let (status, answer) = self.post(path, tok, body).await?;
        ensure!(status == 202, "{path}: {status} {answer}");
        Ok(answer)
    }
}

fn kind(f: &Value) -> &str {
    f["type"].as_str().unwrap_or_default()
}

fn status_is(f: &Value, status: &str) -> bool {
    kind(f) == "status" && f["status"] == status
}

fn at(f: &Value) -> Option<(f64, f64)> {
    Some((
        f["location"]["lat"].as_f64()?,
        f["location"]["lng"].as_f64()?,
    ))
}

async fn a_customer_follows_an_order_live(
    name: &str,
    extra: &[(&str, &str)],
) -> anyhow::Result<()> {
    let scope = Scope::new(name, extra).await?;
    let config = &scope.config;
    let running = scope.start().await?;
    let registry = prometheus::Registry::new();
    let (stop_location, signal) = shutdown::channel();
    let options = LocationOptions {
        runtime: RuntimeConfig {
            tick: Duration::from_millis(200),
            ..RuntimeConfig::default()
        },
        ..LocationOptions::default()
    };
    let (rt, stage) = assemble::location_pipeline(config, options, &registry).await?;
    let location = tokio::spawn(async move { rt.run(stage, signal).await });
    let gw = GatewayUnderTest::start(config, TrackingConfig::default()).await?;
    let api = Api {
        http: reqwest::Client::new(),
        base: gw.base.clone(),
    };

    let customer = token(ActorKind::Customer, "c-1", None, 600)?;
    let placed = api
        .accepted(
            "/v1/orders",
            &customer,
            json!({"restaurant_id": "r-1",
                "items": [{"item_id": "soup", "name": "Soup", "quantity": 1, "unit_price_cents": 900}],
                "total_cents": 900,
                "restaurant_location": {"lat": 60.1699, "lng": 24.9384},
                "delivery_location": {"lat": 60.1718, "lng": 24.9458}}),
        )
        .await?;
    let order = placed["order_id"].as_str().context("order id")?.to_owned();
    let follow = token(ActorKind::Customer, "c-1", Some(&order), 600)?;
    let restaurant = token(ActorKind::Restaurant, "r-1", None, 600)?;
    let dispatch = token(ActorKind::System, "dispatch", None, 600)?;
    let driver = token(ActorKind::Driver, "d-1", None, 600)?;
    let status_path = format!("/v1/orders/{order}/status");

    let mut live = LiveClient::open(&gw.ws_base, &order, &follow).await?;
    let snapshot = live.frame(WAIT).await?;
    ensure!(kind(&snapshot) == "snapshot", "{snapshot}");
    ensure!(snapshot["order_id"] == order.as_str(), "{snapshot}");
    let mut last_seq = snapshot["seq"].as_u64().context("seq")?;
    let mut frames = Vec::new();
    if snapshot["status"].is_null() {
        // Connected before the status pipeline saved the order: the PLACED frame follows.
        frames.extend(
            live.until(WAIT, |f| status_is(f, "PLACED"))
                .await
                .context("waiting for PLACED")?,
        );
    }

    for status in ["CONFIRMED", "PREPARING"] {
        api.accepted(&status_path, &restaurant, json!({"status": status}))
            .await?;
        frames.extend(
            live.until(WAIT, |f| status_is(f, status))
                .await
                .with_context(|| format!("waiting for {status} after {snapshot}"))?,
        );
    }
    api.accepted(
        &format!("/v1/orders/{order}/driver"),
        &dispatch,
        json!({"driver_id": "d-1"}),
    )
    .await?;
    frames.extend(
        live.until(WAIT, |f| {
            kind(f) == "status" && f["entry"]["kind"] == "DRIVER_ASSIGNED"
        })
        .await
        .context("waiting for the driver assignment")?,
    );

    // The driver is now ON_DELIVERY for the order (the status pipeline's driver state): their
    // pings reach the customer.
    let t0 = Timestamp::now().as_millis();
    let pings = [(60.1700, 24.9390), (60.1703, 24.9395)];
    for (i, (lat, lng)) in pings.iter().enumerate() {
        api.accepted(
            "/v1/drivers/d-1/location",
            &driver,
            json!({"lat": lat, "lng": lng, "recorded_at": t0 + i as i64 * 5_000 - 10_000,
                "ping_id": format!("{order}-p{i}")}),
        )
        .await?;
        let got = live
            .until(WAIT, |f| {
                kind(f) == "location" && at(f) == Some((*lat, *lng))
            })
            .await
            .with_context(|| format!("waiting for location {i}"))?;
        frames.extend(got);
    }
    // Refused pings: out of range and from the future at the gateway (422), a stale one in
    // the pipeline (a reject record). None reaches Redis or the socket.
    let (status, body) = api
        .post(
            "/v1/drivers/d-1/location",
            &driver,
            json!({"lat": 91.0, "lng": 24.9}),
        )
        .await?;
    ensure!(
        status == 422 && body["error"] == "invalid_location",
        "{status} {body}"
    );
    let (status, body) = api
        .post(
            "/v1/drivers/d-1/location",
            &driver,
            json!({"lat": 60.18, "lng": 24.95, "recorded_at": t0 + 3_600_000}),
        )
        .await?;
    ensure!(
        status == 422 && body["error"] == "invalid_timestamp",
        "{status} {body}"
    );
    let (status, body) = api
        .post("/v1/drivers/d-1/location", &driver, json!({"lat": "north"}))
        .await?;
    ensure!(
        status == 400 && body["error"] == "invalid_json",
        "{status} {body}"
    );
    // A stale fix is refused by the gateway itself (the location filter's own limit,
    // `location.max_age_ms`), before it costs a record; the filter's `stale` reject is
    // tested in location_pipeline.rs.
    let (status, body) = api
        .post(
            "/v1/drivers/d-2/location",
            &token(ActorKind::Driver, "d-2", None, 600)?,
            json!({"lat": 60.19, "lng": 24.99, "recorded_at": t0 - 600_000, "ping_id": format!("{order}-stale")}),
        )
        .await?;
    ensure!(
        status == 422 && body["error"] == "stale_ping",
        "{status} {body}"
    );

    // Every frame so far: numbered above the snapshot, strictly increasing.
    for f in &frames {
        let seq = f["seq"].as_u64().context("seq")?;
        ensure!(seq > last_seq, "seq {seq} after {last_seq}: {frames:?}");
        last_seq = seq;
    }
    ensure!(
        !frames
            .iter()
            .any(|f| at(f) == Some((60.19, 24.99)) || at(f) == Some((60.18, 24.95))),
        "a refused ping reached the socket: {frames:?}"
    );
    live.close().await?;

    // The trip in ScyllaDB: the two accepted positions, in fix order, nothing refused.
    let trip = scope
        .store()
        .await?
        .trip(&OrderId::new(order.clone()))
        .await?;
    let points: Vec<_> = trip
        .iter()
        .map(|p| {
            (
                p.ping_id.as_str().to_owned(),
                p.location.lat,
                p.location.lng,
            )
        })
        .collect();
    ensure!(
        points
            == vec![
                (format!("{order}-p0"), pings[0].0, pings[0].1),
                (format!("{order}-p1"), pings[1].0, pings[1].1),
            ],
        "{points:?}"
    );
    ensure!(trip.iter().all(|p| p.driver_id.as_str() == "d-1"));

    // Reconnect: the snapshot has the timeline so far and the driver where the last accepted
    // ping put them (GEOPOS), numbered at least as far as the frames already seen.
    let mut again = LiveClient::open(&gw.ws_base, &order, &follow).await?;
    let snap = again.frame(WAIT).await?;
    ensure!(kind(&snap) == "snapshot", "{snap}");
    ensure!(snap["status"] == "PREPARING", "{snap}");
    ensure!(
        snap["seq"].as_u64() >= Some(last_seq),
        "{snap} vs {last_seq}"
    );
    let timeline: Vec<_> = snap["timeline"]
        .as_array()
        .context("timeline")?
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_owned())
        .collect();
    ensure!(
        timeline == ["PLACED", "TRANSITION", "TRANSITION", "DRIVER_ASSIGNED"],
        "{timeline:?}"
    );
    ensure!(snap["driver"]["driver_id"] == "d-1", "{snap}");
    let (lat, lng) = at(&snap["driver"]).context("driver position in the snapshot")?;
    // GEOPOS answers the geohash cell's centre: within a metre.
    ensure!(
        (lat - pings[1].0).abs() < 1e-5 && (lng - pings[1].1).abs() < 1e-5,
        "{snap}"
    );

    // Away while the order moves through two statuses: resuming after the snapshot's `seq`
    // gets a `resumed` frame and exactly the two frames the status pipeline published
    // meanwhile, in order.
    let since = snap["seq"].as_u64().context("seq")?;
    again.close().await?;
    let feed = LiveFeed::new(
        assemble::redis(config).await?,
        config.redis_key_prefix.clone(),
    );
    let order_id = OrderId::new(order.clone());
    for (tok, status) in [(&restaurant, "READY_FOR_PICKUP"), (&driver, "PICKED_UP")] {
        api.accepted(&status_path, tok, json!({"status": status}))
            .await?;
    }
    Scope::eventually(WAIT, || async {
        let seq = feed.current_seq(&order_id).await.ok()?;
        (seq >= since + 2).then_some(())
    })
    .await
    .context("the two status frames published while away")?;
    let mut again = LiveClient::resume(&gw.ws_base, &order, &follow, since).await?;
    let first = again.frame(WAIT).await?;
    ensure!(
        kind(&first) == "resumed" && first["recovered"] == true && first["seq"] == since,
        "{first}"
    );
    let missed = [again.frame(WAIT).await?, again.frame(WAIT).await?];
    let got: Vec<_> = missed
        .iter()
        .map(|f| (f["seq"].as_u64(), f["status"].as_str()))
        .collect();
    ensure!(
        got == [
            (Some(since + 1), Some("READY_FOR_PICKUP")),
            (Some(since + 2), Some("PICKED_UP"))
        ],
        "{missed:?}"
    );

    // The rest of the order, live: the socket closes normally once it is delivered.
    for (tok, status) in [(&driver, "EN_ROUTE"), (&driver, "DELIVERED")] {
        api.accepted(&status_path, tok, json!({"status": status}))
            .await?;
        if let Err(e) = again.until(WAIT, |f| status_is(f, status)).await {
            let row: Value = api
                .http
                .get(format!("{}/v1/orders/{order}", api.base))
                .bearer_auth(&dispatch)
                .send()
                .await?
                .json()
                .await?;
            let rejects = doorstep_tests::topic_reader::read_all::<RejectedRecord>(
                &config.endpoints.kafka_brokers,
                &scope.topic(topics::ORDER_REJECTED),
                Duration::from_secs(5),
            )
            .await?;
            let rejects: Vec<_> = rejects
                .iter()
                .map(|r| (&r.value.reason_code, &r.value.message))
                .collect();
            return Err(e.context(format!(
                "waiting for {status} after reconnecting; the order: {}; rejects: {rejects:?}",
                row["status"]
            )));
        }
    }
    match again.next(WAIT).await? {
        Some(Received::Closed(1000, _)) => {}
        other => anyhow::bail!("expected a normal close after delivery, got {other:?}"),
    }
    let metrics = gw.metrics();
    ensure!(
        metrics.contains(
            "doorstep_gateway_websocket_closed_total{reason=\"order_over\",stream=\"track\"} 1"
        ) && metrics.contains("doorstep_gateway_websocket_resumes_total{outcome=\"recovered\"} 1"),
        "{metrics}"
    );

    gw.stop().await?;
    let _ = stop_location.send(true);
    location.await??;
    running.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_customer_follows_an_order_live_on_a_single_redis() -> anyhow::Result<()> {
    a_customer_follows_an_order_live("live_single", &[]).await
}

#[tokio::test]
async fn a_customer_follows_an_order_live_on_a_redis_cluster() -> anyhow::Result<()> {
    let urls = doorstep_tests::endpoints().redis_cluster_urls.join(",");
    a_customer_follows_an_order_live(
        "live_cluster",
        &[
            ("DOORSTEP_REDIS_MODE", "cluster"),
            ("DOORSTEP_REDIS_CLUSTER_URLS", urls.as_str()),
        ],
    )
    .await
}

#[tokio::test]
async fn tracking_refuses_what_a_token_does_not_entitle() -> anyhow::Result<()> {
    let scope = Scope::new("live_auth", &[]).await?;
    let config = &scope.config;
    let store = scope.store().await?;
    // An order of customer c-1, saved as the status pipeline would.
    let order = doorstep_tests::unique("o");
    let mut script =
        doorstep_tests::order_events::OrderScript::new(&order, Timestamp::now().as_millis());
    let customer = script.customer.clone();
    let place = script.place();
    let policy = doorstep_operators::order::OrderPolicy::default();
    let accepted = doorstep_operators::order::decide(None, &place, &policy)
        .accepted()
        .context("placed")?
        .clone();
    store.save(&accepted.state, &accepted.entries, 0).await?;

    let tracking = TrackingConfig::default().with_heartbeat(Duration::from_millis(300));
    let gw = GatewayUnderTest::start(config, tracking).await?;
    let refused = |tok: String| {
        let (ws, order) = (gw.ws_base.clone(), order.clone());
        async move {
            match LiveClient::connect(&ws, &order, &tok).await {
                Ok(_) => anyhow::bail!("connected"),
                Err(Ok(r)) => Ok((r.status, r.body["error"].as_str().unwrap_or("").to_owned())),
                Err(Err(e)) => Err(e),
            }
        }
    };
    let other = doorstep_tests::unique("o");
    let cases = [
        (
            token(ActorKind::Customer, &customer, Some(&other), 600)?,
            403,
            "forbidden",
        ),
        (
            token(ActorKind::Customer, "c-2", None, 600)?,
            403,
            "forbidden",
        ),
        (
            token(ActorKind::Driver, "d-1", None, 600)?,
            403,
            "forbidden",
        ),
        (
            token(ActorKind::Restaurant, "r-1", None, 600)?,
            403,
            "forbidden",
        ),
        (
            token(ActorKind::Customer, &customer, Some(&order), -5)?,
            401,
            "unauthorized",
        ),
        (
            TokenKey::new(b"not the gateway's secret but long enough")?.sign(&Claims::new(
                ActorKind::System,
                "ops",
                unix_now() + 600,
            ))?,
            401,
            "unauthorized",
        ),
        (String::new(), 401, "unauthorized"),
    ];
    for (i, (tok, status, code)) in cases.into_iter().enumerate() {
        let got = refused(tok).await?;
        ensure!(got == (status, code.to_owned()), "case {i}: {got:?}");
    }
    // Not a WebSocket request.
    let resp = reqwest::Client::new()
        .get(format!("{}/v1/orders/{order}/track", gw.base))
        .bearer_auth(token(ActorKind::Customer, &customer, None, 600)?)
        .send()
        .await?;
    ensure!(resp.status().as_u16() == 400);
    let body: Value = resp.json().await?;
    ensure!(body["error"] == "websocket_required", "{body}");

    // The customer's own token (no order claim) and a system token are admitted.
    for tok in [
        token(ActorKind::Customer, &customer, None, 600)?,
        token(ActorKind::System, "ops", None, 600)?,
    ] {
        let mut c = LiveClient::open(&gw.ws_base, &order, &tok).await?;
        let snap = c.frame(WAIT).await?;
        ensure!(
            snap["type"] == "snapshot" && snap["status"] == "PLACED",
            "{snap}"
        );
        c.close().await?;
    }
    // A token that expires while connected: closed with 4401.
    let mut c = LiveClient::open(
        &gw.ws_base,
        &order,
        &token(ActorKind::Customer, &customer, Some(&order), 2)?,
    )
    .await?;
    c.frame(WAIT).await?;
    match c.next(Duration::from_secs(10)).await? {
        Some(Received::Closed(4401, _)) => {}
        other => anyhow::bail!("expected 4401, got {other:?}"),
    }
    gw.stop().await?;
    Ok(())
}

/// A sample's value in Prometheus text (0 when absent).
fn metric(text: &str, sample: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(sample))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

fn location(order: &OrderId, n: u64) -> LiveEvent {
    LiveEvent::Location(LiveLocation {
        order_id: order.clone(),
        update_id: EventId::new(format!("p{n}")),
        driver_id: DriverId::new("d-1"),
        location: GeoPoint {
            lat: 60.17 + n as f64 * 1e-5,
            lng: 24.94,
        },
        at: Timestamp::now(),
    })
}

fn status(order: &OrderId, n: u32, padding: &str) -> LiveEvent {
    LiveEvent::Status(LiveStatus {
        order_id: order.clone(),
        status: OrderStatus::Preparing,
        entry: StatusHistoryEntry {
            order_id: order.clone(),
            seq: n,
            event_id: EventId::new(format!("e{n}")),
            kind: HistoryEntryKind::DriverAssigned,
            from: Some(OrderStatus::Preparing),
            to: OrderStatus::Preparing,
            actor: Actor::system("test"),
            reason: Some(padding.to_owned()),
            driver_id: None,
            at: Timestamp::now(),
        },
    })
}

#[tokio::test]
async fn a_stuck_client_does_not_hold_back_a_hundred_others() -> anyhow::Result<()> {
    const OTHERS: usize = 100;
    const ROUNDS: u32 = 40;
    const CAPACITY: usize = 64;
    // Small kernel send buffers (a production knob for many sockets), so that a client that
    // stops reading blocks the gateway's writes after kilobytes, not megabytes.
    let scope = Scope::new(
        "live_stuck",
        &[("DOORSTEP_GATEWAY_SOCKET_SEND_BUFFER", "16384")],
    )
    .await?;
    let config = &scope.config;
    scope.store().await?; // the keyspace the snapshots read
    // A send timeout longer than the test: if delivering to the others waited on the stuck
    // client, they would never finish.
    let tracking = TrackingConfig::default()
        .with_outbox_capacity(CAPACITY)
        .with_send_timeout(Duration::from_secs(600));
    let gw = GatewayUnderTest::start(config, tracking).await?;
    let order = OrderId::new(doorstep_tests::unique("o"));
    let tok = token(ActorKind::Customer, "c-1", Some(order.as_str()), 600)?;

    let stuck = stuck_client(&gw.ws_base, order.as_str(), &tok).await?;
    let mut others = Vec::with_capacity(OTHERS);
    for _ in 0..OTHERS {
        let mut c = LiveClient::open(&gw.ws_base, order.as_str(), &tok).await?;
        let snap = c.frame(WAIT).await?;
        ensure!(snap["type"] == "snapshot", "{snap}");
        others.push(c);
    }
    let channels = gw.metrics();
    ensure!(
        channels.contains("doorstep_gateway_live_channels 1"),
        "one Redis subscription for all sockets of the order: {channels}"
    );

    // Each round: 5 locations and a 4 KiB status frame. The order is new, so its frames are
    // numbered 1, 2, 3, ...: statuses are every 6th. The 100 others are each read by their
    // own task from before the first publish; the stuck client never reads a byte.
    let last = u64::from(ROUNDS) * 6;
    let status_seqs: Vec<u64> = (1..=u64::from(ROUNDS)).map(|r| r * 6).collect();
    let mut readers = tokio::task::JoinSet::new();
    for (i, mut c) in others.into_iter().enumerate() {
        let status_seqs = status_seqs.clone();
        readers.spawn(async move {
            let mut received = Vec::new();
            let mut statuses = Vec::new();
            let mut prev = 0;
            loop {
                let f = c.frame(WAIT).await.with_context(|| format!("client {i}"))?;
                let seq = f["seq"].as_u64().context("seq")?;
                received.push((seq, Instant::now()));
                ensure!(seq > prev, "client {i}: {seq} after {prev}");
                prev = seq;
                if f["type"] == "status" {
                    statuses.push(seq);
                }
                if seq == last {
                    break;
                }
            }
            ensure!(statuses == status_seqs, "client {i} missed status frames");
            anyhow::Ok((c, received))
        });
    }
    let live = LiveFeed::new(
        assemble::redis(config).await?,
        config.redis_key_prefix.clone(),
    );
    let padding = "x".repeat(4096);
    let mut published_at: BTreeMap<u64, Instant> = BTreeMap::new();
    let mut n = 0;
    for round in 0..ROUNDS {
        for _ in 0..5 {
            n += 1;
            let seq = live.publish(&location(&order, n)).await?;
            published_at.insert(seq, Instant::now());
        }
        let seq = live.publish(&status(&order, round, &padding)).await?;
        published_at.insert(seq, Instant::now());
    }
    ensure!(
        published_at.keys().copied().eq(1..=last),
        "sequence numbers"
    );
    let mut latencies_ms = Vec::new();
    let mut others = Vec::with_capacity(OTHERS);
    while let Some(r) = readers.join_next().await {
        let (c, received) = r??;
        others.push(c);
        for (seq, t) in received {
            let sent = published_at[&seq];
            latencies_ms.push(t.saturating_duration_since(sent).as_secs_f64() * 1e3);
        }
    }
    latencies_ms.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies_ms[((latencies_ms.len() - 1) as f64 * p) as usize];
    println!(
        "MEASURED {OTHERS} others beside a stuck client, {} frames (publish → read, publisher and clients in this process): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies_ms.len(),
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );

    // All that while the stuck client was open, its writes blocked: it has not been sent every
    // status frame (its outbox holds the rest, fewer than CAPACITY).
    let m = gw.metrics();
    ensure!(
        m.contains("doorstep_gateway_websocket_connections{stream=\"track\"} 101"),
        "{m}"
    );
    let sent_status = metric(
        &m,
        "doorstep_gateway_websocket_messages_sent_total{stream=\"track\",type=\"status\"}",
    );
    ensure!(
        sent_status < (OTHERS as f64 + 1.0) * f64::from(ROUNDS),
        "the stuck client got every frame: it was not stuck ({sent_status})"
    );

    // More status frames than its outbox holds: the stuck client is closed (4408) instead of
    // being buffered for; the others get them all.
    for round in ROUNDS..ROUNDS + CAPACITY as u32 + 8 {
        live.publish(&status(&order, round, "more")).await?;
    }
    let closed = Scope::eventually(WAIT, || async {
        let m = gw.metrics();
        m.contains(
            "doorstep_gateway_websocket_closed_total{reason=\"too_slow\",stream=\"track\"} 1",
        )
        .then_some(())
    })
    .await;
    ensure!(
        closed.is_some(),
        "the stuck client is still open: {}",
        gw.metrics()
    );
    let end = last + CAPACITY as u64 + 8;
    for (i, c) in others.iter_mut().enumerate() {
        let got = c
            .until(WAIT, |f| f["seq"].as_u64() == Some(end))
            .await
            .with_context(|| format!("client {i}"))?;
        ensure!(
            got.len() == CAPACITY + 8,
            "client {i}: {} frames",
            got.len()
        );
    }
    drop(stuck);
    for c in others {
        c.close().await?;
    }
    gw.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_driver_streams_pings_over_a_websocket() -> anyhow::Result<()> {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let scope = Scope::new("driver_stream", &[]).await?;
    let config = &scope.config;
    let gw = GatewayUnderTest::start(config, TrackingConfig::default()).await?;
    let connect = |driver: &str, tok: String| {
        let url = format!("{}/v1/drivers/{driver}/stream", gw.ws_base);
        async move {
            let mut req = url.into_client_request()?;
            req.headers_mut()
                .insert("authorization", format!("Bearer {tok}").parse()?);
            anyhow::Ok(tokio_tungstenite::connect_async(req).await)
        }
    };
    // Another driver's token is refused before the upgrade.
    match connect("d-7", token(ActorKind::Driver, "d-8", None, 600)?).await? {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            ensure!(resp.status().as_u16() == 403, "{:?}", resp.status());
        }
        other => anyhow::bail!("expected a 403, got {:?}", other.map(|_| ())),
    }
    let (mut ws, _) = connect("d-7", token(ActorKind::Driver, "d-7", None, 600)?)
        .await?
        .map_err(|e| anyhow::anyhow!("connect: {e}"))?;
    let mut answer = async |msg: Message| -> anyhow::Result<Value> {
        ws.send(msg).await?;
        loop {
            match tokio::time::timeout(WAIT, ws.next())
                .await?
                .context("closed")??
            {
                Message::Text(t) => return Ok(serde_json::from_str(t.as_str())?),
                Message::Ping(_) | Message::Pong(_) => {}
                other => anyhow::bail!("unexpected {other:?}"),
            }
        }
    };
    let now = Timestamp::now().as_millis();
    let ok = answer(Message::text(
        json!({"pings": [
            {"lat": 60.17, "lng": 24.94, "recorded_at": now - 5_000, "ping_id": "s-1"},
            {"lat": 60.171, "lng": 24.94, "recorded_at": now, "ping_id": "s-2"}
        ]})
        .to_string(),
    ))
    .await?;
    ensure!(
        ok["accepted"] == 2 && ok["ping_ids"] == json!(["s-1", "s-2"]),
        "{ok}"
    );
    let bad = answer(Message::text(
        json!({"lat": 95.0, "lng": 24.94}).to_string(),
    ))
    .await?;
    ensure!(
        bad["error"] == "invalid_location" && bad["status"] == 422,
        "{bad}"
    );
    let garbled = answer(Message::text("{not json")).await?;
    ensure!(garbled["error"] == "invalid_json", "{garbled}");
    let binary = answer(Message::binary(vec![1, 2, 3])).await?;
    ensure!(binary["error"] == "invalid_frame", "{binary}");

    let pings = read_topic::<doorstep_schemas::events::LocationPing>(
        &config.endpoints.kafka_brokers,
        &scope.topic(topics::DRIVER_LOCATIONS),
        2,
        WAIT,
    )
    .await?;
    let ids: Vec<_> = pings.iter().map(|p| p.value.ping_id.as_str()).collect();
    ensure!(ids == ["s-1", "s-2"], "{ids:?}");
    ensure!(pings.iter().all(|p| p.key == "d-7"));
    gw.stop().await?;
    Ok(())
}
