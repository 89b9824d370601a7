//! The FCM HTTP v1 client.

use super::{Claim, Error, FcmErrorCode, SentLedger};
use crate::retry::{RetryPolicy, retry, retry_after_header};
use doorstep_schemas::events::Notification;
use serde::Deserialize;
use serde_json::json;
use std::fmt;
use std::time::Duration;

/// `apns-collapse-id` may be at most 64 bytes.
const APNS_COLLAPSE_ID_MAX: usize = 64;

/// Client settings.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct PushConfig {
    /// Base URL of the FCM API, `https://fcm.googleapis.com` in production (a local fake in
    /// tests). A path prefix is kept.
    pub base_url: String,
    /// The Firebase project id (`projects/{project_id}/messages:send`).
    pub project_id: String,
    /// The OAuth 2 access token sent as `Authorization: Bearer …`. Minting and refreshing it
    /// from a service account is the deployment's job; this client sends what it is given.
    pub access_token: String,
    /// Title of every push (the body is the notification's message).
    pub title: String,
    /// Bound on opening a connection.
    pub connect_timeout: Duration,
    /// Bound on one request.
    pub request_timeout: Duration,
    /// Retries of one send.
    pub retry: RetryPolicy,
}

impl fmt::Debug for PushConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushConfig")
            .field("base_url", &self.base_url)
            .field("project_id", &self.project_id)
            .field("access_token", &"<redacted>")
            .field("title", &self.title)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("retry", &self.retry)
            .finish()
    }
}

impl PushConfig {
    /// Settings for `project_id` at `base_url` with `access_token`: title `Doorstep`, 2 s
    /// connect and 5 s request timeouts, the default retry policy.
    pub fn new(
        base_url: impl Into<String>,
        project_id: impl Into<String>,
        access_token: impl Into<String>,
    ) -> Self {
        Self {
            base_url: base_url.into(),
            project_id: project_id.into(),
            access_token: access_token.into(),
            title: "Doorstep".to_owned(),
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            retry: RetryPolicy::default(),
        }
    }

    /// Sets the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the request timeout.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets the push title.
    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }
}

/// One push to one device.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PushMessage {
    /// The FCM registration token of the device.
    pub token: String,
    /// Notification title.
    pub title: String,
    /// Notification body.
    pub body: String,
    /// `data.order_id`.
    pub order_id: String,
    /// `data.status`.
    pub status: String,
    /// `data.notification_id`, and the ledger key.
    pub notification_id: String,
    /// Collapse key (Android `collapse_key`, APNs `apns-collapse-id`): a later push with the
    /// same key replaces an earlier one on the device.
    pub collapse_key: Option<String>,
}

impl PushMessage {
    /// The push for an outbox record.
    ///
    /// Device tokens: mapping a recipient to its devices' registration tokens is out of
    /// scope for now, so the recipient id is used as the token. The collapse key is the
    /// order id, so a customer sees the latest status of an order, not a pile of them.
    pub fn from_notification(n: &Notification, title: impl Into<String>) -> Self {
        Self {
            token: n.recipient_id.clone(),
            title: title.into(),
            body: n.message.clone(),
            order_id: n.order_id.to_string(),
            status: n.status.as_str().to_owned(),
            notification_id: n.notification_id.clone(),
            collapse_key: Some(n.order_id.to_string()),
        }
    }

    /// The FCM HTTP v1 request body.
    pub fn to_fcm_json(&self) -> serde_json::Value {
        let mut message = json!({
            "token": self.token,
            "notification": {"title": self.title, "body": self.body},
            "data": {
                "order_id": self.order_id,
                "status": self.status,
                "notification_id": self.notification_id,
            },
        });
        if let Some(key) = &self.collapse_key {
            message["android"] = json!({"collapse_key": key});
            if key.len() <= APNS_COLLAPSE_ID_MAX {
                message["apns"] = json!({"headers": {"apns-collapse-id": key}});
            }
        }
        json!({ "message": message })
    }

    fn validate(&self) -> Result<(), Error> {
        let invalid = |reason: &str| {
            Err(Error::InvalidMessage {
                reason: reason.to_owned(),
            })
        };
        if self.token.trim().is_empty() {
            return invalid("the device token is empty");
        }
        if self.notification_id.trim().is_empty() {
            return invalid("the notification id is empty");
        }
        Ok(())
    }
}

/// A push FCM accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SentMessage {
    /// FCM's name for it: `projects/<project>/messages/<id>`.
    pub name: String,
}

/// What [`PushClient::send_once`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivery {
    /// Sent now.
    Sent(SentMessage),
    /// The ledger says it was sent before; nothing was sent.
    AlreadySent {
        /// FCM's message name, as recorded.
        message_name: String,
    },
}

/// An FCM HTTP v1 client. Cheap to clone.
#[derive(Clone)]
pub struct PushClient {
    http: reqwest::Client,
    send_url: reqwest::Url,
    access_token: String,
    title: String,
    request_timeout: Duration,
    retry: RetryPolicy,
}

impl fmt::Debug for PushClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushClient")
            .field("send_url", &self.send_url.as_str())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct SendResponse {
    name: String,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: ErrorJson,
}

#[derive(Deserialize)]
struct ErrorJson {
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    details: Vec<serde_json::Value>,
}

impl PushClient {
    /// Builds a client; does not contact the provider.
    pub fn new(config: &PushConfig) -> Result<Self, Error> {
        let config_error = |reason: String| Error::Config { reason };
        let mut base = reqwest::Url::parse(&config.base_url)
            .map_err(|e| config_error(format!("base URL {:?}: {e}", config.base_url)))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(config_error(format!(
                "base URL {:?} must be http:// or https://",
                config.base_url
            )));
        }
        let project = &config.project_id;
        if project.is_empty()
            || !project
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
        {
            return Err(config_error(format!("invalid project id {project:?}")));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let send_url = base
            .join(&format!("v1/projects/{project}/messages:send"))
            .map_err(|e| config_error(e.to_string()))?;
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .build()
            .map_err(|e| config_error(e.to_string()))?;
        Ok(Self {
            http,
            send_url,
            access_token: config.access_token.clone(),
            title: config.title.clone(),
            request_timeout: config.request_timeout,
            retry: config.retry,
        })
    }

    /// The push for an outbox record, with this client's title (see
    /// [`PushMessage::from_notification`]).
    pub fn message_for(&self, notification: &Notification) -> PushMessage {
        PushMessage::from_notification(notification, self.title.clone())
    }

    /// Sends `message`, retrying 429/5xx/network failures per the retry policy (honouring
    /// `Retry-After`). No deduplication: see [`send_once`](Self::send_once).
    pub async fn send(&self, message: &PushMessage) -> Result<SentMessage, Error> {
        message.validate()?;
        let body = message.to_fcm_json();
        retry(&self.retry, |attempt| {
            let body = &body;
            async move {
                let result = self.attempt(body).await;
                if let Err(e) = &result {
                    tracing::debug!(attempt, notification_id = %message.notification_id, error = %e, "push attempt failed");
                }
                result
            }
        })
        .await
    }

    /// Sends `message` at most once across replays, restarts and workers, through `ledger`:
    /// claims the notification id, sends (with retries), marks it sent; on failure releases
    /// the claim and returns the error, so a later retry can send it. When the send went
    /// through but the mark failed, the error is returned and a later call only marks it.
    /// See [`SentLedger`] for the window this leaves.
    pub async fn send_once(
        &self,
        ledger: &SentLedger,
        message: &PushMessage,
    ) -> Result<Delivery, Error> {
        message.validate()?;
        let id = message.notification_id.as_str();
        // Sent before, but the mark did not land (Redis was away): only mark it.
        if let Some(message_name) = ledger.unmarked(id) {
            ledger.mark_sent(id, &message_name).await?;
            return Ok(Delivery::AlreadySent { message_name });
        }
        match ledger.claim(id).await? {
            Claim::Claimed => {}
            Claim::AlreadySent { message_name } => {
                tracing::debug!(notification_id = id, "already sent; skipping");
                return Ok(Delivery::AlreadySent { message_name });
            }
            Claim::HeldElsewhere { expires_in } => {
                return Err(Error::ClaimHeld {
                    notification_id: id.to_owned(),
                    retry_after: expires_in,
                });
            }
        }
        match self.send(message).await {
            Ok(sent) => {
                ledger.mark_sent(id, &sent.name).await?;
                Ok(Delivery::Sent(sent))
            }
            Err(e) => {
                if let Err(release) = ledger.release_claim(id).await {
                    // The claim expires on its own; the send error is what matters.
                    tracing::warn!(notification_id = id, error = %release, "could not release push claim");
                }
                Err(e)
            }
        }
    }

    async fn attempt(&self, body: &serde_json::Value) -> Result<SentMessage, Error> {
        let response = self
            .http
            .post(self.send_url.clone())
            .bearer_auth(&self.access_token)
            .json(body)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let http_status = response.status().as_u16();
        let retry_after = retry_after_header(response.headers());
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(e))?;
        if (200..300).contains(&http_status) {
            let sent: SendResponse =
                serde_json::from_slice(&bytes).map_err(|e| Error::BadResponse {
                    http_status,
                    detail: format!("success without a message name: {e}"),
                    retry_after,
                })?;
            return Ok(SentMessage { name: sent.name });
        }
        match serde_json::from_slice::<ErrorResponse>(&bytes) {
            Ok(ErrorResponse { error }) => Err(Error::Rejected {
                http_status,
                code: fcm_error_code(&error.details),
                status: error.status,
                message: error.message,
                retry_after,
            }),
            Err(_) => Err(Error::BadResponse {
                http_status,
                detail: crate::http::body_snippet(&bytes),
                retry_after,
            }),
        }
    }

    fn transport_error(&self, e: reqwest::Error) -> Error {
        let url = self.send_url.to_string();
        if e.is_timeout() {
            Error::Timeout {
                url,
                timeout: self.request_timeout,
            }
        } else {
            Error::Unreachable { url, source: e }
        }
    }
}

/// The `errorCode` of the `google.firebase.fcm.v1.FcmError` entry in `details`.
fn fcm_error_code(details: &[serde_json::Value]) -> Option<FcmErrorCode> {
    details
        .iter()
        .find(|d| {
            d.get("@type")
                .and_then(|t| t.as_str())
                .is_some_and(|t| t.ends_with("google.firebase.fcm.v1.FcmError"))
        })
        .and_then(|d| d.get("errorCode"))
        .and_then(|c| c.as_str())
        .map(FcmErrorCode::parse)
}

#[cfg(test)]
mod tests {
    use super::*;
    use doorstep_schemas::events::RecipientKind;
    use doorstep_schemas::model::{OrderId, OrderStatus, Timestamp};

    fn notification() -> Notification {
        Notification {
            notification_id: "o-1:CONFIRMED:customer".into(),
            recipient_kind: RecipientKind::Customer,
            recipient_id: "c-1".into(),
            order_id: OrderId::from("o-1"),
            status: OrderStatus::Confirmed,
            message: "Your order has been confirmed!".into(),
            created_at: Timestamp::from_millis(1),
        }
    }

    #[test]
    fn body_has_the_fcm_v1_shape() {
        let m = PushMessage::from_notification(&notification(), "Doorstep");
        assert_eq!(
            m.to_fcm_json(),
            json!({"message": {
                "token": "c-1",
                "notification": {"title": "Doorstep", "body": "Your order has been confirmed!"},
                "data": {"order_id": "o-1", "status": "CONFIRMED", "notification_id": "o-1:CONFIRMED:customer"},
                "android": {"collapse_key": "o-1"},
                "apns": {"headers": {"apns-collapse-id": "o-1"}},
            }})
        );
        let mut long = m.clone();
        long.collapse_key = Some("x".repeat(65));
        assert!(long.to_fcm_json()["message"].get("apns").is_none());
    }

    #[test]
    fn error_code_is_found_among_details() {
        let details = vec![
            json!({"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": []}),
            json!({"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNREGISTERED"}),
        ];
        assert_eq!(fcm_error_code(&details), Some(FcmErrorCode::Unregistered));
        assert_eq!(fcm_error_code(&details[..1]), None);
    }

    #[test]
    fn config_is_validated_and_secret_is_not_printed() {
        let ok = PushConfig::new("http://127.0.0.1:1/prefix", "demo-project", "secret-token");
        let client = PushClient::new(&ok).unwrap();
        assert_eq!(
            client.send_url.as_str(),
            "http://127.0.0.1:1/prefix/v1/projects/demo-project/messages:send"
        );
        assert!(!format!("{ok:?}").contains("secret-token"));
        assert!(PushClient::new(&PushConfig::new("ftp://x", "p", "t")).is_err());
        assert!(PushClient::new(&PushConfig::new("http://x", "a/b", "t")).is_err());
    }

    #[test]
    fn empty_tokens_are_refused_before_sending() {
        let mut m = PushMessage::from_notification(&notification(), "t");
        m.token = " ".into();
        assert!(matches!(m.validate(), Err(Error::InvalidMessage { .. })));
    }
}
