//! Nagios plugin performance data, parsed into [`PerfValue`]s for the
//! `exec` agent (called on the check thread). The format is the plugin
//! guidelines' (<https://nagios-plugins.org/doc/guidelines.html#AEN200>):
//! space-separated `'label'=value[UOM];[warn];[crit];[min];[max]`, where the
//! quotes are needed only for a label with spaces and `''` in a quoted label
//! is one quote. Plugins get it wrong often enough that a bad value is
//! skipped, with the reason, and never fails the check.

use procjon::PerfValue;
use std::fmt;

/// One value that could not be read, and why.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BadValue {
    /// The value as the plugin wrote it.
    pub(crate) text: String,
    /// What is wrong with it.
    pub(crate) reason: String,
}

impl fmt::Display for BadValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.text, self.reason)
    }
}

/// Every value in `text` (the part of a plugin's output after `|`), in
/// order, each read or refused on its own.
pub(crate) fn parse(text: &str) -> Vec<Result<PerfValue, BadValue>> {
    let mut values = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let end = item_end(rest);
        let (item, after) = rest.split_at(end);
        values.push(value(item).map_err(|reason| BadValue {
            text: item.to_string(),
            reason,
        }));
        rest = after.trim_start();
    }
    values
}

/// Where the item at the start of `text` ends: at the first whitespace
/// after its label, which may be quoted and hold spaces. An unterminated
/// quote runs to the end.
fn item_end(text: &str) -> usize {
    let mut from = 0;
    if let Some(quoted) = text.strip_prefix('\'') {
        match closing_quote(quoted) {
            Some(at) => from = 1 + at + 1,
            None => return text.len(),
        }
    }
    text[from..]
        .find(char::is_whitespace)
        .map_or(text.len(), |at| from + at)
}

/// The index of the quote that closes a label in `quoted` (which follows
/// the opening quote), skipping `''` pairs.
fn closing_quote(quoted: &str) -> Option<usize> {
    let bytes = quoted.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\'' {
            if bytes.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return Some(i);
        }
        i += 1;
    }
    None
}

/// One `label=value[UOM];warn;crit;min;max` item.
fn value(item: &str) -> Result<PerfValue, String> {
    let (label, data) = match item.strip_prefix('\'') {
        Some(quoted) => {
            let close = closing_quote(quoted).ok_or("the label's quote is not closed")?;
            let data = quoted[close + 1..]
                .strip_prefix('=')
                .ok_or("no '=' after the quoted label")?;
            (quoted[..close].replace("''", "'"), data)
        }
        None => {
            let (label, data) = item.split_once('=').ok_or("no '=' after the label")?;
            (label.to_string(), data)
        }
    };
    if label.is_empty() {
        return Err("the label is empty".into());
    }
    let fields: Vec<&str> = data.split(';').collect();
    if fields.len() > 5 {
        return Err(format!(
            "{} fields; at most 5 (value;warn;crit;min;max)",
            fields.len()
        ));
    }
    let field = |i: usize| fields.get(i).copied().filter(|f| !f.is_empty());
    let Some(first) = field(0) else {
        return Err("no value".into());
    };
    if first == "U" {
        return Err("the value is U: the plugin could not measure it".into());
    }
    let (value, uom) = number_prefix(first).ok_or("the value is not a number")?;
    if !uom
        .chars()
        .all(|c| c.is_alphabetic() || c == '%' || c == '/')
    {
        return Err(format!("{uom:?} is not a unit"));
    }
    let range = |i: usize, name: &str| match field(i) {
        Some(text) if !is_range(text) => Err(format!("{name} {text:?} is not a range")),
        other => Ok(other.map(String::from)),
    };
    let bound = |i: usize, name: &str| match field(i) {
        None => Ok(None),
        // Some plugins repeat the unit on min and max.
        Some(text) => match number_prefix(text) {
            Some((n, rest)) if rest.is_empty() || rest == uom => Ok(Some(n)),
            _ => Err(format!("{name} {text:?} is not a number")),
        },
    };
    let perf = PerfValue {
        label,
        value,
        uom: uom.to_string(),
        warn: range(1, "warn")?,
        crit: range(2, "crit")?,
        min: bound(3, "min")?,
        max: bound(4, "max")?,
    };
    // procjon's own limits (label length, unit length...), so that the
    // reason is logged here rather than the value dropped silently later.
    procjon::frame::validate_perfdata(std::slice::from_ref(&perf)).map_err(|err| err.message)?;
    Ok(perf)
}

/// The number at the start of `text` (`-12`, `0.5`, `.5`, `1e-3`) and what
/// follows it; `None` when there is none or it is not finite.
fn number_prefix(text: &str) -> Option<(f64, &str)> {
    let bytes = text.as_bytes();
    let mut end = usize::from(matches!(bytes.first(), Some(b'-' | b'+')));
    let digits_from = end;
    while end < bytes.len() && (bytes[end].is_ascii_digit() || bytes[end] == b'.') {
        end += 1;
    }
    if !bytes[digits_from..end].iter().any(u8::is_ascii_digit) {
        return None;
    }
    // An exponent only when digits follow it: `5e` is 5 with the unit `e`.
    if matches!(bytes.get(end), Some(b'e' | b'E')) {
        let mut exp = end + 1;
        if matches!(bytes.get(exp), Some(b'-' | b'+')) {
            exp += 1;
        }
        let exp_digits = bytes[exp..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if exp_digits > 0 {
            end = exp + exp_digits;
        }
    }
    let number: f64 = text[..end].parse().ok()?;
    number.is_finite().then_some((number, &text[end..]))
}

/// Whether `text` is a threshold range: `[@][start:][end]`, where start is
/// a number or `~` (minus infinity) and end a number.
fn is_range(text: &str) -> bool {
    let text = text.strip_prefix('@').unwrap_or(text);
    let is_number = |s: &str| matches!(number_prefix(s), Some((_, "")));
    match text.split_once(':') {
        Some((start, end)) => {
            (start.is_empty() || start == "~" || is_number(start))
                && (end.is_empty() || is_number(end))
                && !(start.is_empty() && end.is_empty())
        }
        None => is_number(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perf(label: &str, value: f64, uom: &str) -> PerfValue {
        PerfValue {
            label: label.into(),
            value,
            uom: uom.into(),
            warn: None,
            crit: None,
            min: None,
            max: None,
        }
    }

    fn good(text: &str) -> Vec<PerfValue> {
        parse(text)
            .into_iter()
            .map(|v| v.unwrap_or_else(|bad| panic!("{text:?}: {bad}")))
            .collect()
    }

    /// The reasons of the values refused in `text`, and the labels read.
    fn sorted(text: &str) -> (Vec<String>, Vec<String>) {
        let (mut labels, mut bad) = (Vec::new(), Vec::new());
        for value in parse(text) {
            match value {
                Ok(v) => labels.push(v.label),
                Err(b) => bad.push(b.text),
            }
        }
        (labels, bad)
    }

    #[test]
    fn reads_the_guidelines_example() {
        let values = good("/=2643MB;5948;5958;0;5968 'my disk'=12%;;;;");
        assert_eq!(
            values,
            vec![
                PerfValue {
                    warn: Some("5948".into()),
                    crit: Some("5958".into()),
                    min: Some(0.0),
                    max: Some(5968.0),
                    ..perf("/", 2643.0, "MB")
                },
                perf("my disk", 12.0, "%"),
            ]
        );
    }

    #[test]
    fn quoted_labels_keep_spaces_and_escaped_quotes() {
        let values = good("'a b  c'=1 'it''s'=2 ''''=3 'x=y'=4");
        let labels: Vec<&str> = values.iter().map(|v| v.label.as_str()).collect();
        assert_eq!(labels, ["a b  c", "it's", "'", "x=y"]);
        assert_eq!(values[3].value, 4.0);
    }

    #[test]
    fn missing_fields_are_none() {
        assert_eq!(good("load1=0.5"), vec![perf("load1", 0.5, "")]);
        assert_eq!(good("a=1;;"), vec![perf("a", 1.0, "")]);
        let only_crit = good("a=1;;~:10;;100");
        assert_eq!(only_crit[0].warn, None);
        assert_eq!(only_crit[0].crit.as_deref(), Some("~:10"));
        assert_eq!((only_crit[0].min, only_crit[0].max), (None, Some(100.0)));
    }

    #[test]
    fn units_and_numbers() {
        let values = good("t=0.25s u=-12.5 v=.5ms w=1e-3 x=3c y=42KB z=-0 p=99.9% b=7B q=1.5e+06");
        let read: Vec<(f64, &str)> = values.iter().map(|v| (v.value, v.uom.as_str())).collect();
        assert_eq!(
            read,
            [
                (0.25, "s"),
                (-12.5, ""),
                (0.5, "ms"),
                (0.001, ""),
                (3.0, "c"),
                (42.0, "KB"),
                (-0.0, ""),
                (99.9, "%"),
                (7.0, "B"),
                (1.5e6, ""),
            ]
        );
        // Ranges are kept as written; min and max may repeat the unit.
        let ranged = good("rta=0.05ms;@10:20;~:;0ms;");
        assert_eq!(ranged[0].warn.as_deref(), Some("@10:20"));
        assert_eq!(ranged[0].crit.as_deref(), Some("~:"));
        assert_eq!(ranged[0].min, Some(0.0));
    }

    #[test]
    fn unknown_values_are_skipped() {
        let (labels, bad) = sorted("a=U b=1 c=U;1;2;0;10");
        assert_eq!(labels, ["b"]);
        assert_eq!(bad, ["a=U", "c=U;1;2;0;10"]);
        let err = parse("a=U").remove(0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"a=U\": the value is U: the plugin could not measure it"
        );
    }

    #[test]
    fn garbage_is_skipped_and_the_rest_read() {
        let cases = [
            "novalue",
            "=5",
            "''=5",
            "a=",
            "a=;1;2",
            "a=abc",
            "a=5 6",
            "a=1,5",
            "a=1;2;3;4;5;6",
            "a=1;x",
            "a=1;;x",
            "a=1;;;low",
            "a=1;;;;5KB",
            "a=1MB2",
            "a=NaN",
            "a=inf",
            "a=1e999",
            "a=--1",
            "a=1;:",
        ];
        for garbage in cases {
            let text = format!("ok1=1 {garbage} ok2=2");
            let (labels, bad) = sorted(&text);
            assert_eq!(labels.first().map(String::as_str), Some("ok1"), "{text}");
            assert_eq!(labels.last().map(String::as_str), Some("ok2"), "{text}");
            assert!(!bad.is_empty(), "{text}: nothing refused");
        }
        // An unterminated quote swallows the rest: there is no telling
        // where the label ends.
        let (labels, bad) = sorted("ok=1 'open=2 b=3");
        assert_eq!(
            (labels, bad),
            (vec!["ok".into()], vec!["'open=2 b=3".into()])
        );
        assert!(parse("").is_empty());
        assert!(parse("  \n ").is_empty());
    }

    #[test]
    fn procjon_limits_are_checked_here() {
        let long = "x".repeat(65);
        let bad = parse(&format!("{long}=1")).remove(0).unwrap_err();
        assert!(bad.reason.contains("label"), "{bad}");
        let bad = parse("a=1parsecsxx").remove(0).unwrap_err();
        assert!(bad.reason.contains("uom"), "{bad}");
    }

    #[test]
    fn newlines_separate_values() {
        let values = good("a=1\nb=2\r\n'c d'=3");
        let labels: Vec<&str> = values.iter().map(|v| v.label.as_str()).collect();
        assert_eq!(labels, ["a", "b", "c d"]);
    }
}
