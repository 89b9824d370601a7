//! The gateway against the real broker (`scripts/services up`): started in-process on
//! 127.0.0.1:0 exactly as `doorstep gateway` builds it, with its own topic prefix per test.
//!
//! - an accepted request is on `orders.events.v1`, keyed by order id with an `event_id`
//!   header, and decodes to the `OrderEvent` the token and the body describe;
//! - every refused request gets its status and code and produces nothing (the topic's high
//!   watermark does not move);
//! - a gateway pointed at a dead broker answers 503 within its produce timeout;
//! - shutdown stops the server promptly.

use anyhow::{Context, Result, ensure};
use doorstep_connectors::config::Service;
use doorstep_connectors::kafka::rdkafka::producer::Producer as _;
use doorstep_connectors::kafka::{Admin, ConsumerBuilder, KafkaConfig, Producer, Record};
use doorstep_pipelines::auth::{Claims, TokenKey, unix_now};
use doorstep_pipelines::config::{Config, Source};
use doorstep_pipelines::gateway::Gateway;
use doorstep_pipelines::shutdown;
use doorstep_schemas::events::{LocationPing, OrderCommand, OrderEvent, topics};
use doorstep_schemas::model::{Actor, ActorKind, OrderStatus};
use doorstep_tests::{OrServiceDown, endpoints, unique};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

const SECRET: &str = "integration-test secret of 32+ bytes";
/// Generous bound for group joins on a busy 2-core machine.
const SLOW: Duration = Duration::from_secs(30);

/// A gateway serving on a loopback port, with its topic and a way to stop it.
struct Running {
    base: String,
    /// The ops listener (`/metrics`, `/healthz`).
    ops: String,
    topic: String,
    locations_topic: String,
    brokers: String,
    http: reqwest::Client,
    stop: shutdown::Trigger,
    task: JoinHandle<Result<(), doorstep_pipelines::gateway::GatewayError>>,
}

/// The configuration a test gateway runs with: its own topic prefix, the given brokers.
fn config(brokers: &str) -> Result<Config> {
    let mut env = doorstep_tests::service_env();
    env.extend([
        ("DOORSTEP_KAFKA_BROKERS".to_owned(), brokers.to_owned()),
        (
            "DOORSTEP_TOPIC_PREFIX".to_owned(),
            format!("{}.", unique("gw")),
        ),
        ("DOORSTEP_AUTH_SECRET".to_owned(), SECRET.to_owned()),
        // These tests are about producing: any restaurant (the edge has its own tests).
        ("DOORSTEP_GATEWAY_RESTAURANTS".to_owned(), "*".to_owned()),
    ]);
    Ok(Config::from_source(&Source::from_parts(None, env)?)?)
}

/// Starts a gateway on `brokers`; creates its events topic (one partition) when `create`.
async fn start(brokers: &str, produce_timeout: Duration, create: bool) -> Result<Running> {
    let config = config(brokers)?;
    let topic = config.topic(topics::ORDER_EVENTS);
    if create {
        let e = endpoints();
        let kafka = KafkaConfig::new(brokers, "doorstep-tests")
            .with_connect_timeout(Duration::from_secs(3));
        Producer::new(&kafka)?
            .ping()
            .await
            .or_service_down(Service::Kafka, &e)?;
        let locations = config.topic(topics::DRIVER_LOCATIONS);
        Admin::new(&kafka)?
            .ensure_topics(&[(&topic, 1), (&locations, 1)])
            .await?;
    }
    let gateway = Gateway::from_config(&config, produce_timeout).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let ops_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let ops = format!("http://{}", ops_listener.local_addr()?);
    let ops_router = gateway.ops_router();
    tokio::spawn(async move { axum::serve(ops_listener, ops_router).await });
    let (stop, signal) = shutdown::channel();
    let task = tokio::spawn(gateway.serve(listener, signal));
    Ok(Running {
        base,
        ops,
        locations_topic: config.topic(topics::DRIVER_LOCATIONS),
        topic,
        brokers: brokers.to_owned(),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()?,
        stop,
        task,
    })
}

fn token(kind: ActorKind, id: &str, order: Option<&str>) -> Result<String> {
    let mut claims = Claims::new(kind, id, unix_now() + 600);
    if let Some(o) = order {
        claims = claims.for_order(o);
    }
    Ok(TokenKey::new(SECRET.as_bytes())?.sign(&claims)?)
}

fn place_body() -> Value {
    json!({
        "restaurant_id": "r-1",
        "items": [
            {"item_id": "pizza", "name": "Pizza", "quantity": 1, "unit_price_cents": 1400},
            {"item_id": "cola", "name": "Cola", "quantity": 2, "unit_price_cents": 300}
        ],
        "total_cents": 2000,
        "restaurant_location": {"lat": 60.1699, "lng": 24.9384},
        "delivery_location": {"lat": 60.1718, "lng": 24.9458}
    })
}

/// An HTTP answer: status, headers, JSON body (`null` if none).
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or_default()
    }
}

impl Running {
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Answer> {
        let resp = req.send().await.context("gateway did not answer")?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Result<Answer> {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    /// A GET on the ops listener.
    async fn get_ops(&self, path: &str) -> Result<Answer> {
        self.send(self.http.get(format!("{}{path}", self.ops)))
            .await
    }

    /// Records on the topic so far (its one partition's high watermark).
    async fn produced(&self) -> Result<i64> {
        let producer = Producer::new(&KafkaConfig::new(&self.brokers, "doorstep-tests"))?;
        let topic = self.topic.clone();
        let (_, high) = tokio::task::spawn_blocking(move || {
            producer
                .inner()
                .client()
                .fetch_watermarks(&topic, 0, Duration::from_secs(5))
        })
        .await??;
        Ok(high)
    }

    /// Reads `n` records of the order events topic from the start.
    async fn read(&self, n: usize) -> Result<Vec<Record>> {
        self.read_topic(&self.topic, n).await
    }

    /// Reads `n` records of `topic` from the start.
    async fn read_topic(&self, topic: &str, n: usize) -> Result<Vec<Record>> {
        let kafka = KafkaConfig::new(&self.brokers, "doorstep-tests");
        let consumer = ConsumerBuilder::new(&kafka, unique("gw-reader")).subscribe(&[topic])?;
        let mut out = Vec::with_capacity(n);
        let end = tokio::time::Instant::now() + SLOW;
        while out.len() < n {
            let next = tokio::time::timeout_at(end, consumer.recv())
                .await
                .with_context(|| format!("only {} of {n} records within {SLOW:?}", out.len()))?;
            out.push(next?);
        }
        Ok(out)
    }

    async fn stop(self) -> Result<()> {
        let _ = self.stop.send(true);
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .context("gateway did not stop within 10 s of the shutdown signal")???;
        Ok(())
    }
}

async fn decode(record: &Record) -> Result<OrderEvent> {
    let payload = record
        .payload
        .as_deref()
        .context("record without a value")?;
    Ok(doorstep_tests::catalog()
        .await?
        .decode::<OrderEvent>(payload)
        .await?)
}

#[tokio::test]
async fn accepted_requests_are_produced_as_order_events() -> Result<()> {
    let gw = start(&endpoints().kafka_brokers, Duration::from_secs(5), true).await?;
    let customer = token(ActorKind::Customer, "c-1", None)?;
    let placed = gw
        .post("/v1/orders", Some(&customer), &place_body())
        .await?;
    ensure!(placed.status == 202, "{:?}", placed.body);
    let order_id = placed.body["order_id"]
        .as_str()
        .context("order_id")?
        .to_owned();
    let place_event_id = placed.body["event_id"]
        .as_str()
        .context("event_id")?
        .to_owned();
    let path = |what: &str| format!("/v1/orders/{order_id}/{what}");

    let system = token(ActorKind::System, "dispatch", None)?;
    let restaurant = token(ActorKind::Restaurant, "r-1", Some(&order_id))?;
    let follow_ups = [
        (path("driver"), &system, json!({"driver_id": "d-1"})),
        (path("status"), &restaurant, json!({"status": "CONFIRMED"})),
        (
            path("cancel"),
            &customer,
            json!({"reason": "changed my mind"}),
        ),
    ];
    let mut event_ids = vec![place_event_id];
    for (p, t, body) in &follow_ups {
        let a = gw.post(p, Some(t), body).await?;
        ensure!(a.status == 202, "{p}: {} {:?}", a.status, a.body);
        ensure!(a.body["order_id"] == order_id.as_str(), "{:?}", a.body);
        event_ids.push(a.body["event_id"].as_str().context("event_id")?.to_owned());
    }

    let records = gw.read(4).await?;
    let mut events = Vec::new();
    for (record, event_id) in records.iter().zip(&event_ids) {
        ensure!(
            record.key.as_deref() == Some(order_id.as_bytes()),
            "key: {record:?}"
        );
        ensure!(
            record.header("event_id") == Some(event_id.as_bytes()),
            "event_id header: {record:?}"
        );
        let ev = decode(record).await?;
        ensure!(ev.event_id.as_str() == event_id && ev.order_id.as_str() == order_id);
        ensure!((ev.occurred_at.as_millis() - unix_now() * 1000).abs() < 60_000);
        events.push(ev);
    }
    ensure!(
        events[0].actor == Actor::customer("c-1"),
        "{:?}",
        events[0].actor
    );
    let OrderCommand::Place(p) = &events[0].command else {
        anyhow::bail!("first event is not a placement: {:?}", events[0].command);
    };
    ensure!(
        p.customer_id.as_str() == "c-1",
        "the token's subject is the customer"
    );
    ensure!(p.restaurant_id.as_str() == "r-1" && p.total_cents == 2000 && p.items.len() == 2);
    ensure!(
        (p.delivery_location.lat - 60.1718).abs() < 1e-9,
        "{:?}",
        p.delivery_location
    );
    let rest: Vec<_> = events[1..]
        .iter()
        .map(|e| (e.actor.clone(), e.command.clone()))
        .collect();
    ensure!(
        rest == vec![
            (
                Actor::system("dispatch"),
                OrderCommand::AssignDriver {
                    driver_id: "d-1".into()
                }
            ),
            (
                Actor::restaurant("r-1"),
                OrderCommand::Transition {
                    to: OrderStatus::Confirmed
                }
            ),
            (
                Actor::customer("c-1"),
                OrderCommand::Cancel {
                    reason: "changed my mind".into()
                }
            ),
        ],
        "{rest:?}"
    );

    let metrics = gw
        .http
        .get(format!("{}/metrics", gw.ops))
        .send()
        .await?
        .text()
        .await?;
    for line in [
        r#"doorstep_gateway_events_produced_total{command="place"} 1"#,
        r#"doorstep_gateway_http_requests_total{route="/v1/orders",status="202"} 1"#,
    ] {
        ensure!(metrics.contains(line), "missing {line}:\n{metrics}");
    }
    let health = gw.get_ops("/healthz").await?;
    ensure!(
        health.status == 200 && health.body["checks"]["kafka"] == "ok",
        "{:?}",
        health.body
    );
    gw.stop().await
}

#[tokio::test]
async fn refused_requests_get_their_code_and_produce_nothing() -> Result<()> {
    let gw = start(&endpoints().kafka_brokers, Duration::from_secs(5), true).await?;
    let customer = token(ActorKind::Customer, "c-1", None)?;
    let restaurant_o1 = token(ActorKind::Restaurant, "r-1", Some("o-1"))?;
    let system = token(ActorKind::System, "dispatch", None)?;
    let expired = TokenKey::new(SECRET.as_bytes())?.sign(&Claims::new(
        ActorKind::Customer,
        "c-1",
        unix_now() - 5,
    ))?;
    let forged = TokenKey::new(b"not the gateway's secret, but long enough")?.sign(
        &Claims::new(ActorKind::System, "dispatch", unix_now() + 600),
    )?;
    let with = |f: fn(&mut Value)| {
        let mut b = place_body();
        f(&mut b);
        b
    };
    let status = |s: &str| json!({ "status": s });
    let cases: Vec<(&str, Option<&str>, Value, u16, &str)> = vec![
        // Tokens.
        ("/v1/orders", None, place_body(), 401, "unauthorized"),
        (
            "/v1/orders",
            Some(&expired),
            place_body(),
            401,
            "unauthorized",
        ),
        (
            "/v1/orders",
            Some(&forged),
            place_body(),
            401,
            "unauthorized",
        ),
        (
            "/v1/orders",
            Some("not-a-token"),
            place_body(),
            401,
            "unauthorized",
        ),
        (
            "/v1/orders",
            Some(&restaurant_o1),
            place_body(),
            403,
            "forbidden",
        ),
        (
            "/v1/orders/o-2/status",
            Some(&restaurant_o1),
            status("CONFIRMED"),
            403,
            "forbidden",
        ),
        (
            "/v1/orders/o-1/status",
            Some(&customer),
            status("CONFIRMED"),
            403,
            "forbidden",
        ),
        (
            "/v1/orders/o-1/driver",
            Some(&restaurant_o1),
            json!({"driver_id": "d-1"}),
            403,
            "forbidden",
        ),
        // JSON shape.
        (
            "/v1/orders",
            Some(&customer),
            json!("an order"),
            400,
            "invalid_json",
        ),
        (
            "/v1/orders",
            Some(&customer),
            with(|b| b["total_cents"] = json!("20")),
            400,
            "invalid_json",
        ),
        (
            "/v1/orders",
            Some(&customer),
            with(|b| b["coupon"] = json!("X")),
            400,
            "invalid_json",
        ),
        (
            "/v1/orders/o-1/status",
            Some(&restaurant_o1),
            json!({}),
            400,
            "invalid_json",
        ),
        // Contents.
        (
            "/v1/orders",
            Some(&customer),
            with(|b| b["items"] = json!([])),
            422,
            "no_items",
        ),
        (
            "/v1/orders",
            Some(&customer),
            with(|b| b["items"][0]["quantity"] = json!(0)),
            422,
            "invalid_quantity",
        ),
        (
            "/v1/orders",
            Some(&customer),
            with(|b| b["items"][1]["unit_price_cents"] = json!(-300)),
            422,
            "negative_price",
        ),
        (
            "/v1/orders",
            Some(&customer),
            with(|b| b["total_cents"] = json!(2001)),
            422,
            "total_mismatch",
        ),
        (
            "/v1/orders",
            Some(&customer),
            with(|b| b["delivery_location"]["lat"] = json!(-91)),
            422,
            "invalid_location",
        ),
        (
            "/v1/orders",
            Some(&customer),
            with(|b| b["restaurant_location"]["lng"] = json!(200)),
            422,
            "invalid_location",
        ),
        (
            "/v1/orders",
            Some(&customer),
            with(|b| b["order_id"] = json!("x".repeat(200))),
            422,
            "invalid_id",
        ),
        (
            "/v1/orders",
            Some(&customer),
            with(|b| b["restaurant_id"] = json!("r<1>")),
            422,
            "invalid_id",
        ),
        (
            "/v1/orders/o-1/status",
            Some(&restaurant_o1),
            status("SHIPPED"),
            422,
            "unknown_status",
        ),
        (
            "/v1/orders/o-1/status",
            Some(&restaurant_o1),
            status("CANCELLED"),
            422,
            "not_a_transition",
        ),
        (
            "/v1/orders/o-1/status",
            Some(&restaurant_o1),
            status("DELIVERED"),
            403,
            "actor_not_allowed",
        ),
        (
            "/v1/orders/o-1/driver",
            Some(&system),
            json!({"driver_id": "d 1"}),
            422,
            "invalid_id",
        ),
        (
            "/v1/orders/o-1/cancel",
            Some(&customer),
            json!({"reason": ""}),
            422,
            "missing_reason",
        ),
    ];
    for (path, tok, body, want_status, want_code) in &cases {
        let a = gw.post(path, *tok, body).await?;
        ensure!(
            a.status == *want_status && a.error() == *want_code,
            "{path} {body}: expected {want_status} {want_code}, got {} {:?}",
            a.status,
            a.body
        );
        ensure!(
            a.body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{:?}",
            a.body
        );
        if a.status == 401 {
            let challenge = a.headers.get("www-authenticate").map(|v| v.to_str());
            ensure!(
                matches!(challenge, Some(Ok(v)) if v.starts_with("Bearer")),
                "401 without WWW-Authenticate: Bearer: {challenge:?}"
            );
        }
    }
    // Over the body limit.
    let mut big = place_body();
    big["items"][0]["name"] = json!("x".repeat(100 * 1024));
    let a = gw.post("/v1/orders", Some(&customer), &big).await?;
    ensure!(
        a.status == 413 && a.error() == "payload_too_large",
        "{} {:?}",
        a.status,
        a.body
    );

    ensure!(
        gw.produced().await? == 0,
        "a refused request produced a record"
    );
    // The watermark does move for an accepted one.
    let a = gw
        .post("/v1/orders", Some(&customer), &place_body())
        .await?;
    ensure!(a.status == 202, "{:?}", a.body);
    ensure!(gw.produced().await? == 1);

    let metrics = gw
        .http
        .get(format!("{}/metrics", gw.ops))
        .send()
        .await?
        .text()
        .await?;
    ensure!(
        metrics.contains(r#"doorstep_gateway_rejected_requests_total{reason="unauthorized"} 4"#),
        "{metrics}"
    );
    gw.stop().await
}

/// `Prefer` and `Idempotency-Key` are checked like the body; a gateway without Redis (no live
/// tracking) cannot wait for an outcome and answers 202 at once, and a key still makes a
/// re-sent command the same event.
#[tokio::test]
async fn command_headers_are_checked_and_a_gateway_without_redis_answers_at_once() -> Result<()> {
    let gw = start(&endpoints().kafka_brokers, Duration::from_secs(5), true).await?;
    let customer = token(ActorKind::Customer, "c-1", None)?;
    let restaurant = token(ActorKind::Restaurant, "r-1", None)?;
    let post = |path: &str, tok: &str, body: Value, headers: &[(&str, &str)]| {
        let mut req = gw
            .http
            .post(format!("{}{path}", gw.base))
            .bearer_auth(tok)
            .json(&body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        gw.send(req)
    };
    let refused = [
        (vec![("prefer", "wait=soon")], "invalid_prefer"),
        (vec![("prefer", "respond-async, wait=-1")], "invalid_prefer"),
        (vec![("idempotency-key", "")], "invalid_idempotency_key"),
        (
            vec![("idempotency-key", "a"), ("idempotency-key", "b")],
            "invalid_idempotency_key",
        ),
    ];
    let long_key = "k".repeat(256);
    let mut cases: Vec<(Vec<(&str, &str)>, &str)> = refused.to_vec();
    cases.push((
        vec![("idempotency-key", long_key.as_str())],
        "invalid_idempotency_key",
    ));
    for (headers, code) in &cases {
        let a = post(
            "/v1/orders/o-1/status",
            &restaurant,
            json!({"status": "CONFIRMED"}),
            headers,
        )
        .await?;
        ensure!(
            a.status == 400 && a.error() == *code,
            "{headers:?}: {} {:?}",
            a.status,
            a.body
        );
        ensure!(a.body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    ensure!(gw.produced().await? == 0, "a refused request produced");

    // No Redis to hear the outcome from: 202 at once, without Preference-Applied.
    let a = post(
        "/v1/orders/o-1/status",
        &restaurant,
        json!({"status": "CONFIRMED"}),
        &[("prefer", "wait=5")],
    )
    .await?;
    ensure!(a.status == 202, "{} {:?}", a.status, a.body);
    ensure!(
        a.headers.get("preference-applied").is_none(),
        "{:?}",
        a.headers
    );
    // The same placement twice with a key: one order id and one event id, derived from the
    // key (with no outcome store to answer the second, it is produced again; the pipeline
    // sees the same event twice).
    let mut ids = Vec::new();
    for _ in 0..2 {
        let a = post(
            "/v1/orders",
            &customer,
            place_body(),
            &[("idempotency-key", "place-once")],
        )
        .await?;
        ensure!(a.status == 202, "{} {:?}", a.status, a.body);
        ids.push((a.body["order_id"].clone(), a.body["event_id"].clone()));
    }
    ensure!(ids[0] == ids[1], "{ids:?}");
    let other = post(
        "/v1/orders",
        &token(ActorKind::Customer, "c-2", None)?,
        place_body(),
        &[("idempotency-key", "place-once")],
    )
    .await?;
    ensure!(
        other.body["order_id"] != ids[0].0,
        "another customer's key is another order: {:?}",
        other.body
    );
    let records = gw.read(4).await?;
    let mut events = Vec::with_capacity(records.len());
    for r in &records {
        events.push(decode(r).await?);
    }
    ensure!(
        events[1].event_id == events[2].event_id && events[1].order_id == events[2].order_id,
        "{events:?}"
    );
    ensure!(events[1].event_id.as_str() == ids[0].1.as_str().unwrap_or_default());

    let metrics = gw
        .http
        .get(format!("{}/metrics", gw.ops))
        .send()
        .await?
        .text()
        .await?;
    for line in [
        r#"doorstep_gateway_command_waits_total{result="unavailable"} 1"#,
        r#"doorstep_gateway_rejected_requests_total{reason="invalid_prefer"} 2"#,
    ] {
        ensure!(metrics.contains(line), "missing {line}:\n{metrics}");
    }
    gw.stop().await
}

#[tokio::test]
async fn a_dead_broker_is_503_within_the_produce_timeout() -> Result<()> {
    // A port nothing listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let timeout = Duration::from_secs(1);
    let gw = start(&dead.to_string(), timeout, false).await?;
    let customer = token(ActorKind::Customer, "c-1", None)?;
    let started = Instant::now();
    let a = gw
        .post("/v1/orders", Some(&customer), &place_body())
        .await?;
    let took = started.elapsed();
    ensure!(
        a.status == 503 && a.error() == "broker_unavailable",
        "{} {:?}",
        a.status,
        a.body
    );
    ensure!(a.headers.contains_key("retry-after"), "{:?}", a.headers);
    ensure!(
        took < timeout + Duration::from_secs(2),
        "answered after {took:?}, produce timeout {timeout:?}"
    );
    let health = gw.get_ops("/healthz").await?;
    ensure!(health.status == 503, "{:?}", health.body);
    gw.stop().await
}

#[tokio::test]
async fn driver_pings_reach_drivers_locations() -> Result<()> {
    let gw = start(&endpoints().kafka_brokers, Duration::from_secs(5), true).await?;
    let driver = token(ActorKind::Driver, "d-7", None)?;
    let batch = json!({"pings": [
        {"lat": 60.1699, "lng": 24.9384, "speed_mps": 7.5, "ping_id": "p-1"},
        {"lat": 60.1702, "lng": 24.9391, "heading_deg": 45.0, "ping_id": "p-2"}
    ]});
    let a = gw
        .post("/v1/drivers/d-7/location", Some(&driver), &batch)
        .await?;
    ensure!(
        a.status == 202 && a.body["accepted"] == 2,
        "{} {:?}",
        a.status,
        a.body
    );
    let refused = gw
        .post(
            "/v1/drivers/d-8/location",
            Some(&driver),
            &json!({"lat": 0, "lng": 0}),
        )
        .await?;
    ensure!(refused.status == 403, "{:?}", refused.body);

    let records = gw.read_topic(&gw.locations_topic, 2).await?;
    let catalog = doorstep_tests::catalog().await?;
    let mut ids = Vec::new();
    for r in &records {
        ensure!(r.key.as_deref() == Some(&b"d-7"[..]), "{r:?}");
        let ping: LocationPing = catalog
            .decode(r.payload.as_deref().unwrap_or_default())
            .await?;
        ensure!(ping.driver_id.as_str() == "d-7");
        ensure!(r.header("ping_id") == Some(ping.ping_id.as_str().as_bytes()));
        ids.push(ping.ping_id.0);
    }
    ids.sort();
    ensure!(ids == ["p-1", "p-2"], "{ids:?}");
    gw.stop().await
}

#[tokio::test]
async fn reading_an_order_comes_from_the_order_store() -> Result<()> {
    use doorstep_connectors::order_store::OrderStore;
    use doorstep_connectors::scylla::{self as cql, Replication, ScyllaConfig};
    use doorstep_operators::order::{OrderPolicy, decide};
    use doorstep_schemas::model::Timestamp;
    use doorstep_tests::unique_ident;
    use std::sync::Arc;

    let e = endpoints();
    // The order the status pipeline would have saved: placed, then confirmed.
    let keyspace = unique_ident("gw");
    let session = cql::connect(&ScyllaConfig::new(e.cql_nodes.clone()))
        .await
        .or_service_down(Service::Cql, &e)?;
    cql::create_keyspace(&session, &keyspace, &Replication::Simple(1)).await?;
    OrderStore::ensure_schema(&session, &keyspace).await?;
    let store = OrderStore::new(Arc::new(session), &keyspace).await?;
    let order_id = unique("o");
    let event = |n: u32, actor: Actor, command: OrderCommand| OrderEvent {
        event_id: format!("e-{n}").into(),
        order_id: order_id.as_str().into(),
        occurred_at: Timestamp::from_millis(1_700_000_000_000 + i64::from(n) * 1000),
        actor,
        command,
    };
    let place = doorstep_tests::order_events::soup_order(2, 650);
    let policy = OrderPolicy::default();
    let mut state = None;
    for ev in [
        event(1, Actor::customer("c-1"), OrderCommand::Place(place)),
        event(
            2,
            Actor::restaurant("r-1"),
            OrderCommand::Transition {
                to: OrderStatus::Confirmed,
            },
        ),
    ] {
        let accepted = decide(state.as_ref(), &ev, &policy);
        let accepted = accepted.accepted().context("not accepted")?;
        store.save(&accepted.state, &accepted.entries, 0).await?;
        state = Some(accepted.state.clone());
    }

    let mut config = config(&e.kafka_brokers)?;
    config.cql_keyspace = keyspace;
    let gateway = Gateway::from_config(&config, Duration::from_secs(5))
        .await?
        .with_order_store(&config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, signal) = shutdown::channel();
    let task = tokio::spawn(gateway.serve(listener, signal));
    let http = reqwest::Client::new();
    let get = |tok: String, id: String| {
        let req = http.get(format!("{base}/v1/orders/{id}")).bearer_auth(tok);
        async move {
            let resp = req.send().await?;
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            anyhow::Ok((status, body))
        }
    };

    let (status, body) = get(token(ActorKind::Customer, "c-1", None)?, order_id.clone()).await?;
    ensure!(status == 200, "{status} {body}");
    ensure!(
        body["order_id"] == order_id.as_str() && body["status"] == "CONFIRMED",
        "{body}"
    );
    ensure!(
        body["total_cents"] == 1300 && body["items"][0]["item_id"] == "soup",
        "{body}"
    );
    let timeline: Vec<_> = body["timeline"]
        .as_array()
        .context("timeline")?
        .iter()
        .map(|t| {
            (
                t["kind"].clone(),
                t["to"].clone(),
                t["actor"]["kind"].clone(),
            )
        })
        .collect();
    ensure!(
        timeline
            == vec![
                (json!("PLACED"), json!("PLACED"), json!("CUSTOMER")),
                (json!("TRANSITION"), json!("CONFIRMED"), json!("RESTAURANT")),
            ],
        "{timeline:?}"
    );
    let (status, _) = get(token(ActorKind::Restaurant, "r-1", None)?, order_id.clone()).await?;
    ensure!(status == 200);
    let (status, body) = get(token(ActorKind::Customer, "c-2", None)?, order_id.clone()).await?;
    ensure!(
        status == 404 && body["error"] == "order_not_found",
        "{status} {body}"
    );
    let (status, body) = get(token(ActorKind::Customer, "c-1", None)?, unique("o")).await?;
    ensure!(
        status == 404 && body["error"] == "order_not_found",
        "{status} {body}"
    );

    let _ = stop.send(true);
    tokio::time::timeout(Duration::from_secs(10), task).await???;
    Ok(())
}
