//! When an announcement was made, as its `at` field says. procjon writes
//! RFC 3339 UTC to the second (`2026-11-23T11:04:55Z`); such a value is held
//! as its seconds, without a string per announcement (with 100,000
//! services, one allocation each). Anything else a person wrote there is
//! kept as written: the field is for people and procjon never interprets it.

use crate::message::{parse_rfc3339, rfc3339};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// An announcement's time, written back exactly as it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timestamp {
    /// RFC 3339 UTC to the second, as Unix seconds.
    Seconds(u64),
    /// Any other text (empty when the field was absent).
    Text(Box<str>),
}

impl Timestamp {
    /// The current time.
    pub fn now() -> Timestamp {
        Timestamp::Seconds(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        )
    }

    /// Whether there is no time at all (the field was absent or empty).
    pub fn is_empty(&self) -> bool {
        matches!(self, Timestamp::Text(text) if text.is_empty())
    }
}

impl Default for Timestamp {
    fn default() -> Self {
        Timestamp::Text(Box::from(""))
    }
}

impl From<&str> for Timestamp {
    fn from(text: &str) -> Self {
        match parse_rfc3339(text) {
            // Only what formats back to the same text, so a file is
            // written back byte for byte.
            Some(secs) if rfc3339(secs) == text => Timestamp::Seconds(secs),
            _ => Timestamp::Text(Box::from(text)),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Timestamp::Seconds(secs) => f.write_str(&rfc3339(*secs)),
            Timestamp::Text(text) => f.write_str(text),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Timestamp::Seconds(secs) => serializer.serialize_str(&rfc3339(*secs)),
            Timestamp::Text(text) => serializer.serialize_str(text),
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Timestamp, E> {
                Ok(Timestamp::from(text))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_what_it_read() {
        for text in [
            "2026-11-23T11:04:55Z",
            "2026-11-23T11:04:55.5Z",
            "2026-11-23 11:04:55",
            "yesterday",
            "",
            "2026-02-30T00:00:00Z",
        ] {
            let at = Timestamp::from(text);
            assert_eq!(at.to_string(), text);
            let json = serde_json::to_string(&at).unwrap();
            assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), at);
        }
        assert_eq!(
            Timestamp::from("2026-11-23T11:04:55Z"),
            Timestamp::Seconds(1_795_431_895)
        );
        assert!(Timestamp::default().is_empty() && !Timestamp::now().is_empty());
    }
}
