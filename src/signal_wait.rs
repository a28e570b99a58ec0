//! Waiting for SIGTERM, SIGINT and SIGHUP on a thread of their own, shared
//! by the `procjon` and `procjonagent` binaries (not part of the library,
//! which forbids unsafe code).
//!
//! [`forward`] blocks the three signals in the calling thread, before any
//! other thread starts, so every thread inherits the mask and none is
//! interrupted by them; then one thread takes them with `sigwait(3)` and
//! sends each over a channel. No async-signal-safety puzzles: the signals
//! arrive as ordinary values on an ordinary thread. Children started with
//! `std::process::Command` get a clear mask (std resets it before exec).
//!
//! When nobody receives them any more (a short-lived subcommand that
//! doesn't listen, or a receiver dropped), a signal ends the process with
//! the usual status, 128 + its number, as if it had not been blocked.

use procjon::Signal;
use std::ffi::c_int;
use std::sync::mpsc::Sender;

/// glibc's `sigset_t`: 1,024 bits.
#[repr(C)]
struct SigSet([u64; 16]);

unsafe extern "C" {
    fn sigemptyset(set: *mut SigSet) -> c_int;
    fn sigaddset(set: *mut SigSet, signum: c_int) -> c_int;
    fn pthread_sigmask(how: c_int, set: *const SigSet, old: *mut SigSet) -> c_int;
    fn sigwait(set: *const SigSet, sig: *mut c_int) -> c_int;
}

/// `pthread_sigmask`'s "add these to the mask" and "take these out of it".
const SIG_BLOCK: c_int = 0;
const SIG_UNBLOCK: c_int = 1;
const SIGNALS: [Signal; 3] = [Signal::Hangup, Signal::Interrupt, Signal::Terminate];

/// The set of the three signals.
fn signal_set() -> SigSet {
    let mut set = SigSet([0; 16]);
    // SAFETY: `set` is a valid, writable sigset_t-sized buffer.
    unsafe {
        sigemptyset(&mut set);
        for signal in SIGNALS {
            sigaddset(&mut set, signal.number());
        }
    }
    set
}

/// Blocks SIGTERM, SIGINT and SIGHUP in this thread (call it from `main`
/// before starting any thread) and starts the thread that sends them to
/// `to`. Returns false if the signals could not be blocked or the thread
/// not started (they then keep their default action: the process ends).
pub fn forward(to: Sender<Signal>) -> bool {
    let set = signal_set();
    // SAFETY: `set` is initialised; the old mask is not asked for.
    if unsafe { pthread_sigmask(SIG_BLOCK, &set, std::ptr::null_mut()) } != 0 {
        return false;
    }
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            loop {
                let mut number: c_int = 0;
                // SAFETY: `set` lives for the whole loop; `number` is writable.
                if unsafe { sigwait(&set, &mut number) } != 0 {
                    continue;
                }
                let Some(signal) = SIGNALS.into_iter().find(|s| s.number() == number) else {
                    continue;
                };
                if to.send(signal).is_err() {
                    std::process::exit(i32::from(signal.exit_status()));
                }
            }
        });
    if spawned.is_err() {
        // Nobody would take them: give them back their default action.
        // SAFETY: as above.
        unsafe { pthread_sigmask(SIG_UNBLOCK, &signal_set(), std::ptr::null_mut()) };
        return false;
    }
    true
}
