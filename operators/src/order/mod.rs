//! The order state machine: a pure function of (current state, event) to an accepted change
//! with its effects, a duplicate, or a rejection with a machine-readable reason.
//!
//! Time is the event's `occurred_at` (stamped by the gateway or the timer that fired), so a
//! replay of the same events decides exactly as the live run did.

mod cancel;
mod decide;
mod effects;
mod place;
mod policy;
mod rejection;
mod rules;
mod state;
mod validate;

pub use decide::{Accepted, Decision, decide};
pub use effects::Effect;
pub use policy::OrderPolicy;
pub use rejection::RejectReason;
pub use rules::{TransitionRule, transition_rule};
pub use state::OrderState;
pub use validate::{
    IdProblem, InvalidInput, MAX_ID_LEN, MAX_ITEM_NAME_CHARS, MAX_ITEMS, MAX_REASON_LEN,
    is_unprintable, validate_id, validate_place, validate_reason,
};

#[cfg(test)]
mod property_tests;
#[cfg(test)]
mod table_tests;
#[cfg(test)]
pub(crate) mod test_support;
