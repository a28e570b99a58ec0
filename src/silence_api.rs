//! The silence endpoints of the HTTP API, for `procjon silence` and
//! `procjon unsilence` on the daemon's own VM: `POST /api/silences` with
//! `{"service":"web-1","for":"1h","reason":"deploy","by":"alice"}` (`for`
//! as seconds or with a unit; `service` may be `*`: every service), and
//! `DELETE /api/silences/<service>`. Unlike agents, they may silence any
//! service: only a client on the same machine (a loopback address) may use
//! them, whatever `--http` listens on. Runs on an `http-request` thread;
//! waits, like an agent's frame, until the silence is on disk.

use crate::api::ApiError;
use crate::frame::{ErrorCode, FrameError, MAX_SILENCE_S, validate_target, validate_text};
use crate::registry::Registry;
use crate::settings::parse_duration;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::net::SocketAddr;
use std::time::Duration;

/// The path prefix of the endpoints.
pub const PATH: &str = "/api/silences";
/// Largest request body read.
const MAX_BODY: u64 = 16 * 1024;
/// Who a silence is by when the request doesn't say.
const DEFAULT_BY: &str = "procjon";

/// The body of `POST /api/silences`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SilenceRequest {
    /// The service id, or `*`.
    pub service: String,
    /// How long: seconds (`3600`) or a number with a unit (`"1h"`).
    #[serde(rename = "for")]
    pub length: serde_json::Value,
    /// Why, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who asks (shown in the channel); default `procjon`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// The answer to a request: an HTTP status and a JSON body.
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The JSON body.
    pub body: String,
}

impl Answer {
    fn ok() -> Answer {
        Answer {
            status: 200,
            body: "{\"ok\":true}\n".into(),
        }
    }

    /// An error answer, `{"error": "..."}`.
    pub fn error(status: u16, error: impl Into<String>) -> Answer {
        let body = serde_json::to_string(&ApiError {
            error: error.into(),
        })
        .unwrap_or_else(|_| "{}".into());
        Answer {
            status,
            body: body + "\n",
        }
    }

    /// The HTTP status for a refusal the registry gave.
    fn refused(err: FrameError) -> Answer {
        let status = match err.code {
            ErrorCode::NotRegistered => 404,
            ErrorCode::Forbidden => 403,
            ErrorCode::BadFrame | ErrorCode::BadService => 400,
            ErrorCode::Busy => 429,
            _ => 503,
        };
        Answer::error(status, err.message)
    }
}

/// Whether `path` is one of the silence endpoints.
pub fn is_silence_path(path: &str) -> bool {
    path == PATH || path.starts_with("/api/silences/")
}

/// Refuses a client that is not on this machine.
pub fn check_peer(peer: Option<SocketAddr>) -> Result<(), Answer> {
    if peer.is_some_and(|p| p.ip().is_loopback()) {
        Ok(())
    } else {
        Err(Answer::error(
            403,
            "silences can be changed only from the machine procjon runs on (a loopback address); agents use their silence frame",
        ))
    }
}

/// `DELETE /api/silences/<service>` (`service` already decoded).
pub fn unsilence(service: &str, registry: &Registry) -> Answer {
    if let Err(err) = validate_target(service) {
        return Answer::refused(err);
    }
    match registry.unsilence(service, None) {
        Ok(()) => Answer::ok(),
        Err(err) => Answer::refused(err),
    }
}

/// A request the endpoints don't take.
pub fn wrong_method() -> Answer {
    Answer::error(
        405,
        "use POST /api/silences with {\"service\",\"for\",\"reason\"}, or DELETE /api/silences/SERVICE",
    )
}

/// `POST /api/silences` with its `body`.
pub fn silence(body: &mut dyn Read, registry: &Registry) -> Answer {
    let mut text = String::new();
    if body.take(MAX_BODY).read_to_string(&mut text).is_err() {
        return Answer::error(400, "the body is not UTF-8 text");
    }
    let request: SilenceRequest = match serde_json::from_str(&text) {
        Ok(request) => request,
        Err(err) => {
            return Answer::error(
                400,
                format!(
                    "the body is not a silence: {err}; send {{\"service\":\"web-1\",\"for\":\"1h\",\"reason\":\"deploy\"}}"
                ),
            );
        }
    };
    let length = match &request.length {
        serde_json::Value::Number(n) => {
            n.as_f64().and_then(|s| Duration::try_from_secs_f64(s).ok())
        }
        serde_json::Value::String(s) => parse_duration(s),
        _ => None,
    };
    let Some(length) = length.filter(|d| !d.is_zero() && d.as_secs_f64() <= MAX_SILENCE_S) else {
        return Answer::error(
            400,
            format!(
                "for {}: give a length above 0 and at most 7 days, as seconds or with a unit (90, 30m, 1h, 2d)",
                request.length
            ),
        );
    };
    let checks = validate_target(&request.service)
        .and_then(|()| {
            request
                .reason
                .as_deref()
                .map_or(Ok(()), |r| validate_text("reason", r))
        })
        .and_then(|()| {
            request
                .by
                .as_deref()
                .map_or(Ok(()), |b| validate_text("by", b))
        });
    if let Err(err) = checks {
        return Answer::refused(err);
    }
    let by = request
        .by
        .as_deref()
        .filter(|b| !b.trim().is_empty())
        .unwrap_or(DEFAULT_BY);
    match registry.silence(
        &request.service,
        length,
        request.reason.as_deref(),
        None,
        by,
    ) {
        Ok(()) => Answer::ok(),
        Err(err) => Answer::refused(err),
    }
}
