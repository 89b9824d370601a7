//! The knobs of the order rules.

/// Configurable parts of the state machine's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderPolicy {
    /// How long after placement the system may confirm on the restaurant's behalf
    /// (the seed: 2 minutes).
    pub auto_confirm_after_ms: i64,
    /// What a customer pays for cancelling once the restaurant is preparing, in cents; the
    /// refund is the total minus this, never below zero.
    pub customer_cancellation_fee_cents: i64,
}

impl Default for OrderPolicy {
    fn default() -> Self {
        Self {
            auto_confirm_after_ms: 2 * 60 * 1000,
            customer_cancellation_fee_cents: 500,
        }
    }
}
