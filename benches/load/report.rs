//! What a run found: raw measurements and summary rows written as JSON lines
//! as they come (so a run cut short keeps what it measured), the table
//! printed at the end, and the points the SVG chart is drawn from. Owned by
//! the harness's main thread.

use crate::server::Kind;
use serde_json::{Value, json};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// What a figure should be for the target to be met.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// No target: reported for understanding.
    None,
    /// procjon / baseline at least this.
    RatioAtLeast(f64),
    /// procjon / baseline at most this.
    RatioAtMost(f64),
    /// procjon's figure at most this.
    AtMost(f64),
    /// procjon's figure at least this.
    AtLeast(f64),
}

impl Target {
    fn describe(self) -> String {
        match self {
            Target::None => String::new(),
            Target::RatioAtLeast(r) => format!("ratio ≥ {r}"),
            Target::RatioAtMost(r) => format!("ratio ≤ {r}"),
            Target::AtMost(v) => format!("≤ {}", number(v)),
            Target::AtLeast(v) => format!("≥ {}", number(v)),
        }
    }

    fn met(self, procjon: f64, ratio: Option<f64>) -> Option<bool> {
        match self {
            Target::None => None,
            Target::RatioAtLeast(r) => ratio.map(|x| x >= r),
            Target::RatioAtMost(r) => ratio.map(|x| x <= r),
            Target::AtMost(v) => Some(procjon <= v),
            Target::AtLeast(v) => Some(procjon >= v),
        }
    }
}

/// One line of the table: a figure for procjon and, where there is one, the
/// baseline's.
#[derive(Debug, Clone)]
pub struct Row {
    /// Scenario name (`throughput`, ...).
    pub scenario: &'static str,
    /// The case within it (`10 connections`).
    pub case: String,
    /// What is measured, with its unit (`pings/s`).
    pub metric: &'static str,
    /// procjon's figure.
    pub procjon: f64,
    /// The baseline's figure.
    pub baseline: Option<f64>,
    /// The target.
    pub target: Target,
}

impl Row {
    /// A row without a baseline figure or target.
    pub fn new(scenario: &'static str, case: impl Into<String>, metric: &'static str) -> Row {
        Row {
            scenario,
            case: case.into(),
            metric,
            procjon: 0.0,
            baseline: None,
            target: Target::None,
        }
    }

    /// Sets procjon's and the baseline's figures.
    pub fn figures(mut self, procjon: f64, baseline: Option<f64>) -> Row {
        self.procjon = procjon;
        self.baseline = baseline;
        self
    }

    /// Sets the target.
    pub fn target(mut self, target: Target) -> Row {
        self.target = target;
        self
    }

    fn ratio(&self) -> Option<f64> {
        self.baseline
            .filter(|b| *b != 0.0)
            .map(|b| self.procjon / b)
    }
}

/// A point of the chart: `series` of `kind` at `x` connections.
#[derive(Debug, Clone)]
pub struct Point {
    /// `throughput` (pings/s) or `rss` (MiB).
    pub chart: &'static str,
    /// procjon or baseline.
    pub kind: Kind,
    /// Connections.
    pub x: u64,
    /// The figure.
    pub y: f64,
}

/// The run's findings.
pub struct Report {
    out: BufWriter<File>,
    rows: Vec<Row>,
    /// Chart points.
    pub points: Vec<Point>,
    errors: Vec<String>,
}

impl Report {
    /// Writes JSON lines to `path` (truncated).
    pub fn create(path: &Path) -> Result<Report, String> {
        let file = File::create(path).map_err(|e| format!("creating {}: {e}", path.display()))?;
        Ok(Report {
            out: BufWriter::new(file),
            rows: Vec::new(),
            points: Vec::new(),
            errors: Vec::new(),
        })
    }

    /// Writes one raw JSON line.
    pub fn raw(&mut self, value: Value) {
        let _ = serde_json::to_writer(&mut self.out, &value);
        let _ = self.out.write_all(b"\n");
        let _ = self.out.flush();
    }

    /// Adds a summary row (also written as a JSON line).
    pub fn row(&mut self, row: Row) {
        let ratio = row.ratio();
        self.raw(json!({
            "kind": "summary",
            "scenario": row.scenario,
            "case": row.case,
            "metric": row.metric,
            "procjon": row.procjon,
            "baseline": row.baseline,
            "ratio": ratio,
            "target": row.target.describe(),
            "met": row.target.met(row.procjon, ratio),
        }));
        self.rows.push(row);
    }

    /// Records a scenario that could not run to the end.
    pub fn error(&mut self, scenario: &str, message: String) {
        eprintln!("bench: {scenario} failed: {message}");
        self.raw(json!({"kind": "error", "scenario": scenario, "message": message}));
        self.errors.push(format!("{scenario}: {message}"));
    }

    /// Errors so far.
    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    /// The table, as Markdown.
    pub fn table(&self) -> String {
        let mut text = String::from(
            "| scenario | case | metric | procjon | baseline | ratio | target | met |\n\
             |---|---|---|---:|---:|---:|---|---|\n",
        );
        for row in &self.rows {
            let ratio = row.ratio();
            let met = match row.target.met(row.procjon, ratio) {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "",
            };
            text.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
                row.scenario,
                row.case,
                row.metric,
                number(row.procjon),
                row.baseline.map(number).unwrap_or_default(),
                ratio.map(|r| format!("{r:.2}")).unwrap_or_default(),
                row.target.describe(),
                met
            ));
        }
        text
    }
}

/// A figure with three significant digits, thousands separated.
pub fn number(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return format!("{value}");
    }
    let magnitude = value.abs().log10().floor() as i32;
    let decimals = (2 - magnitude).max(0) as usize;
    let rounded = if magnitude >= 3 {
        let scale = 10f64.powi(magnitude - 2);
        (value / scale).round() * scale
    } else {
        value
    };
    let text = format!("{rounded:.decimals$}");
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    if frac.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{frac}")
    }
}

/// The `q`-quantile (0 to 1) of sorted samples, nearest rank; 0 when empty.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
