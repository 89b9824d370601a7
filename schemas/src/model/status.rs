//! The order status: the states of the order state machine.

use serde::{Deserialize, Serialize};
use std::{fmt, str::FromStr};

/// Where an order is in its life. `DELIVERED` and `CANCELLED` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// The customer placed the order; waiting for the restaurant (or auto-confirm).
    Placed,
    /// The restaurant accepted the order.
    Confirmed,
    /// The restaurant is cooking.
    Preparing,
    /// The food waits for the driver.
    ReadyForPickup,
    /// The driver has the food.
    PickedUp,
    /// The driver is on the way to the customer.
    EnRoute,
    /// Handed to the customer. Final.
    Delivered,
    /// Cancelled by the customer or the restaurant. Final.
    Cancelled,
}

impl OrderStatus {
    /// Every status in state-machine order.
    pub const ALL: [OrderStatus; 8] = [
        Self::Placed,
        Self::Confirmed,
        Self::Preparing,
        Self::ReadyForPickup,
        Self::PickedUp,
        Self::EnRoute,
        Self::Delivered,
        Self::Cancelled,
    ];

    /// The wire name (`READY_FOR_PICKUP`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Placed => "PLACED",
            Self::Confirmed => "CONFIRMED",
            Self::Preparing => "PREPARING",
            Self::ReadyForPickup => "READY_FOR_PICKUP",
            Self::PickedUp => "PICKED_UP",
            Self::EnRoute => "EN_ROUTE",
            Self::Delivered => "DELIVERED",
            Self::Cancelled => "CANCELLED",
        }
    }

    /// `DELIVERED` or `CANCELLED`: nothing may follow.
    pub const fn is_final(self) -> bool {
        matches!(self, Self::Delivered | Self::Cancelled)
    }

    /// Whether the order is still moving (not final).
    pub const fn is_active(self) -> bool {
        !self.is_final()
    }

    /// Whether the food has left the restaurant with the driver (`PICKED_UP` or later, not
    /// cancelled).
    pub const fn is_picked_up(self) -> bool {
        matches!(self, Self::PickedUp | Self::EnRoute | Self::Delivered)
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not an order status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown order status {0:?}; expected one of PLACED, CONFIRMED, PREPARING, READY_FOR_PICKUP, PICKED_UP, EN_ROUTE, DELIVERED, CANCELLED"
)]
pub struct ParseStatusError(pub String);

impl FromStr for OrderStatus {
    type Err = ParseStatusError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| ParseStatusError(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_str_and_serde() {
        for st in OrderStatus::ALL {
            assert_eq!(st.as_str().parse::<OrderStatus>(), Ok(st));
            let json = serde_json::to_string(&st).unwrap();
            assert_eq!(json, format!("\"{}\"", st.as_str()));
        }
        assert!("SHIPPED".parse::<OrderStatus>().is_err());
    }
}
