//! `cargo +nightly fuzz run frame_decode`: see `fuzz/src/lib.rs` for what is checked.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| procjon_fuzz::check_frame(data));
