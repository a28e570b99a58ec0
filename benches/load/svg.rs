//! The chart in `docs/bench-throughput.svg`, drawn by hand as SVG (no
//! plotting crate): pipelined throughput against connections and server RSS
//! against connections held, procjon beside the baseline. Connection counts
//! are spread evenly along the x axis (they grow tenfold per step).

use crate::report::{Point, number};
use crate::server::Kind;
use std::fmt::Write;

const PANEL_W: f64 = 360.0;
const HEIGHT: f64 = 270.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 44.0;

/// The panels: chart name, title, x axis label.
const PANELS: [(&str, &str, &str); 2] = [
    (
        "throughput",
        "Pipelined pings/s (64 in flight)",
        "connections",
    ),
    ("rss", "Server RSS, MiB", "agents connected (0: idle)"),
];

fn color(kind: Kind) -> &'static str {
    match kind {
        Kind::Procjon => "#d9480f",
        Kind::Baseline => "#1c7ed6",
    }
}

/// The whole chart.
pub fn chart(points: &[Point]) -> String {
    let panels: Vec<_> = PANELS
        .iter()
        .filter(|(name, _, _)| points.iter().any(|p| p.chart == *name))
        .collect();
    let width = PANEL_W * panels.len().max(1) as f64;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {width} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    for (i, (name, title, x_label)) in panels.into_iter().enumerate() {
        let mine: Vec<&Point> = points.iter().filter(|p| p.chart == *name).collect();
        panel(&mut svg, i as f64 * PANEL_W, title, x_label, &mine);
    }
    svg.push_str("</svg>\n");
    svg
}

fn panel(svg: &mut String, x0: f64, title: &str, x_label: &str, points: &[&Point]) {
    let mut xs: Vec<u64> = points.iter().map(|p| p.x).collect();
    xs.sort_unstable();
    xs.dedup();
    let y_max = points.iter().map(|p| p.y).fold(0.0, f64::max).max(1e-9);
    let step = nice_step(y_max / 4.0);
    let top_value = (y_max / step).ceil() * step;
    let (plot_w, plot_h) = (PANEL_W - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let px = |x: u64| {
        let i = xs.iter().position(|v| *v == x).unwrap_or(0);
        let slots = xs.len().max(2) - 1;
        x0 + LEFT
            + plot_w
                * if xs.len() == 1 {
                    0.5
                } else {
                    i as f64 / slots as f64
                }
    };
    let py = |y: f64| TOP + plot_h * (1.0 - y / top_value);
    let _ = writeln!(
        svg,
        "<text x=\"{:.1}\" y=\"18\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">{title}</text>",
        x0 + PANEL_W / 2.0
    );
    let mut tick = 0.0;
    while tick <= top_value + step / 2.0 {
        let y = py(tick);
        let _ = writeln!(
            svg,
            "<line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            x0 + LEFT,
            x0 + PANEL_W - RIGHT,
            x0 + LEFT - 4.0,
            y + 4.0,
            compact(tick)
        );
        tick += step;
    }
    for &x in &xs {
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            px(x),
            TOP + plot_h + 16.0,
            x
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555\">{x_label}</text>",
        x0 + LEFT + plot_w / 2.0,
        HEIGHT - 8.0
    );
    for (row, kind) in [Kind::Procjon, Kind::Baseline].into_iter().enumerate() {
        let mut series: Vec<&&Point> = points.iter().filter(|p| p.kind == kind).collect();
        series.sort_by_key(|p| p.x);
        let path: Vec<String> = series
            .iter()
            .map(|p| format!("{:.1},{:.1}", px(p.x), py(p.y)))
            .collect();
        let _ = writeln!(
            svg,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>",
            path.join(" "),
            color(kind)
        );
        for p in &series {
            let _ = writeln!(
                svg,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{}\"><title>{} {}: {}</title></circle>",
                px(p.x),
                py(p.y),
                color(kind),
                kind.name(),
                p.x,
                number(p.y)
            );
        }
        let ly = TOP - 10.0;
        let lx = x0 + LEFT + 8.0 + row as f64 * 80.0;
        let _ = writeln!(
            svg,
            "<rect x=\"{lx:.1}\" y=\"{:.1}\" width=\"10\" height=\"3\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            ly - 4.0,
            color(kind),
            lx + 14.0,
            ly,
            kind.name()
        );
    }
}

/// A tick label: 2.5M, 500k, 40.
fn compact(value: f64) -> String {
    let (scaled, suffix) = if value >= 1e6 {
        (value / 1e6, "M")
    } else if value >= 1e3 {
        (value / 1e3, "k")
    } else {
        (value, "")
    };
    let text = format!("{scaled:.1}");
    format!("{}{suffix}", text.trim_end_matches(".0"))
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * power)
}
