//! `cargo +nightly fuzz run token_verify`: see `doorstep_fuzz::token_verify`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| doorstep_fuzz::token_verify(data));
