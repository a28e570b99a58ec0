//! URLs that are secrets: a Slack incoming webhook's URL is its password,
//! and a dead man's switch's ping URL is as good as one. They reach logs
//! and errors only through [`SecretUrl`]'s `Debug` and `Display`, which
//! show the host.

use std::fmt;

/// An `http://` or `https://` URL with a host. `Debug` and `Display` show
/// its host only.
#[derive(Clone, PartialEq)]
pub struct SecretUrl(String);

impl SecretUrl {
    /// Checks that `url` is an `http://` or `https://` URL with a host;
    /// the error says what is wrong (never the URL: it is a secret).
    pub fn parse(url: &str) -> Result<SecretUrl, &'static str> {
        let url = url.trim();
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or("it must start with https:// (or http://)")?;
        let parsed = SecretUrl(url.to_string());
        if rest.is_empty() || parsed.host().is_empty() {
            return Err("it has no host");
        }
        Ok(parsed)
    }

    /// The full URL, for the HTTP client only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The host (and port) part, safe to log.
    pub fn host(&self) -> &str {
        let rest = self.0.split_once("://").map_or("", |(_, rest)| rest);
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host)
    }

    /// The same URL with `segment` added to its path (before any query),
    /// e.g. a ping URL's `/fail`.
    pub fn join(&self, segment: &str) -> SecretUrl {
        let (base, query) = match self.0.split_once('?') {
            Some((base, query)) => (base, Some(query)),
            None => (self.0.as_str(), None),
        };
        let mut url = format!(
            "{}/{}",
            base.trim_end_matches('/'),
            segment.trim_start_matches('/')
        );
        if let Some(query) = query {
            url.push('?');
            url.push_str(query);
        }
        SecretUrl(url)
    }

    /// `message` (an HTTP client's error) with the URL replaced by its host.
    pub fn redact(&self, message: &str) -> String {
        message.replace(self.expose(), &self.to_string())
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretUrl({}/…)", self.host())
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/…", self.host())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_host_only() {
        let url = SecretUrl::parse("https://hooks.slack.com/services/T000/B000/XXXX").unwrap();
        assert_eq!(url.host(), "hooks.slack.com");
        assert_eq!(format!("{url:?}"), "SecretUrl(hooks.slack.com/…)");
        assert!(!format!("{url}").contains("XXXX"));
        let with_user = SecretUrl::parse("http://user:pw@127.0.0.1:99/x").unwrap();
        assert_eq!(with_user.host(), "127.0.0.1:99");
        assert!(SecretUrl::parse("ftp://x").is_err());
        assert!(SecretUrl::parse("https://").is_err());
        assert!(SecretUrl::parse("https:///path").is_err());
    }

    #[test]
    fn joins_a_path_segment_before_the_query() {
        let ping = SecretUrl::parse("https://hc-ping.com/abc-123").unwrap();
        assert_eq!(
            ping.join("fail").expose(),
            "https://hc-ping.com/abc-123/fail"
        );
        let slash = SecretUrl::parse("https://hc.example/ping/x/").unwrap();
        assert_eq!(
            slash.join("fail").expose(),
            "https://hc.example/ping/x/fail"
        );
        let query = SecretUrl::parse("http://kuma.example/api/push/T?status=up").unwrap();
        assert_eq!(
            query.join("fail").expose(),
            "http://kuma.example/api/push/T/fail?status=up"
        );
    }
}
