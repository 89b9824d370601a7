//! What an accepted change asks the outside world to do. The pipeline carries these out
//! through its sinks; each carries what its idempotency key is built from.

use doorstep_schemas::events::RecipientKind;
use doorstep_schemas::model::{DriverId, OrderStatus, Timestamp};

/// One side effect of an accepted change.
///
/// Exhaustive on purpose: the status pipeline matches every variant without a wildcard, so
/// a new effect does not compile until a sink carries it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send a push for `status` to the recipient.
    Notify {
        /// Customer, restaurant or driver.
        recipient_kind: RecipientKind,
        /// Their id.
        recipient_id: String,
        /// The status the push is about.
        status: OrderStatus,
    },
    /// Refund the customer through the payment provider. At most one refund per order, so
    /// the order id is the idempotency key.
    Refund {
        /// Amount, in cents (> 0).
        amount_cents: i64,
    },
    /// The driver is now `ON_DELIVERY` with this order as `current_order_id`.
    OccupyDriver {
        /// The driver.
        driver_id: DriverId,
    },
    /// The driver is `AVAILABLE` again.
    ReleaseDriver {
        /// The driver.
        driver_id: DriverId,
    },
    /// The order needs a driver again (the driver gave it back).
    ReturnToDispatch,
    /// Fire an auto-confirm for this order at `at` (a durable timer).
    ScheduleAutoConfirm {
        /// When.
        at: Timestamp,
    },
    /// The pending auto-confirm timer, if any, is no longer needed.
    CancelAutoConfirm,
}
