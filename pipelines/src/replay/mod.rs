//! Replays and backfills (`doorstep replay`): re-read `orders.events.v1` between two points
//! in time, through the same state machine and the same decision-to-effect mapping as the
//! status pipeline, and write only the derived state — order rows, timelines (status
//! history), the active-order index and, on request, prep-time observations — into a
//! keyspace: the live one (a no-op over already-processed history) or a fresh one (a
//! rebuild).
//!
//! What a replay never does: push notifications, refunds, records on the output topics,
//! driver state in Redis, auto-confirm timers. Those are effects of the live pipelines; a
//! replay re-deriving them would notify customers or refund orders twice.
//!
//! Why a replay over processed history changes nothing: every order row records the offset of
//! the last event processed for it; events at or below it are skipped (the status pipeline's
//! own crash-safety rule), and every write is an upsert by full primary key.
//!
//! How the range is found: [`plan`] asks the broker for the offsets of the start and end
//! times (offsets-for-times), or scans the records when the broker cannot answer. The replay
//! reads those ranges through the operator runtime in its own consumer group
//! (`<group_prefix>.replay`), bounded so it stops by itself at the end, while [`progress`]
//! shows events/s and the time left.

pub mod plan;
pub mod progress;
mod run;
mod stage;

pub use plan::{ReplayPlan, parse_time};
pub use progress::{Progress, Summary};
pub use run::{ReplayError, ReplayOptions, plan, replay};
pub use stage::{ReplayCounts, ReplayStage};
