//! Hostile input against a real gateway (real broker): generated malformed requests and
//! WebSocket frames — wrong types, huge numbers, NaN/∞, deep nesting, control and bidi
//! characters, oversized ids and bodies, far past and future times, truncated UTF-8 and
//! JSON, bad tokens, bad content types — each must be answered 4xx with a JSON
//! `{error, message}` of the expected class, and nothing may reach Kafka (the topics'
//! watermarks stay at 0). A final valid request shows the gateway is still serving.
//!
//! Case counts: `HOSTILE_HTTP_CASES` (default 1500) HTTP requests and `HOSTILE_WS_CASES`
//! (default 500) driver-stream frames; each run prints them.

use anyhow::{Context, Result, ensure};
use doorstep_pipelines::auth::{Claims, unix_now};
use doorstep_schemas::model::ActorKind;
use doorstep_tests::edge_harness::EdgeGateway;
use futures::{SinkExt, StreamExt};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Characters no id, name or reason may carry.
const BAD_CHARS: &[char] = &[
    '\u{0000}', '\u{0007}', '\u{0008}', '\u{001B}', '\u{007F}', '\u{0085}', '\u{061C}', '\u{200E}',
    '\u{200F}', '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}',
    '\u{2068}', '\u{2069}',
];

/// Literals that are not JSON numbers, or numbers no field can hold.
const BAD_NUMBERS: &[&str] = &[
    "NaN",
    "-NaN",
    "Infinity",
    "-Infinity",
    "inf",
    "1e999",
    "-1e999",
    "0x10",
    "18446744073709551616",
    "-9223372036854775809",
    "1e400",
    "99999999999999999999999999999999",
];

/// One request and the statuses it may get.
#[derive(Debug, Clone)]
struct Case {
    what: String,
    path: String,
    token: Option<String>,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    allowed: &'static [u16],
}

const BAD_JSON: &[u16] = &[400];
const BAD_CONTENT: &[u16] = &[400, 422];
const INVALID: &[u16] = &[422];
const TOO_BIG: &[u16] = &[413];
const BAD_TOKEN: &[u16] = &[401];
const BAD_STATUS: &[u16] = &[400, 403, 422];

fn place() -> Value {
    json!({
        "restaurant_id": "r-kluuvi",
        "items": [{"item_id": "soup", "name": "Salmon soup", "quantity": 1, "unit_price_cents": 1950}],
        "total_cents": 1950,
        "restaurant_location": {"lat": 60.17167, "lng": 24.94506},
        "delivery_location": {"lat": 60.1718, "lng": 24.9458}
    })
}

fn ping() -> Value {
    json!({"lat": 60.1699, "lng": 24.9384, "speed_mps": 5.0})
}

/// A JSON value of a type the field does not take (`want` is the type it takes).
fn wrong_type(want: &'static str) -> impl Strategy<Value = Value> {
    let all = vec![
        ("string", json!("text")),
        ("number", json!(42)),
        ("object", json!({"a": 1})),
        ("array", json!([1, 2])),
        ("bool", json!(true)),
        ("null", Value::Null),
    ];
    let options: Vec<Value> = all
        .into_iter()
        .filter(|(t, _)| *t != want)
        .map(|(_, v)| v)
        .collect();
    prop::sample::select(options)
}

fn bad_string() -> impl Strategy<Value = String> {
    // Between letters: at an edge, a character that is also whitespace (U+0085) is trimmed
    // away from a reason, which is then produced clean (an item name is checked whole).
    (
        "[a-z]{1,8}",
        prop::sample::select(BAD_CHARS.to_vec()),
        "[a-z]{1,8}",
    )
        .prop_map(|(a, c, b)| format!("{a}{c}{b}"))
}

/// Nests `inner` `depth` times in arrays or objects.
fn nested(depth: usize, object: bool) -> String {
    let (open, close) = if object { ("{\"a\":", "}") } else { ("[", "]") };
    format!("{}1{}", open.repeat(depth), close.repeat(depth))
}

/// Puts the raw text `raw` where `value` has the string `"__RAW__"`.
fn with_raw(value: &Value, raw: &str) -> Vec<u8> {
    value.to_string().replace("\"__RAW__\"", raw).into_bytes()
}

/// A place body made invalid in one way.
fn bad_place() -> impl Strategy<Value = (String, Vec<u8>, &'static [u16])> {
    let fields = [
        "restaurant_id",
        "items",
        "total_cents",
        "restaurant_location",
        "delivery_location",
    ];
    let types = ["string", "array", "number", "object", "object"];
    prop_oneof![
        (0..fields.len()).prop_flat_map(move |i| wrong_type(types[i]).prop_map(move |v| {
            let mut b = place();
            b[fields[i]] = v;
            (
                format!("wrong type for {}", fields[i]),
                b.to_string().into_bytes(),
                BAD_JSON,
            )
        })),
        wrong_type("string")
            .prop_filter("null is no order id", |v| !v.is_null())
            .prop_map(|v| {
                let mut b = place();
                b["order_id"] = v;
                (
                    "wrong type for order_id".into(),
                    b.to_string().into_bytes(),
                    BAD_JSON,
                )
            }),
        (
            prop::sample::select(
                BAD_NUMBERS
                    .iter()
                    .filter(|s| !s.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
            ),
            prop::sample::select(vec![
                "total_cents",
                "lat",
                "lng",
                "quantity",
                "unit_price_cents"
            ])
        )
            .prop_map(|(raw, field)| {
                let mut b = place();
                match field {
                    "lat" | "lng" => b["restaurant_location"][field] = json!("__RAW__"),
                    "quantity" | "unit_price_cents" => b["items"][0][field] = json!("__RAW__"),
                    _ => b[field] = json!("__RAW__"),
                }
                // Literals that are not JSON are 400; numbers out of a field's range 400 (an
                // integer field) or 422 (a coordinate that parses as a float out of range).
                (format!("{raw} as {field}"), with_raw(&b, raw), BAD_CONTENT)
            }),
        any::<i64>()
            .prop_filter("not the total", |t| *t != 1950)
            .prop_map(|t| {
                let mut b = place();
                b["total_cents"] = json!(t);
                (format!("total {t}"), b.to_string().into_bytes(), INVALID)
            }),
        prop_oneof![(4_294_967_296i64..i64::MAX), (i64::MIN..=0)].prop_map(|q| {
            let mut b = place();
            b["items"][0]["quantity"] = json!(q);
            (format!("quantity {q}"), b.to_string().into_bytes(), INVALID)
        }),
        (i64::MIN..0).prop_map(|p| {
            let mut b = place();
            b["items"][0]["unit_price_cents"] = json!(p);
            (format!("price {p}"), b.to_string().into_bytes(), INVALID)
        }),
        (2i64..1000).prop_map(|q| {
            let mut b = place();
            b["items"][0]["quantity"] = json!(q);
            b["items"][0]["unit_price_cents"] = json!(i64::MAX / 2 + 1);
            b["total_cents"] = json!(i64::MAX);
            (
                format!("overflowing total, quantity {q}"),
                b.to_string().into_bytes(),
                INVALID,
            )
        }),
        (
            prop_oneof![90.000001f64..1e12, -1e12..-90.000001f64],
            prop::bool::ANY
        )
            .prop_map(|(lat, which)| {
                let mut b = place();
                let f = if which {
                    "restaurant_location"
                } else {
                    "delivery_location"
                };
                b[f]["lat"] = json!(lat);
                (format!("lat {lat}"), b.to_string().into_bytes(), INVALID)
            }),
        (-89.0f64..59.0, -179.0f64..24.0).prop_map(|(lat, lng)| {
            let mut b = place();
            b["delivery_location"] = json!({"lat": lat, "lng": lng});
            (
                format!("outside the service area ({lat}, {lng})"),
                b.to_string().into_bytes(),
                INVALID,
            )
        }),
        "[a-z0-9-]{1,20}"
            .prop_filter("not registered", |r| !r.starts_with("r-"))
            .prop_map(|r| {
                let mut b = place();
                b["restaurant_id"] = json!(r);
                (
                    format!("unknown restaurant {r}"),
                    b.to_string().into_bytes(),
                    INVALID,
                )
            }),
        (
            bad_string(),
            prop::sample::select(vec!["restaurant_id", "order_id", "item_id", "name"])
        )
            .prop_map(|(s, f)| {
                let mut b = place();
                match f {
                    "item_id" | "name" => b["items"][0][f] = json!(s),
                    _ => b[f] = json!(s),
                }
                (
                    format!("control/bidi in {f}"),
                    b.to_string().into_bytes(),
                    INVALID,
                )
            }),
        (
            129usize..4000,
            prop::sample::select(vec!["restaurant_id", "order_id", "item_id"])
        )
            .prop_map(|(n, f)| {
                let mut b = place();
                let id = "x".repeat(n);
                if f == "item_id" {
                    b["items"][0][f] = json!(id)
                } else {
                    b[f] = json!(id)
                }
                (format!("{n}-byte {f}"), b.to_string().into_bytes(), INVALID)
            }),
        (65usize..200).prop_map(|kib| {
            let mut b = place();
            b["items"][0]["name"] = json!("n".repeat(kib * 1024));
            (
                format!("{kib} KiB body"),
                b.to_string().into_bytes(),
                TOO_BIG,
            )
        }),
        (129usize..2000, prop::bool::ANY).prop_map(|(depth, object)| {
            let mut b = place();
            b["items"] = json!("__RAW__");
            (
                format!("nesting {depth}"),
                with_raw(&b, &nested(depth, object)),
                BAD_JSON,
            )
        }),
        (1usize..200).prop_map(|cut| {
            let full = place().to_string().into_bytes();
            let cut = cut.min(full.len() - 1);
            (format!("JSON cut at {cut}"), full[..cut].to_vec(), BAD_JSON)
        }),
        (
            prop::sample::select(vec![
                &b"\xC3"[..],
                b"\xE2\x82",
                b"\xF0\x9F\x98",
                b"\xFF",
                b"\xC0\xAF"
            ]),
            1usize..40
        )
            .prop_map(|(bad, at)| {
                let text = place().to_string();
                // Inside the restaurant id's string: `"r-kluuvi"` → `"r-<bad>kluuvi"`.
                let pos = text.find("r-kluuvi").unwrap_or(0) + 2;
                let mut bytes = text.into_bytes();
                let _ = at;
                bytes.splice(pos..pos, bad.iter().copied());
                ("truncated UTF-8 in a string".to_owned(), bytes, BAD_JSON)
            }),
        "[a-z_]{1,12}"
            .prop_filter("not a field", |f| ![
                "restaurant_id",
                "items",
                "total_cents",
                "restaurant_location",
                "delivery_location",
                "order_id"
            ]
            .contains(&f.as_str()))
            .prop_map(|f| {
                let mut b = place();
                b[&f] = json!(1);
                (
                    format!("unknown field {f}"),
                    b.to_string().into_bytes(),
                    BAD_JSON,
                )
            }),
        Just(()).prop_map(|()| {
            let mut b = place();
            b["items"] = json!([]);
            ("no items".to_owned(), b.to_string().into_bytes(), INVALID)
        }),
    ]
}

/// A ping body made invalid in one way.
fn bad_ping() -> impl Strategy<Value = (String, Vec<u8>, &'static [u16])> {
    let now_ms = unix_now() * 1000;
    prop_oneof![
        (
            prop::sample::select(vec![
                "lat",
                "lng",
                "accuracy_m",
                "heading_deg",
                "speed_mps",
                "recorded_at",
                "ping_id"
            ]),
            wrong_type("number")
        )
            .prop_filter("null is an absent optional", |(f, v)| {
                !v.is_null() || ["lat", "lng"].contains(f)
            })
            .prop_filter("a ping_id is a string", |(f, v)| !(*f == "ping_id"
                && v.is_string()))
            .prop_map(|(f, v)| {
                let mut b = ping();
                b[f] = v;
                (
                    format!("wrong type for {f}"),
                    b.to_string().into_bytes(),
                    BAD_JSON,
                )
            }),
        (
            prop::sample::select(
                BAD_NUMBERS
                    .iter()
                    .filter(|s| !s.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
            ),
            prop::sample::select(vec![
                "lat",
                "lng",
                "speed_mps",
                "heading_deg",
                "recorded_at"
            ])
        )
            .prop_map(|(raw, f)| {
                let mut b = ping();
                b[f] = json!("__RAW__");
                (format!("{raw} as {f}"), with_raw(&b, raw), BAD_CONTENT)
            }),
        prop_oneof![180.0001f64..1e9, -1e9..-180.0001f64].prop_map(|lng| {
            let mut b = ping();
            b["lng"] = json!(lng);
            (format!("lng {lng}"), b.to_string().into_bytes(), INVALID)
        }),
        prop_oneof![360.0f64..1e9, -1e9..-0.0001f64].prop_map(|h| {
            let mut b = ping();
            b["heading_deg"] = json!(h);
            (format!("heading {h}"), b.to_string().into_bytes(), INVALID)
        }),
        (
            prop_oneof![-1e12f64..-0.0001, 200.0001f64..1e300],
            prop::bool::ANY
        )
            .prop_map(|(v, speed)| {
                let mut b = ping();
                b[if speed { "speed_mps" } else { "accuracy_m" }] =
                    json!(if speed { v } else { v * 1e3 });
                (
                    format!("speed/accuracy {v}"),
                    b.to_string().into_bytes(),
                    INVALID,
                )
            }),
        prop_oneof![
            i64::MIN..(now_ms - 10 * 60_000),
            (now_ms + 10 * 60_000)..i64::MAX
        ]
        .prop_map(|t| {
            let mut b = ping();
            b["recorded_at"] = json!(t);
            (
                format!("recorded_at {t}"),
                b.to_string().into_bytes(),
                INVALID,
            )
        }),
        (-89.0f64..59.0, -179.0f64..24.0).prop_map(|(lat, lng)| {
            (
                format!("ping outside the area ({lat}, {lng})"),
                json!({"lat": lat, "lng": lng}).to_string().into_bytes(),
                INVALID,
            )
        }),
        prop_oneof![bad_string(), "[a-z]{129,600}"].prop_map(|id| {
            let mut b = ping();
            b["ping_id"] = json!(id);
            (
                "bad ping_id".to_owned(),
                b.to_string().into_bytes(),
                INVALID,
            )
        }),
        (101usize..300).prop_map(|n| {
            let pings: Vec<Value> = (0..n).map(|_| ping()).collect();
            (
                format!("{n} pings"),
                json!({"pings": pings}).to_string().into_bytes(),
                &[413u16, 422][..],
            )
        }),
        Just(()).prop_map(|()| ("no pings".to_owned(), br#"{"pings": []}"#.to_vec(), INVALID)),
        (129usize..2000, prop::bool::ANY).prop_map(|(depth, object)| {
            (
                format!("ping nesting {depth}"),
                format!("{{\"pings\": {}}}", nested(depth, object)).into_bytes(),
                BAD_JSON,
            )
        }),
        (1usize..30).prop_map(|cut| {
            let full = ping().to_string().into_bytes();
            let cut = cut.min(full.len() - 1);
            (format!("ping cut at {cut}"), full[..cut].to_vec(), BAD_JSON)
        }),
    ]
}

fn bad_cancel() -> impl Strategy<Value = (String, Vec<u8>, &'static [u16])> {
    prop_oneof![
        bad_string().prop_map(|r| (
            "control/bidi in a reason".to_owned(),
            json!({"reason": r}).to_string().into_bytes(),
            INVALID
        )),
        (501usize..5000).prop_map(|n| (
            format!("{n}-byte reason"),
            json!({"reason": "r".repeat(n)}).to_string().into_bytes(),
            INVALID
        )),
        "[ \t\n]{0,10}".prop_map(|r| (
            "blank reason".to_owned(),
            json!({"reason": r}).to_string().into_bytes(),
            INVALID
        )),
        wrong_type("string").prop_map(|v| (
            "wrong type for reason".to_owned(),
            json!({"reason": v}).to_string().into_bytes(),
            BAD_JSON
        )),
    ]
}

fn bad_status() -> impl Strategy<Value = (String, Vec<u8>, &'static [u16])> {
    prop_oneof![
        "[A-Za-z_]{0,30}"
            .prop_filter("not a status a restaurant may ask for", |s| ![
                "CONFIRMED",
                "PREPARING",
                "READY_FOR_PICKUP"
            ]
            .contains(&s.as_str()))
            .prop_map(|s| (
                format!("status {s:?}"),
                json!({"status": s}).to_string().into_bytes(),
                BAD_STATUS
            )),
        wrong_type("string").prop_map(|v| (
            "wrong type for status".to_owned(),
            json!({"status": v}).to_string().into_bytes(),
            BAD_JSON
        )),
    ]
}

/// A path segment no id can be: bad characters (percent-encoded), or too long.
fn bad_id() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 1..40)
            .prop_filter("not an id", |b| !b
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || b".-_:".contains(c)))
            .prop_map(|b| b.iter().map(|c| format!("%{c:02X}")).collect::<String>()),
        (129usize..1500).prop_map(|n| "o".repeat(n)),
    ]
}

fn bad_token() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9._-]{0,200}",
        "k1\\.[A-Za-z0-9_-]{10,100}\\.[A-Za-z0-9_-]{43}",
        "[ -~]{1,100}",
    ]
}

/// Every case, with tokens minted by `gw` for the subjects it needs.
fn cases(customer: String, restaurant: String, driver: String) -> impl Strategy<Value = Case> {
    let (c1, c2, c3, c4) = (
        customer.clone(),
        customer.clone(),
        customer.clone(),
        customer,
    );
    let (r1, r2) = (restaurant.clone(), restaurant);
    let (d1, d2) = (driver.clone(), driver);
    prop_oneof![
        6 => bad_place().prop_map(move |(what, body, allowed)| Case {
            what, path: "/v1/orders".into(), token: Some(c1.clone()), content_type: Some("application/json"), body, allowed,
        }),
        4 => bad_ping().prop_map(move |(what, body, allowed)| Case {
            what, path: "/v1/drivers/d-hostile/location".into(), token: Some(d1.clone()), content_type: Some("application/json"), body, allowed,
        }),
        2 => bad_cancel().prop_map(move |(what, body, allowed)| Case {
            what, path: "/v1/orders/o-hostile/cancel".into(), token: Some(c2.clone()), content_type: Some("application/json"), body, allowed,
        }),
        1 => bad_status().prop_map(move |(what, body, allowed)| Case {
            what, path: "/v1/orders/o-hostile/status".into(), token: Some(r1.clone()), content_type: Some("application/json"), body, allowed,
        }),
        1 => (bad_id(), prop::sample::select(vec!["cancel", "status", "driver"])).prop_map(move |(id, what)| Case {
            what: format!("bad order id in /{what}"), path: format!("/v1/orders/{id}/{what}"),
            token: Some(if what == "status" { r2.clone() } else { c3.clone() }),
            content_type: Some("application/json"), body: br#"{"reason": "r", "status": "CONFIRMED", "driver_id": "d-1"}"#.to_vec(),
            allowed: &[400, 403, 422],
        }),
        1 => bad_id().prop_map(move |id| Case {
            what: "bad driver id".into(), path: format!("/v1/drivers/{id}/location"), token: Some(d2.clone()),
            content_type: Some("application/json"), body: ping().to_string().into_bytes(), allowed: &[400, 403, 422],
        }),
        1 => bad_token().prop_map(|t| Case {
            what: format!("token {t:?}"), path: "/v1/orders".into(), token: Some(t), content_type: Some("application/json"),
            body: place().to_string().into_bytes(), allowed: BAD_TOKEN,
        }),
        1 => prop::sample::select(vec!["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", "application/xml"])
            .prop_map(move |ct| Case {
                what: format!("content type {ct}"), path: "/v1/orders".into(), token: Some(c4.clone()), content_type: Some(ct),
                body: place().to_string().into_bytes(), allowed: &[415],
            }),
    ]
}

async fn check(gw: &EdgeGateway, case: &Case) -> Result<(), String> {
    let mut req = gw
        .http
        .post(format!("{}{}", gw.base, case.path))
        .body(case.body.clone());
    if let Some(t) = &case.token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if let Some(ct) = case.content_type {
        req = req.header("content-type", ct);
    }
    let resp = req.send().await.map_err(|e| format!("no answer: {e}"))?;
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.map_err(|e| format!("body: {e}"))?;
    let body: Value = serde_json::from_slice(&bytes)
        .map_err(|_| format!("{status}: not JSON: {}", String::from_utf8_lossy(&bytes)))?;
    let ok_shape = body["error"].as_str().is_some_and(|e| !e.is_empty())
        && body["message"].as_str().is_some_and(|m| !m.is_empty());
    if !case.allowed.contains(&status) || !ok_shape {
        return Err(format!("expected {:?}, got {status} {body}", case.allowed));
    }
    Ok(())
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(RunnerConfig {
        cases,
        failure_persistence: None,
        max_shrink_iters: 200,
        ..RunnerConfig::default()
    })
}

fn count(var: &str, default: u32) -> u32 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn malformed_requests_and_frames_get_4xx_json_and_produce_nothing() -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // Generous rates: the cases are about contents (rate limits have their own tests).
    let gw = rt.block_on(EdgeGateway::start(
        &[
            ("DOORSTEP_GATEWAY_RATE_LIMIT_PER_S", "1000000"),
            ("DOORSTEP_GATEWAY_RATE_LIMIT_BURST", "1000000"),
        ],
        false,
    ))?;
    let customer = gw.token(ActorKind::Customer, "c-hostile", None);
    let restaurant = gw.token(ActorKind::Restaurant, "r-kluuvi", None);
    let driver = gw.token(ActorKind::Driver, "d-hostile", None);

    let http_cases = count("HOSTILE_HTTP_CASES", 1500);
    let ran = Arc::new(AtomicUsize::new(0));
    let seen = ran.clone();
    let result = runner(http_cases).run(&cases(customer, restaurant, driver.clone()), |case| {
        seen.fetch_add(1, Ordering::Relaxed);
        rt.block_on(check(&gw, &case))
            .map_err(|e| TestCaseError::fail(format!("{}: {e}", case.what)))
    });
    let http_ran = ran.load(Ordering::Relaxed);
    if let Err(e) = result {
        anyhow::bail!("HTTP case failed after {http_ran} cases: {e}");
    }

    // The driver stream: every generated bad ping as a text frame (truncated UTF-8 as a
    // binary frame, which text frames cannot carry), each answered with an error body.
    let ws_cases = count("HOSTILE_WS_CASES", 500);
    let frames_ran = rt.block_on(async {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req =
            format!("{}/v1/drivers/d-hostile/stream", gw.ws_base).into_client_request()?;
        req.headers_mut()
            .insert("authorization", format!("Bearer {driver}").parse()?);
        let (ws, _) = tokio_tungstenite::connect_async(req).await?;
        anyhow::Ok(Arc::new(tokio::sync::Mutex::new(ws)))
    })?;
    let frames = Arc::new(AtomicUsize::new(0));
    let counted = frames.clone();
    let result = runner(ws_cases).run(&bad_ping(), |(what, body, allowed)| {
        counted.fetch_add(1, Ordering::Relaxed);
        rt.block_on(async {
            use tokio_tungstenite::tungstenite::Message;
            let mut ws = frames_ran.lock().await;
            let msg = match String::from_utf8(body.clone()) {
                Ok(text) => Message::text(text),
                Err(_) => Message::binary(body.clone()),
            };
            let too_big = body.len() > 64 * 1024;
            ws.send(msg).await.map_err(|e| format!("send: {e}"))?;
            if too_big {
                return Err("a generated frame is over the limit; not a frame case".to_owned());
            }
            let answer = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
                .await
                .map_err(|_| "no answer".to_owned())?;
            let text = match answer {
                Some(Ok(Message::Text(t))) => t.to_string(),
                other => return Err(format!("not a text answer: {other:?}")),
            };
            let v: Value = serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
            let status = v["status"].as_u64().unwrap_or(0) as u16;
            let binary_ok = status == 400 && v["error"] == "invalid_frame";
            if !(allowed.contains(&status) || binary_ok)
                || v["error"].as_str().is_none_or(str::is_empty)
            {
                return Err(format!("expected {allowed:?}, got {text}"));
            }
            Ok(())
        })
        .map_err(|e| TestCaseError::fail(format!("{what}: {e}")))
    });
    let ws_ran = frames.load(Ordering::Relaxed);
    if let Err(e) = result {
        anyhow::bail!("frame case failed after {ws_ran} frames: {e}");
    }

    let produced = rt.block_on(gw.produced())?;
    println!(
        "hostile input: {http_ran} HTTP cases, {ws_ran} driver-stream frames; records produced: {produced}"
    );
    ensure!(http_ran >= 1000, "only {http_ran} HTTP cases ran");
    ensure!(
        produced == 0,
        "{produced} records reached Kafka from malformed input"
    );
    // Still serving: a valid placement is accepted and produced.
    let ok = rt.block_on(async {
        let c = gw.sign(&Claims::new(
            ActorKind::Customer,
            "c-after",
            unix_now() + 600,
        ));
        let resp = gw
            .http
            .post(format!("{}/v1/orders", gw.base))
            .bearer_auth(c)
            .json(&place())
            .send()
            .await?;
        anyhow::Ok(resp.status().as_u16())
    })?;
    ensure!(ok == 202, "a valid order after the hostile cases: {ok}");
    ensure!(rt.block_on(gw.produced())? == 1);
    rt.block_on(gw.stop()).context("stop")
}
