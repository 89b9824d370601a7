//! How many requests a session sent, from the driver's own counters: the measure of a
//! pipeline's CQL cost (requests per record), read by its metrics and its benchmarks.

use scylla::client::session::Session;

/// The driver's request counters of one session, since it opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestCounts {
    /// Requests sent to a node: every attempt (a retry is one more), each page of a paged
    /// read, a batch (however many statements it holds) as one.
    pub requests: u64,
    /// Of those, the ones that failed.
    pub errors: u64,
    /// Attempts the retry policy decided to repeat.
    pub retries: u64,
}

/// The counters of `session` now.
pub fn request_counts(session: &Session) -> RequestCounts {
    let m = session.get_metrics();
    RequestCounts {
        requests: m.get_requests_unpaged_num()
            + m.get_requests_manually_paged_num()
            + m.get_requests_automatically_paged_num(),
        errors: m.get_errors_unpaged_num()
            + m.get_errors_manually_paged_num()
            + m.get_errors_automatically_paged_num(),
        retries: m.get_retries_num(),
    }
}
