//! What a token says about its bearer.

use super::AuthError;
use doorstep_schemas::model::{Actor, ActorKind};
use serde::{Deserialize, Serialize};

/// The signed claims of a bearer token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// The bearer's kind: `CUSTOMER`, `RESTAURANT`, `DRIVER` or `SYSTEM`.
    pub sub_kind: ActorKind,
    /// The bearer's id within its kind (customer id, restaurant id, driver id, or a system
    /// component such as `dispatch`).
    pub sub: String,
    /// When set, the token only acts on this order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// Expiry, Unix seconds: the token is valid while the clock is before it.
    pub exp: i64,
}

impl Claims {
    /// Claims for `sub` of `kind`, valid for every order until `exp` (Unix seconds).
    pub fn new(kind: ActorKind, sub: impl Into<String>, exp: i64) -> Self {
        Self {
            sub_kind: kind,
            sub: sub.into(),
            order_id: None,
            exp,
        }
    }

    /// Restricts the claims to one order.
    pub fn for_order(mut self, order_id: impl Into<String>) -> Self {
        self.order_id = Some(order_id.into());
        self
    }

    /// The bearer as an order-event actor.
    pub fn actor(&self) -> Actor {
        Actor::new(self.sub_kind, self.sub.clone())
    }

    /// `Ok` when the bearer's kind is one of `allowed`, else [`AuthError::WrongKind`].
    pub fn require_kind(&self, allowed: &[ActorKind]) -> Result<(), AuthError> {
        if allowed.contains(&self.sub_kind) {
            Ok(())
        } else {
            Err(AuthError::WrongKind {
                found: self.sub_kind,
                allowed: allowed.to_vec(),
            })
        }
    }

    /// `Ok` when the token is not restricted to an order or is restricted to `order_id`, else
    /// [`AuthError::WrongOrder`].
    pub fn require_order(&self, order_id: &str) -> Result<(), AuthError> {
        match &self.order_id {
            Some(own) if own != order_id => Err(AuthError::WrongOrder {
                token_order: own.clone(),
                requested: order_id.to_owned(),
            }),
            _ => Ok(()),
        }
    }
}
