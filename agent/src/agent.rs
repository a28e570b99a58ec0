//! The [`Agent`] trait: what a service's agent tells procjon, and
//! [`Report`], one check's outcome. Implemented by the built-in agents and
//! by custom ones; called only from the runner's check thread.

use procjon::PerfValue;
use std::time::Duration;

/// Why a check could not tell the current status. Any error type works
/// (`?` converts it); its `Display` is what the log shows.
pub type CheckError = Box<dyn std::error::Error + Send + Sync>;

/// What one check found: a status, and what it means now, for people.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Report {
    /// An index into [`Agent::statuses`].
    pub status: u64,
    /// One line for people: a plugin's first output line, `exit 3 after
    /// 12m`. procjon shows it in its API and status page and ends a
    /// status-changed message with it. At most 256 characters (longer is
    /// cut), control characters become spaces.
    pub detail: Option<String>,
    /// Performance data that came with the status (a Nagios plugin's).
    pub perfdata: Vec<PerfValue>,
}

impl Report {
    /// A report of `status` alone.
    pub fn new(status: u64) -> Report {
        Report {
            status,
            ..Report::default()
        }
    }

    /// The same report with `detail`.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Report {
        self.detail = Some(detail.into());
        self
    }
}

/// What an agent that has finished wants done with its service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// Retire the service (procjon posts `… was unregistered by …: REASON`
    /// and forgets it).
    Unregister {
        /// Why, for people, e.g. `exit 0 after 3d4h`.
        reason: String,
    },
    /// Keep the service registered: procjon announces it as not available
    /// once its timeout passes.
    Keep,
}

/// A service's agent: its status names and a check that picks one.
///
/// The runner calls [`Agent::statuses`] once at start-up and registers the
/// names with procjon; then it calls [`Agent::report`] (by default
/// [`Agent::check`]) every period and pings with the status it returns.
/// Status 0 is the healthy one by convention.
pub trait Agent: Send + 'static {
    /// The status names, in index order, e.g. `["ok", "degraded", "unknown"]`.
    /// One to 256 non-empty names without control characters.
    fn statuses(&self) -> Vec<String>;

    /// The current status: an index into [`Agent::statuses`].
    ///
    /// It should return within the period. An error (or an index past the
    /// list, or a panic) is logged and reported as
    /// [`Agent::failure_status`].
    fn check(&mut self) -> Result<u64, CheckError>;

    /// The current status with a detail for people. By default
    /// [`Agent::check`]'s status alone; an agent with more to say
    /// implements this (and `check` as `report`'s status).
    fn report(&mut self) -> Result<Report, CheckError> {
        self.check().map(Report::new)
    }

    /// The status reported when [`Agent::check`] fails. By default the one
    /// named `unknown`, if any. With `None`, no ping is sent for that
    /// period, and procjon announces the service as not available once its
    /// timeout passes without one.
    fn failure_status(&self) -> Option<u64> {
        self.statuses()
            .iter()
            .position(|name| name == "unknown")
            .map(|i| i as u64)
    }

    /// Waits until the next check is due, `duration` from now. An agent
    /// that can see its status change (a child process exiting) returns as
    /// soon as it does, and the check runs at once.
    fn pause(&mut self, duration: Duration) {
        std::thread::sleep(duration);
    }

    /// Whether the last report was the last one, and what to do then. The
    /// runner of [`crate::run_to_end`] delivers that report, finishes as
    /// asked and returns. By default never.
    fn finished(&self) -> Option<Finish> {
        None
    }
}
