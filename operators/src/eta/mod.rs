//! The ETA estimator: ETA = preparation remaining + pickup travel + delivery travel, each
//! with an uncertainty, combined into the point estimate and the range shown to the customer.
//! Pure: the pipeline gathers the inputs (prep history, driver position, routes) and calls
//! [`plan`] and [`estimate`].
//!
//! - [`prep`]: the prep-time model (restaurant × hour of day, learned from history).
//! - [`travel`]: routed or straight-line legs and their uncertainty.
//! - [`range`]: the customer-facing range in whole minutes.
//! - [`geohash`]: the cells routing lookups are cached by.

pub mod geohash;
pub mod prep;
pub mod range;
pub mod travel;

pub use prep::{PrepExpectation, PrepModel, PrepStage};
pub use range::{RangePolicy, combine_sigma, range_minutes};
pub use travel::{Travel, TravelModel, TravelSource};

use doorstep_schemas::events::EtaUpdate;
use doorstep_schemas::model::{GeoPoint, OrderId, OrderStatus, Timestamp};

const DAY_MS: i64 = 86_400_000;

/// The hour of day (0..=23, UTC) of `at`: the prep-time model's time-of-day key.
pub fn hour_of_day(at: Timestamp) -> u8 {
    // rem_euclid keeps it in 0..DAY_MS, so the quotient is 0..=23.
    u8::try_from(at.as_millis().rem_euclid(DAY_MS) / 3_600_000).unwrap_or(0)
}

/// The time-of-day bucket of `at` (UTC) for buckets of `bucket_min` minutes (≥ 1): part of a
/// routing cache key, since travel times depend on the time of day.
pub fn time_bucket(at: Timestamp, bucket_min: u32) -> u32 {
    let bucket_ms = i64::from(bucket_min.max(1)) * 60_000;
    u32::try_from(at.as_millis().rem_euclid(DAY_MS) / bucket_ms).unwrap_or(0)
}

/// Where an order's preparation stands at `now`.
pub fn prep_stage(
    status: OrderStatus,
    preparing_since: Option<Timestamp>,
    now: Timestamp,
) -> PrepStage {
    match status {
        OrderStatus::Placed | OrderStatus::Confirmed => PrepStage::NotStarted,
        OrderStatus::Preparing => PrepStage::Preparing {
            // Milliseconds to seconds; precision loss irrelevant at these magnitudes.
            elapsed_s: preparing_since.map_or(0.0, |s| now.millis_since(s) as f64 / 1_000.0),
        },
        OrderStatus::ReadyForPickup
        | OrderStatus::PickedUp
        | OrderStatus::EnRoute
        | OrderStatus::Delivered
        | OrderStatus::Cancelled => PrepStage::Ready,
    }
}

/// The pickup leg of a plan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PickupLeg {
    /// The driver drives from `from` to the restaurant `to`.
    Route {
        /// The driver's position.
        from: GeoPoint,
        /// The restaurant.
        to: GeoPoint,
    },
    /// No driver position is known: the model's typical pickup.
    Assumed,
    /// The food is picked up: no pickup leg.
    Done,
}

/// The legs to time for an order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// Driver → restaurant.
    pub pickup: PickupLeg,
    /// Restaurant (or the driver, once picked up) → customer, as `(from, to)`.
    pub delivery: (GeoPoint, GeoPoint),
}

/// Which legs an order needs at `status`, or `None` when it gets no ETA (delivered or
/// cancelled). Before pickup the delivery leg starts at the restaurant; after it, at the
/// driver's position when known.
pub fn plan(
    status: OrderStatus,
    driver: Option<GeoPoint>,
    restaurant: GeoPoint,
    customer: GeoPoint,
) -> Option<Plan> {
    match status {
        OrderStatus::Delivered | OrderStatus::Cancelled => None,
        OrderStatus::PickedUp | OrderStatus::EnRoute => Some(Plan {
            pickup: PickupLeg::Done,
            delivery: (driver.unwrap_or(restaurant), customer),
        }),
        OrderStatus::Placed
        | OrderStatus::Confirmed
        | OrderStatus::Preparing
        | OrderStatus::ReadyForPickup => Some(Plan {
            pickup: match driver {
                Some(from) => PickupLeg::Route {
                    from,
                    to: restaurant,
                },
                None => PickupLeg::Assumed,
            },
            delivery: (restaurant, customer),
        }),
    }
}

/// The components of one estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Components {
    /// Preparation remaining: seconds and uncertainty.
    pub prep_s: (f64, f64),
    /// Driver → restaurant ([`Travel::NONE`] once picked up).
    pub pickup: Travel,
    /// → customer.
    pub delivery: Travel,
}

/// The ETA of `order_id` computed at `now`: components, point estimate (their sum),
/// `estimated_delivery_at`, and the range from their combined uncertainty. Flagged
/// `fallback` when a leg was estimated without routing.
pub fn estimate(
    order_id: OrderId,
    now: Timestamp,
    c: &Components,
    range: &RangePolicy,
) -> EtaUpdate {
    let clean = |v: f64| if v.is_finite() { v.max(0.0) } else { 0.0 };
    let prep = clean(c.prep_s.0);
    let pickup = clean(c.pickup.seconds);
    let delivery = clean(c.delivery.seconds);
    let total = prep + pickup + delivery;
    let sigma = combine_sigma(&[c.prep_s.1, c.pickup.sigma_s, c.delivery.sigma_s]);
    let (range_low_min, range_high_min) = range_minutes(total, sigma, range);
    EtaUpdate {
        order_id,
        computed_at: now,
        prep_remaining_s: prep,
        pickup_travel_s: pickup,
        delivery_travel_s: delivery,
        // Rounded to the millisecond; totals are far below i64's range.
        estimated_delivery_at: now.plus_millis((total * 1_000.0).round() as i64),
        range_low_min,
        range_high_min,
        fallback: c.pickup.source == TravelSource::Fallback
            || c.delivery.source == TravelSource::Fallback,
    }
}

#[cfg(test)]
mod tests;
