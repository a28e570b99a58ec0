//! Scenario 7: footprint. The RSS of an idle server just after start-up
//! (procjon with an empty state file, and the baseline), and the size of the
//! stripped release binaries.

use crate::Bench;
use crate::report::{Point, Row, Target, number};
use crate::server::Kind;
use serde_json::json;
use std::time::Duration;

/// Scenario 7.
pub fn run(bench: &mut Bench) -> Result<(), String> {
    let settle = bench.size(Duration::from_secs(1), Duration::from_millis(200));
    let mut rss = [0u64; 2];
    for (slot, kind) in [Kind::Procjon, Kind::Baseline].into_iter().enumerate() {
        let server = bench.start(kind, Vec::new())?;
        std::thread::sleep(settle);
        rss[slot] = server.rss_kib();
        println!(
            "   {:8} idle RSS {} KiB",
            kind.name(),
            number(rss[slot] as f64)
        );
        bench.report.raw(json!({
            "kind": "measurement",
            "scenario": "footprint",
            "server": kind.name(),
            "idle_rss_kib": rss[slot],
        }));
        bench.report.points.push(Point {
            chart: "rss",
            kind,
            x: 0,
            y: rss[slot] as f64 / 1024.0,
        });
    }
    bench.report.row(
        Row::new("footprint", "empty state", "idle RSS MiB")
            .figures(rss[0] as f64 / 1024.0, Some(rss[1] as f64 / 1024.0))
            .target(Target::AtMost(6.0)),
    );
    let procjon = crate::server::procjon_binary();
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    for binary in [
        procjon.to_path_buf(),
        procjon.with_file_name("procjonagent"),
    ] {
        let Ok(meta) = std::fs::metadata(&binary) else {
            continue;
        };
        let name = binary
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        println!("   {name} ({profile}): {} bytes", number(meta.len() as f64));
        bench.report.raw(json!({
            "kind": "measurement",
            "scenario": "footprint",
            "binary": binary,
            "profile": profile,
            "bytes": meta.len(),
        }));
        bench.report.row(
            Row::new("footprint", format!("{name} ({profile})"), "binary MiB")
                .figures(meta.len() as f64 / (1024.0 * 1024.0), None),
        );
    }
    Ok(())
}
