//! The refund client (Stripe Refunds API shape).

use super::{Error, StripeErrorType};
use crate::retry::{RetryPolicy, retry, retry_after_header};
use doorstep_schemas::model::OrderId;
use serde::Deserialize;
use std::fmt;
use std::time::Duration;

/// Client settings.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct PaymentsConfig {
    /// Base URL of the API, `https://api.stripe.com` in production (a local fake in tests).
    /// A path prefix is kept.
    pub base_url: String,
    /// The secret API key (`sk_…`), sent as `Authorization: Bearer …`.
    pub secret_key: String,
    /// Bound on opening a connection.
    pub connect_timeout: Duration,
    /// Bound on one request.
    pub request_timeout: Duration,
    /// Retries of one refund (always with the same idempotency key).
    pub retry: RetryPolicy,
}

impl fmt::Debug for PaymentsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PaymentsConfig")
            .field("base_url", &self.base_url)
            .field("secret_key", &"<redacted>")
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("retry", &self.retry)
            .finish()
    }
}

impl PaymentsConfig {
    /// Settings for `base_url` with `secret_key`: 2 s connect and 10 s request timeouts, the
    /// default retry policy.
    pub fn new(base_url: impl Into<String>, secret_key: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            secret_key: secret_key.into(),
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
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
}

/// A refund's status as Stripe reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefundStatus {
    /// `pending`: Stripe will finish it later.
    Pending,
    /// `requires_action`: the customer must do something (some payment methods).
    RequiresAction,
    /// `succeeded`.
    Succeeded,
    /// `failed`.
    Failed,
    /// `canceled`.
    Canceled,
    /// A status this client does not know.
    Other(String),
}

impl RefundStatus {
    /// Parses Stripe's spelling.
    pub fn parse(s: &str) -> Self {
        match s {
            "pending" => Self::Pending,
            "requires_action" => Self::RequiresAction,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "canceled" => Self::Canceled,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Stripe's spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Pending => "pending",
            Self::RequiresAction => "requires_action",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
            Self::Other(s) => s,
        }
    }
}

/// A refund Stripe accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Refund {
    /// Stripe's id (`re_…`); the same on every retry with the same idempotency key.
    pub id: String,
    /// Amount refunded, in cents.
    pub amount_cents: i64,
    /// Status at creation (`succeeded` or `pending`; later changes arrive by webhook, which
    /// is out of scope).
    pub status: RefundStatus,
    /// The payment intent refunded.
    pub payment_intent: Option<String>,
    /// Whether Stripe replayed a saved answer (`Idempotent-Replayed: true`): this refund was
    /// created by an earlier request.
    pub replayed: bool,
}

/// A refund client speaking Stripe's `POST /v1/refunds`. Cheap to clone.
#[derive(Clone)]
pub struct PaymentsClient {
    http: reqwest::Client,
    refunds_url: reqwest::Url,
    secret_key: String,
    request_timeout: Duration,
    retry: RetryPolicy,
}

impl fmt::Debug for PaymentsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PaymentsClient")
            .field("refunds_url", &self.refunds_url.as_str())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct RefundJson {
    id: String,
    object: String,
    amount: i64,
    status: String,
    #[serde(default)]
    payment_intent: Option<String>,
    #[serde(default)]
    failure_reason: Option<String>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: ErrorJson,
}

#[derive(Deserialize)]
struct ErrorJson {
    #[serde(rename = "type", default)]
    error_type: String,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

impl PaymentsClient {
    /// Builds a client; does not contact the provider.
    pub fn new(config: &PaymentsConfig) -> Result<Self, Error> {
        let config_error = |reason: String| Error::Config { reason };
        let mut base = reqwest::Url::parse(&config.base_url)
            .map_err(|e| config_error(format!("base URL {:?}: {e}", config.base_url)))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(config_error(format!(
                "base URL {:?} must be http:// or https://",
                config.base_url
            )));
        }
        if config.secret_key.trim().is_empty() {
            return Err(config_error("the secret key is empty".to_owned()));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let refunds_url = base
            .join("v1/refunds")
            .map_err(|e| config_error(e.to_string()))?;
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .build()
            .map_err(|e| config_error(e.to_string()))?;
        Ok(Self {
            http,
            refunds_url,
            secret_key: config.secret_key.clone(),
            request_timeout: config.request_timeout,
            retry: config.retry,
        })
    }

    /// The payment intent of an order. By convention the checkout (outside Doorstep)
    /// creates the order's PaymentIntent with id `pi_<order_id>`, so no lookup is needed.
    pub fn payment_intent_id(order_id: &OrderId) -> String {
        format!("pi_{order_id}")
    }

    /// The idempotency key of an order's refund: `refund:<order_id>`. The state machine
    /// refunds an order at most once, so every retry, replay or restart of that refund
    /// reaches Stripe with the same key and gets the same refund back.
    pub fn idempotency_key(order_id: &OrderId) -> String {
        format!("refund:{order_id}")
    }

    /// Refunds `amount_cents` of the order's payment (reason `requested_by_customer`,
    /// `metadata[order_id]`), retrying per the policy with the same idempotency key.
    ///
    /// A refund created `failed` or `canceled` is returned as [`Error::RefundFailed`].
    pub async fn refund(&self, order_id: &OrderId, amount_cents: i64) -> Result<Refund, Error> {
        if amount_cents <= 0 {
            return Err(Error::InvalidAmount { amount_cents });
        }
        let form = [
            ("payment_intent", Self::payment_intent_id(order_id)),
            ("amount", amount_cents.to_string()),
            ("reason", "requested_by_customer".to_owned()),
            ("metadata[order_id]", order_id.to_string()),
        ];
        let key = Self::idempotency_key(order_id);
        let refund = retry(&self.retry, |attempt| {
            let (form, key) = (&form, &key);
            async move {
                let result = self.attempt(form, key).await;
                if let Err(e) = &result {
                    tracing::debug!(attempt, %order_id, error = %e, "refund attempt failed");
                }
                result
            }
        })
        .await?;
        tracing::info!(%order_id, refund_id = %refund.id, amount_cents, status = refund.status.as_str(), replayed = refund.replayed, "refund");
        Ok(refund)
    }

    async fn attempt(&self, form: &[(&str, String)], key: &str) -> Result<Refund, Error> {
        let response = self
            .http
            .post(self.refunds_url.clone())
            .bearer_auth(&self.secret_key)
            .header("Idempotency-Key", key)
            .form(form)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let http_status = response.status().as_u16();
        let headers = response.headers();
        let retry_after = retry_after_header(headers);
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().eq_ignore_ascii_case("true"))
        };
        let should_retry = header("stripe-should-retry");
        let replayed = header("idempotent-replayed").unwrap_or(false);
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(e))?;
        if (200..300).contains(&http_status) {
            let r: RefundJson = serde_json::from_slice(&bytes).map_err(|e| Error::BadResponse {
                http_status,
                detail: format!("not a refund object: {e}"),
            })?;
            if r.object != "refund" {
                return Err(Error::BadResponse {
                    http_status,
                    detail: format!("object is {:?}, not \"refund\"", r.object),
                });
            }
            let status = RefundStatus::parse(&r.status);
            if matches!(status, RefundStatus::Failed | RefundStatus::Canceled) {
                return Err(Error::RefundFailed {
                    refund_id: r.id,
                    status: r.status,
                    failure_reason: r.failure_reason,
                });
            }
            return Ok(Refund {
                id: r.id,
                amount_cents: r.amount,
                status,
                payment_intent: r.payment_intent,
                replayed,
            });
        }
        match serde_json::from_slice::<ErrorResponse>(&bytes) {
            Ok(ErrorResponse { error }) => Err(Error::Api {
                http_status,
                error_type: StripeErrorType::parse(&error.error_type),
                code: error.code,
                message: error.message.unwrap_or_default(),
                should_retry,
                retry_after,
            }),
            Err(_) => Err(Error::BadResponse {
                http_status,
                detail: crate::http::body_snippet(&bytes),
            }),
        }
    }

    fn transport_error(&self, e: reqwest::Error) -> Error {
        let url = self.refunds_url.to_string();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conventions() {
        let id = OrderId::from("0192-abc");
        assert_eq!(PaymentsClient::payment_intent_id(&id), "pi_0192-abc");
        assert_eq!(PaymentsClient::idempotency_key(&id), "refund:0192-abc");
    }

    #[test]
    fn config_is_validated_and_secret_is_not_printed() {
        let ok = PaymentsConfig::new("http://127.0.0.1:1", "sk_test_secret");
        let client = PaymentsClient::new(&ok).unwrap();
        assert_eq!(client.refunds_url.as_str(), "http://127.0.0.1:1/v1/refunds");
        assert!(!format!("{ok:?}").contains("sk_test_secret"));
        assert!(PaymentsClient::new(&PaymentsConfig::new("http://x", " ")).is_err());
        assert!(PaymentsClient::new(&PaymentsConfig::new("nope", "sk_x")).is_err());
    }

    #[tokio::test]
    async fn non_positive_amounts_are_refused_without_a_request() {
        let client =
            PaymentsClient::new(&PaymentsConfig::new("http://127.0.0.1:9", "sk_x")).unwrap();
        let err = client.refund(&OrderId::from("o"), 0).await.unwrap_err();
        assert!(matches!(err, Error::InvalidAmount { amount_cents: 0 }));
    }

    #[test]
    fn statuses_parse_both_ways() {
        for s in [
            "pending",
            "requires_action",
            "succeeded",
            "failed",
            "canceled",
            "new",
        ] {
            assert_eq!(RefundStatus::parse(s).as_str(), s);
        }
    }
}
