//! `cargo +nightly fuzz run avro_decoders`: see `doorstep_fuzz::avro_decoders`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| doorstep_fuzz::avro_decoders(data));
