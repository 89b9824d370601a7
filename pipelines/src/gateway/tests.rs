//! The gateway's routes against an in-memory sink (no broker): every answer code, what was
//! produced, and the metrics. The same behaviour against the real broker is tested in
//! `tests/tests/gateway.rs`.

use super::*;
use crate::auth::{Claims, TokenKey, unix_now};
use axum::body::Body;
use axum::http::{Request, header};
use doorstep_schemas::avro::Catalog;
use doorstep_schemas::events::{OrderCommand, OrderEvent};
use doorstep_schemas::model::{ActorKind, OrderStatus};
use futures::future::BoxFuture;
use prometheus::Registry;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt;

const SECRET: &[u8] = b"gateway unit test secret, 32+ bytes";

/// What the sink does with a record.
#[derive(Clone, Copy)]
enum Mode {
    Ack,
    Fail,
    Hang,
}

type Sent = (String, Vec<u8>, Vec<u8>, Vec<(String, Vec<u8>)>);

struct TestSink {
    mode: Mode,
    sent: Mutex<Vec<Sent>>,
}

impl EventSink for TestSink {
    fn send<'a>(
        &'a self,
        topic: &'a str,
        key: &'a [u8],
        payload: &'a [u8],
        headers: &'a [(&'a str, &'a [u8])],
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            match self.mode {
                Mode::Ack => {
                    let headers = headers
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), v.to_vec()))
                        .collect();
                    if let Ok(mut sent) = self.sent.lock() {
                        sent.push((topic.to_owned(), key.to_vec(), payload.to_vec(), headers));
                    }
                    Ok(())
                }
                Mode::Fail => Err("broker down".to_owned()),
                Mode::Hang => futures::future::pending().await,
            }
        })
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), String>> {
        let mode = self.mode;
        Box::pin(async move {
            match mode {
                Mode::Ack => Ok(()),
                _ => Err("broker down".to_owned()),
            }
        })
    }
}

struct Harness {
    app: Router,
    sink: Arc<TestSink>,
}

fn harness(mode: Mode) -> Harness {
    let sink = Arc::new(TestSink {
        mode,
        sent: Mutex::new(Vec::new()),
    });
    let registry = Registry::new();
    let state = GatewayState::new(
        TokenKey::new(SECRET).unwrap(),
        sink.clone(),
        Catalog::embedded().unwrap(),
        GatewayConfig::new("t.orders.events.v1", "t.drivers.locations.v1")
            .with_produce_timeout(Duration::from_millis(200)),
        GatewayMetrics::register(&registry).unwrap(),
    );
    let health = health(&state);
    Harness {
        // The API and, for these tests, the ops routes the ops listener serves.
        app: router(state).merge(crate::ops::router(registry, health)),
        sink,
    }
}

fn token(kind: ActorKind, id: &str, order: Option<&str>) -> String {
    let mut c = Claims::new(kind, id, unix_now() + 600);
    if let Some(o) = order {
        c = c.for_order(o);
    }
    TokenKey::new(SECRET).unwrap().sign(&c).unwrap()
}

fn customer() -> String {
    token(ActorKind::Customer, "c-1", None)
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

impl Harness {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
    ) -> (StatusCode, axum::http::HeaderMap, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let req = req.body(body.map_or_else(Body::empty, Body::from)).unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, headers, json)
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        let (s, _, j) = self
            .call("POST", path, Some(token), Some(body.to_string()))
            .await;
        (s, j)
    }

    fn sent(&self) -> Vec<Sent> {
        self.sink.sent.lock().unwrap().clone()
    }
}

fn assert_error(got: &(StatusCode, Value), status: u16, code: &str) {
    assert_eq!(got.0.as_u16(), status, "{:?}", got.1);
    assert_eq!(got.1["error"], code, "{:?}", got.1);
    assert!(
        got.1["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{:?}",
        got.1
    );
}

#[tokio::test]
async fn placing_an_order_produces_the_event() {
    let h = harness(Mode::Ack);
    let (status, body) = h.post("/v1/orders", &customer(), place_body()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let order_id = body["order_id"].as_str().unwrap();
    let event_id = body["event_id"].as_str().unwrap();
    assert_eq!(
        uuid::Uuid::parse_str(order_id).unwrap().get_version_num(),
        7
    );
    assert_eq!(
        uuid::Uuid::parse_str(event_id).unwrap().get_version_num(),
        7
    );

    let sent = h.sent();
    assert_eq!(sent.len(), 1);
    let (topic, key, payload, headers) = &sent[0];
    assert_eq!(topic, "t.orders.events.v1");
    assert_eq!(key, order_id.as_bytes());
    assert_eq!(
        headers,
        &vec![("event_id".to_owned(), event_id.as_bytes().to_vec())]
    );
    let ev: OrderEvent = Catalog::embedded().unwrap().decode(payload).await.unwrap();
    assert_eq!(ev.event_id.as_str(), event_id);
    assert_eq!(ev.order_id.as_str(), order_id);
    assert_eq!(ev.actor, doorstep_schemas::model::Actor::customer("c-1"));
    let OrderCommand::Place(p) = ev.command else {
        panic!("{:?}", ev.command)
    };
    assert_eq!(p.customer_id.as_str(), "c-1");
    assert_eq!(p.total_cents, 2000);
    assert_eq!(p.items.len(), 2);
    assert!((ev.occurred_at.as_millis() - unix_now() * 1000).abs() < 10_000);
}

#[tokio::test]
async fn the_order_id_comes_from_the_body_or_the_token() {
    let h = harness(Mode::Ack);
    let mut body = place_body();
    body["order_id"] = json!("o-chosen");
    let (s, b) = h.post("/v1/orders", &customer(), body.clone()).await;
    assert_eq!(
        (s, b["order_id"].as_str()),
        (StatusCode::ACCEPTED, Some("o-chosen"))
    );
    let scoped = token(ActorKind::Customer, "c-1", Some("o-scoped"));
    let (s, b) = h.post("/v1/orders", &scoped, place_body()).await;
    assert_eq!(
        (s, b["order_id"].as_str()),
        (StatusCode::ACCEPTED, Some("o-scoped"))
    );
    // A token for one order cannot place another.
    assert_error(&h.post("/v1/orders", &scoped, body).await, 403, "forbidden");
    assert_eq!(h.sent().len(), 2);
}

#[tokio::test]
async fn the_other_commands_produce_their_events() {
    let h = harness(Mode::Ack);
    let system = token(ActorKind::System, "dispatch", None);
    let restaurant = token(ActorKind::Restaurant, "r-1", Some("o-1"));
    let driver = token(ActorKind::Driver, "d-1", Some("o-1"));
    let cases = [
        (
            "/v1/orders/o-1/driver",
            &system,
            json!({"driver_id": "d-1"}),
        ),
        (
            "/v1/orders/o-1/status",
            &restaurant,
            json!({"status": "CONFIRMED"}),
        ),
        (
            "/v1/orders/o-1/status",
            &system,
            json!({"status": "CONFIRMED"}),
        ),
        (
            "/v1/orders/o-1/status",
            &driver,
            json!({"status": "EN_ROUTE"}),
        ),
        (
            "/v1/orders/o-1/cancel",
            &driver,
            json!({"reason": "  flat tyre "}),
        ),
        (
            "/v1/orders/o-1/cancel",
            &customer(),
            json!({"reason": "changed my mind"}),
        ),
    ];
    for (path, t, body) in &cases {
        let (s, b) = h.post(path, t, body.clone()).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{path} {b}");
        assert_eq!(b["order_id"], "o-1");
    }
    let catalog = Catalog::embedded().unwrap();
    let mut commands = Vec::new();
    for (_, _, p, _) in h.sent() {
        let e = catalog.decode::<OrderEvent>(&p).await.unwrap();
        commands.push((e.actor.kind, e.command));
    }
    assert_eq!(
        commands,
        vec![
            (
                ActorKind::System,
                OrderCommand::AssignDriver {
                    driver_id: "d-1".into()
                }
            ),
            (
                ActorKind::Restaurant,
                OrderCommand::Transition {
                    to: OrderStatus::Confirmed
                }
            ),
            (
                ActorKind::System,
                OrderCommand::Transition {
                    to: OrderStatus::Confirmed
                }
            ),
            (
                ActorKind::Driver,
                OrderCommand::Transition {
                    to: OrderStatus::EnRoute
                }
            ),
            (
                ActorKind::Driver,
                OrderCommand::Cancel {
                    reason: "flat tyre".into()
                }
            ),
            (
                ActorKind::Customer,
                OrderCommand::Cancel {
                    reason: "changed my mind".into()
                }
            ),
        ]
    );
}

#[tokio::test]
async fn tokens_are_required_and_checked() {
    let h = harness(Mode::Ack);
    let body = Some(place_body().to_string());
    let (s, headers, j) = h.call("POST", "/v1/orders", None, body.clone()).await;
    assert_error(&(s, j), 401, "unauthorized");
    assert!(
        headers[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );

    let other_key = TokenKey::new(b"some other secret of 32 bytes or more").unwrap();
    let forged = other_key
        .sign(&Claims::new(ActorKind::Customer, "c-1", unix_now() + 600))
        .unwrap();
    let expired = TokenKey::new(SECRET)
        .unwrap()
        .sign(&Claims::new(ActorKind::Customer, "c-1", unix_now() - 1))
        .unwrap();
    for bad in [forged.as_str(), expired.as_str(), "garbage", ""] {
        let (s, headers, j) = h.call("POST", "/v1/orders", Some(bad), body.clone()).await;
        assert_error(&(s, j), 401, "unauthorized");
        assert!(
            headers[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
    }
    let restaurant = token(ActorKind::Restaurant, "r-1", None);
    assert_error(
        &h.post("/v1/orders", &restaurant, place_body()).await,
        403,
        "forbidden",
    );
    let status = json!({"status": "CONFIRMED"});
    assert_error(
        &h.post("/v1/orders/o-1/status", &customer(), status.clone())
            .await,
        403,
        "forbidden",
    );
    let for_o1 = token(ActorKind::Restaurant, "r-1", Some("o-1"));
    assert_error(
        &h.post("/v1/orders/o-2/status", &for_o1, status).await,
        403,
        "forbidden",
    );
    assert_error(
        &h.post(
            "/v1/orders/o-1/driver",
            &for_o1,
            json!({"driver_id": "d-1"}),
        )
        .await,
        403,
        "forbidden",
    );
    assert_error(
        &h.post(
            "/v1/orders/o-1/cancel",
            &token(ActorKind::System, "x", None),
            json!({"reason": "x"}),
        )
        .await,
        403,
        "forbidden",
    );
    assert!(h.sent().is_empty());
}

#[tokio::test]
async fn bad_bodies_are_refused_with_their_codes() {
    let h = harness(Mode::Ack);
    let c = customer();
    let place = |f: fn(&mut Value)| {
        let mut b = place_body();
        f(&mut b);
        b
    };
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!([1, 2]), 400, "invalid_json"),
        (
            place(|b| b["total_cents"] = json!("2000")),
            400,
            "invalid_json",
        ),
        (place(|b| b["tip"] = json!(1)), 400, "invalid_json"),
        (
            place(|b| {
                b.as_object_mut().unwrap().remove("restaurant_id");
            }),
            400,
            "invalid_json",
        ),
        (place(|b| b["items"] = json!([])), 422, "no_items"),
        (
            place(|b| b["items"][0]["quantity"] = json!(0)),
            422,
            "invalid_quantity",
        ),
        (
            place(|b| b["items"][0]["quantity"] = json!(-1)),
            422,
            "invalid_quantity",
        ),
        (
            place(|b| b["items"][0]["unit_price_cents"] = json!(-1)),
            422,
            "negative_price",
        ),
        (
            place(|b| b["items"][0]["name"] = json!("")),
            422,
            "invalid_item_name",
        ),
        (
            place(|b| b["total_cents"] = json!(1999)),
            422,
            "total_mismatch",
        ),
        (
            place(|b| b["delivery_location"]["lat"] = json!(90.5)),
            422,
            "invalid_location",
        ),
        (
            place(|b| b["restaurant_location"]["lng"] = json!(-181)),
            422,
            "invalid_location",
        ),
        (
            place(|b| b["restaurant_id"] = json!("r 1")),
            422,
            "invalid_id",
        ),
        (
            place(|b| b["restaurant_id"] = json!("r".repeat(129))),
            422,
            "invalid_id",
        ),
        (place(|b| b["order_id"] = json!("o/1")), 422, "invalid_id"),
        (
            place(|b| b["items"][0]["item_id"] = json!("")),
            422,
            "invalid_id",
        ),
    ];
    for (body, status, code) in cases {
        let got = h.post("/v1/orders", &c, body.clone()).await;
        assert_error(&got, status, code);
        if code == "invalid_json" && body.is_object() {
            let msg = got.1["message"].as_str().unwrap();
            assert!(
                msg.contains("line") && msg.contains("column"),
                "serde's message: {msg}"
            );
        }
    }
    let r = token(ActorKind::Restaurant, "r-1", None);
    let d = token(ActorKind::Driver, "d-1", None);
    let s = token(ActorKind::System, "dispatch", None);
    let cases: Vec<(&str, &String, Value, u16, &str)> = vec![
        (
            "/v1/orders/o-1/status",
            &r,
            json!({"status": "SHIPPED"}),
            422,
            "unknown_status",
        ),
        (
            "/v1/orders/o-1/status",
            &r,
            json!({"status": "confirmed"}),
            422,
            "unknown_status",
        ),
        (
            "/v1/orders/o-1/status",
            &r,
            json!({"status": "CANCELLED"}),
            422,
            "not_a_transition",
        ),
        (
            "/v1/orders/o-1/status",
            &r,
            json!({"status": "PLACED"}),
            422,
            "not_a_transition",
        ),
        (
            "/v1/orders/o-1/status",
            &r,
            json!({"status": "DELIVERED"}),
            403,
            "actor_not_allowed",
        ),
        (
            "/v1/orders/o-1/status",
            &d,
            json!({"status": "PREPARING"}),
            403,
            "actor_not_allowed",
        ),
        (
            "/v1/orders/o-1/status",
            &s,
            json!({"status": "PREPARING"}),
            403,
            "actor_not_allowed",
        ),
        (
            "/v1/orders/o-1/status",
            &r,
            json!({"state": "CONFIRMED"}),
            400,
            "invalid_json",
        ),
        (
            "/v1/orders/o%201/status",
            &r,
            json!({"status": "CONFIRMED"}),
            422,
            "invalid_id",
        ),
        (
            "/v1/orders/o-1/driver",
            &s,
            json!({"driver_id": ""}),
            422,
            "invalid_id",
        ),
        (
            "/v1/orders/o-1/driver",
            &s,
            json!({"driver_id": 7}),
            400,
            "invalid_json",
        ),
        (
            "/v1/orders/o-1/cancel",
            &d,
            json!({"reason": "  "}),
            422,
            "missing_reason",
        ),
        (
            "/v1/orders/o-1/cancel",
            &d,
            json!({"reason": "x".repeat(501)}),
            422,
            "reason_too_long",
        ),
    ];
    for (path, t, body, status, code) in cases {
        assert_error(&h.post(path, t, body).await, status, code);
    }
    // Not JSON at all, and not declared as JSON.
    let (s, _, j) = h
        .call("POST", "/v1/orders", Some(&c), Some("{".into()))
        .await;
    assert_error(&(s, j), 400, "invalid_json");
    let req = Request::post("/v1/orders")
        .header(header::AUTHORIZATION, format!("Bearer {c}"))
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from(place_body().to_string()))
        .unwrap();
    let resp = h.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(h.sent().is_empty(), "nothing produced");
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let h = harness(Mode::Ack);
    let mut body = place_body();
    body["items"][0]["name"] = json!("x".repeat(70 * 1024));
    assert_error(
        &h.post("/v1/orders", &customer(), body).await,
        413,
        "payload_too_large",
    );
    assert!(h.sent().is_empty());
}

#[tokio::test]
async fn the_public_router_has_no_ops_routes() {
    let registry = Registry::new();
    let sink = Arc::new(TestSink {
        mode: Mode::Ack,
        sent: Mutex::new(Vec::new()),
    });
    let state = GatewayState::new(
        TokenKey::new(SECRET).unwrap(),
        sink,
        Catalog::embedded().unwrap(),
        GatewayConfig::new("t.orders.events.v1", "t.drivers.locations.v1"),
        GatewayMetrics::register(&registry).unwrap(),
    );
    let public = router(state);
    for path in ["/metrics", "/healthz"] {
        let req = Request::get(path).body(Body::empty()).unwrap();
        let resp = public.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let h = harness(Mode::Ack);
    let (s, _, j) = h.call("GET", "/v1/nothing", None, None).await;
    assert_error(&(s, j), 404, "not_found");
    let (s, _, j) = h
        .call("DELETE", "/v1/orders", Some(&customer()), None)
        .await;
    assert_error(&(s, j), 405, "method_not_allowed");
}

#[tokio::test]
async fn a_failing_or_silent_broker_is_503_with_retry_after() {
    for mode in [Mode::Fail, Mode::Hang] {
        let h = harness(mode);
        let started = std::time::Instant::now();
        let (s, headers, j) = h
            .call(
                "POST",
                "/v1/orders",
                Some(&customer()),
                Some(place_body().to_string()),
            )
            .await;
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_error(&(s, j), 503, "broker_unavailable");
        assert_eq!(headers[header::RETRY_AFTER], "2");
        let (s, _, j) = h.call("GET", "/healthz", None, None).await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{j}");
    }
}

#[tokio::test]
async fn metrics_count_requests_events_and_rejections() {
    let h = harness(Mode::Ack);
    h.post("/v1/orders", &customer(), place_body()).await;
    h.post("/v1/orders", &customer(), json!({})).await;
    h.call("POST", "/v1/orders", None, None).await;
    let (s, _, j) = h.call("GET", "/healthz", None, None).await;
    assert_eq!(
        (s, j["checks"]["kafka"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let req = Request::get("/metrics").body(Body::empty()).unwrap();
    let resp = h.app.clone().oneshot(req).await.unwrap();
    let text = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let text = String::from_utf8(text.to_vec()).unwrap();
    for line in [
        r#"doorstep_gateway_http_requests_total{route="/v1/orders",status="202"} 1"#,
        r#"doorstep_gateway_http_requests_total{route="/v1/orders",status="400"} 1"#,
        r#"doorstep_gateway_http_requests_total{route="/v1/orders",status="401"} 1"#,
        r#"doorstep_gateway_events_produced_total{command="place"} 1"#,
        r#"doorstep_gateway_rejected_requests_total{reason="invalid_json"} 1"#,
        r#"doorstep_gateway_rejected_requests_total{reason="unauthorized"} 1"#,
        r#"doorstep_gateway_http_request_duration_seconds_count{route="/v1/orders"} 3"#,
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
}

/// An order store in memory: one placed order `o-1` of customer `c-1` at restaurant `r-1`,
/// or a failing store.
struct MemoryOrders {
    fail: bool,
}

impl OrderReader for MemoryOrders {
    fn load<'a>(
        &'a self,
        order_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<doorstep_operators::order::OrderState>, String>> {
        Box::pin(async move {
            if self.fail {
                return Err("cql down".to_owned());
            }
            if order_id != "o-1" {
                return Ok(None);
            }
            let place = doorstep_schemas::events::PlaceOrder {
                customer_id: "c-1".into(),
                restaurant_id: "r-1".into(),
                items: vec![
                    doorstep_schemas::model::OrderItem {
                        item_id: "pizza".into(),
                        name: "Pizza".into(),
                        quantity: 1,
                        unit_price_cents: 1400,
                    },
                    doorstep_schemas::model::OrderItem {
                        item_id: "cola".into(),
                        name: "Cola".into(),
                        quantity: 2,
                        unit_price_cents: 300,
                    },
                ],
                total_cents: 2000,
                restaurant_location: doorstep_schemas::model::GeoPoint::new(60.1699, 24.9384)
                    .map_err(|e| e.to_string())?,
                delivery_location: doorstep_schemas::model::GeoPoint::new(60.1718, 24.9458)
                    .map_err(|e| e.to_string())?,
            };
            let event = OrderEvent {
                event_id: "e-1".into(),
                order_id: "o-1".into(),
                occurred_at: doorstep_schemas::model::Timestamp::from_millis(1_700_000_000_000),
                actor: doorstep_schemas::model::Actor::customer("c-1"),
                command: OrderCommand::Place(place),
            };
            let decision = doorstep_operators::order::decide(
                None,
                &event,
                &doorstep_operators::order::OrderPolicy::default(),
            );
            Ok(decision.accepted().map(|a| a.state.clone()))
        })
    }
}

fn harness_with_orders(fail: bool) -> Harness {
    let sink = Arc::new(TestSink {
        mode: Mode::Ack,
        sent: Mutex::new(Vec::new()),
    });
    let registry = Registry::new();
    let state = GatewayState::new(
        TokenKey::new(SECRET).unwrap(),
        sink.clone(),
        Catalog::embedded().unwrap(),
        GatewayConfig::new("t.orders.events.v1", "t.drivers.locations.v1"),
        GatewayMetrics::register(&registry).unwrap(),
    )
    .with_orders(Arc::new(MemoryOrders { fail }));
    let health = health(&state);
    Harness {
        // The API and, for these tests, the ops routes the ops listener serves.
        app: router(state).merge(crate::ops::router(registry, health)),
        sink,
    }
}

#[tokio::test]
async fn reading_an_order_shows_status_and_timeline_to_its_parties() {
    let h = harness_with_orders(false);
    for t in [
        customer(),
        token(ActorKind::Customer, "c-1", Some("o-1")),
        token(ActorKind::Restaurant, "r-1", None),
        token(ActorKind::System, "support", None),
    ] {
        let (s, _, j) = h.call("GET", "/v1/orders/o-1", Some(&t), None).await;
        assert_eq!(s, StatusCode::OK, "{j}");
        assert_eq!(j["order_id"], "o-1");
        assert_eq!(j["status"], "PLACED");
        assert_eq!(j["customer_id"], "c-1");
        assert_eq!(j["total_cents"], 2000);
        assert_eq!(j["timeline"][0]["kind"], "PLACED");
        assert_eq!(j["timeline"][0]["to"], "PLACED");
        assert_eq!(j["timeline"][0]["actor"]["kind"], "CUSTOMER");
    }
    // Not a party, or no such order: the same 404.
    for (path, t) in [
        ("/v1/orders/o-1", token(ActorKind::Customer, "c-2", None)),
        ("/v1/orders/o-1", token(ActorKind::Restaurant, "r-2", None)),
        ("/v1/orders/o-9", customer()),
    ] {
        let (s, _, j) = h.call("GET", path, Some(&t), None).await;
        assert_error(&(s, j), 404, "order_not_found");
    }
    let (s, _, j) = h
        .call(
            "GET",
            "/v1/orders/o-1",
            Some(&token(ActorKind::Driver, "d-1", None)),
            None,
        )
        .await;
    assert_error(&(s, j), 403, "forbidden");
    let scoped = token(ActorKind::Customer, "c-1", Some("o-2"));
    let (s, _, j) = h.call("GET", "/v1/orders/o-1", Some(&scoped), None).await;
    assert_error(&(s, j), 403, "forbidden");
    let (s, _, j) = h.call("GET", "/v1/orders/o-1", None, None).await;
    assert_error(&(s, j), 401, "unauthorized");

    let failing = harness_with_orders(true);
    let (s, headers, j) = failing
        .call("GET", "/v1/orders/o-1", Some(&customer()), None)
        .await;
    assert_error(&(s, j), 503, "store_unavailable");
    assert!(headers.contains_key(header::RETRY_AFTER));
}

#[tokio::test]
async fn without_an_order_store_the_read_route_is_not_mounted() {
    let h = harness(Mode::Ack);
    let (s, _, j) = h
        .call("GET", "/v1/orders/o-1", Some(&customer()), None)
        .await;
    assert_error(&(s, j), 404, "not_found");
}

#[tokio::test]
async fn driver_pings_are_produced_keyed_by_driver() {
    let h = harness(Mode::Ack);
    let driver = token(ActorKind::Driver, "d-1", None);
    let now_ms = unix_now() * 1000;
    let one = json!({"lat": 60.17, "lng": 24.94, "accuracy_m": 5.0, "heading_deg": 90.0, "speed_mps": 8.5, "recorded_at": now_ms - 1000, "ping_id": "p-1"});
    let (s, b) = h.post("/v1/drivers/d-1/location", &driver, one).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    assert_eq!(b["accepted"], 1);
    assert_eq!(b["ping_ids"], json!(["p-1"]));
    let batch = json!({"pings": [{"lat": 60.17, "lng": 24.94}, {"lat": 60.171, "lng": 24.941}]});
    let (s, b) = h.post("/v1/drivers/d-1/location", &driver, batch).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    assert_eq!(b["accepted"], 2);

    let sent = h.sent();
    assert_eq!(sent.len(), 3);
    let catalog = Catalog::embedded().unwrap();
    for (topic, key, payload, headers) in &sent {
        assert_eq!(topic, "t.drivers.locations.v1");
        assert_eq!(key, b"d-1");
        let ping: doorstep_schemas::events::LocationPing = catalog.decode(payload).await.unwrap();
        assert_eq!(ping.driver_id.as_str(), "d-1");
        assert_eq!(
            headers[0],
            (
                "ping_id".to_owned(),
                ping.ping_id.as_str().as_bytes().to_vec()
            )
        );
        assert!(ping.received_at.as_millis() >= now_ms - 1000);
    }
    let first: doorstep_schemas::events::LocationPing = catalog.decode(&sent[0].2).await.unwrap();
    assert_eq!(first.recorded_at.as_millis(), now_ms - 1000);
    assert_eq!(
        (first.accuracy_m, first.heading_deg, first.speed_mps),
        (Some(5.0), Some(90.0), Some(8.5))
    );
    let second: doorstep_schemas::events::LocationPing = catalog.decode(&sent[1].2).await.unwrap();
    assert_eq!(
        second.recorded_at, second.received_at,
        "recorded_at defaults to now"
    );
}

#[tokio::test]
async fn bad_pings_are_refused_and_produce_nothing() {
    let h = harness(Mode::Ack);
    let driver = token(ActorKind::Driver, "d-1", None);
    let future = unix_now() * 1000 + 10 * 60_000;
    let many: Vec<Value> = (0..101).map(|_| json!({"lat": 0, "lng": 0})).collect();
    let cases: Vec<(&str, String, Value, u16, &str)> = vec![
        (
            "/v1/drivers/d-2/location",
            driver.clone(),
            json!({"lat": 0, "lng": 0}),
            403,
            "forbidden",
        ),
        (
            "/v1/drivers/d-1/location",
            customer(),
            json!({"lat": 0, "lng": 0}),
            403,
            "forbidden",
        ),
        (
            "/v1/drivers/d-1/location",
            driver.clone(),
            json!({"lat": 91, "lng": 0}),
            422,
            "invalid_location",
        ),
        (
            "/v1/drivers/d-1/location",
            driver.clone(),
            json!({"lat": 0, "lng": 0, "accuracy_m": -1}),
            422,
            "invalid_accuracy",
        ),
        (
            "/v1/drivers/d-1/location",
            driver.clone(),
            json!({"lat": 0, "lng": 0, "heading_deg": 360}),
            422,
            "invalid_heading",
        ),
        (
            "/v1/drivers/d-1/location",
            driver.clone(),
            json!({"lat": 0, "lng": 0, "speed_mps": -3}),
            422,
            "invalid_speed",
        ),
        (
            "/v1/drivers/d-1/location",
            driver.clone(),
            json!({"lat": 0, "lng": 0, "recorded_at": future}),
            422,
            "invalid_timestamp",
        ),
        (
            "/v1/drivers/d-1/location",
            driver.clone(),
            json!({"lat": 0, "lng": 0, "ping_id": "p 1"}),
            422,
            "invalid_id",
        ),
        (
            "/v1/drivers/d-1/location",
            driver.clone(),
            json!({"pings": []}),
            422,
            "no_pings",
        ),
        (
            "/v1/drivers/d-1/location",
            driver.clone(),
            json!({"pings": many}),
            422,
            "too_many_pings",
        ),
        (
            "/v1/drivers/d-1/location",
            driver.clone(),
            json!({"pings": [{"lat": 0, "lng": 0}, {"lat": 0, "lng": 181}]}),
            422,
            "invalid_location",
        ),
        (
            "/v1/drivers/d-1/location",
            driver.clone(),
            json!({"lat": "0", "lng": 0}),
            400,
            "invalid_json",
        ),
        (
            "/v1/drivers/d-1/location",
            driver.clone(),
            json!({"lat": 0}),
            400,
            "invalid_json",
        ),
        (
            "/v1/drivers/d-1/location",
            driver.clone(),
            json!({"pings": [{"lat": 0, "lng": 0, "alt": 3}]}),
            400,
            "invalid_json",
        ),
    ];
    for (path, t, body, status, code) in cases {
        assert_error(&h.post(path, &t, body).await, status, code);
    }
    assert!(h.sent().is_empty());
    let failing = harness(Mode::Fail);
    let got = failing
        .post(
            "/v1/drivers/d-1/location",
            &driver,
            json!({"lat": 0, "lng": 0}),
        )
        .await;
    assert_error(&got, 503, "broker_unavailable");
}
