//! Two builds' reports of one scenario side by side (`tailor loadgen-compare`): per load
//! level, before and after, with the p99 ratio; and the plot of both.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::plot;
use crate::report::{Report, RunReport};

/// `tailor loadgen-compare`: the JSON reports (`tailor loadgen --json`) of the same scenario
/// run against two builds.
#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    /// Report of the build before the change.
    pub before: PathBuf,
    /// Report of the build after it.
    pub after: PathBuf,
    /// Also draw both builds' p50 and p99 against throughput to this SVG file.
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
}

/// Reads both reports, writes the table to `out` and the plot when asked.
pub fn run(args: &CompareArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let before = read(&args.before)?;
    let after = read(&args.after)?;
    anyhow::ensure!(
        before.scenario == after.scenario,
        "the reports are of different scenarios (`{}` and `{}`)",
        before.scenario,
        after.scenario
    );
    out.write_all(table(&before, &after).as_bytes())?;
    if let Some(path) = &args.plot {
        plot::write_comparison(&before, &after, path)?;
    }
    Ok(())
}

fn read(path: &Path) -> anyhow::Result<Report> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    serde_json::from_reader(std::io::BufReader::new(file))
        .with_context(|| format!("{} is not a loadgen JSON report", path.display()))
}

/// One line per load level of either report, in the order run (the before report's first).
pub fn table<'a>(before: &'a Report, after: &'a Report) -> String {
    let mut labels: Vec<&str> = before
        .target
        .runs
        .iter()
        .map(|r| r.label.as_str())
        .collect();
    for run in &after.target.runs {
        if !labels.contains(&run.label.as_str()) {
            labels.push(&run.label);
        }
    }
    let find =
        |report: &'a Report, label: &str| report.target.runs.iter().find(|r| r.label == label);
    let cell = |run: Option<&RunReport>| match run {
        Some(r) if r.sustained => format!(
            "{:>9.1} {:>8.3} {:>8.3}",
            r.throughput, r.latency_ms.p50, r.latency_ms.p99
        ),
        Some(r) => format!("{:>9.1} {:>17}", r.throughput, "not sustained"),
        None => format!("{:>27}", "not run"),
    };
    let mut text = format!(
        "{}: before and after\n{:<10} {:>27} | {:>27} | {:>9}\n{:<10} {:>9} {:>8} {:>8} | {:>9} {:>8} {:>8} |\n",
        after.scenario,
        "",
        "before",
        "after",
        "p99",
        "load",
        "req/s",
        "p50 ms",
        "p99 ms",
        "req/s",
        "p50 ms",
        "p99 ms",
    );
    text.truncate(text.trim_end().len());
    text.push('\n');
    for label in labels {
        let (b, a) = (find(before, label), find(after, label));
        let ratio = match (b, a) {
            (Some(b), Some(a)) if b.sustained && a.sustained && b.latency_ms.p99 > 0.0 => {
                format!("x{:.2}", a.latency_ms.p99 / b.latency_ms.p99)
            }
            _ => "-".to_owned(),
        };
        text.push_str(&format!(
            "{label:<10} {} | {} | {ratio:>9}\n",
            cell(b),
            cell(a)
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Machine, Side};

    fn run(rate: u32, p99: f64, sustained: bool) -> RunReport {
        RunReport::example(f64::from(rate), p99, sustained)
    }

    fn report(runs: Vec<RunReport>) -> Report {
        Report {
            scenario: "s".into(),
            description: String::new(),
            mode: "sweep".into(),
            started_at: String::new(),
            machine: Machine {
                cores: 2,
                os: "linux".into(),
                arch: "x86_64".into(),
            },
            slo_p99_ms: 1000.0,
            target: Side {
                name: "recommend".into(),
                transport: "grpc".into(),
                url: String::new(),
                runs,
            },
            baseline: None,
            comparisons: Vec::new(),
            ceiling: None,
        }
    }

    #[test]
    fn levels_of_either_report_are_lined_up_with_the_p99_ratio() {
        let before = report(vec![run(100, 4.0, true), run(200, 900.0, false)]);
        let after = report(vec![
            run(100, 2.0, true),
            run(200, 8.0, true),
            run(300, 20.0, true),
        ]);
        let text = table(&before, &after);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 6, "{text}");
        assert!(
            lines[3].starts_with("100/s") && lines[3].ends_with("x0.50"),
            "{text}"
        );
        assert!(
            lines[4].contains("not sustained") && lines[4].ends_with('-'),
            "{text}"
        );
        assert!(lines[5].contains("not run"), "{text}");
    }

    #[test]
    fn the_plot_has_both_builds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ab.svg");
        let before = report(vec![run(100, 4.0, true)]);
        let after = report(vec![run(100, 2.0, true)]);
        plot::write_comparison(&before, &after, &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("before p99") && svg.contains("after p50"));
    }
}
