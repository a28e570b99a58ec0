//! The fuzz targets' checks on stable Rust, so CI runs them: every input
//! that once made a fuzz target fail (`fuzz/regressions/`), then seeded
//! random mutations of the seed inputs (`fuzz/seeds/`). The real fuzzing is
//! `cargo +nightly fuzz run TARGET` (see "Fuzzing" in README.md).
//!
//! `PROCJON_TEST_MUTATIONS` sets the mutated inputs per target (default
//! 20,000); `PROCJON_TEST_SEED` replays a run.

#[path = "../../fuzz/src/lib.rs"]
mod checks;

use crate::support::{Rng, env_number, seed};
use std::path::{Path, PathBuf};

type Check = fn(&[u8]);

const TARGETS: [(&str, Check); 3] = [
    ("frame_decode", checks::check_frame),
    ("state_replay", checks::check_replay),
    ("cert_identity", checks::check_identity),
];

fn fuzz_dir(kind: &str, target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind)
        .join(target)
}

/// The files in `fuzz/KIND/TARGET`, by name (none when it doesn't exist).
fn inputs(kind: &str, target: &str) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(fuzz_dir(kind, target)) else {
        return Vec::new();
    };
    let mut files: Vec<(String, Vec<u8>)> = entries
        .map(|e| e.unwrap().path())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// Runs `check` on `input`; on a panic, says which input it was.
#[track_caller]
fn run(target: &str, what: &str, input: &[u8], check: Check) {
    if let Err(panic) = std::panic::catch_unwind(|| check(input)) {
        eprintln!(
            "{target}: {what} failed; input ({} bytes): {:?}",
            input.len(),
            String::from_utf8_lossy(input)
        );
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn inputs_that_once_failed_a_fuzz_target_pass() {
    for (target, check) in TARGETS {
        for (name, input) in inputs("regressions", target) {
            run(target, &format!("regression {name}"), &input, check);
        }
    }
}

/// Bytes a mutation likes to put in: JSON and DER structure, edges of numbers.
const INTERESTING: &[u8] =
    b"\x00\x01\x7f\x80\xff\"\\{}[],:\n\r 0-9e.aZ\x30\x31\x0c\x13\x82\xa0\xa3";

/// A random change or two to `input`: flip, overwrite, insert, delete,
/// duplicate or splice in a piece of `other`.
fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(3) {
        let len = out.len() as u64;
        let at = if len == 0 { 0 } else { rng.below(len) as usize };
        match rng.below(7) {
            0 if len > 0 => out[at] ^= 1 << rng.below(8),
            1 if len > 0 => out[at] = INTERESTING[rng.below(INTERESTING.len() as u64) as usize],
            2 => out.insert(
                at,
                INTERESTING[rng.below(INTERESTING.len() as u64) as usize],
            ),
            3 if len > 0 => {
                let end = (at + 1 + rng.below(16) as usize).min(out.len());
                out.drain(at..end);
            }
            4 if len > 0 => {
                let end = (at + 1 + rng.below(32) as usize).min(out.len());
                let piece = out[at..end].to_vec();
                out.splice(at..at, piece);
            }
            5 if !other.is_empty() => {
                let from = rng.below(other.len() as u64) as usize;
                let end = (from + 1 + rng.below(64) as usize).min(other.len());
                out.splice(at..at, other[from..end].iter().copied());
            }
            _ => out.truncate(at),
        }
    }
    out
}

#[test]
fn mutated_seed_inputs_pass_the_fuzz_checks() {
    let count = env_number("PROCJON_TEST_MUTATIONS", 20_000);
    let mut rng = Rng::new(seed("mutation", 0x00f0_22ed));
    for (target, check) in TARGETS {
        let seeds: Vec<Vec<u8>> = inputs("seeds", target)
            .into_iter()
            .map(|(_, bytes)| bytes)
            .collect();
        assert!(
            !seeds.is_empty(),
            "no seeds in {:?}",
            fuzz_dir("seeds", target)
        );
        for seed in &seeds {
            run(target, "a seed", seed, check);
        }
        for i in 0..count {
            let input = &seeds[rng.below(seeds.len() as u64) as usize];
            let other = &seeds[rng.below(seeds.len() as u64) as usize];
            let mutated = mutate(&mut rng, input, other);
            run(target, &format!("mutation {i}"), &mutated, check);
        }
    }
}
