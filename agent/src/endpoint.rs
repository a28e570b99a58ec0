//! [`Endpoint`]: one procjon daemon's address, and the list of them an
//! agent reports to (an HA pair, or more). Parsed and checked once, before
//! anything connects, by the runner and by `silence`; read afterwards by
//! the connection and the log lines of the thread that owns it.

use crate::error::AgentError;
use rustls::pki_types::ServerName;
use std::fmt;

/// The most procjon daemons one agent reports to: each gets a thread and a
/// connection of its own, and an agent is not a broadcaster.
pub const MAX_ENDPOINTS: usize = 8;

/// What the messages suggest after a bad `--endpoint`.
const EXAMPLE: &str = "give host:port, e.g. localhost:8080, or several separated by commas, \
                       e.g. a.example.com:8080,b.example.com:8080";

/// procjon's address: the `host:port` to resolve and the name its
/// certificate must be valid for.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// As given: what logs and messages show.
    text: String,
    /// The host, without an IPv6 address's brackets.
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) server_name: ServerName<'static>,
}

impl Endpoint {
    /// Parses `host:port`, `ip:port` or `[ipv6]:port`.
    pub(crate) fn parse(text: &str) -> Result<Endpoint, AgentError> {
        Endpoint::parse_entry(text).map_err(|reason| {
            bad(format!(
                "{text:?} {reason}; give host:port, e.g. localhost:8080"
            ))
        })
    }

    /// Parses and checks the list of endpoints, in order: one to
    /// [`MAX_ENDPOINTS`] entries, none empty, none listed twice (the same
    /// host, in any case, and port), each as [`Endpoint::parse`] takes it.
    /// Errors name `--endpoint` and the entry at fault.
    pub(crate) fn parse_list(entries: &[String]) -> Result<Vec<Endpoint>, AgentError> {
        let list = entries.join(",");
        if entries.is_empty() {
            return Err(bad(format!("no procjon given; {EXAMPLE}")));
        }
        if entries.len() > MAX_ENDPOINTS {
            return Err(bad(format!(
                "{list:?} lists {} procjon daemons; at most {MAX_ENDPOINTS} are allowed",
                entries.len()
            )));
        }
        if let [single] = entries {
            return Endpoint::parse(single).map(|endpoint| vec![endpoint]);
        }
        let mut endpoints: Vec<Endpoint> = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let n = i + 1;
            if entry.trim().is_empty() {
                return Err(bad(format!("entry {n} of {list:?} is empty; {EXAMPLE}")));
            }
            let endpoint = Endpoint::parse_entry(entry).map_err(|reason| {
                bad(format!(
                    "{entry:?} (entry {n} of {list:?}) {reason}; {EXAMPLE}"
                ))
            })?;
            if let Some(first) = endpoints.iter().position(|e| e.same_address(&endpoint)) {
                return Err(bad(format!(
                    "{entry:?} (entry {n} of {list:?}) is the same procjon as entry {}, {:?}; \
                     list each once",
                    first + 1,
                    endpoints[first].text
                )));
            }
            endpoints.push(endpoint);
        }
        Ok(endpoints)
    }

    /// Parses one entry; `Err` says what is wrong with it.
    fn parse_entry(text: &str) -> Result<Endpoint, &'static str> {
        if text.trim().is_empty() {
            return Err("is empty");
        }
        let (host, port) = text.rsplit_once(':').ok_or("has no port")?;
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or("has no usable port")?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() {
            return Err("has no host");
        }
        let server_name = ServerName::try_from(host.to_string())
            .map_err(|_| "has a host that is neither a DNS name nor an IP address")?;
        Ok(Endpoint {
            text: text.to_string(),
            host: host.to_string(),
            port,
            server_name,
        })
    }

    /// Whether `other` names the same host (DNS names ignore case) and port.
    /// Two names for one machine (`localhost`, `127.0.0.1`) are not caught:
    /// that would take a lookup, and nothing connects before the check.
    fn same_address(&self, other: &Endpoint) -> bool {
        self.port == other.port && self.host.eq_ignore_ascii_case(&other.host)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The entries of a comma-separated `--endpoint` (or
/// `PROCJONAGENT_ENDPOINT`), trimmed; empty ones are kept, for
/// [`Endpoint::parse_list`] to refuse by their place.
pub(crate) fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(|entry| entry.trim().to_string())
        .collect()
}

fn bad(reason: String) -> AgentError {
    AgentError::BadOption {
        option: "--endpoint",
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_endpoints() {
        let e = Endpoint::parse("localhost:8080").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("localhost", 8080));
        let e = Endpoint::parse("127.0.0.1:1").unwrap();
        assert!(matches!(e.server_name, ServerName::IpAddress(_)));
        let e = Endpoint::parse("[::1]:8080").unwrap();
        assert_eq!(e.host, "::1");
        assert!(matches!(e.server_name, ServerName::IpAddress(_)));
        for bad in [
            "localhost",
            "localhost:",
            ":8080",
            "localhost:0",
            "localhost:99999",
            "bad host:1",
        ] {
            let err = Endpoint::parse(bad).unwrap_err().to_string();
            assert!(err.starts_with("--endpoint: "), "{err}");
        }
    }

    fn list(text: &str) -> Result<Vec<Endpoint>, String> {
        Endpoint::parse_list(&split_list(text)).map_err(|err| err.to_string())
    }

    #[test]
    fn parses_lists_in_order() {
        let endpoints = list("a.example.com:8080, [::1]:9000 ,10.0.0.2:8080").unwrap();
        let shown: Vec<String> = endpoints.iter().map(|e| e.to_string()).collect();
        assert_eq!(shown, ["a.example.com:8080", "[::1]:9000", "10.0.0.2:8080"]);
        assert_eq!(list("localhost:8080").unwrap().len(), 1);
        // The same host on another port is another procjon.
        assert_eq!(list("h:1,h:2").unwrap().len(), 2);
        let eight = (1..=8).map(|p| format!("h:{p}")).collect::<Vec<_>>();
        assert_eq!(list(&eight.join(",")).unwrap().len(), MAX_ENDPOINTS);
    }

    #[test]
    fn refuses_bad_lists_naming_the_entry() {
        let nine = (1..=9)
            .map(|p| format!("h:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        for (text, expected) in [
            ("a:1,,b:2", "--endpoint: entry 2 of \"a:1,,b:2\" is empty; "),
            ("a:1,", "--endpoint: entry 2 of \"a:1,\" is empty; "),
            ("", "--endpoint: \"\" is empty; give host:port"),
            (
                "a:1,localhost",
                "--endpoint: \"localhost\" (entry 2 of \"a:1,localhost\") has no port; ",
            ),
            (
                "a:1,b:0",
                "--endpoint: \"b:0\" (entry 2 of \"a:1,b:0\") has no usable port; ",
            ),
            (
                "a:1,b:2,A:1",
                "--endpoint: \"A:1\" (entry 3 of \"a:1,b:2,A:1\") is the same procjon as entry \
                 1, \"a:1\"; list each once",
            ),
            (&nine, "lists 9 procjon daemons; at most 8 are allowed"),
        ] {
            let err = list(text).unwrap_err();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
        let none = Endpoint::parse_list(&[]).unwrap_err().to_string();
        assert!(none.starts_with("--endpoint: no procjon given; "), "{none}");
    }
}
