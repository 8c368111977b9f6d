//! The latency-vs-load plot (SVG, drawn by plotters' pure-Rust SVG backend, no fonts or
//! system libraries): p50 and p99 against achieved throughput, for the target and the echo
//! baseline (or for two builds' runs of one scenario), on a logarithmic latency axis so both
//! fit.

use std::path::Path;

use anyhow::Context as _;
use plotters::prelude::*;

use crate::report::{Report, Side};

const RED: RGBColor = RGBColor(0xd9, 0x48, 0x1c);
const BLUE: RGBColor = RGBColor(0x1f, 0x6f, 0xb4);

/// Writes the plot of `report` (its target and, when measured, the echo baseline) to `path`.
pub fn write(report: &Report, path: &Path) -> anyhow::Result<()> {
    let mut sides = vec![(report.target.name.clone(), &report.target, RED)];
    if let Some(baseline) = &report.baseline {
        sides.push((baseline.name.clone(), baseline, BLUE));
    }
    let caption = format!(
        "{}: latency vs load ({} cores)",
        report.scenario, report.machine.cores
    );
    draw(&caption, &sides, path)
}

/// Writes a plot of the same scenario's target measured twice (two builds) to `path`.
pub fn write_comparison(before: &Report, after: &Report, path: &Path) -> anyhow::Result<()> {
    let caption = format!(
        "{}: before and after ({} cores)",
        after.scenario, after.machine.cores
    );
    let sides = [
        ("before".to_owned(), &before.target, BLUE),
        ("after".to_owned(), &after.target, RED),
    ];
    draw(&caption, &sides, path)
}

fn draw(caption: &str, sides: &[(String, &Side, RGBColor)], path: &Path) -> anyhow::Result<()> {
    draw_sides(caption, sides, path)
        .map_err(|err| anyhow::anyhow!("drawing {}: {err}", path.display()))?;
    std::fs::metadata(path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// (throughput, p50, p99) of every run with samples.
fn points(side: &Side) -> Vec<(f64, f64, f64)> {
    let mut points: Vec<(f64, f64, f64)> = side
        .runs
        .iter()
        .filter(|r| r.latency_ms.count > 0)
        .map(|r| (r.throughput, r.latency_ms.p50, r.latency_ms.p99))
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    points
}

fn draw_sides(
    caption: &str,
    sides: &[(String, &Side, RGBColor)],
    path: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let all: Vec<(f64, f64, f64)> = sides.iter().flat_map(|(_, s, _)| points(s)).collect();
    let x_max = all.iter().map(|p| p.0).fold(1.0, f64::max) * 1.1;
    let y_min = all
        .iter()
        .map(|p| p.1)
        .filter(|v| *v > 0.0)
        .fold(f64::INFINITY, f64::min)
        .min(1.0)
        / 2.0;
    let y_max = all.iter().map(|p| p.2).fold(1.0, f64::max) * 2.0;

    let root = SVGBackend::new(path, (960, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..x_max, (y_min.max(0.001)..y_max).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("achieved throughput (requests/s)")
        .y_desc("latency (ms, log scale)")
        .draw()?;
    for (name, side, color) in sides {
        let (name, color) = (name.clone(), *color);
        let pts = points(side);
        for (quantile, pick, dashed) in [
            (
                "p50",
                (|p: &(f64, f64, f64)| p.1) as fn(&(f64, f64, f64)) -> f64,
                false,
            ),
            ("p99", |p: &(f64, f64, f64)| p.2, true),
        ] {
            let series: Vec<(f64, f64)> = pts.iter().map(|p| (p.0, pick(p).max(0.001))).collect();
            let style = if dashed {
                color.mix(0.6).stroke_width(2)
            } else {
                color.stroke_width(2)
            };
            chart
                .draw_series(LineSeries::new(series.clone(), style))?
                .label(format!("{name} {quantile}"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
            chart.draw_series(
                series
                    .iter()
                    .map(|&(x, y)| Circle::new((x, y), 3, color.filled())),
            )?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
