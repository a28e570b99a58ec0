//! The systemd notification protocol, spoken without libsystemd: one
//! datagram per message to the socket named by `$NOTIFY_SOCKET` (a path, or
//! `@name` for an abstract socket), as sd_notify(3) describes. procjon says
//! `READY=1` once it serves, `STATUS=` with a one-line summary,
//! `WATCHDOG=1` while its threads make progress, and `STOPPING=1` when it
//! stops. Without `$NOTIFY_SOCKET` (not run by systemd with `Type=notify`)
//! nothing is sent. Used by the main thread and the watchdog thread.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// A connection to systemd's notification socket.
pub struct Systemd {
    socket: UnixDatagram,
    to: SocketAddr,
    /// The watchdog interval systemd asks for (`WatchdogSec=`), if it is
    /// meant for this process.
    watchdog: Option<Duration>,
}

impl Systemd {
    /// The notification socket named by the environment, if there is one.
    pub fn from_env() -> Option<Systemd> {
        let path = std::env::var_os("NOTIFY_SOCKET")?;
        let path = path.to_str()?.to_string();
        let to = match path.strip_prefix('@') {
            Some(name) => abstract_address(name)?,
            None => SocketAddr::from_pathname(&path).ok()?,
        };
        // Non-blocking: a systemd that stops reading must not stop procjon.
        let socket = match UnixDatagram::unbound().and_then(|s| s.set_nonblocking(true).map(|()| s))
        {
            Ok(socket) => socket,
            Err(err) => {
                log::warn!("systemd notifications off: cannot make a socket: {err}");
                return None;
            }
        };
        let watchdog = watchdog_interval(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
            std::process::id(),
        );
        Some(Systemd {
            socket,
            to,
            watchdog,
        })
    }

    /// How often systemd expects `WATCHDOG=1`, if it does.
    pub fn watchdog(&self) -> Option<Duration> {
        self.watchdog
    }

    /// Sends one notification (`READY=1`, `STATUS=…`, …). A failure is
    /// logged at debug level: systemd being gone must not stop procjon.
    pub fn notify(&self, message: &str) {
        if let Err(err) = self.socket.send_to_addr(message.as_bytes(), &self.to) {
            log::debug!("systemd notification {message:?}: {err}");
        }
    }
}

#[cfg(target_os = "linux")]
fn abstract_address(name: &str) -> Option<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name.as_bytes()).ok()
}

#[cfg(not(target_os = "linux"))]
fn abstract_address(_name: &str) -> Option<SocketAddr> {
    None
}

/// The watchdog interval from `WATCHDOG_USEC`, as sd_watchdog_enabled(3)
/// reads it: only when `WATCHDOG_PID` is unset or names this process.
fn watchdog_interval(usec: Option<&str>, pid: Option<&str>, me: u32) -> Option<Duration> {
    if let Some(pid) = pid
        && pid.trim().parse::<u32>().ok() != Some(me)
    {
        return None;
    }
    let usec: u64 = usec?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_is_for_this_process_only() {
        let ten = Some(Duration::from_secs(10));
        assert_eq!(watchdog_interval(Some("10000000"), None, 7), ten);
        assert_eq!(watchdog_interval(Some("10000000"), Some("7"), 7), ten);
        assert_eq!(watchdog_interval(Some("10000000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval(Some("soon"), None, 7), None);
        assert_eq!(watchdog_interval(None, Some("7"), 7), None);
    }
}
