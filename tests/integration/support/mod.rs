//! Test support for the daemon's tests: a protocol client, a hand-driven
//! TLS client, HTTP requests and checkers, and reproducible randomness.
//! What the agent's tests need too (temp dirs, certificates, the daemon
//! under test, the fake Slack, waiting) lives in the `procjon-test-support`
//! crate (`tests/support/`) and is re-exported here.

#![allow(dead_code)]

pub mod client;
pub mod http;
pub mod raw;

pub use client::Client;
pub use raw::RawTls;
pub use test_support::{
    Daemon, FakeSlack, TempDir, agent_cert, certs, daemon, gen_certs, poll_until, slack, wait_until,
};

/// A xorshift64* generator: reproducible randomness without a crate.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value; 0 is mapped to 1).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The seed for randomized tests: `PROCJON_TEST_SEED` or `default`. Printed,
/// so that a failure can be replayed with the same seed.
pub fn seed(test: &str, default: u64) -> u64 {
    let seed = env_number("PROCJON_TEST_SEED", default);
    eprintln!("{test}: seed {seed} (set PROCJON_TEST_SEED to replay)");
    seed
}

/// A count from the environment variable `name`, or `default` when unset.
/// Heavier variants of the attack and crash tests are switched on this way.
#[track_caller]
pub fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a number")),
        _ => default,
    }
}
