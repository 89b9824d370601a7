//! Who asks for something: every order event names its actor, and the state machine's rules
//! are per actor kind.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The kinds of actor the order state machine knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ActorKind {
    /// The person who placed the order.
    Customer,
    /// The restaurant preparing the order.
    Restaurant,
    /// The driver delivering the order.
    Driver,
    /// Doorstep itself or the platform's dispatch (driver assignment, auto-confirm timers).
    System,
}

impl ActorKind {
    /// Every actor kind, for exhaustive tests and docs.
    pub const ALL: [ActorKind; 4] = [Self::Customer, Self::Restaurant, Self::Driver, Self::System];

    /// The wire name (`CUSTOMER`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "CUSTOMER",
            Self::Restaurant => "RESTAURANT",
            Self::Driver => "DRIVER",
            Self::System => "SYSTEM",
        }
    }
}

impl fmt::Display for ActorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An actor: its kind and its id within that kind (customer id, restaurant id, driver id, or
/// the name of a system component such as `dispatch` or `auto-confirm`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Actor {
    /// What kind of actor this is.
    pub kind: ActorKind,
    /// The actor's id within its kind.
    pub id: String,
}

impl Actor {
    /// An actor of `kind` with `id`.
    pub fn new(kind: ActorKind, id: impl Into<String>) -> Self {
        Self {
            kind,
            id: id.into(),
        }
    }

    /// A customer actor.
    pub fn customer(id: impl Into<String>) -> Self {
        Self::new(ActorKind::Customer, id)
    }

    /// A restaurant actor.
    pub fn restaurant(id: impl Into<String>) -> Self {
        Self::new(ActorKind::Restaurant, id)
    }

    /// A driver actor.
    pub fn driver(id: impl Into<String>) -> Self {
        Self::new(ActorKind::Driver, id)
    }

    /// A system actor (dispatch, timers).
    pub fn system(id: impl Into<String>) -> Self {
        Self::new(ActorKind::System, id)
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.id)
    }
}
