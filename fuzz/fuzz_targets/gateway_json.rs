//! `cargo +nightly fuzz run gateway_json`: see `doorstep_fuzz::gateway_json`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| doorstep_fuzz::gateway_json(data));
