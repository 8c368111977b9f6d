//! The engine: drives a workload at one load level and records what happened.
//!
//! - **Open loop** (wrk2's model): a pacer on its own OS thread prepares each request ahead
//!   of time, sleeps until the request's intended start on the [`Schedule`] (thread sleeps
//!   are precise to tens of microseconds, tokio's timer only to a millisecond) and spawns it
//!   on the runtime. Latency is measured from the intended start, so a stalled server, or a
//!   generator that fell behind, is charged to every request that should have been sent
//!   meanwhile: no coordinated omission. In-flight requests are capped (memory), and the
//!   wait for a free slot is charged the same way.
//! - **Closed loop**: `users` virtual users, each picking a step, waiting for the answer and
//!   thinking (exponentially distributed around the step's `think`) before the next one.
//!   Latency is from send to answer; the offered load adapts to the server, so this mode
//!   measures capacity, not latency under a given load.
//!
//! Samples whose start falls in the measurement window (after the warm-up) make the
//! latency histograms (HdrHistogram, microseconds, 3 significant digits); throughput counts
//! the answers that arrived within the window.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hdrhistogram::Histogram;
use rand::distr::Distribution as _;
use rand::distr::weighted::WeightedIndex;
use rand_distr::Exp;
use tokio::sync::{Semaphore, TryAcquireError};

use crate::population::Population;
use crate::schedule::{Schedule, latency};
use crate::steps::{Generator, IdSource, Reply, Step};

/// One step of a workload.
pub struct WorkStep {
    /// Name in reports.
    pub name: String,
    /// The operation's name.
    pub op: String,
    /// Relative frequency.
    pub weight: f64,
    /// Closed loop: mean think time after it.
    pub think: Duration,
    /// The step.
    pub step: Arc<dyn Step>,
}

/// Weighted steps.
pub struct Workload {
    steps: Vec<WorkStep>,
    index: WeightedIndex<f64>,
}

impl Workload {
    /// A workload of `steps` (at least one, positive weights).
    pub fn new(steps: Vec<WorkStep>) -> anyhow::Result<Self> {
        let index = WeightedIndex::new(steps.iter().map(|s| s.weight))
            .context("step weights must be positive")?;
        Ok(Self { steps, index })
    }

    /// The steps.
    pub fn steps(&self) -> &[WorkStep] {
        &self.steps
    }

    fn pick(&self, generator: &mut Generator) -> usize {
        self.index.sample(&mut generator.rng)
    }
}

/// How load is applied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    /// Constant arrival rate, requests per second.
    Open {
        /// Requests per second.
        rate: f64,
    },
    /// Virtual users.
    Closed {
        /// How many.
        users: usize,
    },
}

/// One load level to run.
#[derive(Debug, Clone)]
pub struct Phase {
    /// Name in progress output and reports, e.g. `profile @ 100/s`.
    pub label: String,
    /// The load.
    pub load: Load,
    /// Unmeasured time first.
    pub warmup: Duration,
    /// Measured time.
    pub duration: Duration,
    /// Client-side deadline of each call.
    pub timeout: Duration,
    /// Open loop: most requests in flight.
    pub max_in_flight: usize,
    /// Seed of the generators.
    pub seed: u64,
}

/// What a phase needs besides the workload.
#[derive(Clone)]
pub struct Env {
    /// Users and items.
    pub population: Arc<Population>,
    /// Unique ids.
    pub ids: Arc<IdSource>,
    /// Progress display, if any.
    pub progress: Option<indicatif::ProgressBar>,
}

/// Latencies and counts of one step in one phase.
#[derive(Debug, Clone)]
pub struct StepStats {
    /// Latency of successful calls started in the window, microseconds.
    pub latency: Histogram<u64>,
    /// Failed calls started in the window, by gRPC status code name.
    pub errors: BTreeMap<String, u64>,
    /// The first message seen for each failing code (what went wrong, for the report).
    pub error_messages: BTreeMap<String, String>,
    /// Answers (successes and failures) that arrived within the window.
    pub completed_in_window: u64,
    /// Items of the successful answers that arrived within the window.
    pub items_in_window: u64,
    /// Items refused by the server (calls started in the window).
    pub rejected: u64,
    /// Successful calls started in the window whose answer was empty.
    pub empty: u64,
    /// Successful calls started in the window whose answer was partial (degraded).
    pub partial: u64,
    /// Successful calls over the whole phase (warm-up too), for the means below.
    pub ok_total: u64,
    /// Σ request sizes of those calls.
    pub request_bytes: u64,
    /// Σ response sizes of those calls.
    pub response_bytes: u64,
    /// Σ items of those calls.
    pub items: u64,
}

impl StepStats {
    pub(crate) fn new() -> Self {
        Self {
            latency: histogram(),
            errors: BTreeMap::new(),
            error_messages: BTreeMap::new(),
            completed_in_window: 0,
            items_in_window: 0,
            rejected: 0,
            empty: 0,
            partial: 0,
            ok_total: 0,
            request_bytes: 0,
            response_bytes: 0,
            items: 0,
        }
    }

    /// Failed calls started in the window.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// Everything recorded in one phase.
#[derive(Debug, Clone)]
pub struct PhaseStats {
    /// The phase.
    pub label: String,
    /// Its load.
    pub load: Load,
    /// Its warm-up.
    pub warmup: Duration,
    /// Length of the measurement window.
    pub window: Duration,
    /// Per step, in workload order.
    pub steps: Vec<StepStats>,
    /// Latency of every successful call started in the window, microseconds.
    pub all: Histogram<u64>,
    /// Open loop: how late calls were sent after their intended start, microseconds (the
    /// generator's own punctuality: a large lag means it, not the server, fell behind).
    pub lag: Option<Histogram<u64>>,
}

/// A latency histogram: 1 µs to 1 h, 3 significant digits.
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("constant histogram bounds are valid")
}

/// Counters the progress display reads while a phase runs.
#[derive(Debug, Default)]
struct Live {
    completed: AtomicU64,
    errors: AtomicU64,
    in_flight: AtomicU64,
}

/// Collects samples of one phase from every task.
struct Recorder {
    origin: Instant,
    window: (Duration, Duration),
    stats: Mutex<Samples>,
    live: Live,
}

/// What the recorder accumulates (behind its mutex: one short critical section per call).
struct Samples {
    steps: Vec<StepStats>,
    all: Histogram<u64>,
    lag: Histogram<u64>,
}

impl Recorder {
    fn new(origin: Instant, phase: &Phase, steps: usize) -> Self {
        Self {
            origin,
            window: (phase.warmup, phase.warmup + phase.duration),
            stats: Mutex::new(Samples {
                steps: (0..steps).map(|_| StepStats::new()).collect(),
                all: histogram(),
                lag: histogram(),
            }),
            live: Live::default(),
        }
    }

    fn in_window(&self, at: Instant) -> bool {
        let t = at.saturating_duration_since(self.origin);
        self.window.0 <= t && t < self.window.1
    }

    /// Records one call intended to start at `intended`, sent at `sent`, answered at `done`.
    fn record(
        &self,
        step: usize,
        (intended, sent, done): (Instant, Instant, Instant),
        request_bytes: usize,
        result: &Result<Reply, tonic::Status>,
    ) {
        self.live.completed.fetch_add(1, Ordering::Relaxed);
        if result.is_err() {
            self.live.errors.fetch_add(1, Ordering::Relaxed);
        }
        let measured = self.in_window(intended);
        let arrived_in_window = self.in_window(done);
        let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let elapsed = latency(
            intended.saturating_duration_since(self.origin),
            done.saturating_duration_since(self.origin),
        );
        let Ok(mut guard) = self.stats.lock() else {
            return; // a panicking recorder already failed the run
        };
        let Samples { steps, all, lag } = &mut *guard;
        let s = &mut steps[step];
        if arrived_in_window {
            s.completed_in_window += 1;
        }
        match result {
            Ok(reply) => {
                s.ok_total += 1;
                s.request_bytes += request_bytes as u64;
                s.response_bytes += reply.response_bytes as u64;
                s.items += reply.items;
                if arrived_in_window {
                    s.items_in_window += reply.items;
                }
                if measured {
                    s.latency.saturating_record(micros(elapsed));
                    all.saturating_record(micros(elapsed));
                    s.rejected += reply.rejected;
                    s.empty += u64::from(reply.empty);
                    s.partial += u64::from(reply.partial);
                }
            }
            Err(status) => {
                if measured {
                    let code = code_name(status.code());
                    *s.errors.entry(code.to_owned()).or_default() += 1;
                    if !s.error_messages.contains_key(code) {
                        s.error_messages.insert(code.to_owned(), describe(status));
                    }
                }
            }
        }
        if measured {
            lag.saturating_record(micros(sent.saturating_duration_since(intended)));
        }
    }

    /// Takes the samples out. Called once every call has been recorded (all in-flight
    /// slots returned, all virtual users ended).
    fn finish(&self, phase: &Phase) -> PhaseStats {
        let mut guard = self
            .stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let steps = guard.steps.iter().map(|_| StepStats::new()).collect();
        let Samples { steps, all, lag } = std::mem::replace(
            &mut *guard,
            Samples {
                steps,
                all: histogram(),
                lag: histogram(),
            },
        );
        PhaseStats {
            label: phase.label.clone(),
            load: phase.load,
            warmup: phase.warmup,
            window: phase.duration,
            steps,
            all,
            lag: matches!(phase.load, Load::Open { .. }).then_some(lag),
        }
    }
}

/// A status's message followed by its source chain (transport errors keep the interesting
/// part, e.g. an HTTP/2 GOAWAY reason, in the sources).
fn describe(status: &tonic::Status) -> String {
    let mut out = status.message().to_owned();
    let mut source = std::error::Error::source(status);
    while let Some(err) = source {
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&err.to_string());
        source = err.source();
    }
    out
}

/// The canonical name of a gRPC status code, as the spec spells it.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Runs `workload` for one phase.
pub async fn run_phase(
    workload: &Arc<Workload>,
    phase: &Phase,
    env: &Env,
) -> anyhow::Result<PhaseStats> {
    let origin = Instant::now() + Duration::from_millis(20);
    let recorder = Arc::new(Recorder::new(origin, phase, workload.steps().len()));
    let ticker = env
        .progress
        .clone()
        .map(|bar| tokio::spawn(show_progress(bar, recorder.clone(), phase.clone())));
    let result = match phase.load {
        Load::Open { rate } => open_loop(workload, phase, rate, env, &recorder).await,
        Load::Closed { users } => closed_loop(workload, phase, users, env, &recorder).await,
    };
    if let Some(ticker) = ticker {
        ticker.abort();
    }
    result?;
    Ok(recorder.finish(phase))
}

async fn open_loop(
    workload: &Arc<Workload>,
    phase: &Phase,
    rate: f64,
    env: &Env,
    recorder: &Arc<Recorder>,
) -> anyhow::Result<()> {
    let schedule = Schedule::new(rate).map_err(anyhow::Error::msg)?;
    let total = schedule.count_before(phase.warmup + phase.duration);
    let max_in_flight = phase.max_in_flight.clamp(1, Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(max_in_flight));
    let handle = tokio::runtime::Handle::current();
    let mut generator = Generator::new(phase.seed, env.population.clone(), env.ids.clone());
    let (workload, recorder, timeout) = (workload.clone(), recorder.clone(), phase.timeout);
    let pacer_slots = slots.clone();
    // The pacer owns a blocking-pool thread: it sleeps precisely and never delays the
    // runtime's workers, which only run the calls.
    let pacer = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let origin = recorder.origin;
        for i in 0..total {
            let intended = origin + schedule.offset(i);
            let step = workload.pick(&mut generator);
            let call = workload.steps[step].step.prepare(&mut generator);
            let now = Instant::now();
            if intended > now {
                std::thread::sleep(intended - now);
            }
            let permit = match pacer_slots.clone().try_acquire_owned() {
                Ok(permit) => permit,
                Err(TryAcquireError::NoPermits) => {
                    handle.block_on(pacer_slots.clone().acquire_owned())?
                }
                Err(TryAcquireError::Closed) => anyhow::bail!("in-flight slots closed"),
            };
            let recorder = recorder.clone();
            recorder.live.in_flight.fetch_add(1, Ordering::Relaxed);
            let (request_bytes, send) = (call.request_bytes, call.send);
            handle.spawn(async move {
                let sent = Instant::now();
                let result = tokio::time::timeout(timeout, send)
                    .await
                    .unwrap_or_else(|_| Err(tonic::Status::deadline_exceeded("client timeout")));
                let done = Instant::now();
                recorder.record(step, (intended, sent, done), request_bytes, &result);
                recorder.live.in_flight.fetch_sub(1, Ordering::Relaxed);
                drop(permit);
            });
        }
        Ok(())
    });
    pacer.await.context("the pacer panicked")??;
    // Every slot free again means every call has been answered (or timed out).
    let n = u32::try_from(max_in_flight).unwrap_or(u32::MAX);
    let _all = slots.acquire_many(n).await?;
    Ok(())
}

async fn closed_loop(
    workload: &Arc<Workload>,
    phase: &Phase,
    users: usize,
    env: &Env,
    recorder: &Arc<Recorder>,
) -> anyhow::Result<()> {
    let end = recorder.origin + phase.warmup + phase.duration;
    let thinks: Vec<Option<Exp<f64>>> = workload
        .steps()
        .iter()
        .map(|s| {
            let mean = s.think.as_secs_f64();
            (mean > 0.0).then(|| Exp::new(1.0 / mean)).transpose()
        })
        .collect::<Result<_, _>>()
        .context("think times")?;
    let longest_think = workload
        .steps()
        .iter()
        .map(|s| s.think)
        .max()
        .unwrap_or_default()
        .min(phase.warmup);
    let thinks = Arc::new(thinks);
    let mut users_set = tokio::task::JoinSet::new();
    for vu in 0..users {
        let (workload, recorder, thinks) = (workload.clone(), recorder.clone(), thinks.clone());
        let mut generator = Generator::new(
            phase.seed.wrapping_add(vu as u64 * 0x9e37),
            env.population.clone(),
            env.ids.clone(),
        );
        let timeout = phase.timeout;
        users_set.spawn(async move {
            tokio::time::sleep_until(recorder.origin.into()).await;
            // Users arrive spread over one think time, not in lockstep.
            if !longest_think.is_zero() {
                let offset =
                    rand::Rng::random_range(&mut generator.rng, Duration::ZERO..longest_think);
                tokio::time::sleep(offset).await;
            }
            while Instant::now() < end {
                let step = workload.pick(&mut generator);
                let call = workload.steps[step].step.prepare(&mut generator);
                recorder.live.in_flight.fetch_add(1, Ordering::Relaxed);
                let sent = Instant::now();
                let result = tokio::time::timeout(timeout, call.send)
                    .await
                    .unwrap_or_else(|_| Err(tonic::Status::deadline_exceeded("client timeout")));
                let done = Instant::now();
                recorder.record(step, (sent, sent, done), call.request_bytes, &result);
                recorder.live.in_flight.fetch_sub(1, Ordering::Relaxed);
                if let Some(think) = &thinks[step] {
                    let pause = Duration::from_secs_f64(think.sample(&mut generator.rng));
                    let wake = (Instant::now() + pause).min(end);
                    tokio::time::sleep_until(wake.into()).await;
                }
            }
        });
    }
    while let Some(joined) = users_set.join_next().await {
        joined.context("a virtual user panicked")?;
    }
    Ok(())
}

/// Updates `bar` with elapsed time, achieved rate, errors and calls in flight.
async fn show_progress(bar: indicatif::ProgressBar, recorder: Arc<Recorder>, phase: Phase) {
    let total = phase.warmup + phase.duration;
    bar.set_length(total.as_millis() as u64);
    bar.set_position(0);
    bar.set_prefix(phase.label.clone());
    let mut last = (Instant::now(), 0u64);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(recorder.origin);
        let completed = recorder.live.completed.load(Ordering::Relaxed);
        let rate = (completed - last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(1e-3);
        last = (now, completed);
        let stage = if elapsed < phase.warmup {
            "warm-up"
        } else {
            "measuring"
        };
        bar.set_position((elapsed.min(total)).as_millis() as u64);
        bar.set_message(format!(
            "{stage} {:>5.1}s/{:.0}s  {rate:>9.0} req/s  {} errors  {} in flight",
            elapsed.min(total).as_secs_f64(),
            total.as_secs_f64(),
            recorder.live.errors.load(Ordering::Relaxed),
            recorder.live.in_flight.load(Ordering::Relaxed),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::population::PopulationSpec;
    use crate::steps::Call;

    /// A server frozen until `until`, then instant: every call waits for the thaw.
    struct Frozen {
        until: Instant,
    }

    impl Step for Frozen {
        fn prepare(&self, _generator: &mut Generator) -> Call {
            let until = self.until;
            Call {
                request_bytes: 10,
                send: Box::pin(async move {
                    tokio::time::sleep_until(until.into()).await;
                    Ok(Reply {
                        items: 1,
                        response_bytes: 5,
                        ..Reply::default()
                    })
                }),
            }
        }
    }

    fn setup(load: Load) -> (Arc<Workload>, Phase, Env) {
        let until = Instant::now() + Duration::from_millis(600);
        let workload = Workload::new(vec![WorkStep {
            name: "frozen".to_owned(),
            op: "test".to_owned(),
            weight: 1.0,
            think: Duration::ZERO,
            step: Arc::new(Frozen { until }),
        }])
        .unwrap();
        let phase = Phase {
            label: "test".to_owned(),
            load,
            warmup: Duration::ZERO,
            duration: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
            max_in_flight: 1000,
            seed: 1,
        };
        let env = Env {
            population: Arc::new(Population::new(&PopulationSpec::default()).unwrap()),
            ids: Arc::new(IdSource::new()),
            progress: None,
        };
        (Arc::new(workload), phase, env)
    }

    /// Samples of at least 100 ms.
    fn slow(stats: &PhaseStats) -> u64 {
        stats.all.count_between(100_000, u64::MAX)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn open_loop_charges_a_stall_to_every_request_scheduled_during_it() {
        let (workload, phase, env) = setup(Load::Open { rate: 100.0 });
        let stats = run_phase(&workload, &phase, &env).await.unwrap();
        // Every scheduled request was measured, answered or not in time.
        assert_eq!(stats.all.len(), 100);
        assert_eq!(stats.steps[0].error_count(), 0);
        // The server was frozen for the first ~580 ms of the schedule: the ~48 requests due
        // in its first 480 ms waited at least 100 ms each, measured from their intended
        // start. (Lower bounds only: a slow machine can make them larger, never smaller.)
        assert!(slow(&stats) >= 40, "only {} slow samples", slow(&stats));
        assert!(stats.all.value_at_quantile(0.5) >= 50_000);
        assert!(stats.lag.is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn closed_loop_sees_the_same_stall_as_one_slow_request() {
        let (workload, phase, env) = setup(Load::Closed { users: 1 });
        let stats = run_phase(&workload, &phase, &env).await.unwrap();
        // One virtual user waits out the freeze in a single call, then runs freely: the
        // stall is one sample (coordinated omission, which is why latency under a given load
        // is measured in open loop).
        assert!(stats.all.len() > 100, "{} samples", stats.all.len());
        assert!(stats.all.max() >= 400_000);
        assert!(slow(&stats) <= 3, "{} slow samples", slow(&stats));
        assert!(stats.lag.is_none());
    }
}
