//! A fake of Firebase Cloud Messaging's HTTP v1 send API.
//!
//! `POST /v1/projects/{project_id}/messages:send` with `Authorization: Bearer <token>` and a
//! JSON body `{"message": {...}, "validate_only": bool}` answers 200
//! `{"name": "projects/{project_id}/messages/{id}"}`, or an error in Google's shape:
//!
//! ```json
//! {"error": {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND",
//!   "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
//!                "errorCode": "UNREGISTERED"}]}}
//! ```
//!
//! What it checks, as FCM does: a bearer token (401 `UNAUTHENTICATED`); a JSON body with a
//! `message` object and no unknown fields; exactly one target (`token`, `topic` or
//! `condition`); `data` values that are strings and keys that are not reserved (`from`,
//! `gcm`, `google…`); `notification` with string `title`/`body`/`image`; `android` and `apns`
//! of the right shape, `apns-collapse-id` at most 64 bytes; `data` + `notification` at most
//! 4096 bytes. Malformed requests get 400 `INVALID_ARGUMENT` with a `google.rpc.BadRequest`
//! field violation or an `FcmError` detail, like the real service.
//!
//! Faults: [`FakeFcm::fail_next`] makes the next N requests answer 429 `QUOTA_EXCEEDED`,
//! 503 `UNAVAILABLE` or 500 `INTERNAL` (optionally with `Retry-After`);
//! [`FakeFcm::unregister`] makes a token answer 404 `UNREGISTERED`.
//!
//! `GET /__fake/messages` and `GET /__fake/requests` return what was recorded, as JSON.

use super::{Running, random_id};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Largest `data` + `notification` payload FCM accepts for a token message, in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 4096;

const FCM_ERROR_TYPE: &str = "type.googleapis.com/google.firebase.fcm.v1.FcmError";
const BAD_REQUEST_TYPE: &str = "type.googleapis.com/google.rpc.BadRequest";

/// A failure to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FcmFault {
    /// 429 `RESOURCE_EXHAUSTED` / `QUOTA_EXCEEDED`, with `Retry-After: <secs>` if given.
    QuotaExceeded {
        /// Seconds for `Retry-After`.
        retry_after_secs: Option<u64>,
    },
    /// 503 `UNAVAILABLE`, with `Retry-After: <secs>` if given.
    Unavailable {
        /// Seconds for `Retry-After`.
        retry_after_secs: Option<u64>,
    },
    /// 500 `INTERNAL`.
    Internal,
}

/// One request as received, whatever the answer was.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct FcmRequest {
    /// The `{project_id}` of the path.
    pub project_id: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The body as text.
    pub body: String,
    /// The HTTP status answered.
    pub status: u16,
    /// The message name answered on success.
    pub name: Option<String>,
}

/// A message FCM accepted (not `validate_only`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ReceivedPush {
    /// The project.
    pub project_id: String,
    /// The name answered (`projects/{p}/messages/{id}`).
    pub name: String,
    /// `message.token` (or the topic / condition, prefixed `topic:` / `condition:`).
    pub target: String,
    /// `message.notification.title`.
    pub title: Option<String>,
    /// `message.notification.body`.
    pub body: Option<String>,
    /// `message.data`.
    pub data: BTreeMap<String, String>,
    /// `message.android.collapse_key`.
    pub android_collapse_key: Option<String>,
    /// `message.apns.headers["apns-collapse-id"]`.
    pub apns_collapse_id: Option<String>,
    /// The whole `message` object.
    pub message: Value,
}

#[derive(Debug, Default)]
struct Inner {
    requests: Vec<FcmRequest>,
    messages: Vec<ReceivedPush>,
    faults: VecDeque<FcmFault>,
    unregistered: HashSet<String>,
    access_token: Option<String>,
    sent: u64,
}

/// The fake's shared state; the router's state and the handle for inspecting it.
#[derive(Debug, Clone, Default)]
pub struct FcmState {
    inner: Arc<Mutex<Inner>>,
}

impl FcmState {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every accepted message, oldest first.
    pub fn messages(&self) -> Vec<ReceivedPush> {
        self.lock().messages.clone()
    }

    /// Every request received, oldest first, with the status answered.
    pub fn requests(&self) -> Vec<FcmRequest> {
        self.lock().requests.clone()
    }

    /// Makes the next `n` requests fail with `fault` (after any faults already queued).
    pub fn fail_next(&self, n: usize, fault: FcmFault) {
        self.lock().faults.extend(std::iter::repeat_n(fault, n));
    }

    /// Makes `token` answer 404 `UNREGISTERED` from now on.
    pub fn unregister(&self, token: impl Into<String>) {
        self.lock().unregistered.insert(token.into());
    }

    /// Accepts only `Bearer <token>` (by default any non-empty bearer token is accepted).
    pub fn require_access_token(&self, token: impl Into<String>) {
        self.lock().access_token = Some(token.into());
    }

    /// Forgets recorded requests and messages and queued faults (keeps unregistered tokens
    /// and the required access token).
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.requests.clear();
        inner.messages.clear();
        inner.faults.clear();
    }
}

/// A running fake FCM server; stops when dropped.
#[derive(Debug)]
pub struct FakeFcm {
    state: FcmState,
    server: Running,
}

impl FakeFcm {
    /// Starts a fake on `127.0.0.1` with a free port.
    pub async fn start() -> io::Result<Self> {
        Self::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts a fake on `addr`.
    pub async fn bind(addr: SocketAddr) -> io::Result<Self> {
        let state = FcmState::new();
        let server = Running::serve(router(state.clone()), addr).await?;
        Ok(Self { state, server })
    }

    /// The base URL (`http://127.0.0.1:<port>`), the client's `base_url`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The shared state (also reachable through the delegating methods below).
    pub fn state(&self) -> &FcmState {
        &self.state
    }

    /// Every accepted message, oldest first.
    pub fn messages(&self) -> Vec<ReceivedPush> {
        self.state.messages()
    }

    /// Every request received, oldest first.
    pub fn requests(&self) -> Vec<FcmRequest> {
        self.state.requests()
    }

    /// Makes the next `n` requests fail with `fault`.
    pub fn fail_next(&self, n: usize, fault: FcmFault) {
        self.state.fail_next(n, fault);
    }

    /// Makes `token` answer 404 `UNREGISTERED`.
    pub fn unregister(&self, token: impl Into<String>) {
        self.state.unregister(token);
    }
}

/// The fake's routes on `state`.
pub fn router(state: FcmState) -> Router {
    Router::new()
        .route("/v1/projects/{project}/messages:send", post(send))
        .route("/__fake/messages", get(list_messages))
        .route("/__fake/requests", get(list_requests))
        .fallback(not_found)
        .with_state(state)
}

async fn list_messages(State(state): State<FcmState>) -> Response {
    axum::Json(state.messages()).into_response()
}

async fn list_requests(State(state): State<FcmState>) -> Response {
    axum::Json(state.requests()).into_response()
}

async fn not_found() -> Response {
    GoogleError::new(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "The requested URL was not found on this server.",
    )
    .into_response()
}

/// A Google API error body under construction.
#[derive(Debug, Clone)]
struct GoogleError {
    http: StatusCode,
    status: &'static str,
    message: String,
    details: Vec<Value>,
    retry_after_secs: Option<u64>,
}

impl GoogleError {
    fn new(http: StatusCode, status: &'static str, message: impl Into<String>) -> Self {
        Self {
            http,
            status,
            message: message.into(),
            details: Vec::new(),
            retry_after_secs: None,
        }
    }

    fn fcm(mut self, code: &str) -> Self {
        self.details
            .push(json!({"@type": FCM_ERROR_TYPE, "errorCode": code}));
        self
    }

    fn field(mut self, field: &str, description: &str) -> Self {
        self.details.push(json!({
            "@type": BAD_REQUEST_TYPE,
            "fieldViolations": [{"field": field, "description": description}],
        }));
        self
    }

    /// 400 `INVALID_ARGUMENT` about `field`, with the FCM detail.
    fn invalid(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message.clone())
            .fcm("INVALID_ARGUMENT")
            .field(field, &message)
    }

    fn body(&self) -> Value {
        let mut error = json!({
            "code": self.http.as_u16(),
            "message": self.message,
            "status": self.status,
        });
        if !self.details.is_empty() {
            error["details"] = Value::Array(self.details.clone());
        }
        json!({ "error": error })
    }
}

impl IntoResponse for GoogleError {
    fn into_response(self) -> Response {
        let mut response = (self.http, axum::Json(self.body())).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl FcmFault {
    fn error(self) -> GoogleError {
        match self {
            FcmFault::QuotaExceeded { retry_after_secs } => GoogleError {
                retry_after_secs,
                ..GoogleError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "RESOURCE_EXHAUSTED",
                    "Quota exceeded for quota metric 'Send requests' of service 'fcm.googleapis.com'.",
                )
                .fcm("QUOTA_EXCEEDED")
            },
            FcmFault::Unavailable { retry_after_secs } => GoogleError {
                retry_after_secs,
                ..GoogleError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "UNAVAILABLE",
                    "The service is currently unavailable.",
                )
                .fcm("UNAVAILABLE")
            },
            FcmFault::Internal => GoogleError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "Internal error encountered.",
            )
            .fcm("INTERNAL"),
        }
    }
}

async fn send(
    State(state): State<FcmState>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut inner = state.lock();
    let outcome = handle(&mut inner, &project, authorization.as_deref(), &body);
    let (status, name, response) = match outcome {
        Ok((name, accepted)) => {
            if let Some(push) = accepted {
                inner.messages.push(push);
            }
            let response = axum::Json(json!({ "name": name })).into_response();
            (StatusCode::OK, Some(name), response)
        }
        Err(e) => (e.http, None, e.into_response()),
    };
    inner.requests.push(FcmRequest {
        project_id: project,
        authorization,
        body: String::from_utf8_lossy(&body).into_owned(),
        status: status.as_u16(),
        name,
    });
    response
}

/// Decides the answer; `Ok((name, Some(push)))` when a message is accepted for delivery.
fn handle(
    inner: &mut Inner,
    project: &str,
    authorization: Option<&str>,
    body: &[u8],
) -> Result<(String, Option<ReceivedPush>), GoogleError> {
    if let Some(fault) = inner.faults.pop_front() {
        return Err(fault.error());
    }
    let token = authorization
        .and_then(|a| a.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            GoogleError::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "Request is missing required authentication credential. Expected OAuth 2 access \
                 token, login cookie or other valid authentication credential.",
            )
        })?;
    if inner.access_token.as_deref().is_some_and(|t| t != token) {
        return Err(GoogleError::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, \
             login cookie or other valid authentication credential.",
        ));
    }
    let request: Value = serde_json::from_slice(body).map_err(|e| {
        GoogleError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            format!("Invalid JSON payload received. {e}"),
        )
    })?;
    let top = request.as_object().ok_or_else(|| {
        GoogleError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "Invalid JSON payload received. Expected an object.",
        )
    })?;
    only_known(top, "", &["message", "validate_only"])?;
    let validate_only = match top.get("validate_only") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(GoogleError::invalid(
                "validate_only",
                "Invalid value at 'validate_only' (TYPE_BOOL)",
            ));
        }
    };
    let message = top
        .get("message")
        .and_then(Value::as_object)
        .ok_or_else(|| GoogleError::invalid("message", "Message must be set."))?;
    let push = validate_message(project, message)?;
    if validate_only {
        return Ok((format!("projects/{project}/messages/fake_message_id"), None));
    }
    if inner.unregistered.contains(&push.target) {
        return Err(GoogleError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "Requested entity was not found.",
        )
        .fcm("UNREGISTERED"));
    }
    inner.sent += 1;
    let name = format!(
        "projects/{project}/messages/0:{}%{}",
        inner.sent,
        random_id(16)
    );
    Ok((name.clone(), Some(ReceivedPush { name, ..push })))
}

/// Refuses fields not in `known`, as the Google API front end does.
fn only_known(object: &Map<String, Value>, at: &str, known: &[&str]) -> Result<(), GoogleError> {
    if let Some(unknown) = object.keys().find(|k| !known.contains(&k.as_str())) {
        let place = if at.is_empty() {
            String::new()
        } else {
            format!(" at '{at}'")
        };
        let message = format!(
            "Invalid JSON payload received. Unknown name \"{unknown}\"{place}: Cannot find field."
        );
        return Err(
            GoogleError::new(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message.clone())
                .field(if at.is_empty() { unknown } else { at }, &message),
        );
    }
    Ok(())
}

fn string_at<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    at: &str,
) -> Result<Option<&'a str>, GoogleError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(GoogleError::invalid(
            &format!("{at}.{key}"),
            format!("Invalid value at '{at}.{key}' (TYPE_STRING), {other}"),
        )),
    }
}

fn object_at<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    at: &str,
) -> Result<Option<&'a Map<String, Value>>, GoogleError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(GoogleError::invalid(
            &format!("{at}.{key}"),
            format!("Invalid value at '{at}.{key}': expected an object"),
        )),
    }
}

/// A map of string to string (`data`, `apns.headers`).
fn string_map(
    object: &Map<String, Value>,
    at: &str,
) -> Result<BTreeMap<String, String>, GoogleError> {
    let mut out = BTreeMap::new();
    for (i, (k, v)) in object.iter().enumerate() {
        let Value::String(s) = v else {
            return Err(GoogleError::invalid(
                &format!("{at}[{i}].value"),
                format!("Invalid value at '{at}[{i}].value' (TYPE_STRING), {v}"),
            ));
        };
        out.insert(k.clone(), s.clone());
    }
    Ok(out)
}

fn validate_message(project: &str, m: &Map<String, Value>) -> Result<ReceivedPush, GoogleError> {
    only_known(
        m,
        "message",
        &[
            "name",
            "data",
            "notification",
            "android",
            "webpush",
            "apns",
            "fcm_options",
            "token",
            "topic",
            "condition",
        ],
    )?;
    let targets: Vec<(&str, &str)> = ["token", "topic", "condition"]
        .into_iter()
        .filter_map(|k| {
            string_at(m, k, "message")
                .transpose()
                .map(|v| v.map(|v| (k, v)))
        })
        .collect::<Result<_, _>>()?;
    let target = match targets.as_slice() {
        [] => {
            return Err(GoogleError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                "Recipient of the message is not set.",
            )
            .field("message", "Recipient of the message is not set.")
            .fcm("INVALID_ARGUMENT"));
        }
        [(kind, value)] => {
            if kind == &"token" && (value.is_empty() || value.chars().any(char::is_whitespace)) {
                return Err(GoogleError::new(
                    StatusCode::BAD_REQUEST,
                    "INVALID_ARGUMENT",
                    "The registration token is not a valid FCM registration token",
                )
                .fcm("INVALID_ARGUMENT"));
            }
            match *kind {
                "token" => (*value).to_owned(),
                other => format!("{other}:{value}"),
            }
        }
        [_, (second, _), ..] => {
            return Err(GoogleError::invalid(
                "message",
                format!(
                    "Invalid value at 'message' (oneof), oneof field 'target' is already set. Cannot set '{second}'"
                ),
            ));
        }
    };

    let data = match object_at(m, "data", "message")? {
        Some(d) => string_map(d, "message.data")?,
        None => BTreeMap::new(),
    };
    if let Some(key) = data
        .keys()
        .find(|k| matches!(k.as_str(), "from" | "gcm" | "message_type") || k.starts_with("google"))
    {
        return Err(GoogleError::invalid(
            "message.data",
            format!("Invalid data payload key: {key}"),
        ));
    }

    let (mut title, mut body) = (None, None);
    if let Some(n) = object_at(m, "notification", "message")? {
        only_known(n, "message.notification", &["title", "body", "image"])?;
        title = string_at(n, "title", "message.notification")?.map(str::to_owned);
        body = string_at(n, "body", "message.notification")?.map(str::to_owned);
        string_at(n, "image", "message.notification")?;
    }

    let mut android_collapse_key = None;
    if let Some(a) = object_at(m, "android", "message")? {
        only_known(
            a,
            "message.android",
            &[
                "collapse_key",
                "priority",
                "ttl",
                "restricted_package_name",
                "data",
                "notification",
                "fcm_options",
                "direct_boot_ok",
            ],
        )?;
        android_collapse_key = string_at(a, "collapse_key", "message.android")?.map(str::to_owned);
        if let Some(p) = string_at(a, "priority", "message.android")?
            && !matches!(p, "NORMAL" | "HIGH")
        {
            return Err(GoogleError::invalid(
                "message.android.priority",
                format!(
                    "Invalid value at 'message.android.priority' (type.googleapis.com/google.firebase.fcm.v1.AndroidMessagePriority), \"{p}\""
                ),
            ));
        }
    }

    let mut apns_collapse_id = None;
    if let Some(a) = object_at(m, "apns", "message")? {
        only_known(a, "message.apns", &["headers", "payload", "fcm_options"])?;
        if let Some(h) = object_at(a, "headers", "message.apns")? {
            let headers = string_map(h, "message.apns.headers")?;
            if let Some(id) = headers.get("apns-collapse-id") {
                if id.len() > 64 {
                    return Err(GoogleError::invalid(
                        "message.apns.headers",
                        "apns-collapse-id must not exceed 64 bytes",
                    ));
                }
                apns_collapse_id = Some(id.clone());
            }
        }
        object_at(a, "payload", "message.apns")?;
    }

    let payload_size = m.get("data").map_or(0, |v| v.to_string().len())
        + m.get("notification").map_or(0, |v| v.to_string().len());
    if payload_size > MAX_PAYLOAD_BYTES {
        return Err(GoogleError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            format!("Message is too big: {payload_size} bytes, the limit is {MAX_PAYLOAD_BYTES}."),
        )
        .fcm("INVALID_ARGUMENT"));
    }

    Ok(ReceivedPush {
        project_id: project.to_owned(),
        name: String::new(),
        target,
        title,
        body,
        data,
        android_collapse_key,
        apns_collapse_id,
        message: Value::Object(m.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    const PATH: &str = "/v1/projects/demo/messages:send";

    fn good() -> Value {
        json!({"message": {
            "token": "c-1",
            "notification": {"title": "Doorstep", "body": "Your order has been confirmed!"},
            "data": {"order_id": "o-1", "status": "CONFIRMED", "notification_id": "o-1:CONFIRMED:customer"},
            "android": {"collapse_key": "o-1"},
            "apns": {"headers": {"apns-collapse-id": "o-1"}},
        }})
    }

    async fn call(
        state: &FcmState,
        path: &str,
        auth: Option<&str>,
        body: &str,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut request = Request::builder()
            .method("POST")
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(a) = auth {
            request = request.header(header::AUTHORIZATION, a);
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
        (
            status,
            headers,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    fn fcm_code(v: &Value) -> Option<&str> {
        v["error"]["details"]
            .as_array()?
            .iter()
            .find(|d| d["@type"] == FCM_ERROR_TYPE)?["errorCode"]
            .as_str()
    }

    #[tokio::test]
    async fn accepts_and_records_a_valid_message() {
        let state = FcmState::new();
        let (status, _, body) = call(&state, PATH, Some("Bearer t"), &good().to_string()).await;
        assert_eq!(status, StatusCode::OK);
        let name = body["name"].as_str().unwrap();
        assert!(name.starts_with("projects/demo/messages/"), "{name}");
        let m = state.messages();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].target, "c-1");
        assert_eq!(m[0].name, name);
        assert_eq!(m[0].data["status"], "CONFIRMED");
        assert_eq!(m[0].title.as_deref(), Some("Doorstep"));
        assert_eq!(m[0].android_collapse_key.as_deref(), Some("o-1"));
        assert_eq!(m[0].apns_collapse_id.as_deref(), Some("o-1"));
        assert_eq!(state.requests()[0].status, 200);
    }

    #[tokio::test]
    async fn refuses_malformed_requests_with_google_errors() {
        let state = FcmState::new();
        let (status, _, body) = call(&state, PATH, None, &good().to_string()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"]["status"], "UNAUTHENTICATED");

        let mut cases: Vec<(Value, &str)> = Vec::new();
        let mut v = good();
        v["message"].as_object_mut().unwrap().remove("token");
        cases.push((v, "Recipient of the message is not set."));
        let mut v = good();
        v["message"]["data"]["n"] = json!(12);
        cases.push((v, "TYPE_STRING"));
        let mut v = good();
        v["message"]["topic"] = json!("news");
        cases.push((v, "oneof"));
        let mut v = good();
        v["message"]["bogus"] = json!(1);
        cases.push((v, "Unknown name \"bogus\""));
        let mut v = good();
        v["message"]["data"]["google.x"] = json!("1");
        cases.push((v, "Invalid data payload key"));
        let mut v = good();
        v["message"]["apns"]["headers"]["apns-collapse-id"] = json!("x".repeat(65));
        cases.push((v, "64 bytes"));
        let mut v = good();
        v["message"]["data"]["big"] = json!("x".repeat(MAX_PAYLOAD_BYTES));
        cases.push((v, "too big"));
        let mut v = good();
        v["message"]["token"] = json!("has space");
        cases.push((v, "not a valid FCM registration token"));
        for (v, needle) in cases {
            let (status, _, body) = call(&state, PATH, Some("Bearer t"), &v.to_string()).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{needle}: {body}");
            assert_eq!(body["error"]["code"], 400);
            assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains(needle), "{needle}: {message}");
        }
        let (status, _, _) = call(&state, PATH, Some("Bearer t"), "{not json").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(state.messages().is_empty());
        assert_eq!(state.requests().len(), 10);
    }

    #[tokio::test]
    async fn injected_faults_then_recovery() {
        let state = FcmState::new();
        state.fail_next(
            1,
            FcmFault::Unavailable {
                retry_after_secs: Some(2),
            },
        );
        state.fail_next(
            1,
            FcmFault::QuotaExceeded {
                retry_after_secs: None,
            },
        );
        state.fail_next(1, FcmFault::Internal);
        let body = good().to_string();
        let (s, h, b) = call(&state, PATH, Some("Bearer t"), &body).await;
        assert_eq!(
            (s, fcm_code(&b)),
            (StatusCode::SERVICE_UNAVAILABLE, Some("UNAVAILABLE"))
        );
        assert_eq!(h.get(header::RETRY_AFTER).unwrap(), "2");
        let (s, _, b) = call(&state, PATH, Some("Bearer t"), &body).await;
        assert_eq!(
            (s, fcm_code(&b)),
            (StatusCode::TOO_MANY_REQUESTS, Some("QUOTA_EXCEEDED"))
        );
        assert_eq!(b["error"]["status"], "RESOURCE_EXHAUSTED");
        let (s, _, b) = call(&state, PATH, Some("Bearer t"), &body).await;
        assert_eq!(
            (s, fcm_code(&b)),
            (StatusCode::INTERNAL_SERVER_ERROR, Some("INTERNAL"))
        );
        let (s, _, _) = call(&state, PATH, Some("Bearer t"), &body).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(state.messages().len(), 1);
    }

    #[tokio::test]
    async fn unregistered_tokens_and_access_tokens() {
        let state = FcmState::new();
        state.unregister("c-1");
        let (s, _, b) = call(&state, PATH, Some("Bearer t"), &good().to_string()).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(b["error"]["status"], "NOT_FOUND");
        assert_eq!(fcm_code(&b), Some("UNREGISTERED"));

        let state = FcmState::new();
        state.require_access_token("right");
        let (s, _, _) = call(&state, PATH, Some("Bearer wrong"), &good().to_string()).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, _, _) = call(&state, PATH, Some("Bearer right"), &good().to_string()).await;
        assert_eq!(s, StatusCode::OK);
    }

    #[tokio::test]
    async fn validate_only_is_not_delivered() {
        let state = FcmState::new();
        let mut v = good();
        v["validate_only"] = json!(true);
        let (s, _, b) = call(&state, PATH, Some("Bearer t"), &v.to_string()).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(b["name"], "projects/demo/messages/fake_message_id");
        assert!(state.messages().is_empty());
    }

    #[tokio::test]
    async fn unknown_paths_are_google_404s() {
        let state = FcmState::new();
        let (s, _, b) = call(
            &state,
            "/v1/projects/demo/messages:sendAll",
            Some("Bearer t"),
            "{}",
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(b["error"]["status"], "NOT_FOUND");
    }

    #[tokio::test]
    async fn serves_on_a_real_socket_until_dropped() {
        let fake = FakeFcm::start().await.unwrap();
        let url = fake.url();
        let addr = url.trim_start_matches("http://").to_owned();
        assert!(tokio::net::TcpStream::connect(&addr).await.is_ok());
        drop(fake);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(tokio::net::TcpStream::connect(&addr).await.is_err());
    }
}
