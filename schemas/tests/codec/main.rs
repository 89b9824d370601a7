//! The Avro codec's tests, in one binary: round trips, bad bytes, typed errors, schema
//! evolution and the `.avsc` contract rules. The registry tests are `tests/registry.rs`.

mod contracts;
mod errors;
mod evolution;
mod fuzz;
mod roundtrip;
mod strategies;

use doorstep_schemas::avro::{Catalog, DecodeError, TopicRecord};

/// Decoding without a runtime: the embedded catalog never waits (it has no registry to ask).
pub trait DecodeNow {
    /// [`Catalog::decode`], polled once.
    fn decode_now<T: TopicRecord>(&self, bytes: &[u8]) -> Result<T, DecodeError>;
}

impl DecodeNow for Catalog {
    fn decode_now<T: TopicRecord>(&self, bytes: &[u8]) -> Result<T, DecodeError> {
        let fut = std::pin::pin!(self.decode::<T>(bytes));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match std::future::Future::poll(fut, &mut cx) {
            std::task::Poll::Ready(r) => r,
            std::task::Poll::Pending => panic!("the embedded catalog's decode never waits"),
        }
    }
}

/// The embedded catalog (a test failure if it does not load).
pub fn catalog() -> &'static Catalog {
    Catalog::embedded().expect("the embedded schemas load")
}
