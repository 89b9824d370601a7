//! `orders.eta.v1`: ETA recomputations.

use crate::model::{OrderId, Timestamp};
use serde::{Deserialize, Serialize};

/// One ETA computation for an order: components, point estimate and the range shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EtaUpdate {
    /// The order.
    pub order_id: OrderId,
    /// When it was computed.
    pub computed_at: Timestamp,
    /// Preparation time remaining, seconds.
    pub prep_remaining_s: f64,
    /// Driver → restaurant travel, seconds (0 once picked up).
    pub pickup_travel_s: f64,
    /// Restaurant (or driver, once picked up) → customer travel, seconds.
    pub delivery_travel_s: f64,
    /// Point estimate of the delivery time.
    pub estimated_delivery_at: Timestamp,
    /// Lower bound of the range shown, minutes from `computed_at`.
    pub range_low_min: u32,
    /// Upper bound of the range shown, minutes from `computed_at`.
    pub range_high_min: u32,
    /// Whether routing failed and a straight-line estimate was used.
    pub fallback: bool,
}
