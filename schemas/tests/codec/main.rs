//! The Avro codec's tests, in one binary: round trips, bad bytes, typed errors, schema
//! evolution and the `.avsc` contract rules. The registry tests are `tests/registry.rs`.

mod contracts;
mod errors;
mod evolution;
mod fuzz;
mod roundtrip;
mod strategies;

use doorstep_schemas::avro::Catalog;

/// The embedded catalog (a test failure if it does not load).
pub fn catalog() -> &'static Catalog {
    Catalog::embedded().expect("the embedded schemas load")
}
