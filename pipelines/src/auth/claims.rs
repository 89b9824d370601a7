//! What a token says about its bearer.

use super::AuthError;
use doorstep_schemas::model::{Actor, ActorKind};
use serde::{Deserialize, Serialize};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read only: `GET /v1/orders/{order_id}` and the tracking WebSocket (what a tracking
    /// page or a shared link needs).
    Read,
    /// Everything the bearer's kind may do: place, cancel, move orders, send pings, and read.
    Act,
}

impl Scope {
    /// `read` or `act`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Act => "act",
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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
    /// What the token may do.
    pub scope: Scope,
    /// Expiry, Unix seconds: the token is valid while the clock is before it.
    pub exp: i64,
}

impl Claims {
    /// Claims for `sub` of `kind` acting ([`Scope::Act`]) on every order until `exp` (Unix
    /// seconds).
    pub fn new(kind: ActorKind, sub: impl Into<String>, exp: i64) -> Self {
        Self {
            sub_kind: kind,
            sub: sub.into(),
            order_id: None,
            scope: Scope::Act,
            exp,
        }
    }

    /// Restricts the claims to reading ([`Scope::Read`]).
    pub fn read_only(mut self) -> Self {
        self.scope = Scope::Read;
        self
    }

    /// `Ok` when the token's scope covers `needed` (`act` covers `read`), else
    /// [`AuthError::WrongScope`].
    pub fn require_scope(&self, needed: Scope) -> Result<(), AuthError> {
        match (self.scope, needed) {
            (Scope::Act, _) | (Scope::Read, Scope::Read) => Ok(()),
            (Scope::Read, Scope::Act) => Err(AuthError::WrongScope {
                found: self.scope,
                needed,
            }),
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
