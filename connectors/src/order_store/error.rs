//! Errors of the order store.

use crate::retry::{RetryClass, Retryable};
use scylla::errors::{ExecutionError, NextRowError, PagerExecutionError, PrepareError};

/// What went wrong reading or writing orders in the CQL store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The keyspace name cannot be used (see [`crate::scylla::validate_identifier`]).
    #[error(transparent)]
    Keyspace(#[from] crate::scylla::Error),
    /// A DDL statement of [`ensure_schema`](super::OrderStore::ensure_schema) failed.
    #[error("creating table {table} failed: {source}")]
    Schema {
        /// The table.
        table: &'static str,
        /// The driver's error.
        #[source]
        source: Box<ExecutionError>,
    },
    /// A statement could not be prepared (usually: the schema does not exist yet).
    #[error("preparing the {statement} statement failed: {source}")]
    Prepare {
        /// Which statement.
        statement: &'static str,
        /// The driver's error.
        #[source]
        source: Box<PrepareError>,
    },
    /// A write or a read failed on the server or on the way to it.
    #[error("CQL {operation} failed: {source}")]
    Execute {
        /// What was being done (`save`, `load`, ...).
        operation: &'static str,
        /// The driver's error.
        #[source]
        source: Box<ExecutionError>,
    },
    /// A paged read failed.
    #[error("CQL {operation} failed: {source}")]
    Page {
        /// What was being done.
        operation: &'static str,
        /// The driver's error.
        #[source]
        source: Box<PagerExecutionError>,
    },
    /// Rows came back in a shape the store cannot read (column types, a dropped connection
    /// in the middle of paging).
    #[error("reading rows of {operation} failed: {detail}")]
    Rows {
        /// What was being done.
        operation: &'static str,
        /// The driver's message.
        detail: String,
        /// Whether the cause is transient (a page fetch failed, not a type mismatch).
        transient: bool,
    },
    /// A stored row does not map back to the model (a missing column, an unknown status, a
    /// gap in the history). Retrying cannot help; the data needs a look.
    #[error("order {order_id} is stored inconsistently: {detail}")]
    Corrupt {
        /// The order.
        order_id: String,
        /// What is wrong.
        detail: String,
    },
    /// A value of the model does not fit its column (a history longer than `i32::MAX`, an
    /// hour of day outside 0..=23, items that cannot be encoded).
    #[error("{what} cannot be stored: {detail}")]
    Unstorable {
        /// The value.
        what: &'static str,
        /// Why.
        detail: String,
    },
}

impl Error {
    /// Whether retrying later can succeed (a server or network problem), as opposed to bad
    /// data or a missing schema.
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Execute { .. } | Error::Page { .. } => true,
            Error::Rows { transient, .. } => *transient,
            Error::Keyspace(_)
            | Error::Schema { .. }
            | Error::Prepare { .. }
            | Error::Corrupt { .. }
            | Error::Unstorable { .. } => false,
        }
    }

    pub(super) fn execute(operation: &'static str) -> impl FnOnce(ExecutionError) -> Self {
        move |source| Error::Execute {
            operation,
            source: Box::new(source),
        }
    }

    pub(super) fn page(operation: &'static str) -> impl FnOnce(PagerExecutionError) -> Self {
        move |source| Error::Page {
            operation,
            source: Box::new(source),
        }
    }

    pub(super) fn next_row(operation: &'static str) -> impl FnOnce(NextRowError) -> Self {
        move |e| {
            let transient = matches!(e, NextRowError::NextPageError(_));
            Error::Rows {
                operation,
                detail: e.to_string(),
                transient,
            }
        }
    }

    pub(super) fn corrupt(order_id: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Corrupt {
            order_id: order_id.into(),
            detail: detail.into(),
        }
    }
}

impl Retryable for Error {
    fn retry_class(&self) -> RetryClass {
        RetryClass::of(self.is_retriable(), None)
    }
}
