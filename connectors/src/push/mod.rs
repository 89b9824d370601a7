//! Push notifications through Firebase Cloud Messaging's HTTP v1 API.
//!
//! [`PushClient::send`] posts one message to `{base}/v1/projects/{project}/messages:send`
//! with `Authorization: Bearer <token>` and the body
//! `{"message": {"token", "notification": {"title", "body"}, "data": {"order_id", "status",
//! "notification_id"}, "android": {"collapse_key"}, "apns": {"headers": {"apns-collapse-id"}}}}`;
//! FCM answers 200 `{"name": "projects/<p>/messages/<id>"}` or an error
//! `{"error": {"code", "message", "status", "details": [{"@type":
//! "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": ...}]}}`.
//!
//! Errors are classified as the FCM docs ask: 429 (`QUOTA_EXCEEDED`) and 5xx (`UNAVAILABLE`,
//! `INTERNAL`) are retried with exponential backoff, honouring `Retry-After`
//! ([`crate::retry`]); every other 4xx (`INVALID_ARGUMENT`, `UNREGISTERED`,
//! `SENDER_ID_MISMATCH`, `THIRD_PARTY_AUTH_ERROR`) fails at once. [`Error::is_unregistered`]
//! tells the caller to forget a token.
//!
//! Device tokens: the mapping from a recipient to its devices' tokens is out of scope, so
//! the recipient id is used as the token ([`PushMessage::from_notification`]).
//!
//! FCM has no idempotency key, so [`PushClient::send_once`] deduplicates through a
//! [`SentLedger`] in Redis; see [`ledger`] for what it guarantees and the window it leaves.

mod client;
mod error;
pub mod ledger;

pub use client::{Delivery, PushClient, PushConfig, PushMessage, SentMessage};
pub use error::{Error, FcmErrorCode};
pub use ledger::{Claim, SentLedger};
