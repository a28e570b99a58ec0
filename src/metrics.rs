//! `/metrics`: the daemon's state in the Prometheus text exposition format
//! 0.0.4, rendered from a registry snapshot and the lock-free counters of
//! the other threads. Called on an `http` request thread; takes no lock but
//! the ones inside [`crate::registry::Registry::snapshot`] and
//! the sinks' counters, and does no I/O.

use crate::connection::{ConnectionStats, REJECT_CODES};
use crate::registry::{Availability, ServiceView};
use crate::sinks::Deliveries;
use std::fmt::{Display, Write};
use std::sync::atomic::Ordering;

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What `/metrics` reports about the state file.
#[derive(Debug, Clone, Copy)]
pub struct StateFileFacts {
    /// Size in bytes, when it could be read.
    pub bytes: Option<u64>,
    /// Lines (records) in it.
    pub lines: u64,
    /// Whether the last append worked and the file can be opened for appending.
    pub writable: bool,
}

/// Everything `/metrics` reports, borrowed for one rendering.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The registry snapshot, sorted by id.
    pub services: &'a [ServiceView],
    /// Connection counters.
    pub connections: &'a ConnectionStats,
    /// Every sink's counters.
    pub deliveries: &'a Deliveries,
    /// The state file.
    pub state_file: StateFileFacts,
    /// When the server certificate expires (Unix seconds), if known.
    pub certificate_expiry: Option<u64>,
}

/// Renders the exposition.
pub fn render(inputs: &Inputs<'_>) -> String {
    let mut out = Exposition(String::with_capacity(1024 + inputs.services.len() * 200));
    let services = inputs.services;

    out.family(
        "procjon_service_up",
        "gauge",
        "Whether the service is available (1) or not (0); absent while it has never been pinged.",
    );
    for s in services {
        let up = match s.availability {
            Availability::Available => 1,
            Availability::NotAvailable => 0,
            Availability::Unknown => continue,
        };
        out.sample("procjon_service_up", &[("service", id(s))], up);
    }
    out.family(
        "procjon_service_status",
        "gauge",
        "The service's announced status index (its name is in /api/services).",
    );
    for s in services {
        out.sample("procjon_service_status", &[("service", id(s))], s.status);
    }
    out.family(
        "procjon_service_last_ping_age_seconds",
        "gauge",
        "Seconds since the service's last ping; absent when there was none since procjon started.",
    );
    for s in services {
        if let Some(age) = s.last_ping_age {
            let age = age.as_millis() as f64 / 1000.0;
            out.sample(
                "procjon_service_last_ping_age_seconds",
                &[("service", id(s))],
                age,
            );
        }
    }
    out.family(
        "procjon_service_silenced",
        "gauge",
        "1 while the service is silenced (its events are recorded, not posted); absent otherwise.",
    );
    for s in services.iter().filter(|s| s.silence.is_some()) {
        out.sample("procjon_service_silenced", &[("service", id(s))], 1);
    }
    out.family(
        "procjon_services",
        "gauge",
        "Registered services by availability.",
    );
    for availability in [
        Availability::Available,
        Availability::NotAvailable,
        Availability::Unknown,
    ] {
        let count = services
            .iter()
            .filter(|s| s.availability == availability)
            .count();
        out.sample(
            "procjon_services",
            &[("availability", availability.as_str())],
            count,
        );
    }

    let c = inputs.connections;
    out.scalar(
        "procjon_connections_open",
        "gauge",
        "Agent connections open now, handshaking ones included.",
        load(&c.open),
    );
    out.scalar(
        "procjon_pings_total",
        "counter",
        "Pings accepted.",
        load(&c.pings),
    );
    out.family(
        "procjon_frames_rejected_total",
        "counter",
        "Frames refused, by error code.",
    );
    for code in REJECT_CODES {
        out.sample(
            "procjon_frames_rejected_total",
            &[("code", code.as_str())],
            c.rejected(code),
        );
    }

    let d = inputs.deliveries;
    out.scalar(
        "procjon_notifications_sent_total",
        "counter",
        "Notifications delivered, over every sink.",
        d.sent(),
    );
    out.scalar(
        "procjon_notifications_failed_total",
        "counter",
        "Deliveries that failed, over every sink; each is retried.",
        d.failed(),
    );
    out.scalar(
        "procjon_notifications_pending",
        "gauge",
        "Deliveries waiting, over every sink.",
        d.pending(),
    );
    out.family(
        "procjon_sink_sent_total",
        "counter",
        "Notifications (alerts for Alertmanager) delivered by one sink.",
    );
    for sink in &d.sinks {
        out.sample(
            "procjon_sink_sent_total",
            &[("sink", &sink.name)],
            load(&sink.stats.sent),
        );
    }
    out.family(
        "procjon_sink_failed_total",
        "counter",
        "Deliveries of one sink that failed; each is retried.",
    );
    for sink in &d.sinks {
        out.sample(
            "procjon_sink_failed_total",
            &[("sink", &sink.name)],
            load(&sink.stats.failed),
        );
    }
    out.family(
        "procjon_sink_pending",
        "gauge",
        "Notifications (alerts for Alertmanager) one sink has still to deliver.",
    );
    for sink in &d.sinks {
        out.sample(
            "procjon_sink_pending",
            &[("sink", &sink.name)],
            load(&sink.stats.pending),
        );
    }
    out.family(
        "procjon_sink_failing_seconds",
        "gauge",
        "How long one sink's deliveries have been failing without a success; 0 while they work.",
    );
    for sink in &d.sinks {
        let failing = sink.stats.failing_for().unwrap_or_default();
        out.sample(
            "procjon_sink_failing_seconds",
            &[("sink", &sink.name)],
            failing.as_secs_f64(),
        );
    }

    let file = inputs.state_file;
    if let Some(bytes) = file.bytes {
        out.scalar(
            "procjon_state_file_bytes",
            "gauge",
            "Size of the state file in bytes.",
            bytes,
        );
    }
    out.scalar(
        "procjon_state_file_lines",
        "gauge",
        "Records in the state file (it is compacted when it grows).",
        file.lines,
    );
    out.scalar(
        "procjon_state_file_writable",
        "gauge",
        "1 while the state file can be appended to, 0 when writing it fails.",
        u8::from(file.writable),
    );

    if let Some(expiry) = inputs.certificate_expiry {
        out.scalar(
            "procjon_certificate_expiry_timestamp_seconds",
            "gauge",
            "When procjon's server certificate expires (Unix time); renew it and send SIGHUP before.",
            expiry,
        );
    }

    out.family(
        "procjon_build_info",
        "gauge",
        "Always 1; the labels say which procjon this is.",
    );
    out.sample(
        "procjon_build_info",
        &[
            ("version", env!("CARGO_PKG_VERSION")),
            ("revision", crate::version::GIT_REVISION),
        ],
        1,
    );
    out.0
}

fn id(view: &ServiceView) -> &str {
    &view.definition.service
}

fn load(counter: &std::sync::atomic::AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// The text being built.
struct Exposition(String);

impl Exposition {
    /// The `# HELP` and `# TYPE` lines of a family. `help` is a constant
    /// without backslashes or newlines, so it needs no escaping.
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    /// A family with one sample and no labels.
    fn scalar(&mut self, name: &str, kind: &str, help: &str, value: impl Display) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// One sample line.
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (label, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                self.0.push_str(label);
                self.0.push_str("=\"");
                escape_label_value(value, &mut self.0);
                self.0.push('"');
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }
}

/// Escapes a label value as the text format requires: backslash, double
/// quote and line feed become `\\`, `\"` and `\n`.
pub fn escape_label_value(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Definition;
    use std::time::Duration;

    fn view(id: &str, availability: Availability, age_ms: Option<u64>) -> ServiceView {
        ServiceView {
            definition: Definition {
                service: id.into(),
                timeout_s: 5.0,
                statuses: vec!["ok".to_string(), "degraded".to_string()].into(),
                owner: Some("procjonagent".into()),
                policy: None,
            },
            availability,
            status: 1,
            last_ping_age: age_ms.map(Duration::from_millis),
            last_change: None,
            detail: None,
            silence: None,
            suppressed_by: None,
            flapping: false,
        }
    }

    #[test]
    fn escapes_label_values_per_the_spec() {
        let mut out = String::new();
        escape_label_value("a\\b\"c\nd:e/f@g", &mut out);
        assert_eq!(out, r#"a\\b\"c\nd:e/f@g"#);
    }

    #[test]
    fn renders_families_and_skips_what_is_not_known() {
        let services = [
            view("db@eu-1/primary:5432", Availability::Available, Some(1500)),
            view("new", Availability::Unknown, None),
            view("odd\"one\\", Availability::NotAvailable, None),
        ];
        let connections = ConnectionStats::default();
        let deliveries = Deliveries {
            sinks: vec![crate::sinks::SinkStats {
                name: "slack".into(),
                stats: Default::default(),
                progress: crate::progress::Progress::new("notifier"),
                from_outbox: true,
            }],
        };
        let text = render(&Inputs {
            services: &services,
            connections: &connections,
            deliveries: &deliveries,
            state_file: StateFileFacts {
                bytes: Some(42),
                lines: 3,
                writable: true,
            },
            certificate_expiry: Some(2_000_000_000),
        });
        for line in [
            "procjon_service_up{service=\"db@eu-1/primary:5432\"} 1",
            "procjon_service_up{service=\"odd\\\"one\\\\\"} 0",
            "procjon_service_status{service=\"new\"} 1",
            "procjon_service_last_ping_age_seconds{service=\"db@eu-1/primary:5432\"} 1.5",
            "procjon_services{availability=\"unknown\"} 1",
            "procjon_frames_rejected_total{code=\"bad_status\"} 0",
            "procjon_state_file_bytes 42",
            "procjon_state_file_writable 1",
            "procjon_certificate_expiry_timestamp_seconds 2000000000",
            "procjon_sink_pending{sink=\"slack\"} 0",
            "procjon_sink_failing_seconds{sink=\"slack\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in:\n{text}"
            );
        }
        assert!(!text.contains("procjon_service_up{service=\"new\"}"));
        assert!(!text.contains("last_ping_age_seconds{service=\"new\"}"));
        // Every sample's family has HELP and TYPE lines before it.
        let mut declared = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                declared.push(rest.split(' ').next().unwrap().to_string());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert!(declared.iter().any(|d| d == name), "{name} undeclared");
            }
        }
        assert_eq!(
            text.matches("# HELP ").count(),
            text.matches("# TYPE ").count()
        );
    }
}
