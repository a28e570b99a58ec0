//! `cargo +nightly fuzz run cert_identity`: see `fuzz/src/lib.rs` for what is checked.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| procjon_fuzz::check_identity(data));
