//! The command path once a request is validated, and what became of a command.
//!
//! Owns: stamping an order command as an `OrderEvent` (its event id minted, or derived from
//! the client's `Idempotency-Key`) and producing it; answering with the decision when the
//! client asks (`Prefer: wait=N`) or re-sends a decided command; and
//! `GET /v1/orders/{order_id}/commands/{event_id}`.
//!
//! - **Outcomes** are the status pipeline's: it keeps each command's decision a few minutes
//!   in Redis under its event id and announces it on the order's command channel
//!   (`connectors::command_outcomes`). An accepted command answers 200 with the outcome (the
//!   status it led to and its timeline entries); a rejected one 409 with the reason code as
//!   `error` and its sentence as `message`, plus the outcome's fields.
//! - **Waiting** (`Prefer: wait=N`, RFC 7240, at most [`MAX_WAIT`]): the request follows its
//!   order's command channel through the process's one shared subscription before producing,
//!   so the decision is heard, never polled for. When N runs out the answer is the 202 of a
//!   request without the preference; either way `Preference-Applied: wait=N` says it waited.
//!   Without Redis the gateway cannot wait: it answers 202 at once.
//! - **Idempotency** (`Idempotency-Key`): the event id is derived from the actor, the order,
//!   the command and the key, so a re-sent command is the same event. A re-send whose first
//!   send was decided less than [`OUTCOME_TTL`] ago is answered with that outcome and not
//!   produced again; an undecided one is produced again, and the status pipeline, which
//!   decides an event id once (the history for an acceptance, the recorded outcome for a
//!   rejection), leaves the copy without effect. The same key with another command is another
//!   command. A placement with a key and no `order_id` gets an order id derived from the key.
//!
//! [`OUTCOME_TTL`]: doorstep_connectors::command_outcomes::OUTCOME_TTL

mod headers;
mod wait;

pub use headers::{CommandHeaders, MAX_KEY_LEN, MAX_WAIT, keyed_event_id, keyed_order_id};

use self::wait::{Waited, Waiting};
use super::extract::Caller;
use super::track::TrackingHub;
use super::{AcceptedBody, ApiError, GatewayState};
use crate::auth::Claims;
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use doorstep_connectors::command_outcomes::CommandOutcomes;
use doorstep_operators::order::validate_id;
use doorstep_schemas::events::{OrderCommand, OrderEvent};
use doorstep_schemas::model::{Actor, ActorKind, EventId, OrderId, Timestamp};
use doorstep_schemas::outcome::CommandOutcome;
use std::time::Duration;
use tokio::time::Instant;

/// Stamps `command` of `actor` on `order_id` as an event and produces it; answers 202, or the
/// decision when `asked` waits for it or re-sends a decided command.
pub(super) async fn submit(
    s: &GatewayState,
    actor: Actor,
    order_id: String,
    command: OrderCommand,
    asked: &CommandHeaders,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let order_id = OrderId::new(order_id);
    let event_id = match &asked.key {
        Some(key) => keyed_event_id(&actor, &order_id, &command, key),
        None => EventId::new(uuid::Uuid::now_v7().to_string()),
    };
    let metrics = &s.inner.metrics;
    let mut waiting = None;
    let mut store = None;
    if asked.key.is_some() || asked.wait.is_some() {
        let budget = asked.wait.unwrap_or(s.inner.config.read_timeout);
        match feed(s, budget).await {
            Ok((hub, outcomes)) => {
                if asked.wait.is_some() {
                    waiting = follow(&hub, &outcomes, &order_id, &event_id, started + budget).await;
                }
                if asked.key.is_some()
                    && let Some(first) = read(s, &outcomes, &order_id, &event_id).await
                {
                    metrics
                        .command_replays
                        .with_label_values(&[decision_label(&first)])
                        .inc();
                    tracing::debug!(%event_id, %order_id, "a re-sent command answered with its first outcome");
                    return Ok(decided(&first, asked.wait.filter(|_| waiting.is_some())));
                }
                store = Some(outcomes);
            }
            Err(e) => {
                tracing::warn!(%event_id, %order_id, error = %e, "command outcomes unavailable; answering without them");
            }
        }
    }
    let event = OrderEvent {
        event_id,
        order_id,
        occurred_at: Timestamp::now(),
        actor,
        command,
    };
    produce(s, &event).await?;
    let (Some(wait), Some(mut waiting)) = (asked.wait, waiting) else {
        if asked.wait.is_some() {
            metrics
                .command_waits
                .with_label_values(&["unavailable"])
                .inc();
        }
        return Ok(accepted(&event.order_id, &event.event_id, None));
    };
    let heard = match waiting.until(started + wait).await {
        Waited::Outcome(outcome) => Some(CommandOutcome::clone(&outcome)),
        Waited::TimedOut => None,
        Waited::Interrupted => match &store {
            Some(outcomes) => read(s, outcomes, &event.order_id, &event.event_id).await,
            None => None,
        },
    };
    let label = heard.as_ref().map_or("timed_out", decision_label);
    metrics.command_waits.with_label_values(&[label]).inc();
    Ok(match heard {
        Some(outcome) => decided(&outcome, Some(wait)),
        None => accepted(&event.order_id, &event.event_id, Some(wait)),
    })
}

/// `GET /v1/orders/{order_id}/commands/{event_id}`: 200 with the outcome for the actor that
/// sent the command (or a system token), 403 for anyone else, 202 while none is recorded
/// (undecided, or decided too long ago). `Prefer: wait=N` waits for it.
pub(super) async fn get_outcome(
    State(s): State<GatewayState>,
    Caller(claims): Caller,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let Path((order_id, event_id)) =
        path.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", e.body_text()))?;
    validate_id("order_id", &order_id)?;
    validate_id("event_id", &event_id)?;
    claims.require_order(&order_id)?;
    let wait = headers::wait(&headers)?;
    let (order_id, event_id) = (OrderId::new(order_id), EventId::new(event_id));
    let budget = wait.unwrap_or(s.inner.config.read_timeout);
    let (hub, outcomes) = feed(&s, budget)
        .await
        .map_err(|e| outcomes_unavailable(&s, &e))?;
    let mut waiting = match wait {
        Some(_) => follow(&hub, &outcomes, &order_id, &event_id, started + budget).await,
        None => None,
    };
    let found = tokio::time::timeout(
        s.inner.config.read_timeout,
        outcomes.get(&order_id, &event_id),
    )
    .await
    .map_err(|_| outcomes_unavailable(&s, "no answer from Redis in time"))?
    .map_err(|e| outcomes_unavailable(&s, &e.to_string()))?;
    let outcome = match (found, wait, waiting.as_mut()) {
        (Some(o), ..) => Some(o),
        (None, Some(wait), Some(waiting)) => {
            let heard = match waiting.until(started + wait).await {
                Waited::Outcome(o) => Some(CommandOutcome::clone(&o)),
                Waited::TimedOut => None,
                Waited::Interrupted => read(&s, &outcomes, &order_id, &event_id).await,
            };
            let label = heard.as_ref().map_or("timed_out", decision_label);
            s.inner
                .metrics
                .command_waits
                .with_label_values(&[label])
                .inc();
            heard
        }
        (None, ..) => None,
    };
    let applied = wait.filter(|_| waiting.is_some());
    match outcome {
        None => Ok(accepted(&order_id, &event_id, applied)),
        Some(o) if sent_by(&claims, &o) => {
            let mut response = (StatusCode::OK, Json(&o)).into_response();
            preference_applied(&mut response, applied);
            Ok(response)
        }
        Some(_) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("command {event_id} of order {order_id} was sent by someone else"),
        )),
    }
}

/// Whether `claims` may read `outcome`: the actor that sent the command, or the system.
fn sent_by(claims: &Claims, outcome: &CommandOutcome) -> bool {
    claims.sub_kind == ActorKind::System || outcome.actor == claims.actor()
}

/// The hub and the outcome store, connecting to Redis on first use (within `within`).
async fn feed(
    s: &GatewayState,
    within: Duration,
) -> Result<(TrackingHub, CommandOutcomes), String> {
    let Some(tracking) = s.inner.tracking.as_ref() else {
        return Err("live tracking (Redis) is not configured on this gateway".to_owned());
    };
    tokio::time::timeout(within, tracking.commands())
        .await
        .map_err(|_| format!("Redis did not answer within {within:?}"))?
}

/// Starts waiting for `event_id` on its order's command channel (by `deadline`); `None`
/// when the subscription fails (logged: the request is answered without waiting).
async fn follow(
    hub: &TrackingHub,
    outcomes: &CommandOutcomes,
    order_id: &OrderId,
    event_id: &EventId,
    deadline: Instant,
) -> Option<Waiting> {
    let channel = outcomes.channel(order_id);
    match tokio::time::timeout_at(deadline, Waiting::start(hub, &channel, event_id)).await {
        Ok(Ok(waiting)) => Some(waiting),
        Ok(Err(e)) => {
            tracing::warn!(%event_id, %order_id, error = %e, "cannot wait for a command's outcome");
            None
        }
        Err(_) => {
            tracing::warn!(%event_id, %order_id, "subscribing to the command channel took the whole wait");
            None
        }
    }
}

/// The recorded outcome, `None` when there is none or Redis fails (logged).
async fn read(
    s: &GatewayState,
    outcomes: &CommandOutcomes,
    order_id: &OrderId,
    event_id: &EventId,
) -> Option<CommandOutcome> {
    match tokio::time::timeout(
        s.inner.config.read_timeout,
        outcomes.get(order_id, event_id),
    )
    .await
    {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            tracing::warn!(%event_id, %order_id, error = %e, "cannot read a command's outcome");
            None
        }
        Err(_) => {
            tracing::warn!(%event_id, %order_id, "no answer from Redis for a command's outcome");
            None
        }
    }
}

/// The metric label of an outcome.
fn decision_label(outcome: &CommandOutcome) -> &'static str {
    if outcome.is_rejected() {
        "rejected"
    } else {
        "accepted"
    }
}

/// 202 `{order_id, event_id}`, with `Preference-Applied` when the gateway waited.
fn accepted(order_id: &OrderId, event_id: &EventId, waited: Option<Duration>) -> Response {
    let body = AcceptedBody {
        order_id: order_id.as_str().to_owned(),
        event_id: event_id.as_str().to_owned(),
    };
    let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
    preference_applied(&mut response, waited);
    response
}

/// 200 with an accepted outcome; 409 with a rejected one: its reason as `error`, its
/// sentence as `message`, and the outcome's fields.
fn decided(outcome: &CommandOutcome, waited: Option<Duration>) -> Response {
    let mut body = match serde_json::to_value(outcome) {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, "cannot serialise a command outcome");
            return ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the command's outcome could not be serialised",
            )
            .into_response();
        }
    };
    let status = match &outcome.decision {
        doorstep_schemas::outcome::Decided::Rejected { reason, .. } => {
            if let Some(fields) = body.as_object_mut() {
                fields.insert("error".to_owned(), reason.clone().into());
            }
            StatusCode::CONFLICT
        }
        doorstep_schemas::outcome::Decided::Accepted { .. } => StatusCode::OK,
    };
    let mut response = (status, Json(body)).into_response();
    preference_applied(&mut response, waited);
    response
}

fn preference_applied(response: &mut Response, waited: Option<Duration>) {
    if let Some(wait) = waited {
        response.headers_mut().insert(
            "preference-applied",
            HeaderValue::from_str(&format!("wait={}", wait.as_secs()))
                .unwrap_or(HeaderValue::from_static("wait")),
        );
    }
}

fn outcomes_unavailable(s: &GatewayState, why: &str) -> ApiError {
    tracing::warn!(error = %why, "command outcomes unavailable");
    ApiError {
        retry_after: Some(s.inner.config.retry_after),
        ..ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "outcomes_unavailable",
            "command outcomes cannot be read right now; retry later",
        )
    }
}

/// Produces `event`, keyed by order id with an `event_id` header, and waits for the broker's
/// acknowledgement at most the produce timeout: 503 `broker_unavailable` on a timeout or a
/// broker error.
async fn produce(s: &GatewayState, event: &OrderEvent) -> Result<(), ApiError> {
    let inner = &s.inner;
    let name = event.command.name();
    let payload = inner.catalog.encode(event).map_err(|e| {
        tracing::error!(error = %e, event_id = %event.event_id, "cannot encode an order event");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "encoding_failed",
            "the event could not be encoded",
        )
    })?;
    let key = event.order_id.as_str().as_bytes();
    let headers = [("event_id", event.event_id.as_str().as_bytes())];
    let timeout = inner.config.produce_timeout;
    let send = inner
        .sink
        .send(&inner.config.events_topic, key, &payload, &headers);
    let failure = match tokio::time::timeout(timeout, send).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(_) => Some(format!("no acknowledgement within {timeout:?}")),
    };
    if let Some(why) = failure {
        tracing::warn!(event_id = %event.event_id, order_id = %event.order_id, command = name, error = %why, "order event not produced");
        return Err(ApiError::broker_unavailable(
            "the event broker did not acknowledge the request in time; retry later",
            inner.config.retry_after,
        ));
    }
    inner.metrics.produced.with_label_values(&[name]).inc();
    tracing::debug!(event_id = %event.event_id, order_id = %event.order_id, command = name, "order event produced");
    Ok(())
}
