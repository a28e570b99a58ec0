//! The [`Agent`] trait: what a service's agent tells procjon. Implemented by
//! the built-in agents and by custom ones; called only from the runner's
//! check thread.

/// Why a check could not tell the current status. Any error type works
/// (`?` converts it); its `Display` is what the log shows.
pub type CheckError = Box<dyn std::error::Error + Send + Sync>;

/// A service's agent: its status names and a check that picks one.
///
/// The runner calls [`Agent::statuses`] once at start-up and registers the
/// names with procjon; then it calls [`Agent::check`] every period and pings
/// with the index it returns. Status 0 is the healthy one by convention.
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
}
