//! The registry of operations a scenario step can name, and what a step is.
//!
//! An operation is a named way of calling one target (`profile.get_profile` calls the
//! `profile` target). A new target joins with a few lines: a module here with a parameter
//! struct and a [`Step`] implementation per RPC, one [`Operation`] entry per RPC in
//! [`registry`], and the target's default address in the runner (see the crate docs,
//! "Adding a target").
//!
//! A step splits each request in two: [`Step::prepare`] builds the message (not timed: data
//! generation is the generator's cost, not the server's) and returns a [`Call`] whose future
//! sends it (timed). Futures do nothing until polled, so the engine can prepare a request
//! ahead of its intended start time and send it exactly on schedule.

pub mod echo;
pub mod mobile;
pub mod profile;
pub mod recommend;
mod skim;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::future::BoxFuture;
use rand::SeedableRng as _;
use rand::rngs::SmallRng;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::population::Population;
use crate::target::Connection;

/// One kind of request a scenario can send.
pub struct Operation {
    /// Name used in scenario files, `<target>.<rpc>` in snake case.
    pub name: &'static str,
    /// The target it calls (a key of the scenario's `targets`, or `--target NAME=URL`).
    pub target: &'static str,
    /// One line for `--help` and the crate docs.
    pub about: &'static str,
    /// The credential its calls carry.
    pub auth: Auth,
    /// Checks the step's `params` without connecting, so scenario mistakes surface first.
    pub check: fn(&toml::Table) -> Result<(), String>,
    /// Builds the step over a connection to its target.
    pub build: BuildStep,
}

/// [`Operation::build`]: the step's `params` and a connection to its target in, the step out.
pub type BuildStep = fn(&toml::Table, &Arc<Connection>) -> anyhow::Result<Arc<dyn Step>>;

/// The credential an operation's calls carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// A Tailor service token holding these scopes, as the services' back-office callers
    /// have (minted with the development secret, or `--token`).
    Service(&'static [&'static str]),
    /// An app user's JWT or an anonymous device id, set by the step on each call, as the
    /// mobile app talks to the gateway; the connection adds no credential of its own.
    AppUser,
}

/// Every operation, in the order `--help` lists them.
pub fn registry() -> &'static [Operation] {
    static REGISTRY: [Operation; 10] = [
        echo::ECHO,
        profile::RECORD_EVENTS,
        profile::GET_PROFILE,
        profile::LIST_RECENT_ITEMS,
        recommend::UPSERT_ITEMS,
        recommend::RECOMMEND,
        recommend::LIST_SIMILAR_ITEMS,
        mobile::GET_HOME_FEED,
        mobile::GET_PRODUCT_PAGE,
        mobile::TRACK_EVENTS,
    ];
    &REGISTRY
}

/// The operations for `--help`: one line each, with the target and what it sends.
pub fn help() -> String {
    let width = registry().iter().map(|op| op.name.len()).max().unwrap_or(0);
    let mut out = String::from(
        "Operations (a scenario step's `op`; its `params` are documented in crates/loadgen/src/steps):\n",
    );
    for op in registry() {
        out.push_str(&format!(
            "  {:<width$}  [{}] {}\n",
            op.name, op.target, op.about
        ));
    }
    out
}

/// The operation named `name`.
pub fn find(name: &str) -> Option<&'static Operation> {
    registry().iter().find(|op| op.name == name)
}

/// A step's parameters: deserialised from the scenario's `params` table, then checked.
pub trait Params: DeserializeOwned {
    /// Range and consistency checks; the error names the field (`batch: must be …`).
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Deserialises and validates `P` from a step's `params`.
pub fn params<P: Params>(table: &toml::Table) -> Result<P, String> {
    let params: P = toml::Value::Table(table.clone())
        .try_into()
        .map_err(|err: toml::de::Error| err.message().trim().to_owned())?;
    params.validate()?;
    Ok(params)
}

/// [`Operation::check`] for parameters of type `P`.
pub fn check<P: Params>(table: &toml::Table) -> Result<(), String> {
    params::<P>(table).map(|_| ())
}

/// One way of calling a target, ready to generate requests.
pub trait Step: Send + Sync {
    /// Builds the next request (untimed) and returns the call that will send it.
    fn prepare(&self, generator: &mut Generator) -> Call;
}

/// A prepared request.
pub struct Call {
    /// Encoded size of the request message.
    pub request_bytes: usize,
    /// Sends it when polled; resolves when the answer has arrived and been decoded.
    pub send: BoxFuture<'static, Result<Reply, tonic::Status>>,
}

/// What a successful call reports besides its latency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reply {
    /// Units of work the call carried (events for ingestion, 1 for a read).
    pub items: u64,
    /// Units the server refused (e.g. rejected events): a generator or server bug.
    pub rejected: u64,
    /// Encoded size of the response message.
    pub response_bytes: usize,
    /// The answer had nothing in it (no recommendations, a feed without items): cheap to
    /// serve, so a run of them measures an unseeded system, not the real work.
    pub empty: bool,
    /// Part of the answer is missing (a feed module whose backend was slow or down): the
    /// gateway degraded instead of failing.
    pub partial: bool,
}

/// Which users (or items) a step picks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pick {
    /// Zipf over the population (the scenario's `user_skew` or `item_skew`).
    #[default]
    Zipf,
    /// Every one equally likely.
    Uniform,
    /// 1, 2, 3, … in turn across the whole run, wrapping around: seeding, or warming a cache.
    Sequential,
}

/// Picks users for one step.
#[derive(Debug)]
pub struct UserPicker {
    how: Pick,
    cursor: AtomicU64,
}

impl UserPicker {
    /// A picker of `how`.
    pub fn new(how: Pick) -> Self {
        Self {
            how,
            cursor: AtomicU64::new(1),
        }
    }

    /// The next user's rank.
    pub fn pick(&self, generator: &mut Generator) -> u64 {
        match self.how {
            Pick::Zipf => generator.population.sample_user(&mut generator.rng),
            Pick::Uniform => {
                rand::Rng::random_range(&mut generator.rng, 1..=generator.population.spec().users)
            }
            Pick::Sequential => self.cursor.fetch_add(1, Ordering::Relaxed),
        }
    }
}

/// Picks items for one step.
#[derive(Debug)]
pub struct ItemPicker {
    how: Pick,
    cursor: AtomicU64,
}

impl ItemPicker {
    /// A picker of `how`.
    pub fn new(how: Pick) -> Self {
        Self {
            how,
            cursor: AtomicU64::new(1),
        }
    }

    /// The next item's rank (sequential ranks run past the catalogue; ids wrap around).
    pub fn pick(&self, generator: &mut Generator) -> u64 {
        match self.how {
            Pick::Zipf => generator.item(),
            Pick::Uniform => {
                rand::Rng::random_range(&mut generator.rng, 1..=generator.population.spec().items)
            }
            Pick::Sequential => self.cursor.fetch_add(1, Ordering::Relaxed),
        }
    }
}

/// Item ids as the catalogue of the system under load spells them: the population's own
/// ids (`lg-i0000042`, what `recommend.upsert_items` writes and `profile.record_events`
/// sends) by default, or a step's `item_format` with `{}` standing for the item's rank, e.g.
/// `gb-{}` for a catalog seeded from goodbooks (books 1 to 10000).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemIds {
    format: Option<(String, String)>,
}

impl ItemIds {
    /// Ids from `format` (`None`: the population's).
    pub fn new(format: Option<&str>) -> Result<Self, String> {
        let Some(format) = format else {
            return Ok(Self::default());
        };
        let err = || {
            Err(format!(
                "item_format: `{format}` must hold `{{}}` (the item's rank) once, e.g. \"item-{{}}\""
            ))
        };
        let Some((before, after)) = format.split_once("{}") else {
            return err();
        };
        if after.contains("{}") || format.len() > 100 || format.chars().any(char::is_control) {
            return err();
        }
        Ok(Self {
            format: Some((before.to_owned(), after.to_owned())),
        })
    }

    /// The id of the item of rank `rank` (wrapping around past the last item).
    pub fn id(&self, population: &Population, rank: u64) -> String {
        match &self.format {
            None => population.item(rank).id,
            Some((before, after)) => {
                let rank = (rank.max(1) - 1) % population.spec().items + 1;
                format!("{before}{rank}{after}")
            }
        }
    }
}

/// Unique ids across generator threads and runs: a random run prefix and a counter.
#[derive(Debug)]
pub struct IdSource {
    prefix: String,
    next: AtomicU64,
}

impl IdSource {
    /// A source with a fresh random prefix.
    pub fn new() -> Self {
        Self {
            prefix: format!("{:016x}-", rand::random::<u64>()),
            next: AtomicU64::new(0),
        }
    }

    /// The next id.
    pub fn next_id(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{}{n:x}", self.prefix)
    }
}

impl Default for IdSource {
    fn default() -> Self {
        Self::new()
    }
}

/// A generator's per-thread state: its random numbers, the population and the id source.
pub struct Generator {
    /// Seeded per generator thread or virtual user, so runs are reproducible.
    pub rng: SmallRng,
    population: Arc<Population>,
    ids: Arc<IdSource>,
}

impl Generator {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64, population: Arc<Population>, ids: Arc<IdSource>) -> Self {
        Self {
            rng: SmallRng::seed_from_u64(seed),
            population,
            ids,
        }
    }

    /// The population.
    pub fn population(&self) -> &Population {
        &self.population
    }

    /// The id of the next user `picker` chooses.
    pub fn user(&mut self, picker: &UserPicker) -> String {
        let rank = picker.pick(self);
        self.population.user_id(rank)
    }

    /// A Zipf-distributed item rank.
    pub fn item(&mut self) -> u64 {
        self.population.sample_item(&mut self.rng)
    }

    /// The id of the item of rank `rank`, spelled by `ids`.
    pub fn item_id(&self, ids: &ItemIds, rank: u64) -> String {
        ids.id(&self.population, rank)
    }

    /// A unique id (events).
    pub fn unique_id(&self) -> String {
        self.ids.next_id()
    }
}
