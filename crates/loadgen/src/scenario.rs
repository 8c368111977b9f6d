//! Scenario files (`crates/loadgen/scenarios/*.toml`): what to send (weighted steps, each a
//! named operation of the [`crate::steps`] registry with its parameters and think time), to
//! whom (the user and item population), and the default load (mode, rate or users, warm-up,
//! duration), which the command line may override.
//!
//! Every mistake is reported with the file and the key, e.g.
//! `scenario.toml: steps[2].weight: must be positive`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::population::PopulationSpec;
use crate::steps;
use crate::target::Transport;

/// A parsed, checked scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, shown in reports.
    pub name: String,
    /// What the scenario represents.
    #[serde(default)]
    pub description: String,
    /// Users and items.
    #[serde(default)]
    pub population: PopulationSpec,
    /// Default load; command-line options override it.
    #[serde(default)]
    pub load: LoadSpec,
    /// Where targets listen, by target name (`profile`, `echo`, …).
    #[serde(default)]
    pub targets: BTreeMap<String, TargetSpec>,
    /// The mix of operations.
    pub steps: Vec<StepSpec>,
}

/// Open or closed loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Constant arrival rate, independent of responses (wrk2); latency from the intended start.
    Open,
    /// A fixed number of virtual users, each waiting for its answer and thinking before the
    /// next request.
    Closed,
}

/// The scenario's default load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoadSpec {
    /// Open or closed loop.
    pub mode: Mode,
    /// Open loop: requests per second.
    pub rate: f64,
    /// Open loop: a sweep over these rates instead of one rate.
    pub rates: Vec<f64>,
    /// Closed loop: virtual users.
    pub users: usize,
    /// Load applied before measuring, so caches, connections and pools are warm.
    #[serde(with = "humantime_serde")]
    pub warmup: Duration,
    /// Measured time per load level.
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    /// HTTP/2 connections per target, used round-robin.
    pub connections: usize,
}

impl Default for LoadSpec {
    fn default() -> Self {
        Self {
            mode: Mode::Open,
            rate: 100.0,
            rates: Vec::new(),
            users: 16,
            warmup: Duration::from_secs(3),
            duration: Duration::from_secs(20),
            connections: 2,
        }
    }
}

/// Where one target listens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    /// `http://host:port`; for `echo`, leave it out to start the in-process echo server.
    #[serde(default)]
    pub url: Option<String>,
    /// gRPC (HTTP/2) or gRPC-web (HTTP/1.1).
    #[serde(default)]
    pub transport: Transport,
}

/// One weighted step of the mix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// Name in reports (default: the operation's name).
    #[serde(default)]
    pub name: Option<String>,
    /// The operation, e.g. `profile.record_events` (see `crate::steps::registry`).
    pub op: String,
    /// Relative frequency among the steps.
    #[serde(default = "one")]
    pub weight: f64,
    /// Closed loop: mean pause after this step (exponentially distributed), the user's
    /// think time. Open-loop arrivals follow the schedule instead.
    #[serde(default, with = "humantime_serde")]
    pub think: Duration,
    /// The operation's own parameters.
    #[serde(default)]
    pub params: toml::Table,
}

fn one() -> f64 {
    1.0
}

impl StepSpec {
    /// The name shown in reports.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.op)
    }
}

/// A scenario that could not be read, with where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file (or label) it came from.
    pub origin: String,
    /// The offending key (`steps[2].weight`), or a `line:column` position for syntax errors.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.origin, self.key, self.reason)
    }
}

impl std::error::Error for ScenarioError {}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| anyhow::anyhow!("reading scenario {}: {err}", path.display()))?;
        Ok(Self::parse(&text, &path.display().to_string())?)
    }

    /// Parses and checks scenario text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ScenarioError> {
        let scenario: Self = toml::from_str(text).map_err(|err| {
            let key = err
                .span()
                .map(|span| line_column(text, span.start))
                .unwrap_or_default();
            ScenarioError {
                origin: origin.to_owned(),
                key,
                reason: err.message().trim().to_owned(),
            }
        })?;
        scenario.check().map_err(|(key, reason)| ScenarioError {
            origin: origin.to_owned(),
            key,
            reason,
        })?;
        Ok(scenario)
    }

    /// Semantic checks; returns the offending key and why.
    fn check(&self) -> Result<(), (String, String)> {
        let err = |key: &str, reason: &str| Err((key.to_owned(), reason.to_owned()));
        if self.name.trim().is_empty() {
            return err("name", "must not be empty");
        }
        self.population
            .check()
            .map_err(|(field, reason)| (format!("population.{field}"), reason))?;
        self.load.check()?;
        for (name, target) in &self.targets {
            if let Some(url) = &target.url
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                return Err((
                    format!("targets.{name}.url"),
                    format!("`{url}` must start with http:// or https://"),
                ));
            }
        }
        if self.steps.is_empty() {
            return err("steps", "at least one step is required");
        }
        let mut names = BTreeSet::new();
        for (i, step) in self.steps.iter().enumerate() {
            let key = |field: &str| format!("steps[{i}].{field}");
            let Some(op) = steps::find(&step.op) else {
                let known: Vec<&str> = steps::registry().iter().map(|o| o.name).collect();
                return Err((
                    key("op"),
                    format!(
                        "unknown operation `{}` (known: {})",
                        step.op,
                        known.join(", ")
                    ),
                ));
            };
            if !(step.weight.is_finite() && step.weight > 0.0) {
                return Err((key("weight"), "must be positive".to_owned()));
            }
            if !names.insert(step.display_name()) {
                return Err((
                    key("name"),
                    format!("`{}` names two steps", step.display_name()),
                ));
            }
            (op.check)(&step.params).map_err(|reason| (key("params"), reason))?;
        }
        Ok(())
    }

    /// The names of the targets the steps address, in order of first use.
    pub fn target_names(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for step in &self.steps {
            if let Some(op) = steps::find(&step.op)
                && !out.contains(&op.target)
            {
                out.push(op.target);
            }
        }
        out
    }
}

impl LoadSpec {
    fn check(&self) -> Result<(), (String, String)> {
        let err = |key: &str, reason: &str| Err((format!("load.{key}"), reason.to_owned()));
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return err("rate", "must be positive");
        }
        for (i, rate) in self.rates.iter().enumerate() {
            if !(rate.is_finite() && *rate > 0.0) {
                return Err((format!("load.rates[{i}]"), "must be positive".to_owned()));
            }
        }
        if self.users == 0 {
            return err("users", "must be at least 1");
        }
        if self.duration.is_zero() {
            return err("duration", "must be positive");
        }
        if !(1..=256).contains(&self.connections) {
            return err("connections", "must be between 1 and 256");
        }
        Ok(())
    }
}

/// `line:column` (1-based) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("{line}:{column}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "mix"
description = "a bit of everything"

[population]
users = 5000
user_skew = 0.9

[load]
mode = "closed"
users = 8
warmup = "1s"
duration = "5s"

[targets.profile]
url = "http://127.0.0.1:50051"

[[steps]]
op = "profile.record_events"
weight = 1
params = { batch = 20 }

[[steps]]
op = "profile.get_profile"
weight = 6
think = "500ms"

[[steps]]
name = "recent"
op = "profile.list_recent_items"
weight = 3
params = { page_size = 10 }
"#;

    fn error(text: &str) -> String {
        Scenario::parse(text, "scenario.toml")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_good_scenario_parses_with_defaults_filled_in() {
        let s = Scenario::parse(GOOD, "scenario.toml").unwrap();
        assert_eq!(s.name, "mix");
        assert_eq!(s.population.users, 5000);
        assert_eq!(s.population.items, PopulationSpec::default().items);
        assert_eq!(s.load.mode, Mode::Closed);
        assert_eq!(s.load.duration, Duration::from_secs(5));
        assert_eq!(s.load.connections, LoadSpec::default().connections);
        assert_eq!(s.steps.len(), 3);
        assert_eq!(s.steps[1].think, Duration::from_millis(500));
        assert_eq!(s.steps[0].display_name(), "profile.record_events");
        assert_eq!(s.steps[2].display_name(), "recent");
        assert_eq!(s.target_names(), vec!["profile"]);
        assert_eq!(
            s.targets["profile"].url.as_deref(),
            Some("http://127.0.0.1:50051")
        );
    }

    #[test]
    fn every_committed_scenario_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                Scenario::load(&path).unwrap_or_else(|err| panic!("{err:#}"));
                seen += 1;
            }
        }
        assert!(seen >= 3, "only {seen} scenarios in {}", dir.display());
    }

    #[test]
    fn a_non_positive_weight_names_the_step() {
        let text = GOOD.replace("weight = 3", "weight = 0");
        assert_eq!(
            error(&text),
            "scenario.toml: steps[2].weight: must be positive"
        );
        let text = GOOD.replace("weight = 6", "weight = -1.5");
        assert_eq!(
            error(&text),
            "scenario.toml: steps[1].weight: must be positive"
        );
    }

    #[test]
    fn an_unknown_operation_lists_the_known_ones() {
        let text = GOOD.replace("profile.get_profile", "profile.get_profiles");
        let message = error(&text);
        assert!(
            message.starts_with(
                "scenario.toml: steps[1].op: unknown operation `profile.get_profiles` (known: "
            ),
            "{message}"
        );
        assert!(message.contains("profile.get_profile,"), "{message}");
    }

    #[test]
    fn bad_step_parameters_are_reported_by_the_operation() {
        let text = GOOD.replace("{ batch = 20 }", "{ batch = 0 }");
        assert_eq!(
            error(&text),
            "scenario.toml: steps[0].params: batch: must be between 1 and 10000"
        );
        let text = GOOD.replace("{ batch = 20 }", "{ bacth = 20 }");
        let message = error(&text);
        assert!(
            message.starts_with("scenario.toml: steps[0].params: unknown field `bacth`"),
            "{message}"
        );
    }

    #[test]
    fn syntax_and_type_errors_give_a_position() {
        let text = GOOD.replace("users = 5000", "users = \"many\"");
        let message = error(&text);
        assert!(message.starts_with("scenario.toml: 6:9: "), "{message}");
        assert!(message.contains("invalid type"), "{message}");
        let message = error("name = \"x\"\n[[steps]]\nop = \"echo\"\nwieght = 2\n");
        assert!(
            message.starts_with("scenario.toml: 4:1: unknown field `wieght`"),
            "{message}"
        );
    }

    #[test]
    fn other_mistakes_are_named_by_key() {
        assert_eq!(
            error("name = \"x\"\nsteps = []\n"),
            "scenario.toml: steps: at least one step is required"
        );
        assert_eq!(
            error(&GOOD.replace("users = 5000", "users = 0")),
            "scenario.toml: population.users: must be at least 1"
        );
        assert_eq!(
            error(&GOOD.replace("duration = \"5s\"", "duration = \"0s\"")),
            "scenario.toml: load.duration: must be positive"
        );
        assert_eq!(
            error(&GOOD.replace("http://127.0.0.1:50051", "127.0.0.1:50051")),
            "scenario.toml: targets.profile.url: `127.0.0.1:50051` must start with http:// or https://"
        );
        let twice = GOOD.replace("name = \"recent\"", "name = \"profile.get_profile\"");
        assert_eq!(
            error(&twice),
            "scenario.toml: steps[2].name: `profile.get_profile` names two steps"
        );
    }
}
