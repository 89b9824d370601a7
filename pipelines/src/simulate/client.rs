//! The producer API as an app sees it: JSON over HTTP with a bearer token per actor.

use doorstep_schemas::model::{ActorKind, GeoPoint, OrderItem};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

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
}

/// A client of the gateway's producer API.
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    tokens: TokenFn,
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

/// The gateway's answer to an accepted request.
#[derive(Debug, Deserialize)]
pub struct Accepted {
    /// The order.
    pub order_id: String,
    /// The event produced.
    pub event_id: String,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl ApiClient {
    /// A client of the gateway at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: impl Into<String>, tokens: TokenFn) -> Result<Self, ApiError> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()?;
        Ok(Self {
            http,
            base: base.into().trim_end_matches('/').to_owned(),
            tokens,
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
    ) -> Result<Accepted, ApiError> {
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
    pub async fn assign(&self, order_id: &str, driver_id: &str) -> Result<Accepted, ApiError> {
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
    ) -> Result<Accepted, ApiError> {
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
    ) -> Result<Accepted, ApiError> {
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

    async fn post<B: Serialize>(
        &self,
        path: String,
        token: &str,
        body: &B,
    ) -> Result<Accepted, ApiError> {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(body)
            .send()
            .await?;
        let status = resp.status();
        if status.is_success() {
            Ok(resp.json().await?)
        } else {
            Err(ApiError::Refused {
                status: status.as_u16(),
                body: resp.text().await.unwrap_or_default(),
            })
        }
    }
}
