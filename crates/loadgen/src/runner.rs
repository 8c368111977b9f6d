//! One invocation from start to report: resolve the load plan (scenario defaults, then the
//! command line), connect to the targets, each with the credential its operations need (a
//! service token with their scopes, or app users' tokens for the gateway), probe each step
//! once (so a wrong address or credential fails in a second with a clear message, not after
//! a long run of errors), run every load level, then run the echo baseline the same way with
//! the same message sizes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use tailor_kit::auth::{AuthSettings, TokenIssuer, TokenSource};

use crate::LoadgenArgs;
use crate::echo::EchoServer;
use crate::engine::{Env, Load, Phase, WorkStep, Workload, run_phase};
use crate::identity::{UserJwt, UserTokens};
use crate::population::Population;
use crate::report::{self, Machine, Report, RunReport, Side};
use crate::scenario::{Mode, Scenario};
use crate::steps::{self, Auth, Generator, IdSource};
use crate::target::{Connection, Credentials, Transport};

/// How many times a sweep of the baseline doubles its last rate looking for saturation.
const BASELINE_DOUBLINGS: usize = 6;

/// Default address of each target, when neither the scenario nor `--target` gives one:
/// where `tailor serve all` listens. A new target adds its line here.
fn default_url(target: &str) -> Option<&'static str> {
    match target {
        "profile" => Some("http://127.0.0.1:50051"),
        "recommend" => Some("http://127.0.0.1:50052"),
        "gateway" => Some("http://127.0.0.1:8080"),
        _ => None,
    }
}

/// The resolved load plan.
#[derive(Debug, Clone)]
struct Plan {
    mode: &'static str,
    levels: Vec<Load>,
    warmup: Duration,
    duration: Duration,
    connections: usize,
}

impl Plan {
    fn resolve(scenario: &Scenario, args: &LoadgenArgs) -> anyhow::Result<Self> {
        let load = &scenario.load;
        let implied = if !args.rates.is_empty() || args.rate.is_some() {
            Some(Mode::Open)
        } else if args.users.is_some() {
            Some(Mode::Closed)
        } else {
            None
        };
        let mode = args.mode.or(implied).unwrap_or(load.mode);
        let levels = match mode {
            Mode::Open => {
                if args.users.is_some() {
                    anyhow::bail!("--users applies to --mode closed");
                }
                let rates = if !args.rates.is_empty() {
                    args.rates.clone()
                } else if let Some(rate) = args.rate {
                    vec![rate]
                } else if !load.rates.is_empty() {
                    load.rates.clone()
                } else {
                    vec![load.rate]
                };
                for rate in &rates {
                    crate::schedule::Schedule::new(*rate).map_err(anyhow::Error::msg)?;
                }
                rates.into_iter().map(|rate| Load::Open { rate }).collect()
            }
            Mode::Closed => {
                if !args.rates.is_empty() || args.rate.is_some() {
                    anyhow::bail!("--rate and --rates apply to --mode open");
                }
                let users = args.users.unwrap_or(load.users);
                if users == 0 {
                    anyhow::bail!("--users must be at least 1");
                }
                vec![Load::Closed { users }]
            }
        };
        let mode = match (mode, levels.len()) {
            (Mode::Closed, _) => "closed",
            (Mode::Open, 1) => "open",
            (Mode::Open, _) => "sweep",
        };
        let duration = args.duration.unwrap_or(load.duration);
        if duration.is_zero() {
            anyhow::bail!("--duration must be positive");
        }
        let connections = args.connections.unwrap_or(load.connections);
        if !(1..=256).contains(&connections) {
            anyhow::bail!("--connections must be between 1 and 256");
        }
        Ok(Self {
            mode,
            levels,
            warmup: args.warmup.unwrap_or(load.warmup),
            duration,
            connections,
        })
    }
}

/// Runs the whole invocation and returns the report (the caller writes it).
pub async fn run(args: &LoadgenArgs) -> anyhow::Result<Report> {
    let scenario = Scenario::load(&args.scenario)?;
    let plan = Plan::resolve(&scenario, args)?;
    let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let env = Env {
        population: Arc::new(Population::new(&scenario.population)?),
        ids: Arc::new(IdSource::new()),
        progress: None,
    };
    let echo_workers = args
        .echo_workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from));
    let mut echo: Option<EchoServer> = None;

    // Connections to every target the steps call.
    let mut conns: BTreeMap<&str, Arc<Connection>> = BTreeMap::new();
    let user_tokens = if auths(&scenario, |_| true).contains(&Auth::AppUser) {
        Some(Arc::new(app_users(args)?))
    } else {
        None
    };
    for name in scenario.target_names() {
        let spec = scenario.targets.get(name);
        let flag = args.targets.iter().rev().find(|(n, _)| n == name);
        let url = match (flag, spec.and_then(|s| s.url.clone())) {
            (Some((_, url)), _) => url.clone(),
            (None, Some(url)) => url,
            (None, None) if name == "echo" => echo_server(&mut echo, echo_workers)?.url(),
            (None, None) => default_url(name)
                .with_context(|| format!("target {name} has no address: pass --target {name}=URL"))?
                .to_owned(),
        };
        let transport = args
            .transport
            .or(spec.map(|s| s.transport))
            .unwrap_or_default();
        let auths = auths(&scenario, |target| target == name);
        let credentials = match (&user_tokens, auths.contains(&Auth::AppUser)) {
            (Some(tokens), true) => Credentials::AppUsers(tokens.clone()),
            _ => service_credentials(args, &auths)?,
        };
        let conn = Connection::open(name, &url, transport, plan.connections, credentials)?;
        conns.insert(name, conn);
    }
    for (name, _) in &args.targets {
        if !conns.contains_key(name.as_str()) {
            tracing::warn!(target = %name, "--target names a target no step calls");
        }
    }

    let mut work_steps = Vec::with_capacity(scenario.steps.len());
    for (i, spec) in scenario.steps.iter().enumerate() {
        let op = steps::find(&spec.op).with_context(|| format!("steps[{i}].op"))?;
        let conn = &conns[op.target];
        work_steps.push(WorkStep {
            name: spec.display_name().to_owned(),
            op: spec.op.clone(),
            weight: spec.weight,
            think: spec.think,
            step: (op.build)(&spec.params, conn)
                .with_context(|| format!("{}: steps[{i}]", args.scenario.display()))?,
        });
    }
    let workload = Arc::new(Workload::new(work_steps)?);
    let probes = probe(&workload, &conns, &env, args).await?;

    let side_name: Vec<&str> = conns.keys().copied().collect();
    let side_url: Vec<String> = conns.values().map(|c| c.origin().to_string()).collect();
    let transports: Vec<&str> = conns.values().map(|c| c.transport().as_str()).collect();
    let target = Side {
        name: side_name.join("+"),
        transport: dedup(&transports).join("+"),
        url: side_url.join(" "),
        runs: drive(
            &workload,
            &plan,
            &plan.levels,
            &env,
            args,
            &side_name.join("+"),
            false,
        )
        .await?,
    };

    let baseline = match args.baseline {
        crate::Baseline::None => None,
        crate::Baseline::Echo => {
            let server = echo_server(&mut echo, echo_workers)?;
            let transport = args.transport.unwrap_or_else(|| {
                // Mirror the target's transport when it has one.
                conns
                    .values()
                    .map(|c| c.transport())
                    .find(|t| *t == Transport::GrpcWeb)
                    .unwrap_or_default()
            });
            // A service token stands in for every call's credential (a user's JWT is about
            // as long), so the baseline pays for its bytes too.
            let credentials = service_credentials(args, &auths(&scenario, |_| true))?;
            let conn = Connection::open(
                "echo",
                &server.url(),
                transport,
                plan.connections,
                credentials,
            )?;
            let mirror = Arc::new(mirror(&workload, &target.runs, &probes, &conn)?);
            probe(
                &mirror,
                &BTreeMap::from([("echo", conn.clone())]),
                &env,
                args,
            )
            .await?;
            let mut levels = plan.levels.clone();
            if plan.mode == "sweep" {
                // Keep doubling past the target's rates until the echo server saturates too.
                let mut last = plan
                    .levels
                    .iter()
                    .filter_map(|l| match l {
                        Load::Open { rate } => Some(*rate),
                        Load::Closed { .. } => None,
                    })
                    .fold(0.0, f64::max);
                for _ in 0..BASELINE_DOUBLINGS {
                    last *= 2.0;
                    levels.push(Load::Open { rate: last });
                }
            }
            Some(Side {
                name: "echo".to_owned(),
                transport: transport.as_str().to_owned(),
                url: format!(
                    "{} (in-process, {echo_workers} threads, same message sizes)",
                    server.url()
                ),
                runs: drive(&mirror, &plan, &levels, &env, args, "echo", true).await?,
            })
        }
    };

    let comparisons = baseline
        .as_ref()
        .map(|b| report::compare(&target, b))
        .unwrap_or_default();
    let ceiling = baseline
        .as_ref()
        .and_then(|b| report::ceiling(plan.mode, &target, b));
    drop(echo);
    Ok(Report {
        scenario: scenario.name.clone(),
        description: scenario.description.trim().to_owned(),
        mode: plan.mode.to_owned(),
        started_at,
        machine: Machine::this(),
        slo_p99_ms: args.slo_p99.as_secs_f64() * 1000.0,
        target,
        baseline,
        comparisons,
        ceiling,
    })
}

fn dedup<'a>(items: &[&'a str]) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for item in items {
        if !out.contains(item) {
            out.push(item);
        }
    }
    out
}

fn echo_server(echo: &mut Option<EchoServer>, workers: usize) -> anyhow::Result<&EchoServer> {
    if echo.is_none() {
        *echo = Some(EchoServer::start(workers)?);
    }
    echo.as_ref().context("echo server")
}

/// How the scenario's operations on the targets `which` selects authenticate.
fn auths(scenario: &Scenario, which: impl Fn(&str) -> bool) -> Vec<Auth> {
    scenario
        .steps
        .iter()
        .filter_map(|step| steps::find(&step.op))
        .filter(|op| which(op.target))
        .map(|op| op.auth)
        .collect()
}

/// A service credential: `--token`, else a token minted with the development secret holding
/// `--scope`, or by default exactly the scopes the operations need (least privilege, as a
/// real caller would have).
fn service_credentials(args: &LoadgenArgs, auths: &[Auth]) -> anyhow::Result<Credentials> {
    if let Some(token) = &args.token {
        return Credentials::bearer(token);
    }
    let scopes: Vec<&str> = if args.scopes.is_empty() {
        let needed: std::collections::BTreeSet<&str> = auths
            .iter()
            .flat_map(|auth| match auth {
                Auth::Service(scopes) => scopes.iter().copied(),
                Auth::AppUser => [].iter().copied(),
            })
            .collect();
        needed.into_iter().collect()
    } else {
        args.scopes.iter().map(String::as_str).collect()
    };
    let issuer = TokenIssuer::new(&AuthSettings::default(), &args.service, &scopes)
        .context("minting service tokens with the development secret")?;
    Ok(Credentials::Minted(TokenSource::new(issuer)))
}

/// App users' tokens, signed as the gateway expects (`--user-jwt-*`).
fn app_users(args: &LoadgenArgs) -> anyhow::Result<UserTokens> {
    let jwt = UserJwt {
        secret: args
            .user_jwt_secret
            .clone()
            .unwrap_or_else(|| crate::identity::DEV_USER_JWT_SECRET.to_owned()),
        issuer: args.user_jwt_issuer.clone(),
        audience: args.user_jwt_audience.clone(),
        ..UserJwt::default()
    };
    UserTokens::new(&jwt).context("app users' tokens (--user-jwt-secret)")
}

/// Sizes of one call of each step, from a probe.
type Probed = Vec<(usize, usize, u64)>;

/// Calls every step once; fails with the step, target and status when one does not work.
async fn probe(
    workload: &Workload,
    conns: &BTreeMap<&str, Arc<Connection>>,
    env: &Env,
    args: &LoadgenArgs,
) -> anyhow::Result<Probed> {
    let mut generator = Generator::new(args.seed ^ 0x5eed, env.population.clone(), env.ids.clone());
    let mut out = Vec::with_capacity(workload.steps().len());
    for ws in workload.steps() {
        let call = ws.step.prepare(&mut generator);
        let request_bytes = call.request_bytes;
        let reply = tokio::time::timeout(args.timeout, call.send)
            .await
            .map_err(|_| tonic::Status::deadline_exceeded("no answer within --timeout"))
            .and_then(|r| r);
        let reply = reply.map_err(|status| {
            let target = steps::find(&ws.op).map_or("?", |op| op.target);
            let url = conns
                .get(target)
                .map_or_else(String::new, |c| c.origin().to_string());
            anyhow::anyhow!(
                "step `{}` ({}) against {target} at {url} failed before the run: {}: {}",
                ws.name,
                ws.op,
                crate::engine::code_name(status.code()),
                status.message()
            )
        })?;
        if reply.rejected > 0 {
            anyhow::bail!(
                "step `{}`: the server rejected {} of the generated items",
                ws.name,
                reply.rejected
            );
        }
        out.push((request_bytes, reply.response_bytes, reply.items));
    }
    Ok(out)
}

/// The echo workload standing in for `workload`: one echo step per step, with the same
/// weight, think time, mean request and response sizes and items per call.
fn mirror(
    workload: &Workload,
    runs: &[RunReport],
    probes: &Probed,
    conn: &Arc<Connection>,
) -> anyhow::Result<Workload> {
    let mut out = Vec::with_capacity(workload.steps().len());
    for (i, ws) in workload.steps().iter().enumerate() {
        let (mut requests, mut req, mut resp, mut items) = (0.0, 0.0, 0.0, 0.0);
        for step in runs.iter().filter_map(|r| r.steps.get(i)) {
            let n = step.requests.saturating_sub(step.errors.values().sum()) as f64;
            requests += n;
            req += n * step.mean_request_bytes;
            resp += n * step.mean_response_bytes;
            items += n * step.mean_items;
        }
        let (req, resp, items) = if requests > 0.0 {
            (req / requests, resp / requests, items / requests)
        } else {
            let (req, resp, items) = probes.get(i).copied().unwrap_or((64, 64, 1));
            (req as f64, resp as f64, items as f64)
        };
        out.push(WorkStep {
            name: ws.name.clone(),
            op: "echo".to_owned(),
            weight: ws.weight,
            think: ws.think,
            step: steps::echo::mirror(
                conn,
                req.round() as usize,
                resp.round() as usize,
                items.round() as u64,
            ),
        });
    }
    Workload::new(out)
}

/// Runs `levels` one after the other; a sweep stops after the first level not sustained and
/// then narrows down where between the last two levels the side saturates.
async fn drive(
    workload: &Arc<Workload>,
    plan: &Plan,
    levels: &[Load],
    env: &Env,
    args: &LoadgenArgs,
    side: &str,
    baseline: bool,
) -> anyhow::Result<Vec<RunReport>> {
    let driver = Driver {
        workload,
        plan,
        env,
        args,
        side,
        baseline,
        names: workload
            .steps()
            .iter()
            .map(|s| (s.name.clone(), s.op.clone()))
            .collect(),
    };
    let sweep = plan.mode == "sweep";
    let mut runs = Vec::with_capacity(levels.len());
    for load in levels {
        let run = driver.level(*load, runs.len()).await?;
        let stop = sweep && !run.sustained;
        runs.push(run);
        if stop {
            break;
        }
        // Let the target settle (background work, connection pools) between levels.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // A sweep's levels are far apart (the baseline's double): bisect between the last level
    // sustained and the first not, so the capacity is known to a few per cent.
    if sweep && let Some(mut knee) = Bisection::after(&runs) {
        for _ in 0..args.refine {
            let Some(rate) = knee.next_rate() else { break };
            let run = driver.level(Load::Open { rate }, runs.len()).await?;
            knee.record(rate, run.sustained);
            runs.push(run);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        runs.sort_by(|a, b| {
            let rate = |r: &RunReport| r.offered_rate.unwrap_or(0.0);
            rate(a).total_cmp(&rate(b))
        });
    }
    Ok(runs)
}

/// What running one side's load levels needs.
struct Driver<'a> {
    workload: &'a Arc<Workload>,
    plan: &'a Plan,
    env: &'a Env,
    args: &'a LoadgenArgs,
    side: &'a str,
    baseline: bool,
    names: Vec<(String, String)>,
}

impl Driver<'_> {
    /// Runs one load level (the `n`th of this side), with its progress bar.
    async fn level(&self, load: Load, n: usize) -> anyhow::Result<RunReport> {
        let label = format!("{} @ {}", self.side, report::level_label(load));
        let phase = Phase {
            label: label.clone(),
            load,
            warmup: self.plan.warmup,
            duration: self.plan.duration,
            timeout: self.args.timeout,
            max_in_flight: self.args.max_in_flight,
            seed: self.args.seed.wrapping_add(n as u64 * 7919) ^ u64::from(self.baseline),
        };
        let bar = (!self.args.quiet).then(|| progress_bar(&label));
        let env = Env {
            progress: bar.clone(),
            ..self.env.clone()
        };
        let stats = run_phase(self.workload, &phase, &env).await?;
        let run = report::summarise(&stats, &self.names, self.args.slo_p99);
        if let Some(bar) = bar {
            bar.finish_with_message(format!(
                "{:.1} req/s, p50 {:.3} ms, p99 {:.3} ms, {} errors{}",
                run.throughput,
                run.latency_ms.p50,
                run.latency_ms.p99,
                run.errors,
                if run.sustained {
                    ""
                } else {
                    " (not sustained)"
                }
            ));
        }
        Ok(run)
    }
}

/// The search for a sweep's saturation point between the highest rate sustained and the
/// lowest not: each probe halves the interval, at a round rate (so reports read well).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bisection {
    sustained: f64,
    not_sustained: f64,
}

impl Bisection {
    /// Stop once the interval is this narrow, relative to its lower end.
    const PRECISION: f64 = 0.02;

    /// The interval a sweep left when it stopped at a level not sustained after one that was.
    fn after(runs: &[RunReport]) -> Option<Self> {
        let not_sustained = runs.last().filter(|r| !r.sustained)?.offered_rate?;
        let sustained = runs
            .iter()
            .filter(|r| r.sustained)
            .filter_map(|r| r.offered_rate)
            .reduce(f64::max)?;
        (not_sustained > sustained).then_some(Self {
            sustained,
            not_sustained,
        })
    }

    /// The next rate to try, or `None` when the interval is narrow enough.
    fn next_rate(&self) -> Option<f64> {
        let (lo, hi) = (self.sustained, self.not_sustained);
        if hi - lo <= Self::PRECISION * lo {
            return None;
        }
        // Round to two digits of the interval's width: 2,750 between 2,500 and 3,000,
        // 36,000 between 24,000 and 48,000.
        let unit = 10f64.powf(((hi - lo).log10()).floor() - 1.0);
        let mid = ((lo + hi) / 2.0 / unit).round() * unit;
        (mid > lo && mid < hi).then_some(mid)
    }

    fn record(&mut self, rate: f64, sustained: bool) {
        if sustained {
            self.sustained = self.sustained.max(rate);
        } else {
            self.not_sustained = self.not_sustained.min(rate);
        }
    }
}

fn progress_bar(label: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(1),
        indicatif::ProgressDrawTarget::stderr_with_hz(4),
    );
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{prefix:<26} [{bar:20.cyan/blue}] {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(label.to_owned());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rates a bisection probes against a side that sustains exactly `capacity`.
    fn probes(lo: f64, hi: f64, capacity: f64, steps: usize) -> (Vec<f64>, Bisection) {
        let mut knee = Bisection {
            sustained: lo,
            not_sustained: hi,
        };
        let mut rates = Vec::new();
        for _ in 0..steps {
            let Some(rate) = knee.next_rate() else { break };
            rates.push(rate);
            knee.record(rate, rate <= capacity);
        }
        (rates, knee)
    }

    #[test]
    fn bisection_halves_the_interval_at_round_rates() {
        let (rates, knee) = probes(2500.0, 3000.0, 2730.0, 3);
        assert_eq!(rates, [2750.0, 2630.0, 2690.0]);
        assert_eq!((knee.sustained, knee.not_sustained), (2690.0, 2750.0));

        let (rates, _) = probes(24_000.0, 48_000.0, 31_000.0, 3);
        assert_eq!(rates, [36_000.0, 30_000.0, 33_000.0]);
    }

    #[test]
    fn bisection_starts_where_a_sweep_stopped() {
        let level = |rate, sustained| RunReport::example(rate, 1.0, sustained);
        let knee = Bisection::after(&[
            level(1000.0, true),
            level(2000.0, true),
            level(4000.0, false),
        ]);
        assert_eq!(
            knee,
            Some(Bisection {
                sustained: 2000.0,
                not_sustained: 4000.0
            })
        );
        assert_eq!(
            Bisection::after(&[level(1000.0, true), level(2000.0, true)]),
            None,
            "never saturated"
        );
        assert_eq!(
            Bisection::after(&[level(1000.0, false)]),
            None,
            "nothing sustained"
        );
    }

    #[test]
    fn bisection_stops_when_the_interval_is_narrow() {
        let (rates, knee) = probes(1000.0, 2000.0, 1500.0, 100);
        assert!(rates.len() < 10, "{rates:?}");
        assert!(
            knee.sustained <= 1500.0 && knee.not_sustained > 1500.0,
            "{knee:?}"
        );
        assert!(
            knee.not_sustained - knee.sustained <= 0.02 * knee.sustained + 10.0,
            "{knee:?}"
        );
        assert_eq!(probes(1000.0, 1010.0, 1005.0, 5).0, Vec::<f64>::new());
    }
}
