//! The runner: validates the options, starts the check thread and runs the
//! ping loop on the calling thread (see the crate docs for who owns what).
//! It survives everything transient (procjon down, restarted or busy, a
//! network blip, a failing or panicking check) and returns only with an
//! [`AgentError`] that retrying can't fix.

use crate::agent::{Agent, CheckError, Finish, Report};
use crate::backoff::Backoff;
use crate::connection::{Connection, ConnectionError, Endpoint};
use crate::error::{AgentError, one_line};
use crate::options::Options;
use procjon::frame::{self, ClientFrame, ErrorCode, MAX_FRAME_LEN, Registration, ServerFrame};
use rustls::ClientConfig;
use std::convert::Infallible;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

/// First reconnection delay (before jitter); it doubles per failed attempt.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Longest reconnection delay.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What the check thread tells the ping thread.
#[derive(Debug)]
enum Outcome {
    /// The report to ping with, or `None` to skip this ping.
    Check(Option<Report>),
    /// The agent's last report, and what to do once it is delivered.
    Last(Report, Finish),
}

/// How [`run_to_end`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    /// Whether procjon got the last report (and the unregistration, if
    /// asked for); false when `Options::final_timeout` passed first.
    pub delivered: bool,
}

/// Reports `agent`'s status to procjon every `options.period`, forever.
///
/// Connects with mutual TLS, registers, then pings with each check's result.
/// When the connection fails it logs one line, reconnects with exponential
/// backoff and jitter (up to 30 s) and registers again; the check keeps
/// running meanwhile. Returns only on a bad configuration (checked before
/// anything starts) or a refusal that retrying can't fix, like
/// `bad_service` (or [`AgentError::Finished`] for an agent that finishes:
/// run those with [`run_to_end`]).
pub fn run<A: Agent>(agent: A, options: &Options) -> Result<Infallible, AgentError> {
    match run_to_end(agent, options) {
        Ok(_) => Err(AgentError::Finished),
        Err(err) => Err(err),
    }
}

/// Like [`run`], for an agent that finishes ([`Agent::finished`]): once its
/// last report is delivered, the service is unregistered (or kept) as the
/// agent asks, and this returns. While procjon can't be reached it keeps
/// trying for `options.final_timeout`, then returns with `delivered`
/// false.
pub fn run_to_end<A: Agent>(agent: A, options: &Options) -> Result<Ended, AgentError> {
    let Checked {
        registration,
        endpoint,
        tls,
    } = check(&agent, options)?;
    let failure = agent.failure_status();
    let (reports, received) = mpsc::channel();
    let checker = Checker {
        failure,
        names: registration.statuses.clone(),
        agent,
        period: options.period,
        reports,
    };
    std::thread::Builder::new()
        .name("check".into())
        .spawn(move || checker.run())
        .map_err(|source| AgentError::Thread { source })?;
    Pinger {
        endpoint,
        tls,
        io_timeout: options.timeout,
        register: ClientFrame::Register(registration),
        service: options.service.clone(),
        reports: received,
        latest: None,
        last: None,
        final_timeout: options.final_timeout,
        pinged: false,
        backoff: Backoff::new(FIRST_BACKOFF, MAX_BACKOFF),
    }
    .run()
}

/// What [`check`] found usable.
struct Checked {
    registration: Registration,
    endpoint: Endpoint,
    tls: Arc<ClientConfig>,
}

/// Checks everything [`run`] and [`run_to_end`] would refuse before they
/// start anything: the options, the agent's statuses, procjon's address and
/// the certificate files. For an agent that starts something it must not
/// leave behind (`run`'s child), before starting it.
pub fn validate(agent: &impl Agent, options: &Options) -> Result<(), AgentError> {
    check(agent, options).map(drop)
}

fn check(agent: &impl Agent, options: &Options) -> Result<Checked, AgentError> {
    let registration = registration(agent, options)?;
    let endpoint = Endpoint::parse(&options.endpoint)?;
    let tls = procjon::tls::client_config(&options.root_cert, &options.cert, &options.key)?;
    if let Some(status) = agent
        .failure_status()
        .filter(|s| *s >= registration.statuses.len() as u64)
    {
        return Err(AgentError::BadStatuses {
            reason: format!(
                "the failure status {status} is past the {} names",
                registration.statuses.len()
            ),
        });
    }
    Ok(Checked {
        registration,
        endpoint,
        tls,
    })
}

/// Validates the options and the agent's statuses into the register frame.
fn registration(agent: &impl Agent, options: &Options) -> Result<Registration, AgentError> {
    frame::validate_service(&options.service).map_err(|err| AgentError::BadService {
        service: options.service.clone(),
        reason: err.message,
    })?;
    let timeout = options.timeout.as_secs_f64();
    if !(timeout > 0.0 && timeout <= frame::MAX_TIMEOUT_S) {
        return Err(AgentError::BadOption {
            option: "--timeout",
            reason: format!(
                "{timeout} s is out of range; give above 0 and at most {} (7 days)",
                frame::MAX_TIMEOUT_S
            ),
        });
    }
    if options.period.is_zero() || options.period >= options.timeout {
        return Err(AgentError::BadOption {
            option: "--period",
            reason: format!(
                "{} s must be above 0 and below the timeout ({timeout} s), or procjon would \
                 announce the service as not available between two pings",
                options.period.as_secs_f64()
            ),
        });
    }
    let registration = Registration {
        service: options.service.clone(),
        timeout_s: timeout,
        statuses: agent.statuses(),
        policy: Default::default(),
    };
    registration
        .validate()
        .map_err(|err| AgentError::BadStatuses {
            reason: err.message,
        })?;
    let len = ClientFrame::Register(registration.clone()).encode().len() - 1;
    if len > MAX_FRAME_LEN {
        return Err(AgentError::BadStatuses {
            reason: format!(
                "the register frame would be {len} bytes, over procjon's {MAX_FRAME_LEN}-byte limit; use fewer or shorter names"
            ),
        });
    }
    Ok(registration)
}

/// The check thread: runs the agent's check every period and sends the
/// outcome to the ping thread, whatever the connection is doing.
struct Checker<A> {
    agent: A,
    names: Vec<String>,
    failure: Option<u64>,
    period: Duration,
    reports: Sender<Outcome>,
}

impl<A: Agent> Checker<A> {
    fn run(mut self) {
        let mut next = Instant::now();
        let mut last_problem: Option<String> = None;
        let mut last_status: Option<u64> = None;
        loop {
            let report = match self.check() {
                Ok(report) => {
                    if last_problem.take().is_some() {
                        log::info!("check works again");
                    }
                    Some(report)
                }
                Err(failure) => {
                    let problem = one_line(&failure.to_string());
                    let reported = self.failure;
                    let outcome = match reported {
                        Some(status) => format!("reporting {}", self.name(status)),
                        None => "skipping this ping".to_string(),
                    };
                    if last_problem.as_deref() == Some(problem.as_str()) {
                        log::debug!("check failed again: {problem}; {outcome}");
                    } else {
                        log::warn!("check failed: {problem}; {outcome}");
                    }
                    last_problem = Some(problem);
                    reported.map(Report::new)
                }
            };
            if let Some(report) = &report {
                let status = report.status;
                match last_status {
                    Some(old) if old != status => {
                        log::info!("status {} (was {})", self.name(status), self.name(old))
                    }
                    None => log::info!("status {}", self.name(status)),
                    Some(_) => {}
                }
                last_status = Some(status);
            }
            let outcome = match (report, self.agent.finished()) {
                (Some(report), Some(finish)) => Outcome::Last(report, finish),
                (report, _) => Outcome::Check(report),
            };
            let last = matches!(outcome, Outcome::Last(..));
            if self.reports.send(outcome).is_err() || last {
                return; // the ping thread has returned, or the agent is done
            }
            next += self.period;
            let now = Instant::now();
            if next > now {
                self.agent.pause(next - now);
                // Woken early (the agent saw a change): check at once.
                next = next.min(Instant::now());
            } else {
                next = now; // the check overran: start again now, don't catch up
            }
        }
    }

    /// One check; errors, out-of-range indexes and panics are failures.
    fn check(&mut self) -> Result<Report, CheckFailure> {
        let agent = &mut self.agent;
        let count = self.names.len();
        match panic::catch_unwind(AssertUnwindSafe(|| agent.report())) {
            Ok(Ok(report)) if report.status < count as u64 => Ok(report),
            Ok(Ok(report)) => Err(CheckFailure::PastTheList {
                status: report.status,
                count,
            }),
            Ok(Err(err)) => Err(CheckFailure::Error(err)),
            Err(_) => Err(CheckFailure::Panicked),
        }
    }

    fn name(&self, status: u64) -> &str {
        self.names.get(status as usize).map_or("?", String::as_str)
    }
}

/// Why a check gave no status.
#[derive(Debug)]
enum CheckFailure {
    /// The agent's check returned an error.
    Error(CheckError),
    /// The agent's check returned an index past its status names.
    PastTheList { status: u64, count: usize },
    /// The agent's check panicked (the panic message is already on stderr).
    Panicked,
}

impl fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckFailure::Error(err) => err.fmt(f),
            CheckFailure::PastTheList { status, count } => {
                write!(f, "status {status} is past the {count} status names")
            }
            CheckFailure::Panicked => f.write_str("the check panicked (see above)"),
        }
    }
}

/// What ended a session with procjon.
enum SessionEnd {
    /// A transient failure: reconnect after a pause.
    Lost(String),
    /// Stop the agent.
    Fatal(AgentError),
}

impl From<ConnectionError> for SessionEnd {
    fn from(err: ConnectionError) -> Self {
        SessionEnd::Lost(err.to_string())
    }
}

/// Whether a refusal is final (see [`ErrorCode::is_final`]).
fn is_final(code: ErrorCode) -> bool {
    code.is_final()
}

/// The ping thread's state: the connection loop.
struct Pinger {
    endpoint: Endpoint,
    tls: Arc<ClientConfig>,
    io_timeout: Duration,
    register: ClientFrame,
    service: String,
    reports: Receiver<Outcome>,
    /// The newest check outcome, pinged first after a reconnection.
    latest: Option<Report>,
    /// Once the agent has finished: what to do after its last report, and
    /// until when to keep trying.
    last: Option<(Finish, Instant)>,
    final_timeout: Duration,
    /// Whether the current session has had a ping accepted.
    pinged: bool,
    backoff: Backoff,
}

impl Pinger {
    fn run(mut self) -> Result<Ended, AgentError> {
        loop {
            self.pinged = false;
            let cause = match self.session() {
                Ok(ended) => return Ok(ended),
                Err(SessionEnd::Fatal(err)) => return Err(err),
                Err(SessionEnd::Lost(cause)) => cause,
            };
            if self.pinged {
                self.backoff.reset();
            }
            let mut delay = self.backoff.next_delay();
            if let Some((_, deadline)) = &self.last {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    log::error!(
                        "cannot report to procjon at {}: {cause}; giving up on the last report after {:.0} s",
                        self.endpoint,
                        self.final_timeout.as_secs_f64()
                    );
                    return Ok(Ended { delivered: false });
                }
                delay = delay.min(left);
            }
            if self.pinged {
                log::warn!(
                    "connection to procjon at {} lost: {cause}; reconnecting in {:.1} s",
                    self.endpoint,
                    delay.as_secs_f64()
                );
            } else {
                log::warn!(
                    "cannot report to procjon at {}: {cause}; retrying in {:.1} s (attempt {})",
                    self.endpoint,
                    delay.as_secs_f64(),
                    self.backoff.failures()
                );
            }
            self.wait(delay)?;
        }
    }

    /// Connects, registers and pings until something fails, or until the
    /// agent's last report is delivered.
    fn session(&mut self) -> Result<Ended, SessionEnd> {
        let mut conn = Connection::open(&self.endpoint, &self.tls, self.io_timeout)?;
        self.send_register(&mut conn)?;
        let peer = conn.peer().to_string();
        if peer == self.endpoint.to_string() {
            log::info!("registered {} with procjon at {peer}", self.service);
        } else {
            log::info!(
                "registered {} with procjon at {} ({peer})",
                self.service,
                self.endpoint
            );
        }
        if let Some(report) = self.latest.clone() {
            self.ping(&mut conn, &report)?;
        }
        loop {
            if let Some((finish, _)) = self.last.clone() {
                self.finish(&mut conn, &finish)?;
                return Ok(Ended { delivered: true });
            }
            if let Some(report) = self.next_report()? {
                self.ping(&mut conn, &report)?;
            }
        }
    }

    fn send_register(&mut self, conn: &mut Connection) -> Result<(), SessionEnd> {
        match conn.exchange(&self.register)? {
            ServerFrame::Ok => Ok(()),
            ServerFrame::Error { code, message } => Err(self.refused("register", code, message)),
        }
    }

    /// Pings; when procjon has forgotten the registration (or holds another
    /// one), registers again and repeats the ping once.
    fn ping(&mut self, conn: &mut Connection, report: &Report) -> Result<(), SessionEnd> {
        let ping = ping_frame(&self.service, report);
        let reply = match conn.exchange(&ping)? {
            ServerFrame::Error {
                code: code @ (ErrorCode::NotRegistered | ErrorCode::BadStatus),
                message,
            } => {
                log::warn!(
                    "procjon refused the ping ({code}: {}); registering again",
                    one_line(&message)
                );
                self.send_register(conn)?;
                conn.exchange(&ping)?
            }
            reply => reply,
        };
        match reply {
            ServerFrame::Ok => {
                log::debug!("pinged {} with status {}", self.service, report.status);
                self.pinged = true;
                Ok(())
            }
            ServerFrame::Error { code, message } => Err(self.refused("ping", code, message)),
        }
    }

    /// After the last report: unregisters the service if asked to.
    fn finish(&mut self, conn: &mut Connection, finish: &Finish) -> Result<(), SessionEnd> {
        let Finish::Unregister { reason } = finish else {
            log::info!("finished; {} stays registered", self.service);
            return Ok(());
        };
        let frame = ClientFrame::Unregister {
            service: self.service.clone(),
            reason: Some(detail_text(reason)).filter(|r| !r.is_empty()),
        };
        match conn.exchange(&frame)? {
            ServerFrame::Ok => {
                log::info!("unregistered {}: {reason}", self.service);
                Ok(())
            }
            // Gone already (unregistered before a lost reply, or removed).
            ServerFrame::Error {
                code: ErrorCode::NotRegistered,
                ..
            } => Ok(()),
            ServerFrame::Error { code, message } => Err(self.refused("unregister", code, message)),
        }
    }

    /// Ends the session after a refusal: for good when the same frame
    /// would be refused again, else with a reconnection later.
    fn refused(&self, frame: &'static str, code: ErrorCode, message: String) -> SessionEnd {
        if is_final(code) {
            SessionEnd::Fatal(AgentError::Rejected {
                endpoint: self.endpoint.to_string(),
                service: self.service.clone(),
                frame,
                code,
                message,
            })
        } else {
            SessionEnd::Lost(format!(
                "procjon refused the {frame}: {code}: {}",
                one_line(&message)
            ))
        }
    }

    /// Takes in a check outcome: the newest report to ping with, and the
    /// agent's last one when it has finished.
    fn take(&mut self, outcome: Outcome) -> Option<Report> {
        match outcome {
            Outcome::Check(report) => {
                if report.is_some() {
                    self.latest.clone_from(&report);
                }
                report
            }
            Outcome::Last(report, finish) => {
                self.latest = Some(report.clone());
                self.last = Some((finish, Instant::now() + self.final_timeout));
                Some(report)
            }
        }
    }

    /// Blocks until the next check outcome; skips to the newest when
    /// several queued up while the connection was slow.
    fn next_report(&mut self) -> Result<Option<Report>, SessionEnd> {
        let outcome = self
            .reports
            .recv()
            .map_err(|_| SessionEnd::Fatal(AgentError::CheckStopped))?;
        let mut report = self.take(outcome);
        while let Ok(newer) = self.reports.try_recv() {
            report = self.take(newer);
        }
        Ok(report)
    }

    /// Sleeps `delay`, keeping the newest check outcome.
    fn wait(&mut self, delay: Duration) -> Result<(), AgentError> {
        let until = Instant::now() + delay;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.reports.recv_timeout(left) {
                Ok(outcome) => {
                    self.take(outcome);
                }
                Err(RecvTimeoutError::Timeout) => return Ok(()),
                // The check thread ends after the last report.
                Err(RecvTimeoutError::Disconnected) if self.last.is_some() => {
                    std::thread::sleep(left);
                    return Ok(());
                }
                Err(RecvTimeoutError::Disconnected) => return Err(AgentError::CheckStopped),
            }
        }
    }
}

/// The ping frame of `report`: its detail made one line of at most 256
/// characters, and only the performance data procjon accepts (a bad value
/// would get the whole ping refused for good).
fn ping_frame(service: &str, report: &Report) -> ClientFrame {
    let perfdata = report
        .perfdata
        .iter()
        .filter(|value| frame::validate_perfdata(std::slice::from_ref(*value)).is_ok())
        .take(frame::MAX_PERFDATA)
        .cloned()
        .collect();
    ClientFrame::Ping {
        service: service.to_string(),
        status: report.status,
        detail: report.detail.as_deref().map(detail_text),
        perfdata,
    }
}

/// `text` as procjon takes a detail: one line, at most 256 characters.
fn detail_text(text: &str) -> String {
    one_line(text.trim())
        .chars()
        .take(frame::MAX_DETAIL_CHARS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ping::Ping;

    struct Named(Vec<String>);

    impl Agent for Named {
        fn statuses(&self) -> Vec<String> {
            self.0.clone()
        }
        fn check(&mut self) -> Result<u64, CheckError> {
            Ok(0)
        }
    }

    fn options() -> Options {
        let mut options = Options::new("web-1");
        options.timeout = Duration::from_secs(10);
        options.period = Duration::from_secs(4);
        options
    }

    #[test]
    fn validates_options_before_anything_starts() {
        assert!(registration(&Ping, &options()).is_ok());
        type Change = fn(&mut Options);
        let cases: [(Change, &str); 5] = [
            (|o| o.service = "bad id".into(), "service id \"bad id\""),
            (|o| o.service = String::new(), "service id \"\""),
            (|o| o.period = o.timeout, "--period"),
            (|o| o.period = Duration::ZERO, "--period"),
            (|o| o.timeout = Duration::from_secs(8 * 86_400), "--timeout"),
        ];
        for (change, start) in cases {
            let mut options = options();
            change(&mut options);
            let err = registration(&Ping, &options).unwrap_err().to_string();
            assert!(err.starts_with(start), "{err}");
        }
    }

    #[test]
    fn refuses_unusable_status_names() {
        for names in [vec![], vec![String::new()], vec!["x".repeat(70_000)]] {
            let err = registration(&Named(names), &options())
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("status names: "), "{err}");
        }
    }

    #[test]
    fn only_refusals_that_would_repeat_are_final() {
        for code in [
            ErrorCode::BadService,
            ErrorCode::BadFrame,
            ErrorCode::TooLarge,
            ErrorCode::Forbidden,
        ] {
            assert!(is_final(code), "{code}");
        }
        let unknown =
            match ServerFrame::decode(br#"{"type":"error","code":"from_the_future","message":""}"#)
            {
                Ok(ServerFrame::Error { code, .. }) => code,
                other => panic!("{other:?}"),
            };
        for code in [
            ErrorCode::Busy,
            ErrorCode::Internal,
            ErrorCode::NotRegistered,
            ErrorCode::BadStatus,
            unknown,
        ] {
            assert!(!is_final(code), "{code}");
        }
    }

    #[test]
    fn failure_status_defaults_to_unknown() {
        let named = |names: &[&str]| Named(names.iter().map(|s| s.to_string()).collect());
        assert_eq!(named(&["ok", "unknown", "bad"]).failure_status(), Some(1));
        assert_eq!(named(&["ok", "bad"]).failure_status(), None);
    }
}
