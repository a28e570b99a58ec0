//! Wire protocol v1: the frames agents send, the replies procjon sends, and
//! their codec. Shared with the agent crate through the library so both ends
//! agree byte for byte; see `docs/protocol.md` for the reference.
//!
//! Decoding is pure (no I/O, no locks) and is called by connection threads.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest frame, in bytes, not counting the terminating `\n`.
pub const MAX_FRAME_LEN: usize = 64 * 1024;
/// Longest service id, in characters.
pub const MAX_SERVICE_LEN: usize = 128;
/// Most status names one service may register.
pub const MAX_STATUSES: usize = 256;
/// Longest timeout a service may register: 7 days, in seconds.
pub const MAX_TIMEOUT_S: f64 = 7.0 * 24.0 * 3600.0;
/// Longest detail of a ping, and reason of an unregister, in characters.
pub const MAX_DETAIL_CHARS: usize = 256;
/// Most performance data values one ping may carry.
pub const MAX_PERFDATA: usize = 32;
/// Most services one service may depend on.
pub const MAX_DEPENDS_ON: usize = 16;
/// Longest silence, and longest first reminder: 7 days, in seconds.
pub const MAX_SILENCE_S: f64 = MAX_TIMEOUT_S;
/// Most consecutive pings a status change may need to be confirmed.
pub const MAX_CONFIRM: u32 = 100;

/// A frame sent by an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Define (or redefine) a service.
    Register(Registration),
    /// Report that a service is alive with the given status index.
    Ping {
        /// The service id.
        service: String,
        /// Index into the registered status names.
        status: u64,
        /// What the status means now, for people (a check's first output
        /// line, `exit 3 after 12m`): at most 256 characters, no control
        /// characters. Absent: none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
        /// Performance data that came with the status (a Nagios plugin's).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        perfdata: Vec<PerfValue>,
    },
    /// Hold a service's notifications back for a while (maintenance):
    /// its events are recorded, not posted.
    Silence {
        /// The service id, or `*`: every service the caller's identity owns.
        service: String,
        /// For how many seconds; above 0 and at most 7 days.
        for_s: f64,
        /// Why, for people (`deploy`): at most 256 characters.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// End a silence now.
    Unsilence {
        /// The service id, or `*`.
        service: String,
    },
    /// Retire a service: procjon announces it and forgets it.
    Unregister {
        /// The service id.
        service: String,
        /// Why, for people (`finished`): at most 256 characters, no control
        /// characters.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

/// One value of a check's performance data, as the Nagios plugin
/// guidelines define it: `'label'=value[uom];[warn];[crit];[min];[max]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerfValue {
    /// What is measured, 1 to 64 characters.
    pub label: String,
    /// The measurement.
    pub value: f64,
    /// Its unit (`s`, `%`, `B`, `KB`, `MB`, `TB`, `c`, or none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uom: String,
    /// The warning range, as the plugin wrote it (e.g. `10:20`, `@5`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn: Option<String>,
    /// The critical range, as the plugin wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crit: Option<String>,
    /// The least possible value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// The largest possible value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

impl ClientFrame {
    /// A ping without detail.
    pub fn ping(service: impl Into<String>, status: u64) -> ClientFrame {
        ClientFrame::Ping {
            service: service.into(),
            status,
            detail: None,
            perfdata: Vec::new(),
        }
    }
}

/// A service definition as registered by an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    /// The service id, 1 to 128 characters from `[A-Za-z0-9._:@/-]`.
    pub service: String,
    /// Seconds without a ping after which the service is not available.
    pub timeout_s: f64,
    /// Human-readable status names, indexed by pings.
    pub statuses: Vec<String>,
    /// How its notifications are handled (absent fields: the daemon's
    /// defaults).
    #[serde(flatten)]
    pub policy: Policy,
}

/// A service's notification policy, as its register frame sets it. Every
/// field is optional: absent, the daemon's defaults apply.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Policy {
    /// Seconds the service may stay not available, or in a non-zero status,
    /// before the first reminder (then at doubling intervals); 0: never.
    /// Absent: `--remind-after`. Whole seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remind_s: Option<u64>,
    /// Consecutive pings that must report a status change (or availability
    /// after an outage) before it is announced, 1 to 100. Absent: 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm: Option<u32>,
    /// Ids of the services this one depends on (at most 16; unknown ids
    /// are allowed and count once they register). While one of them is
    /// not available, this service's own events are held.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
}

impl Policy {
    /// Whether every setting is the default.
    pub fn is_default(&self) -> bool {
        *self == Policy::default()
    }

    /// Checks the limits of each setting; `service` is the service it
    /// belongs to (it can't depend on itself).
    pub fn validate(&self, service: &str) -> Result<(), FrameError> {
        let bad = |message: String| Err(FrameError::new(ErrorCode::BadFrame, message));
        if let Some(remind) = self.remind_s
            && remind as f64 > MAX_SILENCE_S
        {
            return bad(format!(
                "remind_s {remind} is out of range; give 0 (never) to {MAX_SILENCE_S} (7 days)"
            ));
        }
        if let Some(confirm) = self.confirm
            && !(1..=MAX_CONFIRM).contains(&confirm)
        {
            return bad(format!(
                "confirm {confirm} is out of range; give 1 to {MAX_CONFIRM}"
            ));
        }
        if self.depends_on.len() > MAX_DEPENDS_ON {
            return bad(format!(
                "depends_on names {} services; at most {MAX_DEPENDS_ON} are allowed",
                self.depends_on.len()
            ));
        }
        for parent in &self.depends_on {
            validate_service(parent).map_err(|err| {
                FrameError::new(ErrorCode::BadFrame, format!("depends_on: {}", err.message))
            })?;
            if parent == service {
                return bad(format!("depends_on: {service} can't depend on itself"));
            }
        }
        Ok(())
    }
}

/// The reply to one client frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// The frame was accepted (for a register: it is on disk).
    Ok,
    /// The frame was refused; nothing changed.
    Error {
        /// Machine-readable reason.
        code: ErrorCode,
        /// Human-readable detail.
        message: String,
    },
}

/// Why a frame was refused. Later protocol revisions may add codes; agents
/// should treat an unknown code like `internal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// Not JSON, wrong or missing fields, or an unknown type.
    BadFrame,
    /// The service id is empty, too long or has a forbidden character.
    BadService,
    /// A ping for a service that was never registered (or was removed).
    NotRegistered,
    /// A ping whose status index is out of range.
    BadStatus,
    /// A line longer than [`MAX_FRAME_LEN`]; the connection is closed.
    TooLarge,
    /// procjon is at a limit; try again later.
    Busy,
    /// procjon failed on its side (e.g. the state file could not be written).
    Internal,
    /// The service belongs to another client certificate identity.
    Forbidden,
    /// Any code this version does not know (sent by a newer procjon).
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// Whether procjon would refuse the same frame again however often it is
    /// sent, so an agent should stop and tell its operator: `bad_frame`,
    /// `bad_service`, `too_large` and `forbidden`. The others (`busy`,
    /// `internal`, `not_registered`, `bad_status` and unknown codes) are
    /// worth another try after a pause or a fresh `register`.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ErrorCode::BadFrame
                | ErrorCode::BadService
                | ErrorCode::TooLarge
                | ErrorCode::Forbidden
        )
    }

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadFrame => "bad_frame",
            ErrorCode::BadService => "bad_service",
            ErrorCode::NotRegistered => "not_registered",
            ErrorCode::BadStatus => "bad_status",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::Busy => "busy",
            ErrorCode::Internal => "internal",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused frame: the code and message sent back to the agent.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameError {
    /// Machine-readable reason.
    pub code: ErrorCode,
    /// Human-readable detail.
    pub message: String,
}

impl FrameError {
    /// A refusal with the given code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        FrameError {
            code,
            message: message.into(),
        }
    }

    /// The reply frame carrying this error.
    pub fn to_reply(&self) -> ServerFrame {
        ServerFrame::Error {
            code: self.code,
            message: self.message.clone(),
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for FrameError {}

/// The fields any client frame may carry; validated into a [`ClientFrame`].
#[derive(Deserialize)]
struct RawFrame {
    #[serde(rename = "type")]
    kind: Option<String>,
    service: Option<String>,
    timeout_s: Option<f64>,
    statuses: Option<Vec<String>>,
    status: Option<u64>,
    detail: Option<String>,
    perfdata: Option<Vec<PerfValue>>,
    reason: Option<String>,
    for_s: Option<f64>,
    remind_s: Option<u64>,
    confirm: Option<u32>,
    depends_on: Option<Vec<String>>,
}

impl ClientFrame {
    /// Decodes and validates one line (without its `\n`).
    pub fn decode(line: &[u8]) -> Result<ClientFrame, FrameError> {
        match canonical_ping(line) {
            Some(ping) => Ok(ClientFrame::Ping {
                service: ping.service.to_string(),
                status: ping.status,
                detail: ping.detail.map(String::from),
                perfdata: Vec::new(),
            }),
            None => ClientFrame::decode_general(line),
        }
    }

    /// [`ClientFrame::decode`] through serde alone, for any frame: for a
    /// caller that tried [`canonical_ping`] already (the connection), and for
    /// the fuzz checks, which compare the two paths.
    pub fn decode_general(line: &[u8]) -> Result<ClientFrame, FrameError> {
        if line.len() > MAX_FRAME_LEN {
            return Err(FrameError::new(
                ErrorCode::TooLarge,
                format!(
                    "frame of {} bytes is over the {MAX_FRAME_LEN}-byte limit",
                    line.len()
                ),
            ));
        }
        let raw: RawFrame = serde_json::from_slice(line)
            .map_err(|e| FrameError::new(ErrorCode::BadFrame, format!("not a valid frame: {e}")))?;
        let kind = raw
            .kind
            .ok_or_else(|| FrameError::new(ErrorCode::BadFrame, "missing field `type`"))?;
        let service = raw
            .service
            .ok_or_else(|| FrameError::new(ErrorCode::BadFrame, "missing field `service`"))?;
        match kind.as_str() {
            "register" => {
                let timeout_s = raw.timeout_s.ok_or_else(|| {
                    FrameError::new(ErrorCode::BadFrame, "missing field `timeout_s`")
                })?;
                let statuses = raw.statuses.ok_or_else(|| {
                    FrameError::new(ErrorCode::BadFrame, "missing field `statuses`")
                })?;
                let registration = Registration {
                    service,
                    timeout_s,
                    statuses,
                    policy: Policy {
                        remind_s: raw.remind_s,
                        confirm: raw.confirm,
                        depends_on: raw.depends_on.unwrap_or_default(),
                    },
                };
                registration.validate()?;
                Ok(ClientFrame::Register(registration))
            }
            "ping" => {
                validate_service(&service)?;
                let status = raw.status.ok_or_else(|| {
                    FrameError::new(ErrorCode::BadFrame, "missing field `status`")
                })?;
                if let Some(detail) = &raw.detail {
                    validate_text("detail", detail)?;
                }
                let perfdata = raw.perfdata.unwrap_or_default();
                validate_perfdata(&perfdata)?;
                Ok(ClientFrame::Ping {
                    service,
                    status,
                    detail: raw.detail,
                    perfdata,
                })
            }
            "silence" => {
                validate_target(&service)?;
                let for_s = raw
                    .for_s
                    .ok_or_else(|| FrameError::new(ErrorCode::BadFrame, "missing field `for_s`"))?;
                if !(for_s > 0.0 && for_s <= MAX_SILENCE_S) {
                    return Err(FrameError::new(
                        ErrorCode::BadFrame,
                        format!(
                            "for_s {for_s} is out of range; a silence lasts above 0 and at most {MAX_SILENCE_S} seconds (7 days)"
                        ),
                    ));
                }
                if let Some(reason) = &raw.reason {
                    validate_text("reason", reason)?;
                }
                Ok(ClientFrame::Silence {
                    service,
                    for_s,
                    reason: raw.reason,
                })
            }
            "unsilence" => {
                validate_target(&service)?;
                Ok(ClientFrame::Unsilence { service })
            }
            "unregister" => {
                validate_service(&service)?;
                if let Some(reason) = &raw.reason {
                    validate_text("reason", reason)?;
                }
                Ok(ClientFrame::Unregister {
                    service,
                    reason: raw.reason,
                })
            }
            other => Err(FrameError::new(
                ErrorCode::BadFrame,
                format!(
                    "unknown frame type {other:?}; expected \"register\", \"ping\", \"silence\", \"unsilence\" or \"unregister\""
                ),
            )),
        }
    }

    /// Encodes the frame as one line ending in `\n`.
    pub fn encode(&self) -> Vec<u8> {
        encode_line(self)
    }
}

impl ServerFrame {
    /// Encodes the reply as one line ending in `\n`.
    pub fn encode(&self) -> Vec<u8> {
        encode_line(self)
    }

    /// Decodes one reply line (without its `\n`).
    pub fn decode(line: &[u8]) -> Result<ServerFrame, FrameError> {
        serde_json::from_slice(line)
            .map_err(|e| FrameError::new(ErrorCode::BadFrame, format!("not a valid reply: {e}")))
    }
}

/// A ping read by [`canonical_ping`], borrowing from the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CanonicalPing<'a> {
    /// The service id.
    pub service: &'a str,
    /// The status index.
    pub status: u64,
    /// The detail, if the ping has one.
    pub detail: Option<&'a str>,
}

/// Reads a ping written exactly as [`ClientFrame::encode`] writes it,
/// `{"type":"ping","service":"ID","status":N}` or with
/// `,"detail":"TEXT"` before the `}`, without serde and without
/// allocating: the id and detail are borrowed from the line. Pings are
/// nearly every frame procjon reads, and serde's general path (field
/// matching, an owned string per field) costs several times more. Anything
/// else (other field order, spaces, escapes, a number, id or detail the
/// general path would refuse) is `None` and goes the general way, so the
/// result is always the same as [`ClientFrame::decode`]'s.
pub fn canonical_ping(line: &[u8]) -> Option<CanonicalPing<'_>> {
    let rest = line.strip_prefix(br#"{"type":"ping","service":""#)?;
    let (id, rest) = rest.split_at(find_byte(rest, b'"')?);
    let rest = rest.strip_prefix(br#"","status":"#)?;
    let end = rest
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(rest.len());
    let (digits, rest) = rest.split_at(end);
    // At most 19 digits (always fits a u64), no leading zero (not JSON).
    if digits.is_empty() || digits.len() > 19 || (digits.len() > 1 && digits[0] == b'0') {
        return None;
    }
    let status = digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    let detail = match rest {
        b"}" => None,
        _ => Some(plain_detail(
            rest.strip_prefix(br#","detail":""#)?
                .strip_suffix(br#""}"#)?,
        )?),
    };
    // Service characters are plain ASCII: no escape can hide in a valid id,
    // and a valid id is valid UTF-8.
    if id.is_empty() || id.len() > MAX_SERVICE_LEN || !id.iter().all(|&b| is_service_char(b.into()))
    {
        return None;
    }
    let service = std::str::from_utf8(id).ok()?;
    Some(CanonicalPing {
        service,
        status,
        detail,
    })
}

/// A detail as the fast path takes it: valid, and with nothing JSON would
/// escape (no quote, no backslash, no control character).
fn plain_detail(bytes: &[u8]) -> Option<&str> {
    if bytes.contains(&b'"') || bytes.contains(&b'\\') {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?;
    validate_text("detail", text).ok()?;
    Some(text)
}

/// The index of the first `byte` in `haystack`, eight bytes at a time.
/// Finding line ends is a large part of a connection thread's own work.
pub fn find_byte(haystack: &[u8], byte: u8) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let pattern = ONES * u64::from(byte);
    let (words, rest) = haystack.as_chunks::<8>();
    for (i, word) in words.iter().enumerate() {
        // Bytes equal to `byte` become zero; the lowest flagged byte is the
        // first zero (a flag above a zero byte may be false, never below).
        let x = u64::from_le_bytes(*word) ^ pattern;
        let zeros = x.wrapping_sub(ONES) & !x & HIGHS;
        if zeros != 0 {
            return Some(i * 8 + zeros.trailing_zeros() as usize / 8);
        }
    }
    let start = words.len() * 8;
    rest.iter().position(|&b| b == byte).map(|i| start + i)
}

/// The bytes of an `ok` reply, including its newline.
pub const OK_LINE: &[u8] = b"{\"type\":\"ok\"}\n";

fn encode_line<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing these plain structs can't fail: no maps with non-string
    // keys, no non-finite floats reach here (they are refused on decode).
    let mut line = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    line.push(b'\n');
    line
}

impl Registration {
    /// A registration with the default policy.
    pub fn new(service: impl Into<String>, timeout_s: f64, statuses: Vec<String>) -> Registration {
        Registration {
            service: service.into(),
            timeout_s,
            statuses,
            policy: Policy::default(),
        }
    }

    /// Checks the limits of protocol v1; the error says which field is wrong.
    pub fn validate(&self) -> Result<(), FrameError> {
        validate_definition(&self.service, self.timeout_s, &self.statuses)?;
        self.policy.validate(&self.service)
    }

    /// The timeout as a [`std::time::Duration`].
    pub fn timeout(&self) -> std::time::Duration {
        timeout(self.timeout_s)
    }
}

/// A timeout in seconds as a [`std::time::Duration`], clamped to the
/// protocol's range (validation refuses anything outside it first).
pub fn timeout(timeout_s: f64) -> std::time::Duration {
    std::time::Duration::from_secs_f64(timeout_s.clamp(0.0, MAX_TIMEOUT_S))
}

/// Checks a service definition (a register frame, or a `register` line of
/// the state file) against the limits of protocol v1.
pub fn validate_definition(
    service: &str,
    timeout_s: f64,
    statuses: &[String],
) -> Result<(), FrameError> {
    validate_service(service)?;
    if !(timeout_s > 0.0 && timeout_s <= MAX_TIMEOUT_S) {
        return Err(FrameError::new(
            ErrorCode::BadFrame,
            format!(
                "timeout_s {timeout_s} is out of range; it must be above 0 and at most {MAX_TIMEOUT_S} (7 days)"
            ),
        ));
    }
    if statuses.is_empty() || statuses.len() > MAX_STATUSES {
        return Err(FrameError::new(
            ErrorCode::BadFrame,
            format!(
                "statuses has {} names; it must have 1 to {MAX_STATUSES}",
                statuses.len()
            ),
        ));
    }
    for (i, name) in statuses.iter().enumerate() {
        if name.is_empty() {
            return Err(FrameError::new(
                ErrorCode::BadFrame,
                format!("status name {i} is empty"),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(FrameError::new(
                ErrorCode::BadFrame,
                format!("status name {i} contains a control character (e.g. a newline)"),
            ));
        }
    }
    Ok(())
}

/// Checks the service of a silence frame: an id, or `*` (every service of
/// the caller's identity).
pub fn validate_target(service: &str) -> Result<(), FrameError> {
    if service == "*" {
        Ok(())
    } else {
        validate_service(service)
    }
}

/// Checks a ping's detail or an unregister's reason (`field` names it):
/// at most [`MAX_DETAIL_CHARS`] characters, no control characters (it
/// becomes part of a one-line message).
pub fn validate_text(field: &str, text: &str) -> Result<(), FrameError> {
    let chars = text.chars().count();
    if chars > MAX_DETAIL_CHARS {
        return Err(FrameError::new(
            ErrorCode::BadFrame,
            format!("{field} has {chars} characters; at most {MAX_DETAIL_CHARS} are allowed"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(FrameError::new(
            ErrorCode::BadFrame,
            format!("{field} contains a control character (e.g. a newline)"),
        ));
    }
    Ok(())
}

/// Checks a ping's performance data against the protocol's limits.
pub fn validate_perfdata(perfdata: &[PerfValue]) -> Result<(), FrameError> {
    let bad = |message: String| Err(FrameError::new(ErrorCode::BadFrame, message));
    if perfdata.len() > MAX_PERFDATA {
        return bad(format!(
            "perfdata has {} values; at most {MAX_PERFDATA} are allowed",
            perfdata.len()
        ));
    }
    for (i, value) in perfdata.iter().enumerate() {
        let short = |text: &str, most: usize| {
            text.chars().count() <= most && !text.chars().any(char::is_control)
        };
        if value.label.is_empty() || !short(&value.label, 64) {
            return bad(format!(
                "perfdata value {i}: label must have 1 to 64 characters, no control characters"
            ));
        }
        if !short(&value.uom, 8) {
            return bad(format!(
                "perfdata value {i}: uom must have at most 8 characters, no control characters"
            ));
        }
        let finite = [Some(value.value), value.min, value.max]
            .into_iter()
            .flatten()
            .all(f64::is_finite);
        if !finite {
            return bad(format!(
                "perfdata value {i}: value, min and max must be finite numbers"
            ));
        }
        for range in [&value.warn, &value.crit].into_iter().flatten() {
            if !short(range, 32) {
                return bad(format!(
                    "perfdata value {i}: warn and crit must have at most 32 characters, no control characters"
                ));
            }
        }
    }
    Ok(())
}

/// Checks that a service id has 1 to 128 characters from `[A-Za-z0-9._:@/-]`.
pub fn validate_service(service: &str) -> Result<(), FrameError> {
    if service.is_empty() {
        return Err(FrameError::new(
            ErrorCode::BadService,
            "service id is empty",
        ));
    }
    if let Some(bad) = service.chars().find(|c| !is_service_char(*c)) {
        return Err(FrameError::new(
            ErrorCode::BadService,
            format!("service id has the character {bad:?}; allowed are A-Z a-z 0-9 . _ : @ / -"),
        ));
    }
    if service.len() > MAX_SERVICE_LEN {
        return Err(FrameError::new(
            ErrorCode::BadService,
            format!(
                "service id has {} characters; at most {MAX_SERVICE_LEN} are allowed",
                service.len()
            ),
        ));
    }
    Ok(())
}

fn is_service_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '@' | '/' | '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(line: &str) -> ErrorCode {
        ClientFrame::decode(line.as_bytes()).unwrap_err().code
    }

    #[test]
    fn find_byte_finds_the_first_one() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for len in 0..100 {
            for _ in 0..50 {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        [b'\n', b'a', 0, 0x0b, 0x8a, 0xff][(seed % 6) as usize]
                    })
                    .collect();
                for byte in [b'\n', 0, 0xff, b'"'] {
                    let expected = bytes.iter().position(|&b| b == byte);
                    assert_eq!(find_byte(&bytes, byte), expected, "{byte} in {bytes:?}");
                }
            }
        }
    }

    #[test]
    fn the_ping_fast_path_reads_what_serde_reads() {
        let long = "a".repeat(MAX_SERVICE_LEN);
        let too_long = "a".repeat(MAX_SERVICE_LEN + 1);
        let lines = [
            r#"{"type":"ping","service":"web-1","status":0}"#.to_string(),
            r#"{"type":"ping","service":"a.b_c:d@e/f-9","status":255}"#.to_string(),
            format!(r#"{{"type":"ping","service":"{long}","status":1}}"#),
            format!(r#"{{"type":"ping","service":"{too_long}","status":1}}"#),
            r#"{"type":"ping","service":"web-1","status":18446744073709551615}"#.to_string(),
            r#"{"type":"ping","service":"web-1","status":18446744073709551616}"#.to_string(),
            r#"{"type":"ping","service":"web-1","status":9999999999999999999}"#.to_string(),
            r#"{"type":"ping","service":"web-1","status":01}"#.to_string(),
            r#"{"type":"ping","service":"web-1","status":-1}"#.to_string(),
            r#"{"type":"ping","service":"web-1","status":1.0}"#.to_string(),
            r#"{"type":"ping","service":"web-1","status":}"#.to_string(),
            r#"{"type":"ping","service":"","status":0}"#.to_string(),
            r#"{"type":"ping","service":"we b","status":0}"#.to_string(),
            r#"{"type":"ping","service":"w\u0065b","status":0}"#.to_string(),
            r#"{"type":"ping","service":"w\"b","status":0}"#.to_string(),
            r#"{"type":"ping","service":"wé","status":0}"#.to_string(),
            r#"{"type":"ping","service":"web-1","status":0} "#.to_string(),
            r#"{"type":"ping","service":"web-1","status":0}}"#.to_string(),
            r#"{"type":"ping","service":"web-1","status":0,"x":1}"#.to_string(),
            r#"{"service":"web-1","type":"ping","status":0}"#.to_string(),
            r#"{"type":"ping","service":"web-1"}"#.to_string(),
            r#"{"type":"ping","service":"web-1","status":0"#.to_string(),
            r#"{"type":"ping","service":"web-1","status":2,"detail":"DISK WARNING - free space: / 9%"}"#.to_string(),
            r#"{"type":"ping","service":"web-1","status":2,"detail":""}"#.to_string(),
            r#"{"type":"ping","service":"web-1","status":2,"detail":"é ✓"}"#.to_string(),
            r#"{"type":"ping","service":"web-1","status":2,"detail":"a \"quote\""}"#.to_string(),
            r#"{"type":"ping","service":"web-1","status":2,"detail":"tab\there"}"#.to_string(),
            format!(r#"{{"type":"ping","service":"web-1","status":2,"detail":"{}"}}"#, "x".repeat(MAX_DETAIL_CHARS)),
            format!(r#"{{"type":"ping","service":"web-1","status":2,"detail":"{}"}}"#, "x".repeat(MAX_DETAIL_CHARS + 1)),
            format!(r#"{{"type":"ping","service":"web-1","status":2,"detail":"{}"}}"#, "é".repeat(MAX_DETAIL_CHARS)),
            "{\"type\":\"ping\",\"service\":\"web-1\",\"status\":2,\"detail\":\"raw\u{1}control\"}".to_string(),
            r#"{"type":"ping","service":"web-1","status":2,"detail":null}"#.to_string(),
            r#"{"type":"ping","service":"web-1","status":2,"detail":"x","perfdata":[]}"#.to_string(),
            r#"{"type":"ping","service":"web-1","status":2,"detail":"x"} "#.to_string(),
        ];
        for line in &lines {
            assert_eq!(
                ClientFrame::decode(line.as_bytes()),
                ClientFrame::decode_general(line.as_bytes()),
                "{line}"
            );
        }
        assert!(canonical_ping(lines[0].as_bytes()).is_some());
        let encoded = ClientFrame::ping("db-2", 3).encode();
        assert_eq!(
            canonical_ping(&encoded[..encoded.len() - 1]),
            Some(CanonicalPing {
                service: "db-2",
                status: 3,
                detail: None
            })
        );
        let with_detail = ClientFrame::Ping {
            service: "db-2".into(),
            status: 1,
            detail: Some("exit 3 after 12m".into()),
            perfdata: Vec::new(),
        }
        .encode();
        assert_eq!(
            canonical_ping(&with_detail[..with_detail.len() - 1]),
            Some(CanonicalPing {
                service: "db-2",
                status: 1,
                detail: Some("exit 3 after 12m")
            })
        );
    }

    #[test]
    fn decodes_register_and_ping() {
        let frame = ClientFrame::decode(
            br#"{"type":"register","service":"web-1","timeout_s":0.5,"statuses":["ok","degraded"],"extra":1}"#,
        )
        .unwrap();
        assert_eq!(
            frame,
            ClientFrame::Register(Registration {
                service: "web-1".into(),
                timeout_s: 0.5,
                statuses: vec!["ok".into(), "degraded".into()],
                policy: Default::default(),
            })
        );
        let ping = ClientFrame::decode(br#"{"type":"ping","service":"a@b:c/d_e.f-g","status":3}"#)
            .unwrap();
        assert_eq!(ping, ClientFrame::ping("a@b:c/d_e.f-g", 3));
        let unregister =
            ClientFrame::decode(br#"{"type":"unregister","service":"web-1","reason":"finished"}"#)
                .unwrap();
        assert_eq!(
            unregister,
            ClientFrame::Unregister {
                service: "web-1".into(),
                reason: Some("finished".into())
            }
        );
        let perf = ClientFrame::decode(
            br#"{"type":"ping","service":"d","status":1,"detail":"DISK WARNING","perfdata":[{"label":"/","value":9.5,"uom":"%","warn":"10:","crit":"5:","min":0,"max":100}]}"#,
        )
        .unwrap();
        assert!(
            matches!(&perf, ClientFrame::Ping { perfdata, .. } if perfdata.len() == 1 && perfdata[0].uom == "%"),
            "{perf:?}"
        );
    }

    #[test]
    fn round_trips_through_encode() {
        let frames = [
            ClientFrame::ping("x", 1),
            ClientFrame::Ping {
                service: "x".into(),
                status: 1,
                detail: Some("a \"detail\"".into()),
                perfdata: vec![PerfValue {
                    label: "time".into(),
                    value: 0.25,
                    uom: "s".into(),
                    warn: Some("1".into()),
                    crit: None,
                    min: Some(0.0),
                    max: None,
                }],
            },
            ClientFrame::Unregister {
                service: "x".into(),
                reason: None,
            },
            ClientFrame::Register(Registration {
                service: "y".into(),
                timeout_s: 10.0,
                statuses: vec!["ok".into()],
                policy: Default::default(),
            }),
        ];
        for frame in frames {
            let line = frame.encode();
            assert_eq!(line.last(), Some(&b'\n'));
            assert_eq!(ClientFrame::decode(&line[..line.len() - 1]).unwrap(), frame);
        }
        assert_eq!(ServerFrame::Ok.encode(), OK_LINE);
        let err = ServerFrame::Error {
            code: ErrorCode::BadStatus,
            message: "m".into(),
        };
        let line = err.encode();
        assert_eq!(
            std::str::from_utf8(&line).unwrap(),
            "{\"type\":\"error\",\"code\":\"bad_status\",\"message\":\"m\"}\n"
        );
        assert_eq!(ServerFrame::decode(&line[..line.len() - 1]).unwrap(), err);
    }

    #[test]
    fn unknown_reply_code_decodes_as_unknown() {
        let reply =
            ServerFrame::decode(br#"{"type":"error","code":"from_the_future","message":"no"}"#)
                .unwrap();
        assert!(matches!(
            reply,
            ServerFrame::Error {
                code: ErrorCode::Unknown,
                ..
            }
        ));
    }

    #[test]
    fn refuses_bad_frames_with_their_codes() {
        assert_eq!(code("garbage"), ErrorCode::BadFrame);
        assert_eq!(code("{}"), ErrorCode::BadFrame);
        assert_eq!(
            code(r#"{"type":"hello","service":"x"}"#),
            ErrorCode::BadFrame
        );
        assert_eq!(
            code(r#"{"type":"ping","service":"x","status":-1}"#),
            ErrorCode::BadFrame
        );
        assert_eq!(
            code(r#"{"type":"ping","service":"x","status":"0"}"#),
            ErrorCode::BadFrame
        );
        assert_eq!(
            code(r#"{"type":"ping","service":"x"}"#),
            ErrorCode::BadFrame
        );
        assert_eq!(
            code(r#"{"type":"ping","service":"","status":0}"#),
            ErrorCode::BadService
        );
        assert_eq!(
            code(r#"{"type":"ping","service":"a b","status":0}"#),
            ErrorCode::BadService
        );
        assert_eq!(
            code(r#"{"type":"ping","service":"wеb","status":0}"#),
            ErrorCode::BadService
        );
        let long = "a".repeat(129);
        assert_eq!(
            code(&format!(
                r#"{{"type":"ping","service":"{long}","status":0}}"#
            )),
            ErrorCode::BadService
        );
        let ok = "a".repeat(128);
        assert!(
            ClientFrame::decode(
                format!(r#"{{"type":"ping","service":"{ok}","status":0}}"#).as_bytes()
            )
            .is_ok()
        );
        for bad in [
            r#"{"type":"register","service":"x","timeout_s":0,"statuses":["ok"]}"#,
            r#"{"type":"register","service":"x","timeout_s":-1,"statuses":["ok"]}"#,
            r#"{"type":"register","service":"x","timeout_s":604801,"statuses":["ok"]}"#,
            r#"{"type":"register","service":"x","timeout_s":1e400,"statuses":["ok"]}"#,
            r#"{"type":"register","service":"x","timeout_s":10,"statuses":[]}"#,
            r#"{"type":"register","service":"x","timeout_s":10,"statuses":["ok",""]}"#,
            r#"{"type":"register","service":"x","timeout_s":10,"statuses":["a\nb"]}"#,
            r#"{"type":"register","service":"x","timeout_s":"10","statuses":["ok"]}"#,
            r#"{"type":"ping","service":"x","status":0,"detail":"a\nb"}"#,
            r#"{"type":"ping","service":"x","status":0,"detail":5}"#,
            r#"{"type":"ping","service":"x","status":0,"perfdata":[{"label":"","value":1}]}"#,
            r#"{"type":"ping","service":"x","status":0,"perfdata":[{"label":"a"}]}"#,
            r#"{"type":"ping","service":"x","status":0,"perfdata":[{"label":"a","value":1,"uom":"parsecs/s"}]}"#,
            r#"{"type":"unregister","service":"x","reason":"a\rb"}"#,
            r#"{"type":"unregister","service":"x","reason":7}"#,
        ] {
            assert_eq!(code(bad), ErrorCode::BadFrame, "{bad}");
        }
        let over = format!(
            r#"{{"type":"ping","service":"x","status":0,"detail":"{}"}}"#,
            "d".repeat(MAX_DETAIL_CHARS + 1)
        );
        let err = ClientFrame::decode(over.as_bytes()).unwrap_err();
        assert_eq!(err.code, ErrorCode::BadFrame);
        assert!(err.message.contains("detail has 257 characters"), "{err}");
        assert_eq!(
            code(r#"{"type":"unregister","service":"a b"}"#),
            ErrorCode::BadService
        );
        let many: Vec<String> = (0..257).map(|i| format!("s{i}")).collect();
        let line =
            serde_json::json!({"type":"register","service":"x","timeout_s":1,"statuses":many})
                .to_string();
        assert_eq!(code(&line), ErrorCode::BadFrame);
        assert_eq!(code(&"x".repeat(MAX_FRAME_LEN + 1)), ErrorCode::TooLarge);
        assert_eq!(code("\u{0}\u{ff}"), ErrorCode::BadFrame);
        let nested = "[".repeat(10_000);
        assert_eq!(code(&nested), ErrorCode::BadFrame);
    }
}
