//! The public edge against a real gateway (real broker, Redis, CQL): server timeouts and the
//! connection cap, rate limits and quotas, the open-order cap, the restaurant registry and the
//! service area, token scopes, key rotation and lifetimes, WebSocket limits, and the ops routes
//! kept off the public port. Every refusal is checked for its status, its JSON code and that
//! nothing reached Kafka.

use anyhow::{Context, Result, ensure};
use doorstep_pipelines::auth::{Claims, TokenKey, unix_now};
use doorstep_schemas::model::ActorKind;
use doorstep_tests::edge_harness::{EdgeGateway, SECRET};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn place_body(restaurant: &str, at: (f64, f64)) -> Value {
    json!({
        "restaurant_id": restaurant,
        "items": [{"item_id": "soup", "name": "Soup", "quantity": 1, "unit_price_cents": 1950}],
        "total_cents": 1950,
        "restaurant_location": {"lat": at.0, "lng": at.1},
        "delivery_location": {"lat": 60.1718, "lng": 24.9458}
    })
}

/// r-kluuvi of the default (`demo`) registry.
const KLUUVI: (f64, f64) = (60.17167, 24.94506);

async fn post(
    gw: &EdgeGateway,
    path: &str,
    token: &str,
    body: &Value,
) -> Result<(u16, Value, reqwest::header::HeaderMap)> {
    let resp = gw
        .http
        .post(format!("{}{path}", gw.base))
        .bearer_auth(token)
        .json(body)
        .send()
        .await?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    Ok((status, resp.json().await.unwrap_or(Value::Null), headers))
}

fn is_error(body: &Value, code: &str) -> bool {
    body["error"] == code && body["message"].as_str().is_some_and(|m| !m.is_empty())
}

/// Whether the server closed `stream` (EOF or reset) within `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 512];
    let end = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(end, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {} // a 408 or similar answer before the close
        }
    }
}

/// Hundreds of clients that send half a request head are disconnected by the header-read
/// timeout, while a well-behaved client is served meanwhile. Without a timer on the server
/// (axum::serve as before) none of them was ever closed.
#[tokio::test]
async fn half_sent_requests_are_closed_by_the_header_timeout_while_others_are_served() -> Result<()>
{
    const SLOW: usize = 300;
    let gw = EdgeGateway::start(
        &[
            ("DOORSTEP_GATEWAY_HEADER_READ_TIMEOUT_MS", "5000"),
            ("DOORSTEP_GATEWAY_IDLE_TIMEOUT_MS", "60000"),
        ],
        false,
    )
    .await?;
    let mut slow = Vec::with_capacity(SLOW);
    for _ in 0..SLOW {
        let mut s = TcpStream::connect(gw.addr()).await?;
        s.write_all(b"POST /v1/orders HTTP/1.1\r\nHost: x\r\nContent-Ty")
            .await?;
        slow.push(s);
    }
    // Served while the slow ones hang: the answer (401 without a token) comes while every
    // half-sent request is still open.
    let resp = gw
        .http
        .post(format!("{}/v1/orders", gw.base))
        .json(&json!({}))
        .send()
        .await?;
    ensure!(resp.status() == 401, "{}", resp.status());
    let mut still_open = 0;
    let mut buf = [0u8; 64];
    for s in &slow {
        if matches!(s.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock) {
            still_open += 1;
        }
    }
    ensure!(
        still_open == SLOW,
        "only {still_open} of {SLOW} half-sent requests were open when the other was served"
    );
    // Every slow one is closed once the timeout passed (generous bound for a busy machine).
    let mut open = 0;
    for s in &mut slow {
        if !closed_within(s, Duration::from_secs(20)).await {
            open += 1;
        }
    }
    ensure!(open == 0, "{open} of {SLOW} half-sent requests still open");
    let m = gw.metrics().await?;
    let closed: f64 = m
        .lines()
        .find(|l| l.starts_with(r#"doorstep_gateway_connections_closed_total{reason="timeout"}"#))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0);
    ensure!(closed >= SLOW as f64, "closed by timeout: {closed}\n{m}");
    ensure!(gw.produced().await? == 0);
    gw.stop().await
}

/// A connection that sends nothing at all is closed by the idle timeout even when the header
/// timeout is long; a request whose body never completes gets 408 `request_timeout`.
#[tokio::test]
async fn idle_connections_and_slow_bodies_are_cut() -> Result<()> {
    let gw = EdgeGateway::start(
        &[
            ("DOORSTEP_GATEWAY_HEADER_READ_TIMEOUT_MS", "60000"),
            ("DOORSTEP_GATEWAY_IDLE_TIMEOUT_MS", "1000"),
            ("DOORSTEP_GATEWAY_REQUEST_TIMEOUT_MS", "1000"),
        ],
        false,
    )
    .await?;
    let mut idle = TcpStream::connect(gw.addr()).await?;
    ensure!(
        closed_within(&mut idle, Duration::from_secs(15)).await,
        "an idle connection stayed open"
    );

    let token = gw.token(ActorKind::Customer, "c-slow", None);
    let mut s = TcpStream::connect(gw.addr()).await?;
    let head = format!(
        "POST /v1/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{{\"restaurant_id\""
    );
    s.write_all(head.as_bytes()).await?;
    // Keep the connection busy (so the idle timer does not fire first) without finishing.
    let mut answer = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut buf = [0u8; 1024];
    while tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buf[..n]);
                if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                    break;
                }
            }
            Err(_) => {
                let _ = s.write_all(b" ").await;
            }
        }
    }
    let text = String::from_utf8_lossy(&answer);
    ensure!(text.starts_with("HTTP/1.1 408"), "{text}");
    ensure!(text.contains("\"request_timeout\""), "{text}");
    ensure!(gw.produced().await? == 0);
    gw.stop().await
}

/// At `gateway.max_connections` the gateway stops accepting: one more client is not served
/// until a place frees up.
#[tokio::test]
async fn the_connection_cap_holds_new_clients_until_one_closes() -> Result<()> {
    const CAP: usize = 20;
    let gw = EdgeGateway::start(
        &[
            ("DOORSTEP_GATEWAY_MAX_CONNECTIONS", "20"),
            ("DOORSTEP_GATEWAY_HEADER_READ_TIMEOUT_MS", "60000"),
        ],
        false,
    )
    .await?;
    let mut held = Vec::new();
    for _ in 0..CAP {
        held.push(TcpStream::connect(gw.addr()).await?);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(800))
        .build()?;
    let blocked = client.get(format!("{}/v1/nowhere", gw.base)).send().await;
    ensure!(blocked.is_err(), "served beyond the cap: {blocked:?}");
    held.clear();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let served = client.get(format!("{}/v1/nowhere", gw.base)).send().await?;
    ensure!(served.status() == 404, "{}", served.status());
    gw.stop().await
}

/// A token subject above its rate gets 429 `rate_limited` with `Retry-After`; another subject
/// is not affected; nothing refused is produced.
#[tokio::test]
async fn a_subject_above_its_rate_is_429_and_others_are_not() -> Result<()> {
    let gw = EdgeGateway::start(
        &[
            ("DOORSTEP_GATEWAY_RATE_LIMIT_PER_S", "1"),
            ("DOORSTEP_GATEWAY_RATE_LIMIT_BURST", "3"),
            ("DOORSTEP_GATEWAY_SERVICE_AREA", "*"),
        ],
        false,
    )
    .await?;
    let driver = gw.token(ActorKind::Driver, "d-1", None);
    let ping = json!({"lat": 60.17, "lng": 24.94});
    let mut codes = Vec::new();
    let started = std::time::Instant::now();
    for _ in 0..6 {
        let (status, body, headers) = post(&gw, "/v1/drivers/d-1/location", &driver, &ping).await?;
        if status == 429 {
            ensure!(is_error(&body, "rate_limited"), "{body}");
            ensure!(headers.contains_key("retry-after"), "{headers:?}");
        }
        codes.push(status);
    }
    // The burst of 3, plus one more per second the six requests took (a loaded machine can
    // take over a second for them).
    let refilled = usize::try_from(started.elapsed().as_secs()).unwrap_or(usize::MAX);
    let accepted = codes.iter().filter(|c| **c == 202).count();
    ensure!(
        (3..=3 + refilled).contains(&accepted) && accepted < 6,
        "{codes:?} in {:?}",
        started.elapsed()
    );
    ensure!(
        codes.iter().filter(|c| **c == 429).count() == 6 - accepted,
        "{codes:?}"
    );
    let other = gw.token(ActorKind::Driver, "d-2", None);
    let (status, body, _) = post(&gw, "/v1/drivers/d-2/location", &other, &ping).await?;
    ensure!(status == 202, "{status} {body}");
    ensure!(
        gw.produced().await? == i64::try_from(accepted + 1)?,
        "only accepted pings are produced"
    );
    gw.stop().await
}

/// The hourly quota of placements per customer.
#[tokio::test]
async fn a_customer_over_the_hourly_order_quota_is_429() -> Result<()> {
    let gw = EdgeGateway::start(&[("DOORSTEP_GATEWAY_ORDERS_PER_HOUR", "2")], false).await?;
    let c = gw.token(ActorKind::Customer, "c-quota", None);
    for i in 0..2 {
        let (status, body, _) =
            post(&gw, "/v1/orders", &c, &place_body("r-kluuvi", KLUUVI)).await?;
        ensure!(status == 202, "placement {i}: {status} {body}");
    }
    let (status, body, headers) =
        post(&gw, "/v1/orders", &c, &place_body("r-kluuvi", KLUUVI)).await?;
    ensure!(
        status == 429 && is_error(&body, "order_quota_exceeded"),
        "{status} {body}"
    );
    ensure!(headers.contains_key("retry-after"));
    ensure!(gw.produced().await? == 2);
    gw.stop().await
}

/// Restaurants outside the registry, a restaurant location far from the registered one, and
/// places outside the service area are 422 with their code; stale pings (1970) too.
#[tokio::test]
async fn places_outside_the_registry_or_the_service_area_are_422() -> Result<()> {
    let gw = EdgeGateway::start(&[], false).await?;
    let c = gw.token(ActorKind::Customer, "c-1", None);
    let cases = [
        (place_body("r-nowhere", KLUUVI), "unknown_restaurant"),
        (
            place_body("r-kluuvi", (60.2, 24.9)),
            "restaurant_location_mismatch",
        ),
        (place_body("r-kluuvi", (10.0, 10.0)), "outside_service_area"),
        (
            {
                let mut b = place_body("r-kluuvi", KLUUVI);
                b["delivery_location"] = json!({"lat": -33.9, "lng": 151.2});
                b
            },
            "outside_service_area",
        ),
    ];
    for (body, code) in &cases {
        let (status, answer, _) = post(&gw, "/v1/orders", &c, body).await?;
        ensure!(
            status == 422 && is_error(&answer, code),
            "{code}: {status} {answer}"
        );
    }
    let d = gw.token(ActorKind::Driver, "d-1", None);
    for (ping, code) in [
        (json!({"lat": 0.0, "lng": 0.0}), "outside_service_area"),
        (
            json!({"lat": 60.17, "lng": 24.94, "recorded_at": 1000}),
            "stale_ping",
        ),
        (
            json!({"lat": 60.17, "lng": 24.94, "recorded_at": (unix_now() - 3600) * 1000}),
            "stale_ping",
        ),
    ] {
        let (status, answer, _) = post(&gw, "/v1/drivers/d-1/location", &d, &ping).await?;
        ensure!(
            status == 422 && is_error(&answer, code),
            "{ping}: {status} {answer}"
        );
    }
    ensure!(gw.produced().await? == 0, "nothing refused was produced");
    let (status, answer, _) = post(&gw, "/v1/orders", &c, &place_body("r-kluuvi", KLUUVI)).await?;
    ensure!(status == 202, "{status} {answer}");
    gw.stop().await
}

/// The open-order cap: counted in Redis, pruned against the order store.
#[tokio::test]
async fn a_customer_with_too_many_open_orders_is_429_until_one_is_over() -> Result<()> {
    use doorstep_operators::order::{OrderPolicy, decide};
    use doorstep_schemas::events::{OrderCommand, OrderEvent, PlaceOrder};
    use doorstep_schemas::model::{Actor, GeoPoint, OrderItem, Timestamp};
    let gw = EdgeGateway::start(&[("DOORSTEP_GATEWAY_MAX_OPEN_ORDERS", "2")], true).await?;
    let customer = doorstep_tests::unique("c");
    let c = gw.token(ActorKind::Customer, &customer, None);
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (status, body, _) =
            post(&gw, "/v1/orders", &c, &place_body("r-kluuvi", KLUUVI)).await?;
        ensure!(status == 202, "{status} {body}");
        ids.push(body["order_id"].as_str().context("order_id")?.to_owned());
    }
    let (status, body, _) = post(&gw, "/v1/orders", &c, &place_body("r-kluuvi", KLUUVI)).await?;
    ensure!(
        status == 429 && is_error(&body, "too_many_open_orders"),
        "{status} {body}"
    );
    // Another customer is not affected.
    let other = gw.token(ActorKind::Customer, &doorstep_tests::unique("c"), None);
    let (status, body, _) =
        post(&gw, "/v1/orders", &other, &place_body("r-kluuvi", KLUUVI)).await?;
    ensure!(status == 202, "{status} {body}");
    // The first order is cancelled (as the status pipeline would save it): a place frees up.
    let store = doorstep_pipelines::assemble::order_store(&gw.config).await?;
    let at = Timestamp::now().as_millis();
    let event = |n: i64, actor: Actor, command: OrderCommand| OrderEvent {
        event_id: format!("e-{n}").into(),
        order_id: ids[0].as_str().into(),
        occurred_at: Timestamp::from_millis(at + n),
        actor,
        command,
    };
    let place = PlaceOrder {
        customer_id: customer.as_str().into(),
        restaurant_id: "r-kluuvi".into(),
        items: vec![OrderItem {
            item_id: "soup".into(),
            name: "Soup".into(),
            quantity: 1,
            unit_price_cents: 1950,
        }],
        total_cents: 1950,
        restaurant_location: GeoPoint::new(KLUUVI.0, KLUUVI.1)?,
        delivery_location: GeoPoint::new(60.1718, 24.9458)?,
    };
    let mut state = None;
    for ev in [
        event(
            1,
            Actor::customer(customer.as_str()),
            OrderCommand::Place(place),
        ),
        event(
            2,
            Actor::customer(customer.as_str()),
            OrderCommand::Cancel {
                reason: "changed my mind".into(),
            },
        ),
    ] {
        let decision = decide(state.as_ref(), &ev, &OrderPolicy::default());
        let accepted = decision.accepted().context("accepted")?;
        store.save(&accepted.state, &accepted.entries, 0).await?;
        state = Some(accepted.state.clone());
    }
    let (status, body, _) = post(&gw, "/v1/orders", &c, &place_body("r-kluuvi", KLUUVI)).await?;
    ensure!(status == 202, "after a cancellation: {status} {body}");
    ensure!(gw.produced().await? == 4);
    gw.stop().await
}

/// Scopes, key rotation, lifetimes.
#[tokio::test]
async fn read_tokens_cannot_act_and_only_known_short_lived_keys_verify() -> Result<()> {
    let old_secret = "previous edge secret: 1b3d5f7a9c2e4a6c8e0f";
    let previous = format!("k0={old_secret}");
    let gw = EdgeGateway::start(
        &[
            ("DOORSTEP_AUTH_KEY_ID", "k1"),
            ("DOORSTEP_AUTH_PREVIOUS_KEYS", previous.as_str()),
            ("DOORSTEP_TOKEN_MAX_TTL_S", "3600"),
        ],
        false,
    )
    .await?;
    let body = place_body("r-kluuvi", KLUUVI);
    let read = gw.sign(&Claims::new(ActorKind::Customer, "c-1", unix_now() + 600).read_only());
    let (status, answer, _) = post(&gw, "/v1/orders", &read, &body).await?;
    ensure!(
        status == 403 && is_error(&answer, "forbidden"),
        "{status} {answer}"
    );
    ensure!(
        answer["message"]
            .as_str()
            .unwrap_or_default()
            .contains("scope"),
        "{answer}"
    );
    let cancel = json!({"reason": "no"});
    let (status, _, _) = post(&gw, "/v1/orders/o-1/cancel", &read, &cancel).await?;
    ensure!(status == 403);
    let old = TokenKey::with_id("k0", old_secret.as_bytes())?.sign(&Claims::new(
        ActorKind::Customer,
        "c-1",
        unix_now() + 600,
    ))?;
    let (status, answer, _) = post(&gw, "/v1/orders", &old, &body).await?;
    ensure!(
        status == 202,
        "a previous key's token verifies during a rotation: {status} {answer}"
    );
    let retired = TokenKey::with_id("k-1", SECRET.as_bytes())?.sign(&Claims::new(
        ActorKind::Customer,
        "c-1",
        unix_now() + 600,
    ))?;
    let (status, answer, _) = post(&gw, "/v1/orders", &retired, &body).await?;
    ensure!(
        status == 401 && is_error(&answer, "unauthorized"),
        "{status} {answer}"
    );
    let long = gw.sign(&Claims::new(ActorKind::Customer, "c-1", unix_now() + 7200));
    let (status, answer, _) = post(&gw, "/v1/orders", &long, &body).await?;
    ensure!(
        status == 401
            && answer["message"]
                .as_str()
                .unwrap_or_default()
                .contains("too long"),
        "{status} {answer}"
    );
    // A read token still reads... a driver's read token cannot stream pings.
    let d_read = gw.sign(&Claims::new(ActorKind::Driver, "d-1", unix_now() + 600).read_only());
    let (status, _, _) = post(
        &gw,
        "/v1/drivers/d-1/location",
        &d_read,
        &json!({"lat": 60.17, "lng": 24.94}),
    )
    .await?;
    ensure!(status == 403);
    ensure!(gw.produced().await? == 1);
    gw.stop().await
}

/// `/metrics` and `/healthz` are on the ops listener only; `/healthz` says `ok` or
/// `unavailable`, never an address.
#[tokio::test]
async fn ops_routes_are_only_on_the_ops_listener() -> Result<()> {
    let gw = EdgeGateway::start(&[], false).await?;
    for path in ["/metrics", "/healthz"] {
        let public = gw.http.get(format!("{}{path}", gw.base)).send().await?;
        ensure!(
            public.status() == 404,
            "{path} on the public port: {}",
            public.status()
        );
        let ops = gw.http.get(format!("{}{path}", gw.ops)).send().await?;
        ensure!(
            ops.status() == 200,
            "{path} on the ops port: {}",
            ops.status()
        );
    }
    let health: Value = gw
        .http
        .get(format!("{}/healthz", gw.ops))
        .send()
        .await?
        .json()
        .await?;
    ensure!(health["checks"]["kafka"] == "ok", "{health}");
    gw.stop().await
}

/// WebSockets: a token in the URL is refused; per subject at most N sockets; a driver frame
/// over the size limit closes the socket (1009) instead of being buffered.
#[tokio::test]
async fn websocket_limits() -> Result<()> {
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let gw = EdgeGateway::start(&[("DOORSTEP_GATEWAY_MAX_SOCKETS_PER_SUBJECT", "2")], true).await?;
    let c = gw.token(ActorKind::Customer, "c-1", Some("o-1"));
    let in_url = tokio_tungstenite::connect_async(format!(
        "{}/v1/orders/o-1/track?access_token={c}",
        gw.ws_base
    ))
    .await;
    match in_url {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            ensure!(resp.status() == 400, "{}", resp.status());
            let body: Value = serde_json::from_slice(resp.body().as_deref().unwrap_or_default())?;
            ensure!(is_error(&body, "token_in_url"), "{body}");
        }
        other => anyhow::bail!(
            "a token in the URL was not refused: {:?}",
            other.map(|_| ())
        ),
    }
    let d = gw.token(ActorKind::Driver, "d-1", None);
    let connect = || {
        let mut req = format!("{}/v1/drivers/d-1/stream", gw.ws_base)
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("authorization", format!("Bearer {d}").parse().unwrap());
        tokio_tungstenite::connect_async(req)
    };
    let (mut a, _) = connect().await?;
    let (_b, _) = connect().await?;
    match connect().await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            ensure!(resp.status() == 429, "{}", resp.status());
        }
        other => anyhow::bail!("a third socket was not refused: {:?}", other.map(|_| ())),
    }
    // Over the limit (64 KiB): the socket is closed, nothing is produced.
    a.send(Message::text(format!(
        "{{\"lat\": 60.17, \"lng\": 24.94, \"ping_id\": \"{}\"}}",
        "x".repeat(100 * 1024)
    )))
    .await?;
    let mut closed = false;
    let end = tokio::time::Instant::now() + Duration::from_secs(10);
    while let Ok(next) = tokio::time::timeout_at(end, a.next()).await {
        match next {
            None | Some(Err(_)) => {
                closed = true;
                break;
            }
            Some(Ok(Message::Close(frame))) => {
                ensure!(
                    frame.as_ref().is_none_or(|f| u16::from(f.code) == 1009),
                    "{frame:?}"
                );
                closed = true;
                break;
            }
            Some(Ok(_)) => {}
        }
    }
    ensure!(closed, "an oversized frame did not close the socket");
    // Its place is free again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_c, _) = connect().await?;
    // The tracking socket (token as subprotocol): a customer sends nothing but pongs and a
    // close, so a message over 4 KiB closes it (1009) before it is assembled.
    let request = doorstep_tests::live_client::track_request(&gw.ws_base, "o-1", &c)?;
    let (mut track, response) = tokio_tungstenite::connect_async(request).await?;
    ensure!(
        response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok())
            == Some("doorstep.v1"),
        "the server selects doorstep.v1 and never echoes the token: {:?}",
        response.headers()
    );
    // A message above the socket's small initial read buffer but within 4 KiB is taken (the
    // buffer grows for it): the socket stays open and still answers a ping.
    track.send(Message::text("x".repeat(3 * 1024))).await?;
    track
        .send(Message::Ping(b"still-there".to_vec().into()))
        .await?;
    let end = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(end, track.next()).await {
            Ok(Some(Ok(Message::Pong(p)))) if p.as_ref() == b"still-there" => break,
            Ok(Some(Ok(Message::Close(f)))) => {
                anyhow::bail!("a 3 KiB message closed the socket: {f:?}")
            }
            Ok(Some(Ok(_))) => {}
            other => anyhow::bail!("no pong after a 3 KiB message: {other:?}"),
        }
    }
    track.send(Message::text("x".repeat(8 * 1024))).await?;
    let mut closed = false;
    let end = tokio::time::Instant::now() + Duration::from_secs(10);
    while let Ok(next) = tokio::time::timeout_at(end, track.next()).await {
        match next {
            None | Some(Err(_)) => {
                closed = true;
                break;
            }
            Some(Ok(Message::Close(frame))) => {
                ensure!(
                    frame.as_ref().is_none_or(|f| u16::from(f.code) == 1009),
                    "{frame:?}"
                );
                closed = true;
                break;
            }
            Some(Ok(_)) => {} // the snapshot
        }
    }
    ensure!(
        closed,
        "an 8 KiB client message did not close the tracking socket"
    );
    ensure!(gw.produced().await? == 0);
    gw.stop().await
}
