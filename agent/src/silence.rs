//! `procjonagent silence` and `unsilence`: one-shot commands for deploy
//! scripts, not agents. Each checks its flags, endpoints and files before
//! connecting, then asks every endpoint at once, each on a thread of its
//! own (the main thread alone for one endpoint): connect (trying again for
//! about 10 s while that procjon can't be reached, so that a deploy never
//! hangs on monitoring), send one frame, read the reply. No check thread,
//! no registration, no loop. `cli::run` prints one line per endpoint and
//! picks the exit code.

use crate::backoff::Backoff;
use crate::connection::{Connection, ConnectionError};
use crate::endpoint::Endpoint;
use crate::error::{AgentError, one_line};
use crate::options::Options;
use procjon::frame::{self, ClientFrame, ErrorCode, MAX_SILENCE_S, ServerFrame};
use rustls::ClientConfig;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a silence or unsilence keeps trying to reach procjon.
const RETRY_FOR: Duration = Duration::from_secs(10);
/// The longest one socket operation of an attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// The least time the last attempt gets, however close the deadline is.
const LAST_ATTEMPT: Duration = Duration::from_secs(1);
/// First pause between two attempts (before jitter); it doubles each time.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Longest pause between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(4);

/// A silence or an unsilence, checked and ready to send.
pub(crate) struct Silence {
    frame: ClientFrame,
    /// The service id, or `*`.
    service: String,
    endpoints: Vec<Endpoint>,
    tls: Arc<ClientConfig>,
}

/// One endpoint's answer to a silence or unsilence.
#[derive(Debug)]
pub(crate) struct Answer {
    /// The endpoint, as given.
    pub(crate) endpoint: String,
    /// The line that says what was done, or why not.
    pub(crate) result: Result<String, SilenceError>,
}

impl Silence {
    /// `silence`: checks `--for` (`length`), `--reason`, the service
    /// (`None`: the agent's own, `options.service`) and what connecting
    /// needs, without connecting.
    pub(crate) fn begin(
        length: Option<&str>,
        reason: Option<&str>,
        service: Option<&str>,
        options: &Options,
    ) -> Result<Silence, AgentError> {
        let length = length_of(length)?;
        let reason = reason.filter(|r| !r.is_empty());
        if let Some(reason) = reason {
            frame::validate_text("the reason", reason)
                .map_err(|err| bad_option("--reason", err.message))?;
        }
        let service = target(service, options)?;
        let frame = ClientFrame::Silence {
            service: service.clone(),
            for_s: length.as_secs_f64(),
            reason: reason.map(String::from),
        };
        Silence::new(frame, service, options)
    }

    /// `unsilence`: checks the service (`None`: the agent's own) and what
    /// connecting needs, without connecting.
    pub(crate) fn end(service: Option<&str>, options: &Options) -> Result<Silence, AgentError> {
        let service = target(service, options)?;
        let frame = ClientFrame::Unsilence {
            service: service.clone(),
        };
        Silence::new(frame, service, options)
    }

    fn new(frame: ClientFrame, service: String, options: &Options) -> Result<Silence, AgentError> {
        let endpoints = Endpoint::parse_list(&options.endpoints)?;
        let tls = procjon::tls::client_config(&options.root_cert, &options.cert, &options.key)?;
        Ok(Silence {
            frame,
            service,
            endpoints,
            tls,
        })
    }

    /// Sends the frame to every endpoint at once and returns their
    /// answers, in the order of the list, once the last has answered or
    /// been given up on (about 10 s at most).
    pub(crate) fn send(&self) -> Vec<Answer> {
        let answer = |endpoint: &Endpoint| Answer {
            endpoint: endpoint.to_string(),
            result: self.send_to(endpoint),
        };
        if let [endpoint] = self.endpoints.as_slice() {
            return vec![answer(endpoint)];
        }
        std::thread::scope(|scope| {
            let threads: Vec<_> = self
                .endpoints
                .iter()
                .enumerate()
                .map(|(i, endpoint)| {
                    std::thread::Builder::new()
                        .name(format!("{}-{}", self.what(), i + 1))
                        .spawn_scoped(scope, move || answer(endpoint))
                })
                .collect();
            threads
                .into_iter()
                .zip(&self.endpoints)
                .map(|(thread, endpoint)| match thread {
                    Ok(thread) => thread
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                    // No thread to spare: ask this one in turn.
                    Err(_) => answer(endpoint),
                })
                .collect()
        })
    }

    /// Sends the frame to `endpoint` and reads its reply, trying again for
    /// about 10 s while it can't be reached. Returns the line that says
    /// what was done (`silenced web-1 for 1h`).
    fn send_to(&self, endpoint: &Endpoint) -> Result<String, SilenceError> {
        let started = Instant::now();
        let deadline = started + RETRY_FOR;
        let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
        let reply = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let err = match self.exchange(endpoint, ATTEMPT_TIMEOUT.min(left).max(LAST_ATTEMPT)) {
                Ok(reply) => break reply,
                Err(
                    source @ (ConnectionError::CertificateRefused { .. }
                    | ConnectionError::ServerCertificate { .. }),
                ) => {
                    return Err(SilenceError::Certificate {
                        endpoint: endpoint.to_string(),
                        what: self.what(),
                        source: Box::new(source),
                    });
                }
                Err(err) => err,
            };
            let delay = backoff.next_delay();
            if Instant::now() + delay >= deadline {
                return Err(SilenceError::Unreachable {
                    endpoint: endpoint.to_string(),
                    what: self.what(),
                    service: self.service.clone(),
                    attempts: backoff.failures(),
                    waited: started.elapsed(),
                    source: Box::new(err),
                });
            }
            log::warn!(
                "procjon at {endpoint}: cannot reach it: {err}; retrying in {:.1} s (attempt {})",
                delay.as_secs_f64(),
                backoff.failures()
            );
            std::thread::sleep(delay);
        };
        match reply {
            ServerFrame::Ok => Ok(self.done()),
            ServerFrame::Error { code, message } => Err(SilenceError::Refused {
                endpoint: endpoint.to_string(),
                what: self.what(),
                service: self.service.clone(),
                code,
                message,
            }),
        }
    }

    /// One attempt: connect, send, read the reply.
    fn exchange(
        &self,
        endpoint: &Endpoint,
        timeout: Duration,
    ) -> Result<ServerFrame, ConnectionError> {
        let mut conn = Connection::open(endpoint, &self.tls, timeout)?;
        log::debug!("procjon at {endpoint}: connected ({})", conn.peer());
        conn.exchange(&self.frame)
    }

    /// The frame's name, as messages use it.
    fn what(&self) -> &'static str {
        match self.frame {
            ClientFrame::Silence { .. } => "silence",
            _ => "unsilence",
        }
    }

    /// The line that tells what procjon accepted.
    fn done(&self) -> String {
        match &self.frame {
            ClientFrame::Silence { for_s, .. } => format!(
                "silenced {} for {}",
                self.service,
                procjon::round_duration(Duration::from_secs_f64(*for_s))
            ),
            _ => format!("unsilenced {}", self.service),
        }
    }
}

/// Why a silence or unsilence was not done.
#[derive(Debug)]
pub(crate) enum SilenceError {
    /// procjon answered with an error.
    Refused {
        /// procjon's address.
        endpoint: String,
        /// `silence` or `unsilence`.
        what: &'static str,
        /// The service id, or `*`.
        service: String,
        /// procjon's reason.
        code: ErrorCode,
        /// procjon's detail.
        message: String,
    },
    /// procjon could not be reached, or did not answer, for about 10 s.
    Unreachable {
        /// procjon's address.
        endpoint: String,
        /// `silence` or `unsilence`.
        what: &'static str,
        /// The service id, or `*`.
        service: String,
        /// How many times the agent tried.
        attempts: u32,
        /// How long it tried for.
        waited: Duration,
        /// What went wrong the last time.
        source: Box<ConnectionError>,
    },
    /// One side refused the other's certificate: trying again won't help.
    Certificate {
        /// procjon's address.
        endpoint: String,
        /// `silence` or `unsilence`.
        what: &'static str,
        /// Which certificate, and why.
        source: Box<ConnectionError>,
    },
}

impl SilenceError {
    /// Whether sending the same frame again can't help, so the user must
    /// fix something: a final refusal (see [`ErrorCode::is_final`]), or
    /// `not_registered` (no such service, or the identity owns none),
    /// which only a registration elsewhere would change; or a certificate
    /// refused.
    pub(crate) fn is_final(&self) -> bool {
        match self {
            SilenceError::Refused { code, .. } => {
                code.is_final() || *code == ErrorCode::NotRegistered
            }
            SilenceError::Unreachable { .. } => false,
            SilenceError::Certificate { .. } => true,
        }
    }
}

impl fmt::Display for SilenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SilenceError::Refused {
                endpoint,
                what,
                service,
                code,
                message,
            } => write!(
                f,
                "procjon at {endpoint} refused the {what} of {service}: {code}: {}",
                one_line(message)
            ),
            SilenceError::Unreachable {
                endpoint,
                what,
                service,
                attempts,
                waited,
                source,
            } => write!(
                f,
                "cannot reach procjon at {endpoint} to {what} {service}: {source}; gave up after \
                 {attempts} attempts in {:.1} s",
                waited.as_secs_f64()
            ),
            SilenceError::Certificate {
                endpoint,
                what,
                source,
            } => write!(f, "{what} at {endpoint}: {source}"),
        }
    }
}

impl std::error::Error for SilenceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SilenceError::Refused { .. } => None,
            SilenceError::Unreachable { source, .. } | SilenceError::Certificate { source, .. } => {
                Some(&**source)
            }
        }
    }
}

/// The service to (un)silence: SERVICE if given, else the agent's `-s` (or
/// the host name); an id, or `*`.
fn target(given: Option<&str>, options: &Options) -> Result<String, AgentError> {
    let service = given.unwrap_or(&options.service);
    frame::validate_target(service).map_err(|err| AgentError::BadService {
        service: service.to_string(),
        reason: err.message,
    })?;
    Ok(service.to_string())
}

/// `--for`: seconds, or a number with s, m, h or d (procjon's own
/// [`procjon::parse_duration`]); above 0 and at most 7 days.
fn length_of(text: Option<&str>) -> Result<Duration, AgentError> {
    let Some(text) = text else {
        return Err(bad_option(
            "--for",
            "missing; say how long the silence lasts, e.g. --for 30m".into(),
        ));
    };
    let length = procjon::parse_duration(text).ok_or_else(|| {
        bad_option(
            "--for",
            format!(
                "{text:?} is not a length of time; give seconds or a number with s, m, h or d, \
                 e.g. 90, 10m, 1.5h or 7d"
            ),
        )
    })?;
    if length.is_zero() {
        return Err(bad_option(
            "--for",
            format!("{text:?} is no time at all; a silence lasts above 0"),
        ));
    }
    if length.as_secs_f64() > MAX_SILENCE_S {
        return Err(bad_option(
            "--for",
            format!("{text:?} is too long; a silence lasts at most 7d"),
        ));
    }
    Ok(length)
}

fn bad_option(option: &'static str, reason: String) -> AgentError {
    AgentError::BadOption { option, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn for_takes_procjon_lengths_up_to_7_days() {
        for (text, secs) in [
            ("90", 90.0),
            ("10m", 600.0),
            ("1h", 3600.0),
            ("1.5h", 5400.0),
            ("7d", 604_800.0),
        ] {
            assert_eq!(length_of(Some(text)).unwrap().as_secs_f64(), secs, "{text}");
        }
        for (text, reason) in [
            (None, "--for: missing; "),
            (Some("soon"), "--for: \"soon\" is not a length of time; "),
            (Some("-5m"), "--for: \"-5m\" is not a length of time; "),
            (Some("0"), "--for: \"0\" is no time at all; "),
            (
                Some("8d"),
                "--for: \"8d\" is too long; a silence lasts at most 7d",
            ),
            (Some("168.1h"), "--for: \"168.1h\" is too long; "),
        ] {
            let err = length_of(text).unwrap_err().to_string();
            assert!(err.starts_with(reason), "{text:?}: {err}");
        }
    }

    #[test]
    fn not_registered_is_final_for_a_silence_and_busy_is_not() {
        let refused = |code| SilenceError::Refused {
            endpoint: "localhost:8080".into(),
            what: "silence",
            service: "web-1".into(),
            code,
            message: "why\nnot".into(),
        };
        for code in [
            ErrorCode::Forbidden,
            ErrorCode::NotRegistered,
            ErrorCode::BadFrame,
        ] {
            assert!(refused(code).is_final(), "{code}");
        }
        for code in [ErrorCode::Busy, ErrorCode::Internal, ErrorCode::Unknown] {
            assert!(!refused(code).is_final(), "{code}");
        }
        assert_eq!(
            refused(ErrorCode::Forbidden).to_string(),
            "procjon at localhost:8080 refused the silence of web-1: forbidden: why not"
        );
    }
}
