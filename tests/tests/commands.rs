//! What became of a command, told to its caller, end to end on the real broker, CQL server
//! and Redis (single node and cluster), through the gateway's HTTP API and the customer's
//! WebSocket:
//!
//! - `Prefer: wait=N`: an accepted change answers 200 with the status it led to and its
//!   timeline entry; a refused one (a cancellation after pickup, a second pickup, a restaurant
//!   moving a cancelled order) answers 409 with the state machine's reason code and sentence;
//! - the outcome is `GET /v1/orders/{id}/commands/{event_id}` for its sender (and the
//!   system), 403 for anyone else;
//! - the customer's tracking socket gets a `rejected` frame for their own refused commands,
//!   and never for the driver's or the restaurant's;
//! - `Idempotency-Key`: a command re-sent after it was decided gets its first outcome and
//!   changes nothing, including a refused one re-sent once the order would accept it, and
//!   even when the re-send reaches the pipeline (a re-send racing its first decision).

use anyhow::{Context, ensure};
use doorstep_pipelines::auth::{Claims, TokenKey, unix_now};
use doorstep_pipelines::gateway::commands::keyed_event_id;
use doorstep_pipelines::gateway::track::TrackingConfig;
use doorstep_schemas::events::{OrderCommand, OrderEvent};
use doorstep_schemas::model::{Actor, ActorKind, OrderId, OrderStatus, Timestamp};
use doorstep_tests::live_client::{GatewayUnderTest, LiveClient};
use doorstep_tests::pipeline_harness::Scope;
use serde_json::{Value, json};
use std::time::Duration;

/// Generous: a loaded 2-core machine can stall the broker for seconds.
const WAIT: Duration = Duration::from_secs(60);
/// The scope's token secret (see `pipeline_harness`).
const SECRET: &str = "test-secret-test-secret-test-secret-0001";

fn token(kind: ActorKind, id: &str, order: Option<&str>) -> anyhow::Result<String> {
    let mut claims = Claims::new(kind, id, unix_now() + 600);
    claims.order_id = order.map(str::to_owned);
    Ok(TokenKey::new(SECRET.as_bytes())?.sign(&claims)?)
}

/// An HTTP answer: status, `Preference-Applied`, JSON body.
#[derive(Debug)]
struct Answer {
    status: u16,
    applied: Option<String>,
    body: Value,
}

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<Answer> {
        let resp = req.send().await.context("the gateway did not answer")?;
        let status = resp.status().as_u16();
        let applied = resp
            .headers()
            .get("preference-applied")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp.json().await.unwrap_or(Value::Null);
        Ok(Answer {
            status,
            applied,
            body,
        })
    }

    /// POSTs `body` to `path`; `wait` seconds as `Prefer: wait=N`, `key` as `Idempotency-Key`.
    async fn post(
        &self,
        path: &str,
        tok: &str,
        body: Value,
        wait: Option<u64>,
        key: Option<&str>,
    ) -> anyhow::Result<Answer> {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(tok)
            .json(&body);
        if let Some(n) = wait {
            req = req.header("prefer", format!("wait={n}"));
        }
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        self.send(req).await
    }

    /// A command waited for (`Prefer: wait=10`) that must be accepted: its outcome.
    async fn accepted(
        &self,
        path: &str,
        tok: &str,
        body: Value,
        key: Option<&str>,
    ) -> anyhow::Result<Value> {
        let a = self.post(path, tok, body, Some(10), key).await?;
        ensure!(a.status == 200, "{path}: {a:?}");
        ensure!(a.body["outcome"] == "accepted", "{path}: {a:?}");
        ensure!(a.applied.as_deref() == Some("wait=10"), "{path}: {a:?}");
        Ok(a.body)
    }

    async fn get(&self, path: &str, tok: &str) -> anyhow::Result<Answer> {
        self.send(
            self.http
                .get(format!("{}{path}", self.base))
                .bearer_auth(tok),
        )
        .await
    }

    /// The order's timeline as `(kind, to, event_id)`, read as the system.
    async fn timeline(&self, order: &str) -> anyhow::Result<Vec<(String, String, String)>> {
        let system = token(ActorKind::System, "support", None)?;
        let a = self.get(&format!("/v1/orders/{order}"), &system).await?;
        ensure!(a.status == 200, "{a:?}");
        Ok(a.body["timeline"]
            .as_array()
            .context("a timeline")?
            .iter()
            .map(|e| {
                let s = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
                (s("kind"), s("to"), s("event_id"))
            })
            .collect())
    }
}

fn place_body() -> Value {
    json!({"restaurant_id": "r-1",
        "items": [{"item_id": "soup", "name": "Soup", "quantity": 1, "unit_price_cents": 900}],
        "total_cents": 900,
        "restaurant_location": {"lat": 60.1699, "lng": 24.9384},
        "delivery_location": {"lat": 60.1718, "lng": 24.9458}})
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

async fn callers_learn_what_became_of_their_commands(
    name: &str,
    extra: &[(&str, &str)],
) -> anyhow::Result<()> {
    let scope = Scope::new(name, extra).await?;
    let running = scope.start().await?;
    let gw = GatewayUnderTest::start(&scope.config, TrackingConfig::default()).await?;
    let api = Api {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?,
        base: gw.base.clone(),
    };
    let customer = token(ActorKind::Customer, "c-1", None)?;
    let restaurant = token(ActorKind::Restaurant, "r-1", None)?;
    let dispatch = token(ActorKind::System, "dispatch", None)?;
    let driver = token(ActorKind::Driver, "d-1", None)?;

    // Placed with a key and no order id, waiting: the outcome is the PLACED entry.
    let placed = api
        .accepted("/v1/orders", &customer, place_body(), Some("place-1"))
        .await?;
    let order = text(&placed, "order_id").to_owned();
    ensure!(placed["status"] == "PLACED", "{placed}");
    ensure!(placed["command"] == "place", "{placed}");
    ensure!(
        placed["entries"][0]["event_id"] == placed["event_id"],
        "{placed}"
    );
    // The same placement re-sent (a timeout on the app's side): the same order, the same
    // event, its first outcome, and no second order or entry.
    let again = api
        .post("/v1/orders", &customer, place_body(), None, Some("place-1"))
        .await?;
    ensure!(again.status == 200 && again.body == placed, "{again:?}");

    let follow = token(ActorKind::Customer, "c-1", Some(&order))?;
    let mut live = LiveClient::open(&gw.ws_base, &order, &follow).await?;
    let snapshot = live.frame(WAIT).await?;
    ensure!(snapshot["type"] == "snapshot", "{snapshot}");

    let status = format!("/v1/orders/{order}/status");
    let cancel = format!("/v1/orders/{order}/cancel");

    // A restaurant asking for PREPARING too early, with a key: refused, and recorded.
    let early = api
        .post(
            &status,
            &restaurant,
            json!({"status": "PREPARING"}),
            Some(10),
            Some("prep-1"),
        )
        .await?;
    ensure!(
        early.status == 409 && early.body["error"] == "invalid_transition",
        "{early:?}"
    );
    ensure!(text(&early.body, "message").contains("PLACED"), "{early:?}");
    let early_id = text(&early.body, "event_id").to_owned();

    // An accepted status change answers 200 with the new status and its timeline entry.
    let confirmed = api
        .accepted(&status, &restaurant, json!({"status": "CONFIRMED"}), None)
        .await?;
    ensure!(confirmed["status"] == "CONFIRMED", "{confirmed}");
    let entry = &confirmed["entries"][0];
    ensure!(
        entry["from"] == "PLACED" && entry["to"] == "CONFIRMED",
        "{confirmed}"
    );
    ensure!(entry["event_id"] == confirmed["event_id"], "{confirmed}");
    ensure!(entry["actor"]["id"] == "r-1", "{confirmed}");

    // The refused PREPARING re-sent with its key now that the order would accept it: the
    // first outcome, nothing applied.
    let resent = api
        .post(
            &status,
            &restaurant,
            json!({"status": "PREPARING"}),
            None,
            Some("prep-1"),
        )
        .await?;
    ensure!(
        resent.status == 409 && resent.body == early.body,
        "{resent:?} vs {early:?}"
    );
    // The same re-send racing its first decision reaches the pipeline as a second event with
    // the same id: the pipeline keeps the first outcome too.
    let prep = OrderCommand::Transition {
        to: OrderStatus::Preparing,
    };
    let race_id = keyed_event_id(
        &Actor::restaurant("r-1"),
        &OrderId::new(order.clone()),
        &prep,
        "prep-1",
    );
    ensure!(race_id.as_str() == early_id, "{race_id} vs {early_id}");
    scope
        .produce(&[OrderEvent {
            event_id: race_id,
            order_id: OrderId::new(order.clone()),
            occurred_at: Timestamp::now(),
            actor: Actor::restaurant("r-1"),
            command: prep,
        }])
        .await?;
    // Decided after it (same partition, in order): the real PREPARING.
    let preparing = api
        .accepted(&status, &restaurant, json!({"status": "PREPARING"}), None)
        .await?;
    let timeline = api.timeline(&order).await?;
    let preparing_entries: Vec<_> = timeline.iter().filter(|e| e.1 == "PREPARING").collect();
    ensure!(
        preparing_entries.len() == 1 && preparing_entries[0].2 == text(&preparing, "event_id"),
        "the refused command was applied after all: {timeline:?}"
    );

    api.accepted(
        &format!("/v1/orders/{order}/driver"),
        &dispatch,
        json!({"driver_id": "d-1"}),
        None,
    )
    .await?;
    api.accepted(
        &status,
        &restaurant,
        json!({"status": "READY_FOR_PICKUP"}),
        None,
    )
    .await?;
    let picked = api
        .accepted(
            &status,
            &driver,
            json!({"status": "PICKED_UP"}),
            Some("pickup-1"),
        )
        .await?;
    ensure!(picked["status"] == "PICKED_UP", "{picked}");

    // The driver app confirms the pickup again after a timeout, same key: the first outcome.
    let again = api
        .post(
            &status,
            &driver,
            json!({"status": "PICKED_UP"}),
            None,
            Some("pickup-1"),
        )
        .await?;
    ensure!(again.status == 200 && again.body == picked, "{again:?}");
    // ... and with a new key (another tap): a second pickup, refused.
    let twice = api
        .post(
            &status,
            &driver,
            json!({"status": "PICKED_UP"}),
            Some(10),
            Some("pickup-2"),
        )
        .await?;
    ensure!(
        twice.status == 409 && twice.body["error"] == "invalid_transition",
        "{twice:?}"
    );
    let timeline = api.timeline(&order).await?;
    ensure!(
        timeline.iter().filter(|e| e.1 == "PICKED_UP").count() == 1,
        "{timeline:?}"
    );

    // The customer cancels too late: 409 with the state machine's code and sentence.
    let late = api
        .post(
            &cancel,
            &customer,
            json!({"reason": "changed my mind"}),
            Some(5),
            Some("cancel-1"),
        )
        .await?;
    ensure!(late.status == 409, "{late:?}");
    ensure!(late.body["error"] == "cancellation_refused", "{late:?}");
    ensure!(
        text(&late.body, "message") == "a CUSTOMER cannot cancel an order that is PICKED_UP",
        "{late:?}"
    );
    ensure!(late.body["status"] == "PICKED_UP", "{late:?}");
    ensure!(late.applied.as_deref() == Some("wait=5"), "{late:?}");
    let late_id = text(&late.body, "event_id").to_owned();

    // The customer's socket tells them, and only about their own command (not the driver's
    // second pickup, refused before it).
    let frames = live
        .until(WAIT, |f| f["type"] == "rejected")
        .await
        .context("waiting for the rejected frame")?;
    let rejected = frames.last().context("a frame")?;
    ensure!(
        rejected["event_id"] == late_id.as_str()
            && rejected["reason"] == "cancellation_refused"
            && rejected["command"] == "cancel"
            && rejected["message"] == late.body["message"],
        "{frames:?}"
    );
    ensure!(
        rejected["seq"].as_u64() > snapshot["seq"].as_u64(),
        "{rejected}"
    );

    // The outcome, read back: its sender and the system may, another customer or the
    // restaurant may not.
    let outcome_path = format!("/v1/orders/{order}/commands/{late_id}");
    let mine = api.get(&outcome_path, &customer).await?;
    ensure!(
        mine.status == 200
            && mine.body["outcome"] == "rejected"
            && mine.body["reason"] == "cancellation_refused",
        "{mine:?}"
    );
    let system = api
        .get(&outcome_path, &token(ActorKind::System, "support", None)?)
        .await?;
    ensure!(
        system.status == 200 && system.body == mine.body,
        "{system:?}"
    );
    for other in [token(ActorKind::Customer, "c-2", None)?, restaurant.clone()] {
        let theirs = api.get(&outcome_path, &other).await?;
        ensure!(
            theirs.status == 403 && theirs.body["error"] == "forbidden",
            "{theirs:?}"
        );
    }
    let accepted_path = format!("/v1/orders/{order}/commands/{}", text(&picked, "event_id"));
    let read = api.get(&accepted_path, &driver).await?;
    ensure!(read.status == 200 && read.body == picked, "{read:?}");
    // A command nobody sent is not decided: 202; a malformed id is a 422.
    let unknown = api
        .get(
            &format!("/v1/orders/{order}/commands/no-such-event"),
            &customer,
        )
        .await?;
    ensure!(
        unknown.status == 202 && unknown.body["event_id"] == "no-such-event",
        "{unknown:?}"
    );
    let bad = api
        .get(&format!("/v1/orders/{order}/commands/a%20b"), &customer)
        .await?;
    ensure!(
        bad.status == 422 && bad.body["error"] == "invalid_id",
        "{bad:?}"
    );

    // A second order the customer cancels; the restaurant marks it ready afterwards.
    let second = api
        .accepted("/v1/orders", &customer, place_body(), Some("place-2"))
        .await?;
    let order2 = text(&second, "order_id").to_owned();
    ensure!(order2 != order, "another key, another order");
    let cancelled = api
        .accepted(
            &format!("/v1/orders/{order2}/cancel"),
            &customer,
            json!({"reason": "ordered twice"}),
            None,
        )
        .await?;
    ensure!(cancelled["status"] == "CANCELLED", "{cancelled}");
    let ready = api
        .post(
            &format!("/v1/orders/{order2}/status"),
            &restaurant,
            json!({"status": "READY_FOR_PICKUP"}),
            Some(10),
            None,
        )
        .await?;
    ensure!(
        ready.status == 409 && ready.body["error"] == "final_state",
        "{ready:?}"
    );

    live.close().await?;
    gw.stop().await?;
    running.stop().await?;
    Ok(())
}

#[tokio::test]
async fn callers_learn_what_became_of_their_commands_on_a_single_redis() -> anyhow::Result<()> {
    callers_learn_what_became_of_their_commands("commands_single", &[]).await
}

#[tokio::test]
async fn callers_learn_what_became_of_their_commands_on_a_redis_cluster() -> anyhow::Result<()> {
    let urls = doorstep_tests::endpoints().redis_cluster_urls.join(",");
    callers_learn_what_became_of_their_commands(
        "commands_cluster",
        &[
            ("DOORSTEP_REDIS_MODE", "cluster"),
            ("DOORSTEP_REDIS_CLUSTER_URLS", urls.as_str()),
        ],
    )
    .await
}

/// A wait that runs out answers the 202 of a request without the preference, and the outcome
/// is read later; a GET can wait too.
#[tokio::test]
async fn a_wait_that_runs_out_is_a_202_and_the_outcome_can_be_read_later() -> anyhow::Result<()> {
    let scope = Scope::new("commands_timeout", &[]).await?;
    // No pipeline yet: nothing decides.
    let gw = GatewayUnderTest::start(&scope.config, TrackingConfig::default()).await?;
    let api = Api {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?,
        base: gw.base.clone(),
    };
    let customer = token(ActorKind::Customer, "c-9", None)?;
    let placed = api
        .post("/v1/orders", &customer, place_body(), Some(1), None)
        .await?;
    ensure!(placed.status == 202, "{placed:?}");
    ensure!(placed.applied.as_deref() == Some("wait=1"), "{placed:?}");
    let order = text(&placed.body, "order_id").to_owned();
    let event = text(&placed.body, "event_id").to_owned();
    let path = format!("/v1/orders/{order}/commands/{event}");
    let pending = api.get(&path, &customer).await?;
    ensure!(
        pending.status == 202 && pending.body == placed.body,
        "{pending:?}"
    );

    // Now the pipeline decides it; a GET waiting for it hears it.
    let running = scope.start().await?;
    let waited = api
        .send(
            api.http
                .get(format!("{}{path}", api.base))
                .bearer_auth(&customer)
                .header("prefer", "wait=10"),
        )
        .await?;
    let outcome = if waited.status == 200 {
        waited.body
    } else {
        // The pipeline's first batch can take longer than 10 s on a cold, loaded machine
        // (group join): then the outcome is read once it is there.
        ensure!(waited.status == 202, "{waited:?}");
        Scope::eventually(WAIT, || async {
            let a = api.get(&path, &customer).await.ok()?;
            (a.status == 200).then_some(a.body)
        })
        .await
        .context("the placement was never decided")?
    };
    ensure!(
        outcome["outcome"] == "accepted" && outcome["status"] == "PLACED",
        "{outcome}"
    );
    ensure!(outcome["event_id"] == event.as_str(), "{outcome}");

    gw.stop().await?;
    running.stop().await?;
    Ok(())
}
