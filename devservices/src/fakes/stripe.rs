//! A fake of Stripe's Refunds API, with Stripe's idempotency semantics.
//!
//! `POST /v1/refunds`, form-encoded (`payment_intent`, `amount`, `reason`, `metadata[k]`, …),
//! `Authorization: Bearer sk_…`, optional `Idempotency-Key`. Success is 200 with a refund
//! object (`{"id": "re_…", "object": "refund", "amount", "status": "succeeded", …}`); errors
//! are `{"error": {"type", "code", "message", "param"}}` with Stripe's statuses.
//!
//! The stages of a request follow Stripe's documented order, which decides what an
//! idempotency key replays:
//!
//! 1. authentication: a missing or malformed key is 401 (nothing saved);
//! 2. injected front-door faults ([`StripeFault::RateLimited`] 429,
//!    [`StripeFault::Unavailable`] 503, [`StripeFault::ServerError`] 500 with
//!    `Stripe-Should-Retry: true`): never saved, so a retry with the same key runs anew;
//! 3. the idempotency layer: a key seen before with the same path and parameters replays
//!    the saved status and body with `Idempotent-Replayed: true`; with other parameters it is
//!    400 `idempotency_error`;
//! 4. parameter validation (unknown or missing parameters, bad amount or reason): 400
//!    `invalid_request_error`, not saved;
//! 5. execution, whose answer is saved under the key whatever it is: the refund, 404
//!    `resource_missing` for an unknown payment intent (with
//!    [`StripeState::require_known_payment_intents`]), 400 `charge_already_refunded` /
//!    `amount_too_large` against a registered intent's amount, or an injected
//!    [`StripeFault::ServerErrorSaved`] 500 — replayed later with
//!    `Stripe-Should-Retry: false`, as Stripe does.
//!
//! `GET /__fake/refunds` and `GET /__fake/requests` return what was recorded, as JSON.

use super::{Running, random_id, unix_now};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Parameters `POST /v1/refunds` knows (`metadata[...]` and `expand[]` are handled apart).
const KNOWN_PARAMS: [&str; 10] = [
    "amount",
    "charge",
    "currency",
    "customer",
    "instructions_email",
    "origin",
    "payment_intent",
    "reason",
    "refund_application_fee",
    "reverse_transfer",
];

const REASONS: [&str; 3] = ["duplicate", "fraudulent", "requested_by_customer"];

/// A failure to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StripeFault {
    /// 429 `rate_limit` (the rate limiter runs before the idempotency layer: not saved).
    RateLimited,
    /// 503 `api_error` from the front door (not saved).
    Unavailable,
    /// 500 `api_error` before the endpoint ran, with `Stripe-Should-Retry: true` (not saved).
    ServerError,
    /// 500 `api_error` after the endpoint started: saved under the idempotency key and
    /// replayed for every retry with `Stripe-Should-Retry: false`.
    ServerErrorSaved,
}

/// One request as received.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct StripeRequest {
    /// The path.
    pub path: String,
    /// The `Idempotency-Key` header, if any.
    pub idempotency_key: Option<String>,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The decoded form parameters, in order.
    pub params: Vec<(String, String)>,
    /// The HTTP status answered.
    pub status: u16,
    /// Whether the answer was a replay of a saved one.
    pub replayed: bool,
    /// The refund id in the answer, if any.
    pub refund_id: Option<String>,
}

/// A refund the fake created.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct RefundRecord {
    /// `re_…`.
    pub id: String,
    /// The payment intent refunded.
    pub payment_intent: String,
    /// Amount in the smallest currency unit.
    pub amount: i64,
    /// `succeeded`, `pending`, `failed`, ...
    pub status: String,
    /// The reason given.
    pub reason: Option<String>,
    /// `metadata[...]`.
    pub metadata: BTreeMap<String, String>,
    /// The idempotency key of the request that created it.
    pub idempotency_key: Option<String>,
    /// The full refund object answered.
    pub object: Value,
}

#[derive(Debug, Clone)]
struct Intent {
    amount: i64,
    currency: String,
    refunded: i64,
}

#[derive(Debug, Clone)]
struct Saved {
    path: String,
    params: Vec<(String, String)>,
    status: StatusCode,
    body: Value,
    request_id: String,
}

#[derive(Debug, Default)]
struct Inner {
    requests: Vec<StripeRequest>,
    refunds: Vec<RefundRecord>,
    saved: HashMap<String, Saved>,
    faults: VecDeque<StripeFault>,
    intents: HashMap<String, Intent>,
    strict_intents: bool,
    next_statuses: VecDeque<String>,
    secret_key: Option<String>,
}

/// The fake's shared state; the router's state and the handle for inspecting it.
#[derive(Debug, Clone, Default)]
pub struct StripeState {
    inner: Arc<Mutex<Inner>>,
}

impl StripeState {
    /// An empty state: any `pi_…` is refundable without limit, any `sk_…`/`rk_…` key works.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every refund created, oldest first (replays do not create refunds).
    pub fn refunds(&self) -> Vec<RefundRecord> {
        self.lock().refunds.clone()
    }

    /// Every request received, oldest first.
    pub fn requests(&self) -> Vec<StripeRequest> {
        self.lock().requests.clone()
    }

    /// Makes the next `n` requests fail with `fault`.
    pub fn fail_next(&self, n: usize, fault: StripeFault) {
        self.lock().faults.extend(std::iter::repeat_n(fault, n));
    }

    /// Registers payment intent `id` as captured for `amount` in `currency`: refunds beyond
    /// it are refused (`amount_too_large`, `charge_already_refunded`).
    pub fn set_payment_intent(
        &self,
        id: impl Into<String>,
        amount: i64,
        currency: impl Into<String>,
    ) {
        self.lock().intents.insert(
            id.into(),
            Intent {
                amount,
                currency: currency.into(),
                refunded: 0,
            },
        );
    }

    /// With `true`, unregistered payment intents answer 404 `resource_missing`; with `false`
    /// (the default) any `pi_…` is refundable without limit.
    pub fn require_known_payment_intents(&self, strict: bool) {
        self.lock().strict_intents = strict;
    }

    /// The status of the next refund created (`pending`, `failed`, ...), then `succeeded`
    /// again.
    pub fn next_refund_status(&self, status: impl Into<String>) {
        self.lock().next_statuses.push_back(status.into());
    }

    /// Accepts only this secret key (by default any `sk_…` or `rk_…` key).
    pub fn require_secret_key(&self, key: impl Into<String>) {
        self.lock().secret_key = Some(key.into());
    }
}

/// A running fake Stripe server; stops when dropped.
#[derive(Debug)]
pub struct FakeStripe {
    state: StripeState,
    server: Running,
}

impl FakeStripe {
    /// Starts a fake on `127.0.0.1` with a free port.
    pub async fn start() -> io::Result<Self> {
        Self::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts a fake on `addr`.
    pub async fn bind(addr: SocketAddr) -> io::Result<Self> {
        let state = StripeState::new();
        let server = Running::serve(router(state.clone()), addr).await?;
        Ok(Self { state, server })
    }

    /// The base URL (`http://127.0.0.1:<port>`), the client's `base_url`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The shared state (also reachable through the delegating methods below).
    pub fn state(&self) -> &StripeState {
        &self.state
    }

    /// Every refund created, oldest first.
    pub fn refunds(&self) -> Vec<RefundRecord> {
        self.state.refunds()
    }

    /// Every request received, oldest first.
    pub fn requests(&self) -> Vec<StripeRequest> {
        self.state.requests()
    }

    /// Makes the next `n` requests fail with `fault`.
    pub fn fail_next(&self, n: usize, fault: StripeFault) {
        self.state.fail_next(n, fault);
    }
}

/// The fake's routes on `state`.
pub fn router(state: StripeState) -> Router {
    Router::new()
        .route("/v1/refunds", post(create_refund))
        .route("/__fake/refunds", get(list_refunds))
        .route("/__fake/requests", get(list_requests))
        .fallback(unknown_url)
        .with_state(state)
}

async fn list_refunds(State(state): State<StripeState>) -> Response {
    axum::Json(state.refunds()).into_response()
}

async fn list_requests(State(state): State<StripeState>) -> Response {
    axum::Json(state.requests()).into_response()
}

async fn unknown_url(method: Method, uri: Uri) -> Response {
    StripeError::invalid(
        StatusCode::NOT_FOUND,
        None,
        None,
        format!(
            "Unrecognized request URL ({method}: {}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.",
            uri.path()
        ),
    )
    .into_response()
}

/// A Stripe error answer.
#[derive(Debug, Clone)]
struct StripeError {
    http: StatusCode,
    error_type: &'static str,
    code: Option<&'static str>,
    param: Option<String>,
    message: String,
    should_retry: Option<bool>,
}

impl StripeError {
    fn invalid(
        http: StatusCode,
        code: Option<&'static str>,
        param: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            http,
            error_type: "invalid_request_error",
            code,
            param: param.map(str::to_owned),
            message: message.into(),
            should_retry: None,
        }
    }

    fn api(http: StatusCode, should_retry: Option<bool>) -> Self {
        Self {
            http,
            error_type: "api_error",
            code: None,
            param: None,
            message: "An unknown error occurred while processing your request.".to_owned(),
            should_retry,
        }
    }

    fn body(&self) -> Value {
        let mut error = json!({"type": self.error_type, "message": self.message});
        if let Some(code) = self.code {
            error["code"] = json!(code);
            error["doc_url"] = json!(format!(
                "https://stripe.com/docs/error-codes/{}",
                code.replace('_', "-")
            ));
        }
        if let Some(param) = &self.param {
            error["param"] = json!(param);
        }
        json!({ "error": error })
    }
}

impl IntoResponse for StripeError {
    fn into_response(self) -> Response {
        respond(self.http, &self.body(), &[], self.should_retry)
    }
}

fn respond(
    status: StatusCode,
    body: &Value,
    extra: &[(&'static str, String)],
    should_retry: Option<bool>,
) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    for (name, value) in extra {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(*name, v);
        }
    }
    if let Some(retry) = should_retry {
        headers.insert(
            "stripe-should-retry",
            HeaderValue::from_static(if retry { "true" } else { "false" }),
        );
    }
    response
}

async fn create_refund(
    State(state): State<StripeState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let authorization = header(header::AUTHORIZATION.as_str());
    let key = header("idempotency-key");
    let content_type = header(header::CONTENT_TYPE.as_str());
    let params: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let mut inner = state.lock();
    let outcome = handle(
        &mut inner,
        authorization.as_deref(),
        key.as_deref(),
        content_type.as_deref(),
        &params,
    );
    let refund_id = outcome
        .body
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    inner.requests.push(StripeRequest {
        path: "/v1/refunds".to_owned(),
        idempotency_key: key,
        authorization,
        params,
        status: outcome.status.as_u16(),
        replayed: outcome.replayed,
        refund_id,
    });
    let mut extra = vec![("request-id", outcome.request_id.clone())];
    if outcome.replayed {
        extra.push(("idempotent-replayed", "true".to_owned()));
        if let Some(original) = &outcome.original_request {
            extra.push(("original-request", original.clone()));
        }
    }
    respond(outcome.status, &outcome.body, &extra, outcome.should_retry)
}

struct Outcome {
    status: StatusCode,
    body: Value,
    replayed: bool,
    should_retry: Option<bool>,
    request_id: String,
    original_request: Option<String>,
}

impl Outcome {
    fn error(e: StripeError, request_id: String) -> Self {
        Self {
            status: e.http,
            body: e.body(),
            replayed: false,
            should_retry: e.should_retry,
            request_id,
            original_request: None,
        }
    }
}

fn handle(
    inner: &mut Inner,
    authorization: Option<&str>,
    key: Option<&str>,
    content_type: Option<&str>,
    params: &[(String, String)],
) -> Outcome {
    let request_id = format!("req_{}", random_id(14));
    // 1. Authentication.
    if let Err(e) = authenticate(inner, authorization) {
        return Outcome::error(e, request_id);
    }
    // 2. Front-door faults (not saved).
    let saved_fault = match inner.faults.pop_front() {
        Some(StripeFault::RateLimited) => {
            let e = StripeError::invalid(
                StatusCode::TOO_MANY_REQUESTS,
                Some("rate_limit"),
                None,
                "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests.",
            );
            return Outcome::error(e, request_id);
        }
        Some(StripeFault::Unavailable) => {
            return Outcome::error(
                StripeError::api(StatusCode::SERVICE_UNAVAILABLE, None),
                request_id,
            );
        }
        Some(StripeFault::ServerError) => {
            return Outcome::error(
                StripeError::api(StatusCode::INTERNAL_SERVER_ERROR, Some(true)),
                request_id,
            );
        }
        Some(StripeFault::ServerErrorSaved) => true,
        None => false,
    };
    let mut sorted = params.to_vec();
    sorted.sort();
    // 3. Idempotency layer.
    if let Some(key) = key {
        if key.len() > 255 {
            let e = StripeError::invalid(
                StatusCode::BAD_REQUEST,
                None,
                None,
                "Idempotency-Key must be at most 255 characters long.",
            );
            return Outcome::error(e, request_id);
        }
        if let Some(saved) = inner.saved.get(key) {
            if saved.path != "/v1/refunds" || saved.params != sorted {
                let e = StripeError {
                    http: StatusCode::BAD_REQUEST,
                    error_type: "idempotency_error",
                    code: None,
                    param: None,
                    message: format!(
                        "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request."
                    ),
                    should_retry: None,
                };
                return Outcome::error(e, request_id);
            }
            let should_retry = saved.status.is_server_error().then_some(false);
            return Outcome {
                status: saved.status,
                body: saved.body.clone(),
                replayed: true,
                should_retry,
                request_id,
                original_request: Some(saved.request_id.clone()),
            };
        }
    }
    // 4. Parameter validation (not saved).
    let request = match validate(content_type, params) {
        Ok(r) => r,
        Err(e) => return Outcome::error(e, request_id),
    };
    // 5. Execution (saved under the key).
    let (status, body) = if saved_fault {
        let e = StripeError::api(StatusCode::INTERNAL_SERVER_ERROR, None);
        (e.http, e.body())
    } else {
        match execute(inner, &request, key) {
            Ok(object) => (StatusCode::OK, object),
            Err(e) => (e.http, e.body()),
        }
    };
    if let Some(key) = key {
        inner.saved.insert(
            key.to_owned(),
            Saved {
                path: "/v1/refunds".to_owned(),
                params: sorted,
                status,
                body: body.clone(),
                request_id: request_id.clone(),
            },
        );
    }
    Outcome {
        status,
        body,
        replayed: false,
        should_retry: None,
        request_id,
        original_request: None,
    }
}

fn authenticate(inner: &Inner, authorization: Option<&str>) -> Result<(), StripeError> {
    let Some(auth) = authorization else {
        return Err(StripeError::invalid(
            StatusCode::UNAUTHORIZED,
            None,
            None,
            "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
        ));
    };
    let key = auth
        .strip_prefix("Bearer ")
        .map(str::trim)
        .unwrap_or_default();
    let well_formed = key.starts_with("sk_") || key.starts_with("rk_");
    let expected = inner.secret_key.as_deref().is_none_or(|k| k == key);
    if !well_formed || !expected {
        let shown: String = key
            .chars()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        return Err(StripeError::invalid(
            StatusCode::UNAUTHORIZED,
            None,
            None,
            format!("Invalid API Key provided: ****{shown}"),
        ));
    }
    Ok(())
}

/// A validated refund request.
struct RefundRequest {
    payment_intent: String,
    amount: Option<i64>,
    reason: Option<String>,
    metadata: BTreeMap<String, String>,
}

fn validate(
    content_type: Option<&str>,
    params: &[(String, String)],
) -> Result<RefundRequest, StripeError> {
    let bad = |code: &'static str, param: &str, message: String| {
        StripeError::invalid(StatusCode::BAD_REQUEST, Some(code), Some(param), message)
    };
    if !content_type.is_some_and(|c| c.starts_with("application/x-www-form-urlencoded")) {
        return Err(StripeError::invalid(
            StatusCode::BAD_REQUEST,
            None,
            None,
            "Invalid request: the body must be form-encoded (Content-Type: application/x-www-form-urlencoded).",
        ));
    }
    let mut metadata = BTreeMap::new();
    let mut map: BTreeMap<&str, &str> = BTreeMap::new();
    for (k, v) in params {
        if let Some(inner) = k
            .strip_prefix("metadata[")
            .and_then(|r| r.strip_suffix(']'))
        {
            if inner.is_empty() || inner.chars().count() > 40 {
                return Err(bad(
                    "parameter_invalid_string",
                    k,
                    "Metadata keys must be 1 to 40 characters long.".to_owned(),
                ));
            }
            if v.chars().count() > 500 {
                return Err(bad(
                    "parameter_invalid_string",
                    k,
                    "Metadata values can have up to 500 characters.".to_owned(),
                ));
            }
            metadata.insert(inner.to_owned(), v.clone());
        } else if k.starts_with("expand[") {
            // Accepted and ignored.
        } else if KNOWN_PARAMS.contains(&k.as_str()) {
            map.insert(k, v);
        } else {
            return Err(bad(
                "parameter_unknown",
                k,
                format!("Received unknown parameter: {k}"),
            ));
        }
    }
    if map.contains_key("charge") {
        return Err(bad(
            "parameter_unknown",
            "charge",
            "This fake refunds payment intents only; pass payment_intent.".to_owned(),
        ));
    }
    let Some(payment_intent) = map.get("payment_intent").map(|s| (*s).to_owned()) else {
        return Err(StripeError::invalid(
            StatusCode::BAD_REQUEST,
            Some("parameter_missing"),
            Some("payment_intent"),
            "One of the following params should be provided for this request: payment_intent or charge.",
        ));
    };
    let amount = match map.get("amount") {
        None => None,
        Some(raw) => match raw.parse::<i64>() {
            Ok(a) if a > 0 => Some(a),
            Ok(_) => {
                return Err(bad(
                    "parameter_invalid_integer",
                    "amount",
                    "This value must be greater than or equal to 1.".to_owned(),
                ));
            }
            Err(_) => {
                return Err(bad(
                    "parameter_invalid_integer",
                    "amount",
                    format!("Invalid integer: {raw}"),
                ));
            }
        },
    };
    let reason = map.get("reason").map(|s| (*s).to_owned());
    if let Some(r) = &reason
        && !REASONS.contains(&r.as_str())
    {
        return Err(bad(
            "parameter_invalid_string",
            "reason",
            format!(
                "Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer (got {r:?})"
            ),
        ));
    }
    Ok(RefundRequest {
        payment_intent,
        amount,
        reason,
        metadata,
    })
}

fn execute(
    inner: &mut Inner,
    request: &RefundRequest,
    key: Option<&str>,
) -> Result<Value, StripeError> {
    let pi = &request.payment_intent;
    let missing = || {
        StripeError::invalid(
            StatusCode::NOT_FOUND,
            Some("resource_missing"),
            Some("payment_intent"),
            format!("No such payment_intent: '{pi}'"),
        )
    };
    if !pi.starts_with("pi_") {
        return Err(missing());
    }
    let (amount, currency) = match inner.intents.get_mut(pi) {
        Some(intent) => {
            let remaining = intent.amount - intent.refunded;
            if remaining <= 0 {
                return Err(StripeError::invalid(
                    StatusCode::BAD_REQUEST,
                    Some("charge_already_refunded"),
                    None,
                    format!("Charge for payment intent {pi} has already been refunded."),
                ));
            }
            let amount = request.amount.unwrap_or(remaining);
            if amount > remaining {
                return Err(StripeError::invalid(
                    StatusCode::BAD_REQUEST,
                    Some("amount_too_large"),
                    Some("amount"),
                    format!(
                        "Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining})"
                    ),
                ));
            }
            intent.refunded += amount;
            (amount, intent.currency.clone())
        }
        None if inner.strict_intents => return Err(missing()),
        None => {
            let Some(amount) = request.amount else {
                return Err(StripeError::invalid(
                    StatusCode::BAD_REQUEST,
                    Some("parameter_missing"),
                    Some("amount"),
                    "This fake needs an amount for payment intents it does not know.",
                ));
            };
            (amount, "usd".to_owned())
        }
    };
    let status = inner
        .next_statuses
        .pop_front()
        .unwrap_or_else(|| "succeeded".to_owned());
    let id = format!("re_{}", random_id(24));
    let suffix = pi.trim_start_matches("pi_");
    let mut object = json!({
        "id": id,
        "object": "refund",
        "amount": amount,
        "balance_transaction": format!("txn_{}", random_id(24)),
        "charge": format!("ch_{suffix}"),
        "created": unix_now(),
        "currency": currency,
        "metadata": request.metadata,
        "payment_intent": pi,
        "reason": request.reason,
        "receipt_number": null,
        "source_transfer_reversal": null,
        "status": status,
        "transfer_reversal": null,
    });
    if status == "failed" {
        object["failure_reason"] = json!("expired_or_canceled_card");
    }
    inner.refunds.push(RefundRecord {
        id,
        payment_intent: pi.clone(),
        amount,
        status,
        reason: request.reason.clone(),
        metadata: request.metadata.clone(),
        idempotency_key: key.map(str::to_owned),
        object: object.clone(),
    });
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    const FORM: &str = "application/x-www-form-urlencoded";
    const GOOD: &str =
        "payment_intent=pi_o-1&amount=1500&reason=requested_by_customer&metadata%5Border_id%5D=o-1";

    struct Answer {
        status: StatusCode,
        headers: HeaderMap,
        body: Value,
    }

    async fn call(state: &StripeState, key: Option<&str>, body: &str) -> Answer {
        call_with(
            state,
            "/v1/refunds",
            Some("Bearer sk_test_123"),
            Some(FORM),
            key,
            body,
        )
        .await
    }

    async fn call_with(
        state: &StripeState,
        path: &str,
        auth: Option<&str>,
        content_type: Option<&str>,
        key: Option<&str>,
        body: &str,
    ) -> Answer {
        let mut request = Request::builder().method("POST").uri(path);
        if let Some(a) = auth {
            request = request.header(header::AUTHORIZATION, a);
        }
        if let Some(c) = content_type {
            request = request.header(header::CONTENT_TYPE, c);
        }
        if let Some(k) = key {
            request = request.header("Idempotency-Key", k);
        }
        let request = match request.body(Body::from(body.to_owned())) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        };
        let response = match router(state.clone()).oneshot(request).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        Answer {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    #[tokio::test]
    async fn creates_a_refund_object() {
        let state = StripeState::new();
        let a = call(&state, Some("refund:o-1"), GOOD).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        assert_eq!(a.body["object"], "refund");
        assert_eq!(a.body["amount"], 1500);
        assert_eq!(a.body["status"], "succeeded");
        assert_eq!(a.body["payment_intent"], "pi_o-1");
        assert_eq!(a.body["metadata"]["order_id"], "o-1");
        assert_eq!(a.body["reason"], "requested_by_customer");
        assert!(a.body["id"].as_str().unwrap().starts_with("re_"));
        assert!(a.headers.get("request-id").is_some());
        let r = state.refunds();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].idempotency_key.as_deref(), Some("refund:o-1"));
        assert_eq!(r[0].metadata["order_id"], "o-1");
    }

    #[tokio::test]
    async fn same_key_same_params_replays_and_different_params_is_an_idempotency_error() {
        let state = StripeState::new();
        let first = call(&state, Some("k"), GOOD).await;
        let again = call(&state, Some("k"), GOOD).await;
        assert_eq!(again.status, StatusCode::OK);
        assert_eq!(again.body, first.body);
        assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
        assert_eq!(
            again.headers.get("original-request"),
            first.headers.get("request-id")
        );
        // Parameter order does not matter.
        let reordered = "amount=1500&metadata%5Border_id%5D=o-1&reason=requested_by_customer&payment_intent=pi_o-1";
        assert_eq!(
            call(&state, Some("k"), reordered).await.body["id"],
            first.body["id"]
        );
        let other = call(&state, Some("k"), &GOOD.replace("1500", "1400")).await;
        assert_eq!(other.status, StatusCode::BAD_REQUEST);
        assert_eq!(other.body["error"]["type"], "idempotency_error");
        assert_eq!(state.refunds().len(), 1);
        // Without a key every request is new.
        call(&state, None, GOOD).await;
        call(&state, None, GOOD).await;
        assert_eq!(state.refunds().len(), 3);
        let replays = state.requests().iter().filter(|r| r.replayed).count();
        assert_eq!(replays, 2);
    }

    #[tokio::test]
    async fn validation_errors_have_stripes_shape_and_are_not_saved() {
        let state = StripeState::new();
        let cases = [
            ("amount=10", "parameter_missing", Some("payment_intent")),
            (
                "payment_intent=pi_1&amount=0",
                "parameter_invalid_integer",
                Some("amount"),
            ),
            (
                "payment_intent=pi_1&amount=ten",
                "parameter_invalid_integer",
                Some("amount"),
            ),
            (
                "payment_intent=pi_1&amount=1&reason=because",
                "parameter_invalid_string",
                Some("reason"),
            ),
            (
                "payment_intent=pi_1&amount=1&colour=red",
                "parameter_unknown",
                Some("colour"),
            ),
        ];
        for (body, code, param) in cases {
            let a = call(&state, Some("key-v"), body).await;
            assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(a.body["error"]["type"], "invalid_request_error", "{body}");
            assert_eq!(a.body["error"]["code"], code, "{body}");
            assert_eq!(a.body["error"]["param"].as_str(), param, "{body}");
        }
        // Not saved: the key can still be used for a valid request.
        assert_eq!(
            call(&state, Some("key-v"), GOOD).await.status,
            StatusCode::OK
        );

        let a = call_with(&state, "/v1/refunds", None, Some(FORM), None, GOOD).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert_eq!(a.body["error"]["type"], "invalid_request_error");
        let a = call_with(
            &state,
            "/v1/refunds",
            Some("Bearer pk_test_1"),
            Some(FORM),
            None,
            GOOD,
        )
        .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        let a = call_with(
            &state,
            "/v1/refunds",
            Some("Bearer sk_1"),
            Some("application/json"),
            None,
            "{}",
        )
        .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST);
        let a = call_with(
            &state,
            "/v1/charges",
            Some("Bearer sk_1"),
            Some(FORM),
            None,
            GOOD,
        )
        .await;
        assert_eq!(a.status, StatusCode::NOT_FOUND);
        assert!(
            a.body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Unrecognized request URL")
        );
    }

    #[tokio::test]
    async fn registered_intents_limit_refunds_and_results_are_saved() {
        let state = StripeState::new();
        state.set_payment_intent("pi_o-1", 2000, "eur");
        let a = call(&state, Some("a"), GOOD).await;
        assert_eq!(a.body["currency"], "eur");
        let too_much = call(&state, Some("b"), &GOOD.replace("1500", "600")).await;
        assert_eq!(too_much.status, StatusCode::BAD_REQUEST);
        assert_eq!(too_much.body["error"]["code"], "amount_too_large");
        // The business error is saved under its key and replayed.
        let replay = call(&state, Some("b"), &GOOD.replace("1500", "600")).await;
        assert_eq!(replay.headers.get("idempotent-replayed").unwrap(), "true");
        assert_eq!(replay.body, too_much.body);
        call(&state, Some("c"), &GOOD.replace("1500", "500")).await;
        let done = call(&state, Some("d"), &GOOD.replace("1500", "1")).await;
        assert_eq!(done.body["error"]["code"], "charge_already_refunded");

        state.require_known_payment_intents(true);
        let missing = call(&state, Some("e"), &GOOD.replace("pi_o-1", "pi_other")).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert_eq!(missing.body["error"]["code"], "resource_missing");
    }

    #[tokio::test]
    async fn faults_before_the_idempotency_layer_are_not_saved() {
        let state = StripeState::new();
        state.fail_next(1, StripeFault::RateLimited);
        state.fail_next(1, StripeFault::Unavailable);
        state.fail_next(1, StripeFault::ServerError);
        let a = call(&state, Some("k"), GOOD).await;
        assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(a.body["error"]["code"], "rate_limit");
        let a = call(&state, Some("k"), GOOD).await;
        assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(a.body["error"]["type"], "api_error");
        let a = call(&state, Some("k"), GOOD).await;
        assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(a.headers.get("stripe-should-retry").unwrap(), "true");
        let a = call(&state, Some("k"), GOOD).await;
        assert_eq!(a.status, StatusCode::OK);
        assert!(a.headers.get("idempotent-replayed").is_none());
    }

    #[tokio::test]
    async fn a_saved_server_error_is_replayed_with_should_retry_false() {
        let state = StripeState::new();
        state.fail_next(1, StripeFault::ServerErrorSaved);
        let first = call(&state, Some("k"), GOOD).await;
        assert_eq!(first.status, StatusCode::INTERNAL_SERVER_ERROR);
        let again = call(&state, Some("k"), GOOD).await;
        assert_eq!(again.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(again.headers.get("stripe-should-retry").unwrap(), "false");
        assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
        assert!(state.refunds().is_empty());
    }

    #[tokio::test]
    async fn next_status_applies_once() {
        let state = StripeState::new();
        state.next_refund_status("failed");
        let a = call(&state, Some("a"), GOOD).await;
        assert_eq!(a.body["status"], "failed");
        assert_eq!(a.body["failure_reason"], "expired_or_canceled_card");
        let b = call(&state, Some("b"), GOOD).await;
        assert_eq!(b.body["status"], "succeeded");
    }
}
