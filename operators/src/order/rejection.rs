//! Why an event was refused: a machine-readable code plus a human sentence.

use doorstep_schemas::model::{ActorKind, OrderStatus, Timestamp};

/// The reason an event changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RejectReason {
    /// Anything but `Place` for an order that was never placed.
    #[error("order does not exist")]
    UnknownOrder,
    /// `Place` for an order id already in use.
    #[error("an order with this id already exists")]
    OrderAlreadyExists,
    /// `Place` with invalid contents.
    #[error("invalid order: {0}")]
    InvalidOrder(String),
    /// The order is `DELIVERED` or `CANCELLED`.
    #[error("order is {status}, which is final")]
    FinalState {
        /// The final status.
        status: OrderStatus,
    },
    /// No rule leads from `from` to `to`.
    #[error("cannot go from {from} to {to}")]
    InvalidTransition {
        /// Current status.
        from: OrderStatus,
        /// Status asked for.
        to: OrderStatus,
    },
    /// The transition exists but not for this kind of actor.
    #[error("a {actor} may not move an order from {from} to {to}")]
    ActorNotAllowed {
        /// Who asked.
        actor: ActorKind,
        /// Current status.
        from: OrderStatus,
        /// Status asked for.
        to: OrderStatus,
    },
    /// The actor is of the right kind but not this order's customer, restaurant or driver.
    #[error("this {actor} is not a party to the order")]
    NotOrderParty {
        /// Kind of the actor.
        actor: ActorKind,
    },
    /// A driver action but no driver is assigned.
    #[error("no driver is assigned to the order")]
    NoDriverAssigned,
    /// Dispatch assigned a driver to an order that has one.
    #[error("a driver is already assigned to the order")]
    DriverAlreadyAssigned,
    /// Dispatch assigned a driver to an order that can no longer take one.
    #[error("a driver cannot be assigned to an order that is {status}")]
    AssignmentNotAllowed {
        /// Current status.
        status: OrderStatus,
    },
    /// The system asked to confirm before the auto-confirm delay passed.
    #[error("auto-confirm is not due until {due_at}")]
    AutoConfirmTooEarly {
        /// When it becomes due.
        due_at: Timestamp,
    },
    /// The cancellation rules refuse this actor in this status.
    #[error("a {actor} cannot cancel an order that is {status}")]
    CancellationRefused {
        /// Who asked.
        actor: ActorKind,
        /// Current status.
        status: OrderStatus,
    },
    /// A cancellation without a reason.
    #[error("a cancellation needs a reason")]
    MissingReason,
}

impl RejectReason {
    /// The stable machine-readable code (snake_case), carried on `orders.rejected.v1` and in
    /// HTTP error bodies.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::UnknownOrder => "unknown_order",
            Self::OrderAlreadyExists => "order_already_exists",
            Self::InvalidOrder(_) => "invalid_order",
            Self::FinalState { .. } => "final_state",
            Self::InvalidTransition { .. } => "invalid_transition",
            Self::ActorNotAllowed { .. } => "actor_not_allowed",
            Self::NotOrderParty { .. } => "not_order_party",
            Self::NoDriverAssigned => "no_driver_assigned",
            Self::DriverAlreadyAssigned => "driver_already_assigned",
            Self::AssignmentNotAllowed { .. } => "assignment_not_allowed",
            Self::AutoConfirmTooEarly { .. } => "auto_confirm_too_early",
            Self::CancellationRefused { .. } => "cancellation_refused",
            Self::MissingReason => "missing_reason",
        }
    }
}
