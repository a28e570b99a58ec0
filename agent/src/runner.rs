//! The runner: validates the options, then starts the check thread and one
//! ping thread per endpoint, and waits on the calling thread for them to
//! end (see the crate docs for who owns what). It survives everything
//! transient (a procjon down, restarted, busy or blackholed, a network
//! blip, a failing or panicking check) and returns only with an
//! [`AgentError`] that retrying can't fix, or once a finished agent's last
//! report is delivered.

use crate::agent::{Agent, CheckError, Report};
use crate::endpoint::Endpoint;
use crate::error::{AgentError, one_line};
use crate::mailbox::{self, Outcome, Post, Put};
use crate::options::Options;
use crate::pinger::Pinger;
use procjon::frame::{self, ClientFrame, MAX_FRAME_LEN, Registration};
use rustls::ClientConfig;
use std::convert::Infallible;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How [`run_to_end`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    /// Whether every procjon got the last report (and the unregistration,
    /// if asked for); false when `Options::final_timeout` passed first for
    /// one of them, or one refused the service for good.
    pub delivered: bool,
}

/// Reports `agent`'s status to every procjon of `options.endpoints` every
/// `options.period`, forever.
///
/// The check runs once per period; its result goes to each endpoint on a
/// thread and a connection of its own. Each connects with mutual TLS,
/// registers, then pings with the newest result; when its connection
/// fails it logs one line, reconnects with exponential backoff and jitter
/// (up to 30 s) and registers again, while the check and the other
/// endpoints carry on. Returns only on a bad configuration (checked before
/// anything starts) or once every endpoint has refused the service for
/// good, like `bad_service` (a refusal from some of them is logged, and
/// the others are still reported to); or with [`AgentError::Finished`]
/// for an agent that finishes: run those with [`run_to_end`].
pub fn run<A: Agent>(agent: A, options: &Options) -> Result<Infallible, AgentError> {
    match run_to_end(agent, options) {
        Ok(_) => Err(AgentError::Finished),
        Err(err) => Err(err),
    }
}

/// Like [`run`], for an agent that finishes ([`Agent::finished`]): once its
/// last report is delivered to every endpoint, the service is unregistered
/// (or kept) there as the agent asks, and this returns. Each endpoint that
/// can't be reached is tried for `options.final_timeout`, independently,
/// and then given up on (`delivered` false).
pub fn run_to_end<A: Agent>(agent: A, options: &Options) -> Result<Ended, AgentError> {
    let Checked {
        registration,
        endpoints,
        tls,
    } = check(&agent, options)?;
    let count = endpoints.len();
    let (ends, ended) = mpsc::channel();
    let mut posts = Vec::with_capacity(count);
    for (i, endpoint) in endpoints.into_iter().enumerate() {
        let (post, inbox) = mailbox::mailbox();
        posts.push((endpoint.to_string(), post));
        let pinger = Pinger::new(
            endpoint,
            tls.clone(),
            ClientFrame::Register(registration.clone()),
            options.service.clone(),
            inbox,
            options.timeout,
            options.final_timeout,
        );
        let ends = ends.clone();
        // Started before the check thread, whose posts end them if it can't start.
        std::thread::Builder::new()
            .name(format!("ping-{}", i + 1))
            .spawn(move || {
                let _ = ends.send(pinger.run());
            })
            .map_err(|source| AgentError::Thread { source })?;
    }
    drop(ends);
    let checker = Checker {
        failure: agent.failure_status(),
        names: registration.statuses,
        agent,
        period: options.period,
        posts,
    };
    std::thread::Builder::new()
        .name("check".into())
        .spawn(move || checker.run())
        .map_err(|source| AgentError::Thread { source })?;
    collect(&ended, count)
}

/// Waits for the `count` ping threads to end, and says how it went: an
/// error only when none of them ended well (the others' errors are logged
/// as they come, each once), else whether all delivered.
fn collect(
    ended: &mpsc::Receiver<Result<Ended, AgentError>>,
    count: usize,
) -> Result<Ended, AgentError> {
    let mut running = count;
    let mut delivered = true;
    let mut any_ok = false;
    while running > 0 {
        // Disconnected: a ping thread panicked; the others have ended.
        let Ok(end) = ended.recv() else {
            return if any_ok {
                Ok(Ended { delivered: false })
            } else {
                Err(AgentError::CheckStopped)
            };
        };
        running -= 1;
        match end {
            Ok(end) => {
                any_ok = true;
                delivered &= end.delivered;
            }
            // Every ping thread sees it: say it once.
            Err(AgentError::CheckStopped) => return Err(AgentError::CheckStopped),
            Err(err) if running == 0 && !any_ok => return Err(err),
            Err(err) => {
                delivered = false;
                if running > 0 {
                    log::error!("{err}; still reporting to the other {running}");
                } else {
                    log::error!("{err}");
                }
            }
        }
    }
    Ok(Ended { delivered })
}

/// What [`check`] found usable.
struct Checked {
    registration: Registration,
    endpoints: Vec<Endpoint>,
    tls: Arc<ClientConfig>,
}

/// Checks everything [`run`] and [`run_to_end`] would refuse before they
/// start anything: the options, the agent's statuses, procjon's addresses
/// and the certificate files. For an agent that starts something it must
/// not leave behind (`run`'s child), before starting it.
pub fn validate(agent: &impl Agent, options: &Options) -> Result<(), AgentError> {
    check(agent, options).map(drop)
}

fn check(agent: &impl Agent, options: &Options) -> Result<Checked, AgentError> {
    let registration = registration(agent, options)?;
    let endpoints = Endpoint::parse_list(&options.endpoints)?;
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
        endpoints,
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

/// The check thread: runs the agent's check every period and posts the
/// outcome to every endpoint's ping thread, whatever their connections are
/// doing. Posting never waits (see [`mailbox`]).
struct Checker<A> {
    agent: A,
    names: Vec<String>,
    failure: Option<u64>,
    period: Duration,
    /// Each endpoint, as given, and its ping thread's mailbox.
    posts: Vec<(String, Post)>,
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
            if !self.post(outcome) || last {
                return; // every ping thread has returned, or the agent is done
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

    /// Posts `outcome` to every ping thread; false once none is left.
    fn post(&self, outcome: Outcome) -> bool {
        let mut read = false;
        for (endpoint, post) in &self.posts {
            match post.put(outcome.clone()) {
                Put::Queued => read = true,
                Put::Replaced => {
                    read = true;
                    log::debug!(
                        "procjon at {endpoint}: still busy with an earlier ping; only the newest is kept"
                    );
                }
                Put::Gone => {}
            }
        }
        read
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
    fn failure_status_defaults_to_unknown() {
        let named = |names: &[&str]| Named(names.iter().map(|s| s.to_string()).collect());
        assert_eq!(named(&["ok", "unknown", "bad"]).failure_status(), Some(1));
        assert_eq!(named(&["ok", "bad"]).failure_status(), None);
    }
}
