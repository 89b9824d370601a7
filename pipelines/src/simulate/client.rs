//! The producer API as an app sees it: JSON over HTTP with a bearer token per actor. Every
//! command carries an `Idempotency-Key` (a transport failure is retried once with the same
//! key, so it is never applied twice) and, unless the wait is 0, `Prefer: wait=N`: the app
//! learns at once whether the state machine accepted it, and why not.

use doorstep_schemas::model::{ActorKind, GeoPoint, OrderItem, OrderStatus};
use doorstep_schemas::outcome::{CommandOutcome, Decided};
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Mints a bearer token for an actor (kind, id, optional order).
pub type TokenFn = Arc<dyn Fn(ActorKind, &str, Option<&str>) -> String + Send + Sync>;

/// Why an API call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// No HTTP answer.
    #[error("gateway unreachable: {0}")]
    Transport(#[from] reqwest::Error),
    /// The gateway refused the request.
    #[error("gateway answered {status}: {body}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Response body (the JSON error).
        body: String,
    },
    /// The state machine refused a command the script needed.
    #[error("{command} refused: {reason} ({message})")]
    Rejected {
        /// What was asked.
        command: String,
        /// The reason code.
        reason: String,
        /// The sentence.
        message: String,
    },
}

/// What became of a command, as far as the gateway said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Accepted: the order's status right after it.
    Accepted(OrderStatus),
    /// Refused by the state machine.
    Rejected {
        /// The reason code (`final_state`, `driver_already_assigned`, ...).
        reason: String,
        /// The sentence.
        message: String,
        /// The order's status when it was refused.
        status: Option<OrderStatus>,
    },
    /// On the broker, not decided within the wait (or not waited for).
    Pending,
}

impl Answer {
    /// `Ok` unless the command was refused (then `Err` naming `command` and why).
    pub fn expect_accepted(self, command: &str) -> Result<(), ApiError> {
        match self {
            Self::Rejected {
                reason, message, ..
            } => Err(ApiError::Rejected {
                command: command.to_owned(),
                reason,
                message,
            }),
            Self::Accepted(_) | Self::Pending => Ok(()),
        }
    }

    /// The reason code when the command was refused.
    pub fn rejection(&self) -> Option<&str> {
        match self {
            Self::Rejected { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// The order's status when the command was refused.
    pub fn refused_in(&self) -> Option<OrderStatus> {
        match self {
            Self::Rejected { status, .. } => *status,
            _ => None,
        }
    }
}

/// A client of the gateway's producer API.
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    tokens: TokenFn,
    wait: Duration,
    /// Commands the state machine refused (learnt from their outcome).
    pub rejected: AtomicU64,
    /// Commands sent again with their idempotency key after a transport failure.
    pub resent: AtomicU64,
}

#[derive(Serialize)]
struct PlaceBody<'a> {
    order_id: &'a str,
    restaurant_id: &'a str,
    items: &'a [OrderItem],
    total_cents: i64,
    restaurant_location: GeoPoint,
    delivery_location: GeoPoint,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl ApiClient {
    /// A client of the gateway at `base` (e.g. `http://127.0.0.1:8080`) that waits up to
    /// `wait` for each command's decision (`Prefer: wait=N`; zero: never).
    pub fn new(base: impl Into<String>, tokens: TokenFn, wait: Duration) -> Result<Self, ApiError> {
        let http = reqwest::Client::builder()
            .timeout(wait + Duration::from_secs(10))
            .build()?;
        Ok(Self {
            http,
            base: base.into().trim_end_matches('/').to_owned(),
            tokens,
            wait,
            rejected: AtomicU64::new(0),
            resent: AtomicU64::new(0),
        })
    }

    /// A customer places an order.
    #[allow(clippy::too_many_arguments)]
    pub async fn place(
        &self,
        customer: &str,
        order_id: &str,
        restaurant_id: &str,
        items: &[OrderItem],
        total_cents: i64,
        restaurant_location: GeoPoint,
        delivery_location: GeoPoint,
    ) -> Result<Answer, ApiError> {
        let body = PlaceBody {
            order_id,
            restaurant_id,
            items,
            total_cents,
            restaurant_location,
            delivery_location,
        };
        let token = (self.tokens)(ActorKind::Customer, customer, None);
        self.post("/v1/orders".to_owned(), &token, &body).await
    }

    /// Dispatch assigns a driver.
    pub async fn assign(&self, order_id: &str, driver_id: &str) -> Result<Answer, ApiError> {
        let token = (self.tokens)(ActorKind::System, "dispatch", None);
        let body = serde_json::json!({ "driver_id": driver_id });
        self.post(format!("/v1/orders/{order_id}/driver"), &token, &body)
            .await
    }

    /// A restaurant, driver or the system asks for a status.
    pub async fn status(
        &self,
        kind: ActorKind,
        actor: &str,
        order_id: &str,
        status: &str,
    ) -> Result<Answer, ApiError> {
        let token = (self.tokens)(kind, actor, Some(order_id));
        let body = serde_json::json!({ "status": status });
        self.post(format!("/v1/orders/{order_id}/status"), &token, &body)
            .await
    }

    /// Someone cancels.
    pub async fn cancel(
        &self,
        kind: ActorKind,
        actor: &str,
        order_id: &str,
        reason: &str,
    ) -> Result<Answer, ApiError> {
        let token = (self.tokens)(kind, actor, Some(order_id));
        let body = serde_json::json!({ "reason": reason });
        self.post(format!("/v1/orders/{order_id}/cancel"), &token, &body)
            .await
    }

    /// A driver app reports a GPS fix (taken now).
    pub async fn ping(
        &self,
        driver: &str,
        at: GeoPoint,
        speed_mps: Option<f64>,
        heading_deg: Option<f64>,
    ) -> Result<(), ApiError> {
        let token = (self.tokens)(ActorKind::Driver, driver, None);
        let mut body = serde_json::json!({ "lat": at.lat, "lng": at.lng, "accuracy_m": 5.0 });
        if let Some(s) = speed_mps {
            body["speed_mps"] = s.into();
        }
        if let Some(h) = heading_deg {
            body["heading_deg"] = h.into();
        }
        let resp = self
            .http
            .post(format!("{}/v1/drivers/{driver}/location", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await?;
        let status = resp.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(ApiError::Refused {
                status: status.as_u16(),
                body: resp.text().await.unwrap_or_default(),
            })
        }
    }

    /// POSTs a command with a fresh idempotency key (sent again once with the same key if
    /// no answer came back) and reads what became of it.
    async fn post<B: Serialize>(
        &self,
        path: String,
        token: &str,
        body: &B,
    ) -> Result<Answer, ApiError> {
        let key = uuid::Uuid::new_v4().to_string();
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("idempotency-key", &key)
            .json(body);
        if !self.wait.is_zero() {
            req = req.header("prefer", format!("wait={}", self.wait.as_secs().max(1)));
        }
        let again = req.try_clone();
        let resp = match (req.send().await, again) {
            (Ok(resp), _) => resp,
            (Err(e), Some(again)) => {
                tracing::debug!(error = %e, %path, "no answer; sending the command again with its key");
                self.resent.fetch_add(1, Ordering::Relaxed);
                again.send().await?
            }
            (Err(e), None) => return Err(e.into()),
        };
        let status = resp.status();
        match status.as_u16() {
            202 => Ok(Answer::Pending),
            200 | 409 => {
                let outcome: CommandOutcome = resp.json().await?;
                Ok(match outcome.decision {
                    Decided::Accepted { status, .. } => Answer::Accepted(status),
                    Decided::Rejected {
                        reason,
                        message,
                        status,
                    } => {
                        self.rejected.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(%path, %reason, %message, "command refused");
                        Answer::Rejected {
                            reason,
                            message,
                            status,
                        }
                    }
                })
            }
            _ => Err(ApiError::Refused {
                status: status.as_u16(),
                body: resp.text().await.unwrap_or_default(),
            }),
        }
    }
}
