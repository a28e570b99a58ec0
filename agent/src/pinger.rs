//! [`Pinger`]: one endpoint's ping thread. It owns that endpoint's TLS
//! connection and backoff: it connects, registers, and pings with each
//! update it takes from its [`Inbox`], reading procjon's reply to every
//! frame; when the connection fails it logs one line, waits with capped
//! exponential backoff and jitter while keeping the newest report,
//! reconnects and registers again. An agent has one per endpoint, so a
//! procjon that is down or blackholed holds up only its own thread. Every
//! log line starts `procjon at ENDPOINT:`.

use crate::agent::{Finish, Report};
use crate::backoff::Backoff;
use crate::connection::{Connection, ConnectionError};
use crate::endpoint::Endpoint;
use crate::error::{AgentError, one_line};
use crate::mailbox::{Inbox, Update};
use crate::runner::Ended;
use procjon::frame::{self, ClientFrame, ErrorCode, ServerFrame};
use rustls::ClientConfig;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// First reconnection delay (before jitter); it doubles per failed attempt.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Longest reconnection delay.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The least time one socket operation gets while delivering the last
/// report, however close its deadline is.
const LAST_IO: Duration = Duration::from_secs(1);

/// What ended a session with procjon.
enum SessionEnd {
    /// A transient failure: reconnect after a pause.
    Lost(String),
    /// Stop reporting to this endpoint.
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

/// One endpoint's connection loop (see the module docs).
pub(crate) struct Pinger {
    endpoint: Endpoint,
    tls: Arc<ClientConfig>,
    io_timeout: Duration,
    register: ClientFrame,
    service: String,
    inbox: Inbox,
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
    /// A ping thread's state for `endpoint`, taking the check's outcomes
    /// from `inbox`. Every socket operation gives up after `io_timeout`
    /// (the service's timeout); the last report is retried for
    /// `final_timeout`.
    pub(crate) fn new(
        endpoint: Endpoint,
        tls: Arc<ClientConfig>,
        register: ClientFrame,
        service: String,
        inbox: Inbox,
        io_timeout: Duration,
        final_timeout: Duration,
    ) -> Pinger {
        Pinger {
            endpoint,
            tls,
            io_timeout,
            register,
            service,
            inbox,
            latest: None,
            last: None,
            final_timeout,
            pinged: false,
            backoff: Backoff::new(FIRST_BACKOFF, MAX_BACKOFF),
        }
    }

    /// Reports until the agent's last report is delivered (or given up
    /// on), a refusal that retrying can't fix, or the check thread's end.
    pub(crate) fn run(mut self) -> Result<Ended, AgentError> {
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
                        "procjon at {}: cannot report: {cause}; giving up on the last report after {:.0} s",
                        self.endpoint,
                        self.final_timeout.as_secs_f64()
                    );
                    return Ok(Ended { delivered: false });
                }
                delay = delay.min(left);
            }
            if self.pinged {
                log::warn!(
                    "procjon at {}: connection lost: {cause}; reconnecting in {:.1} s",
                    self.endpoint,
                    delay.as_secs_f64()
                );
            } else {
                log::warn!(
                    "procjon at {}: cannot report: {cause}; retrying in {:.1} s (attempt {})",
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
        let mut conn = Connection::open(&self.endpoint, &self.tls, self.op_timeout())?;
        self.send_register(&mut conn)?;
        let peer = conn.peer().to_string();
        if peer == self.endpoint.to_string() {
            log::info!("procjon at {}: registered {}", self.endpoint, self.service);
        } else {
            log::info!(
                "procjon at {}: registered {} ({peer})",
                self.endpoint,
                self.service
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

    /// The limit of one socket operation: the service's timeout, or less
    /// once the agent has finished and its last report has a deadline.
    fn op_timeout(&self) -> Duration {
        match &self.last {
            Some((_, deadline)) => self.io_timeout.min(
                deadline
                    .saturating_duration_since(Instant::now())
                    .max(LAST_IO),
            ),
            None => self.io_timeout,
        }
    }

    /// Sends one frame and reads the reply, within [`Pinger::op_timeout`].
    fn exchange(
        &self,
        conn: &mut Connection,
        frame: &ClientFrame,
    ) -> Result<ServerFrame, ConnectionError> {
        if self.last.is_some() {
            conn.set_timeout(self.op_timeout())?;
        }
        conn.exchange(frame)
    }

    fn send_register(&mut self, conn: &mut Connection) -> Result<(), SessionEnd> {
        match self.exchange(conn, &self.register)? {
            ServerFrame::Ok => Ok(()),
            ServerFrame::Error { code, message } => Err(self.refused("register", code, message)),
        }
    }

    /// Pings; when procjon has forgotten the registration (or holds another
    /// one), registers again and repeats the ping once.
    fn ping(&mut self, conn: &mut Connection, report: &Report) -> Result<(), SessionEnd> {
        let ping = ping_frame(&self.service, report);
        let reply = match self.exchange(conn, &ping)? {
            ServerFrame::Error {
                code: code @ (ErrorCode::NotRegistered | ErrorCode::BadStatus),
                message,
            } => {
                log::warn!(
                    "procjon at {}: refused the ping ({code}: {}); registering again",
                    self.endpoint,
                    one_line(&message)
                );
                self.send_register(conn)?;
                self.exchange(conn, &ping)?
            }
            reply => reply,
        };
        match reply {
            ServerFrame::Ok => {
                log::debug!(
                    "procjon at {}: pinged {} with status {}",
                    self.endpoint,
                    self.service,
                    report.status
                );
                self.pinged = true;
                Ok(())
            }
            ServerFrame::Error { code, message } => Err(self.refused("ping", code, message)),
        }
    }

    /// After the last report: unregisters the service if asked to.
    fn finish(&mut self, conn: &mut Connection, finish: &Finish) -> Result<(), SessionEnd> {
        let Finish::Unregister { reason } = finish else {
            log::info!(
                "procjon at {}: finished; {} stays registered",
                self.endpoint,
                self.service
            );
            return Ok(());
        };
        let frame = ClientFrame::Unregister {
            service: self.service.clone(),
            reason: Some(detail_text(reason)).filter(|r| !r.is_empty()),
        };
        match self.exchange(conn, &frame)? {
            ServerFrame::Ok => {
                log::info!(
                    "procjon at {}: unregistered {}: {reason}",
                    self.endpoint,
                    self.service
                );
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

    /// Takes in an update: the newest report to ping with, and the
    /// agent's last one when it has finished.
    fn take(&mut self, update: Update) -> Option<Report> {
        if let Some(latest) = update.latest {
            self.latest = Some(latest);
        }
        if let Some((finish, finished)) = update.last {
            self.last = Some((finish, finished + self.final_timeout));
        }
        update.ping
    }

    /// Blocks until the next update (outcomes posted meanwhile are folded
    /// into one: only the newest is pinged).
    fn next_report(&mut self) -> Result<Option<Report>, SessionEnd> {
        let update = self
            .inbox
            .recv()
            .map_err(|_| SessionEnd::Fatal(AgentError::CheckStopped))?;
        Ok(self.take(update))
    }

    /// Sleeps `delay`, keeping the newest check outcome.
    fn wait(&mut self, delay: Duration) -> Result<(), AgentError> {
        let until = Instant::now() + delay;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.inbox.recv_timeout(left) {
                Ok(Some(update)) => {
                    self.take(update);
                }
                Ok(None) => return Ok(()),
                // The check thread ends after the last report.
                Err(_) if self.last.is_some() => {
                    std::thread::sleep(left);
                    return Ok(());
                }
                Err(_) => return Err(AgentError::CheckStopped),
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
}
