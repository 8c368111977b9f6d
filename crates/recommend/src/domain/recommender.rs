//! The recommend service's use-cases: keep the catalog, turn behaviour into interactions,
//! serve recommendations from the active model set, train new sets in the background and
//! swap them in atomically, and take part in data subject requests.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use indicatif::ProgressBar;
use tailor_kit::grpc::status::FieldViolations;
use tailor_kit::shutdown::CancellationToken;
use tailor_kit::time::{Micros, now_micros};
use tokio::sync::{Notify, mpsc};

use super::catalog::{Catalog, Item, normalise};
use super::models::{ModelSet, Rankings, TrainingInput, train};
use super::serving::{self, Associated, Boost, Recommendation, Request};
use super::user_states::UserStates;
use super::{Placement, Touch};
use crate::config::{Blend, Settings};
use crate::error::{Error, Result};
use crate::experiment;
use crate::store::{Erased, Exposure, ModelRow, NewInteraction, Store, Tx, UserState};

/// A recommendation request, checked.
#[derive(Debug, Clone, Default)]
pub struct RecommendInput {
    /// The user.
    pub user_id: String,
    /// Placement (`None` is refused by the API before getting here).
    pub placement: Option<Placement>,
    /// Items wanted.
    pub page_size: usize,
    /// Context items.
    pub context: Vec<String>,
    /// Items not to return.
    pub exclude: Vec<String>,
    /// Region.
    pub region: Option<String>,
    /// Onboarding categories.
    pub onboarding: Vec<String>,
    /// Boosts.
    pub boosts: Vec<Boost>,
}

/// A served list.
#[derive(Debug, Clone)]
pub struct RecommendOutput {
    /// The items.
    pub items: Vec<Recommendation>,
    /// Model version that served.
    pub model_version: String,
    /// Experiment variant, "" when none.
    pub variant: String,
    /// Id of this list.
    pub recommendation_id: String,
}

/// One page of a user's data export.
#[derive(Debug, Clone)]
pub struct ExportPage {
    /// Interactions on this page.
    pub interactions: Vec<NewInteraction>,
    /// Exposures (first page only).
    pub exposures: Vec<Exposure>,
    /// Region (first page only).
    pub region: Option<String>,
    /// Where the next page starts.
    pub next_after: Option<String>,
}

/// Writes that need not delay a response.
enum Deferred {
    Exposure(Exposure),
    Region(String, String),
}

/// Exposures and regions buffered before a write gives up on them (a full buffer means the
/// database is not keeping up; losing analytics is better than slowing serving).
const DEFERRED_BUFFER: usize = 10_000;

/// The use-cases. Cheap to clone.
#[derive(Clone)]
pub struct Recommender {
    store: Store,
    catalog: Arc<Catalog>,
    models: Arc<ArcSwap<ModelSet>>,
    settings: Arc<Settings>,
    users: UserStates,
    deferred: mpsc::Sender<Deferred>,
    deferred_rx: Arc<tokio::sync::Mutex<Option<mpsc::Receiver<Deferred>>>>,
    deferred_dropped: Arc<AtomicU64>,
    retrain: Arc<Notify>,
    training: Arc<AtomicBool>,
    holder: Arc<str>,
    /// Version of a stored model set this build could not decode (not retried).
    unreadable: Arc<std::sync::Mutex<String>>,
}

/// Who consumes the events that change a user's history, which decides how long it may be
/// reused ([`crate::config::ServingSettings::history_ttl`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventReach {
    /// This process, every one of them (the in-process bus): a change is forgotten at once.
    ThisProcess,
    /// Any of the replicas sharing the bus: another one may consume a user's latest event.
    SharedBus,
}

impl Recommender {
    /// Loads the catalog and the active model set (an empty set when none was trained yet).
    pub async fn load(store: Store, settings: Arc<Settings>, reach: EventReach) -> Result<Self> {
        let (deferred, rx) = mpsc::channel(DEFERRED_BUFFER);
        let history_ttl = match reach {
            EventReach::ThisProcess => settings.serving.history_ttl_in_process,
            EventReach::SharedBus => settings.serving.history_ttl,
        };
        let recommender = Self {
            store,
            catalog: Arc::new(Catalog::default()),
            models: Arc::new(ArcSwap::from_pointee(ModelSet::empty())),
            users: UserStates::new(history_ttl),
            settings,
            deferred,
            deferred_rx: Arc::new(tokio::sync::Mutex::new(Some(rx))),
            deferred_dropped: Arc::new(AtomicU64::new(0)),
            retrain: Arc::new(Notify::new()),
            training: Arc::new(AtomicBool::new(false)),
            holder: uuid::Uuid::new_v4().to_string().into(),
            unreadable: Arc::default(),
        };
        recommender.sync_catalog().await?;
        recommender.load_active_model().await?;
        Ok(recommender)
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The model set serving now.
    pub fn models(&self) -> Arc<ModelSet> {
        self.models.load_full()
    }

    /// Applies catalog changes written since the last look (by any replica).
    pub async fn sync_catalog(&self) -> Result<()> {
        let started = now_micros();
        let changes = self
            .store
            .catalog_changes(self.catalog.synced_before())
            .await?;
        self.catalog.apply(changes, started);
        Ok(())
    }

    async fn load_active_model(&self) -> Result<bool> {
        let Some(active) = self.store.active_version().await? else {
            return Ok(false);
        };
        if active == self.models.load().version || active == *self.unreadable() {
            return Ok(false);
        }
        let Some((version, blob)) = self.store.active_model().await? else {
            return Ok(false);
        };
        let decoded = tokio::task::spawn_blocking(move || ModelSet::from_bytes(&blob))
            .await
            .map_err(anyhow::Error::from)?;
        match decoded {
            Ok(mut set) => {
                tracing::info!(%version, sources = set.sources.len(), "model set loaded");
                set.rankings = Rankings::new(self.settings.serving.kept_rankings_mib);
                self.models.store(Arc::new(set));
                Ok(true)
            }
            Err(err) => {
                // Written by another build (an older format after an upgrade): serve what is
                // loaded (nothing, at start) and train a set this build reads.
                tracing::warn!(%version, error = format!("{err:#}"), "the active model set cannot be read; retraining");
                *self.unreadable() = version;
                self.retrain.notify_one();
                Ok(false)
            }
        }
    }

    fn unreadable(&self) -> std::sync::MutexGuard<'_, String> {
        self.unreadable
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Creates or replaces items (all or nothing).
    pub async fn upsert_items(&self, items: Vec<Item>) -> Result<usize> {
        if items.is_empty() || items.len() > 1000 {
            return Err(Error::invalid("items", "between 1 and 1000 items per call"));
        }
        let mut violations = FieldViolations::new();
        let items: Vec<Item> = items
            .into_iter()
            .enumerate()
            .map(|(i, item)| normalise(item, i, &mut violations))
            .collect();
        if !violations.is_empty() {
            return Err(Error::InvalidArgument(violations));
        }
        let mut tx = self.store.db().begin_write().await?;
        self.store
            .upsert_items(&mut tx, &items, now_micros())
            .await?;
        tx.commit().await?;
        self.sync_catalog().await?;
        self.retrain.notify_one();
        Ok(items.len())
    }

    /// Deletes items; returns how many were live.
    pub async fn delete_items(&self, ids: &[String]) -> Result<u64> {
        if ids.is_empty() || ids.len() > 1000 {
            return Err(Error::invalid(
                "item_ids",
                "between 1 and 1000 ids per call",
            ));
        }
        let mut tx = self.store.db().begin_write().await?;
        let deleted = self.store.delete_items(&mut tx, ids, now_micros()).await?;
        tx.commit().await?;
        self.sync_catalog().await?;
        Ok(deleted)
    }

    /// Items by id, in the order asked (unknown ones left out).
    pub fn items(&self, ids: &[String]) -> Vec<Arc<Item>> {
        self.catalog.get_many(ids)
    }

    async fn user_state(&self, user_id: &str) -> Result<Arc<UserState>> {
        let limit = self.settings.serving.history_length;
        self.users
            .get_or_load(user_id, self.store.user_state(user_id, limit))
            .await
    }

    /// The blend, experiment and variant for `user_id` at `placement`.
    fn blend_for(&self, placement: Placement, user_id: &str) -> (Blend, String, String) {
        let serving = &self.settings.serving;
        let default = match placement {
            Placement::Home => &serving.home,
            Placement::ProductPage => &serving.product_page,
            Placement::Cart => &serving.cart,
            Placement::PostPurchase => &serving.post_purchase,
        };
        for exp in self
            .settings
            .experiments
            .iter()
            .filter(|e| e.placement == placement.name())
        {
            let weights: Vec<f64> = exp.variants.iter().map(|v| v.weight).collect();
            let total: f64 = weights.iter().sum();
            let weights: Vec<f64> = weights.iter().map(|w| w / total).collect();
            if let Some(index) = experiment::assign(
                &exp.key,
                exp.seed.as_deref(),
                user_id,
                &weights,
                exp.coverage,
                None,
            ) && let Some(variant) = exp.variants.get(index)
            {
                let blend = if variant.blend.is_empty() {
                    default.clone()
                } else {
                    variant.blend.clone()
                };
                return (blend, exp.key.clone(), variant.name.clone());
            }
        }
        (default.clone(), String::new(), String::new())
    }

    /// Recommendations for a placement.
    pub async fn recommend(&self, input: RecommendInput) -> Result<RecommendOutput> {
        let placement = input
            .placement
            .ok_or_else(|| Error::invalid("placement", "must be set"))?;
        let state = self.user_state(&input.user_id).await?;
        let (blend, experiment, variant) = self.blend_for(placement, &input.user_id);
        let models = self.models.load_full();
        let history: &[Touch] = if state.allowed { &state.history } else { &[] };
        let request = Request {
            placement,
            user_id: &input.user_id,
            history,
            use_user_state: state.allowed && !state.erased,
            context: &input.context,
            exclude: &input.exclude,
            page_size: input.page_size,
            boosts: &input.boosts,
            region: input.region.as_deref(),
            onboarding: &input.onboarding,
        };
        let items = serving::recommend(
            &models,
            &self.catalog,
            &blend,
            &self.settings.serving,
            &request,
        );
        let recommendation_id = uuid::Uuid::now_v7().to_string();
        self.defer(Deferred::Exposure(Exposure {
            recommendation_id: recommendation_id.clone(),
            user_id: input.user_id.clone(),
            placement: placement.name().to_owned(),
            experiment,
            variant: variant.clone(),
            model_version: models.version.clone(),
            items: items.iter().map(|r| r.item.item_id.clone()).collect(),
            created_at: now_micros(),
        }));
        if let Some(region) = input.region.filter(|r| !r.is_empty()) {
            self.defer(Deferred::Region(input.user_id, region));
        }
        Ok(RecommendOutput {
            items,
            model_version: models.version.clone(),
            variant,
            recommendation_id,
        })
    }

    fn defer(&self, write: Deferred) {
        if self.deferred.try_send(write).is_err() {
            // Logged at 1, 2, 4, 8, ... drops: a warning per drop would add log writes to
            // the overload that caused them.
            let dropped = self.deferred_dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(
                    dropped,
                    "deferred write buffer full, dropping exposures and region updates"
                );
            }
        }
    }

    /// Items similar to `item_id` (content and collaborative similarity, no personal data).
    pub fn similar(&self, item_id: &str, k: usize) -> Result<Vec<Recommendation>> {
        if self.catalog.get(item_id).is_none() {
            return Err(Error::NotFound(format!("item {item_id}")));
        }
        let mut blend = self.settings.serving.product_page.clone();
        blend.remove("rules");
        let context = [item_id.to_owned()];
        let request = Request {
            placement: Placement::ProductPage,
            user_id: "",
            history: &[],
            use_user_state: false,
            context: &context,
            exclude: &[],
            page_size: k,
            boosts: &[],
            region: None,
            onboarding: &[],
        };
        Ok(serving::recommend(
            &self.models.load(),
            &self.catalog,
            &blend,
            &self.settings.serving,
            &request,
        ))
    }

    /// Items bought together with `item_id`.
    pub fn bought_together(&self, item_id: &str, k: usize) -> Result<Vec<Associated>> {
        if self.catalog.get(item_id).is_none() {
            return Err(Error::NotFound(format!("item {item_id}")));
        }
        Ok(serving::bought_together(
            &self.models.load(),
            &self.catalog,
            item_id,
            k,
        ))
    }

    /// Popular or trending items.
    pub fn popular(&self, category: Option<&str>, trending: bool, k: usize) -> Vec<Recommendation> {
        serving::popular(&self.models.load(), &self.catalog, category, trending, k)
    }

    /// Stores behaviour as interactions inside the consumer's transaction; once it commits,
    /// the caller adds them to the users' cached state ([`Self::remember_interactions`]).
    pub async fn record_interactions(&self, tx: &mut Tx, rows: Vec<NewInteraction>) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        self.store.insert_interactions(tx, &rows).await?;
        Ok(())
    }

    /// Applies a consent decision (newer versions win) inside `tx`; once it commits, the
    /// caller forgets the user's cached state ([`Self::forget_users`]).
    pub async fn apply_consent(
        &self,
        tx: &mut Tx,
        user_id: &str,
        allowed: bool,
        version: i64,
    ) -> Result<()> {
        self.store
            .save_consent(tx, user_id, allowed, version)
            .await?;
        Ok(())
    }

    /// Adds committed interactions to their users' cached state (history), so the users'
    /// next requests see them without reading the state afresh.
    pub async fn remember_interactions(&self, rows: Vec<NewInteraction>) {
        let mut by_user: BTreeMap<String, Vec<Touch>> = BTreeMap::new();
        for row in rows {
            by_user.entry(row.user_id).or_default().push(Touch {
                item_id: row.item_id,
                kind: row.kind,
                weight: row.weight,
                at: row.occurred_at,
            });
        }
        let limit = self.settings.serving.history_length;
        for (user_id, touches) in by_user {
            self.users.record(&user_id, &touches, limit).await;
        }
    }

    /// Drops users' cached state (history, consent) after a committed change, so their next
    /// request reads it afresh.
    pub async fn forget_users(&self, user_ids: impl IntoIterator<Item = &str>) {
        for user_id in user_ids {
            self.users.forget(user_id).await;
        }
    }

    /// Starts a training run unless one is running; returns whether it started.
    pub fn train_in_background(&self) -> bool {
        if self.training.swap(true, Ordering::SeqCst) {
            return false;
        }
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(err) = this.train_once(&ProgressBar::hidden()).await {
                tracing::error!(
                    error = format!("{err:#}"),
                    "training failed; the previous model keeps serving"
                );
            }
            this.training.store(false, Ordering::SeqCst);
        });
        true
    }

    /// Trains a new model set from everything stored, saves it as the active version and
    /// swaps it in. Returns `None` when another replica holds the training lease.
    pub async fn train_once(&self, progress: &ProgressBar) -> Result<Option<ModelRow>> {
        let now = now_micros();
        if !self
            .store
            .take_lease(&self.holder, now, now + 3_600 * tailor_kit::time::SECOND)
            .await?
        {
            tracing::info!("another replica is training");
            return Ok(None);
        }
        let result = self.train_locked(progress).await;
        if let Err(err) = self.store.release_lease(&self.holder).await {
            tracing::warn!(error = %err, "releasing the training lease failed; it expires on its own");
        }
        result.map(Some)
    }

    async fn train_locked(&self, progress: &ProgressBar) -> Result<ModelRow> {
        self.sync_catalog().await?;
        progress.set_message("loading interactions");
        let input = TrainingInput {
            rows: self.store.training_rows().await?,
            catalog: self.catalog.all(),
            regions: self.store.regions().await?,
        };
        let settings = self.settings.training.clone();
        let bar = progress.clone();
        let mut set = tokio::task::spawn_blocking(move || train(&input, &settings, &bar))
            .await
            .map_err(anyhow::Error::from)??;
        set.rankings = Rankings::new(self.settings.serving.kept_rankings_mib);
        let row = ModelRow {
            version: set.version.clone(),
            created_at: set.trained_at,
            active: true,
            metrics: serde_json::to_string(&set.metrics).map_err(anyhow::Error::from)?,
            interactions: set.interactions as i64,
            users: set.users.len() as i64,
            items: set.items.len() as i64,
            train_seconds: set.train_seconds,
        };
        let set = Arc::new(set);
        let encoding = set.clone();
        let blob = tokio::task::spawn_blocking(move || encoding.to_bytes())
            .await
            .map_err(anyhow::Error::from)??;
        self.store
            .save_model(&row, &blob, self.settings.training.keep_versions)
            .await?;
        // One pointer swap: requests in flight finish on the old set, new ones get this one.
        self.models.store(set);
        self.users.forget_all();
        tracing::info!(version = %row.version, interactions = row.interactions, seconds = row.train_seconds, "model set trained and swapped in");
        Ok(row)
    }

    /// Model versions, newest first.
    pub async fn model_versions(
        &self,
        after: Option<Micros>,
        limit: usize,
    ) -> Result<Vec<ModelRow>> {
        self.store.models(after, limit).await
    }

    /// One page of a user's data: interactions, plus exposures and region on the first page.
    pub async fn export(
        &self,
        user_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ExportPage> {
        let interactions = self
            .store
            .user_interactions(user_id, after.unwrap_or(""), limit)
            .await?;
        let (exposures, region) = match after {
            None => self.store.user_extras(user_id).await?,
            Some(_) => (Vec::new(), None),
        };
        let next_after = (interactions.len() == limit)
            .then(|| interactions.last().map(|i| i.event_id.clone()))
            .flatten();
        Ok(ExportPage {
            interactions,
            exposures,
            region,
            next_after,
        })
    }

    /// Erases a user's data; what the active models learned from them stops being used at
    /// once and disappears with the next training, which is started now.
    pub async fn erase(&self, user_id: &str) -> Result<(Erased, bool)> {
        let known_to_models = self.models.load().users.get(user_id).is_some();
        let mut tx = self.store.db().begin_write().await?;
        let erased = self
            .store
            .erase_user(&mut tx, user_id, now_micros())
            .await?;
        tx.commit().await?;
        self.users.forget(user_id).await;
        if known_to_models {
            self.retrain.notify_one();
        }
        Ok((erased, known_to_models))
    }

    /// Background work until `stop`: catalog sync, model polling, scheduled and requested
    /// training (debounced), deferred writes.
    pub async fn run_background(self, stop: CancellationToken) {
        let rx = self.deferred_rx.lock().await.take();
        let writer =
            rx.map(|rx| tokio::spawn(write_deferred(self.store.clone(), rx, stop.clone())));
        if self.models.load().version == "none"
            && (!self.catalog.is_empty()
                || self.store.active_version().await.ok().flatten().is_none())
        {
            self.retrain.notify_one();
        }
        let training = &self.settings.training;
        let mut sync = tokio::time::interval(Duration::from_secs(2));
        let mut poll = tokio::time::interval(training.model_poll.max(Duration::from_secs(1)));
        let schedule = if training.interval.is_zero() {
            Duration::from_secs(86_400 * 365)
        } else {
            training.interval
        };
        let mut scheduled =
            tokio::time::interval_at(tokio::time::Instant::now() + schedule, schedule);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = sync.tick() => {
                    if let Err(err) = self.sync_catalog().await {
                        tracing::warn!(error = %err, "catalog sync failed");
                    }
                }
                _ = poll.tick() => {
                    if let Err(err) = self.load_active_model().await {
                        tracing::warn!(error = %err, "checking for a newer model failed");
                    }
                }
                _ = scheduled.tick() => {
                    self.train_in_background();
                }
                () = self.retrain.notified() => {
                    // Debounce: a burst of catalog writes or erasures leads to one run.
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(training.catalog_debounce) => {}
                    }
                    self.train_in_background();
                }
            }
        }
        if let Some(writer) = writer {
            let _ = writer.await;
        }
    }
}

/// Deferred writes gathered into one transaction: every commit costs SQLite a walk of the
/// writer's page cache, so a commit per request would cost more than the writes.
const DEFERRED_BATCH: usize = 1_000;
/// How long the first deferred write of a batch may wait for company.
const DEFERRED_LINGER: Duration = Duration::from_millis(100);

/// Writes exposures and regions in batches until `stop`, then flushes what is buffered.
async fn write_deferred(store: Store, mut rx: mpsc::Receiver<Deferred>, stop: CancellationToken) {
    let mut buffer = Vec::with_capacity(DEFERRED_BATCH);
    loop {
        let received = tokio::select! {
            biased;
            () = stop.cancelled() => 0,
            n = rx.recv_many(&mut buffer, DEFERRED_BATCH) => n,
        };
        if received == 0 {
            // Stopping, or every sender is gone: write what is left.
            while let Ok(write) = rx.try_recv() {
                buffer.push(write);
            }
            flush(&store, &mut buffer).await;
            return;
        }
        let deadline = tokio::time::Instant::now() + DEFERRED_LINGER;
        while buffer.len() < DEFERRED_BATCH && !stop.is_cancelled() {
            let room = DEFERRED_BATCH - buffer.len();
            match tokio::time::timeout_at(deadline, rx.recv_many(&mut buffer, room)).await {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
        flush(&store, &mut buffer).await;
    }
}

async fn flush(store: &Store, buffer: &mut Vec<Deferred>) {
    let mut exposures = Vec::new();
    let mut regions: BTreeMap<String, String> = BTreeMap::new();
    for write in buffer.drain(..) {
        match write {
            Deferred::Exposure(e) => exposures.push(e),
            Deferred::Region(user, region) => {
                regions.insert(user, region);
            }
        }
    }
    let regions: Vec<(String, String)> = regions.into_iter().collect();
    if let Err(err) = store.save_deferred(&exposures, &regions).await {
        tracing::warn!(
            error = %err,
            exposures = exposures.len(),
            regions = regions.len(),
            "saving exposures and regions failed"
        );
    }
}

/// Interest weight of a behaviour in training data, or `None` when it is no interest signal.
pub fn behavior_weight(
    kind: i32,
    rating: i32,
    weights: &crate::config::BehaviorWeights,
) -> Option<f32> {
    match kind {
        1 => Some(weights.view),
        3 => Some(weights.click),
        4 => Some(weights.add_to_cart),
        6 => Some(weights.purchase),
        7 if rating >= 4 => Some(weights.good_review),
        8 => Some(weights.share),
        _ => None,
    }
}
