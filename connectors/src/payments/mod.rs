//! Refunds through a payment provider speaking Stripe's Refunds API.
//!
//! [`PaymentsClient::refund`] sends `POST {base}/v1/refunds` with a form body
//! `payment_intent=pi_<order_id>&amount=<cents>&reason=requested_by_customer&metadata[order_id]=<order_id>`,
//! `Authorization: Bearer sk_…` and `Idempotency-Key: refund:<order_id>`. Stripe answers 200
//! with a refund object (`{"id": "re_…", "object": "refund", "amount", "status", …}`) or an
//! error `{"error": {"type", "code", "message", …}}` with 400/401/402/404/409/429/5xx.
//!
//! Conventions (documented where they are made):
//! - the order's PaymentIntent id is `pi_<order_id>` ([`PaymentsClient::payment_intent_id`]);
//! - the idempotency key is `refund:<order_id>` ([`PaymentsClient::idempotency_key`]): an
//!   order is refunded at most once, so retries, replays and restarts all reach Stripe with
//!   the same key and get the same refund back (`Idempotent-Replayed: true`).
//!
//! Retries go through [`crate::retry`]: network failures, 409, 429 and 5xx are retried,
//! unless Stripe says otherwise with `Stripe-Should-Retry`. Stripe saves the answer of a
//! key once the endpoint started executing — a 500 included — and replays it for 24 hours;
//! then it sends `Stripe-Should-Retry: false`, the client gives up with a permanent error,
//! and the refund needs a person to reconcile it.

mod client;
mod error;

pub use client::{PaymentsClient, PaymentsConfig, Refund, RefundStatus};
pub use error::{Error, StripeErrorType};
