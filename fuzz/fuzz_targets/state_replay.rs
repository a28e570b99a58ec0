//! `cargo +nightly fuzz run state_replay`: see `fuzz/src/lib.rs` for what is checked.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| procjon_fuzz::check_replay(data));
