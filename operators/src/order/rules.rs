//! The transition table: which status may follow which, and who may ask for it.

use doorstep_schemas::model::{ActorKind, OrderStatus};

/// Who may perform a forward transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransitionRule {
    /// The order's restaurant.
    Restaurant,
    /// The order's restaurant, or the system once the auto-confirm delay has passed.
    RestaurantOrAutoConfirm,
    /// The order's assigned driver.
    Driver,
    /// The order's assigned driver, recording `PICKED_UP` and `EN_ROUTE` in one event.
    DriverCombinedPickup,
}

impl TransitionRule {
    /// Whether an actor of `kind` may use this rule at all (identity is checked apart).
    pub const fn admits(self, kind: ActorKind) -> bool {
        match self {
            Self::Restaurant => matches!(kind, ActorKind::Restaurant),
            Self::RestaurantOrAutoConfirm => {
                matches!(kind, ActorKind::Restaurant | ActorKind::System)
            }
            Self::Driver | Self::DriverCombinedPickup => matches!(kind, ActorKind::Driver),
        }
    }
}

/// The rule for going from `from` to `to` with a transition request, or `None` when no such
/// transition exists. Cancellation is not a transition request; see the cancel command.
pub const fn transition_rule(from: OrderStatus, to: OrderStatus) -> Option<TransitionRule> {
    use OrderStatus::*;
    match (from, to) {
        (Placed, Confirmed) => Some(TransitionRule::RestaurantOrAutoConfirm),
        (Confirmed, Preparing) | (Preparing, ReadyForPickup) => Some(TransitionRule::Restaurant),
        (ReadyForPickup, PickedUp) | (PickedUp, EnRoute) | (EnRoute, Delivered) => {
            Some(TransitionRule::Driver)
        }
        (ReadyForPickup, EnRoute) => Some(TransitionRule::DriverCombinedPickup),
        _ => None,
    }
}
