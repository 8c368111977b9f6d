//! The profile service's use-cases: ingest behaviour, serve profiles, answer segment and
//! analytics queries, apply consent, erase and export users. They tie the rules in this
//! module's siblings to the store, the cache and the outbox.

use std::collections::HashSet;
use std::sync::Arc;

use tailor_kit::cache::Cache;
use tailor_kit::events::outbox::RelayWaker;
use tailor_kit::time::{DAY, Micros};

use super::analytics::{self, Cohort, Funnel, Trending};
use super::event::{BehaviorKind, RawEvent, Rejection, validate};
use super::ingest::{Ingest, Writer};
use super::kept::KeptProfiles;
use super::profile::{
    Attributes, Lifecycle, ProfileRecord, ProfileView, RecentItem, SentimentSummary,
};
use super::segment::Rule;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::events;
use crate::store::{Store, StoredEvent};

/// Outcome of one ingestion call.
#[derive(Debug, Default, PartialEq)]
pub struct IngestReport {
    /// Events newly stored.
    pub accepted: usize,
    /// Events already stored (or repeated within the call).
    pub duplicates: usize,
    /// Refused events: (position in the call, event id, reason).
    pub rejected: Vec<(usize, String, Rejection)>,
}

/// One page of a user's data export.
#[derive(Debug)]
pub struct ExportPage {
    /// The profile, on the first page only.
    pub profile: Option<ProfileView>,
    /// Events on this page.
    pub events: Vec<StoredEvent>,
    /// Where the next page starts (the last event id), if there is one.
    pub next_after: Option<String>,
}

/// Analytics windows are bounded so a query cannot scan the whole history.
const MAX_FUNNEL_WINDOW: Micros = 92 * DAY;
const MAX_DAU_WINDOW: Micros = 366 * DAY;
const MAX_TRENDING_WINDOW: Micros = 31 * DAY;
/// Profiles examined per segment page before returning a partial page.
const SEGMENT_SCAN_BUDGET: usize = 20_000;

/// The use-cases. Cheap to clone.
#[derive(Clone)]
pub struct Profiles {
    store: Store,
    cache: Cache<ProfileRecord>,
    settings: Arc<Settings>,
    relay: RelayWaker,
    ingest: Ingest,
    kept: KeptProfiles,
}

impl Profiles {
    /// Use-cases over `store`, caching profiles in `cache`, waking `relay` after commits;
    /// starts the ingestion writer (on the current Tokio runtime).
    pub fn new(
        store: Store,
        cache: Cache<ProfileRecord>,
        settings: Arc<Settings>,
        relay: RelayWaker,
    ) -> Self {
        let kept = KeptProfiles::new(settings.ingest.kept_profiles_mib << 20);
        let ingest = Ingest::start(Writer {
            store: store.clone(),
            cache: cache.clone(),
            kept: kept.clone(),
            settings: settings.clone(),
            relay: relay.clone(),
        });
        Self {
            store,
            cache,
            settings,
            relay,
            ingest,
            kept,
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Records a batch of raw events at `now`: each is validated on its own; the valid, new
    /// ones are stored, folded into their users' profiles and published, all in one
    /// transaction (shared with concurrent calls, see [`super::ingest`]), before this returns. `index_base` offsets reported positions (streams).
    pub async fn record(
        &self,
        raws: Vec<RawEvent>,
        acting_for: Option<&str>,
        now: Micros,
        index_base: usize,
    ) -> Result<IngestReport> {
        let max = self.settings.ingest.max_batch_size;
        if raws.len() > max {
            return Err(Error::invalid(
                "events",
                format!("at most {max} events per call"),
            ));
        }
        let mut report = IngestReport::default();
        let mut valid = Vec::with_capacity(raws.len());
        let mut seen = HashSet::with_capacity(raws.len());
        for (i, raw) in raws.into_iter().enumerate() {
            let event_id = raw.event_id.clone();
            match validate(raw, now, acting_for, &self.settings.ingest) {
                Ok(event) => {
                    if seen.insert((event.user_id.clone(), event.event_id.clone())) {
                        valid.push(event);
                    } else {
                        report.duplicates += 1;
                    }
                }
                Err(rejection) => report.rejected.push((index_base + i, event_id, rejection)),
            }
        }
        if valid.is_empty() {
            return Ok(report);
        }
        let written = self.ingest.write(valid, now).await?;
        report.accepted = written.accepted;
        report.duplicates += written.duplicates;
        Ok(report)
    }

    /// A user's stored record (from cache when possible); an empty one for unknown users.
    async fn record_of(&self, user_id: &str) -> Result<Arc<ProfileRecord>> {
        self.cache
            .get_or_load(user_id, async {
                Ok::<_, Error>(
                    self.store
                        .get_profile(user_id)
                        .await?
                        .unwrap_or_else(|| ProfileRecord::new(user_id)),
                )
            })
            .await
    }

    /// A user's profile as of `now`.
    pub async fn profile(&self, user_id: &str, now: Micros) -> Result<ProfileView> {
        Ok(self
            .record_of(user_id)
            .await?
            .view(now, &self.settings.model))
    }

    /// The items a user touched most recently, newest first (none after opting out).
    pub async fn recent_items(&self, user_id: &str, limit: usize) -> Result<Vec<RecentItem>> {
        let record = self.record_of(user_id).await?;
        if !record.personalization_allowed {
            return Ok(Vec::new());
        }
        Ok(record
            .state
            .as_ref()
            .map_or_else(Vec::new, |s| s.recent.iter().take(limit).cloned().collect()))
    }

    /// Review sentiment of an item.
    pub async fn item_sentiment(&self, item_id: &str) -> Result<SentimentSummary> {
        Ok(SentimentSummary::of(
            &self.store.item_sentiment(item_id).await?,
        ))
    }

    /// Writes the fields of `attributes` named in `mask` (all when empty).
    pub async fn update_attributes(
        &self,
        user_id: &str,
        attributes: Attributes,
        mask: &[String],
        now: Micros,
    ) -> Result<Attributes> {
        let mut tx = self.store.db().begin_write().await?;
        let current = self
            .store
            .load_profiles_for_update(&mut tx, &[user_id])
            .await?
            .remove(user_id)
            .and_then(|r| r.attributes)
            .unwrap_or_default();
        let all = mask.is_empty();
        let wants = |field: &str| all || mask.iter().any(|m| m == field);
        let merged = Attributes {
            gender: if wants("gender") {
                attributes.gender
            } else {
                current.gender
            },
            age_band: if wants("age_band") {
                attributes.age_band
            } else {
                current.age_band
            },
            region: if wants("region") {
                attributes.region
            } else {
                current.region
            },
            occupation: if wants("occupation") {
                attributes.occupation
            } else {
                current.occupation
            },
        };
        self.store
            .save_attributes(&mut tx, user_id, &merged, now)
            .await?;
        tx.commit().await?;
        self.forget(&[user_id]).await;
        Ok(merged)
    }

    /// Users matching `rule` in user id order after `after`: up to `page_size` of them, and
    /// where to continue (`None` at the end).
    pub async fn segment(
        &self,
        rule: &Rule,
        after: &str,
        page_size: usize,
        now: Micros,
    ) -> Result<(Vec<String>, Option<String>)> {
        let mut matches = Vec::new();
        let mut cursor = after.to_owned();
        let mut scanned = 0;
        loop {
            let chunk = self.store.scan_profiles(&cursor, 500).await?;
            let exhausted = chunk.len() < 500;
            for record in chunk {
                scanned += 1;
                cursor.clone_from(&record.user_id);
                if rule.matches(&record.view(now, &self.settings.model)) {
                    matches.push(record.user_id);
                    if matches.len() == page_size {
                        return Ok((matches, Some(cursor)));
                    }
                }
            }
            if exhausted {
                return Ok((matches, None));
            }
            if scanned >= SEGMENT_SCAN_BUDGET {
                // A partial page keeps each call's latency bounded; the token resumes the scan.
                return Ok((matches, Some(cursor)));
            }
        }
    }

    /// Ordered funnel over [start, end), overall and per top-level category.
    pub async fn funnel(
        &self,
        start: Micros,
        end: Micros,
        steps: &[BehaviorKind],
        category: Option<&str>,
    ) -> Result<(Funnel, Vec<(String, Funnel)>)> {
        check_window("time_range", start, end, MAX_FUNNEL_WINDOW)?;
        let rows = self.store.funnel_rows(start, end, steps, category).await?;
        Ok(analytics::funnel(rows, steps))
    }

    /// Daily active users over [start, end).
    pub async fn daily_active_users(
        &self,
        start: Micros,
        end: Micros,
    ) -> Result<Vec<(String, i64)>> {
        check_window("time_range", start, end, MAX_DAU_WINDOW)?;
        let counts = self.store.daily_active_users(start, end).await?;
        Ok(analytics::daily_series(&counts, start, end))
    }

    /// Retention of the cohorts first seen in [start, end), up to `max_day` days on.
    pub async fn retention(
        &self,
        start: Micros,
        end: Micros,
        max_day: i64,
        now: Micros,
    ) -> Result<Vec<Cohort>> {
        check_window("cohort_range", start, end, MAX_FUNNEL_WINDOW)?;
        let first_seen = self.store.first_seen_between(start, end).await?;
        let active = self
            .store
            .active_days(start, end + (max_day + 1) * DAY)
            .await?;
        Ok(analytics::retention(
            &first_seen,
            &active,
            max_day,
            now.div_euclid(DAY),
        ))
    }

    /// Top-level categories trending in [start, end) against the window before.
    pub async fn trending(
        &self,
        start: Micros,
        end: Micros,
        limit: usize,
    ) -> Result<Vec<Trending>> {
        check_window("time_range", start, end, MAX_TRENDING_WINDOW)?;
        let rows = self
            .store
            .category_activity(start - (end - start), start, end)
            .await?;
        Ok(analytics::trending(
            rows,
            &self.settings.model.weights,
            limit,
        ))
    }

    /// Applies a consent decision for personalization (newer versions win) inside `tx`.
    /// Withdrawing it forgets the behavioural data already derived; once `tx` commits, the
    /// caller drops the cached profile ([`Self::forget_cached`]).
    pub async fn apply_consent(
        &self,
        tx: &mut crate::store::Tx,
        user_id: &str,
        allowed: bool,
        version: i64,
        now: Micros,
    ) -> Result<()> {
        if !self
            .store
            .save_consent(tx, user_id, allowed, version, now)
            .await?
        {
            return Ok(());
        }
        if !allowed {
            let mut records = self.store.load_profiles_for_update(tx, &[user_id]).await?;
            if let Some(record) = records.get_mut(user_id) {
                if let Some(state) = record.state.as_mut() {
                    state.forget_behavioural();
                }
                self.store.save_profiles(tx, &[&*record], now).await?;
            }
        }
        Ok(())
    }

    /// Drops the cached copy of a user's profile, after a transaction that changed it
    /// committed outside these use-cases (the consent consumer's).
    pub async fn forget_cached(&self, user_id: &str) {
        self.forget(&[user_id]).await;
    }

    /// Drops every copy of `users`' profiles held in memory (the read cache and the
    /// writer's), after a commit that changed them: erasure and withdrawn consent must not
    /// leave data behind.
    async fn forget(&self, users: &[&str]) {
        self.kept.forget(users);
        self.cache.invalidate(users).await;
    }

    /// Re-examines profiles whose lifecycle segment may have changed with time alone, and
    /// publishes the changes. Returns how many changed.
    pub async fn sweep_lifecycles(&self, now: Micros) -> Result<usize> {
        let model = &self.settings.model;
        let lc = &model.lifecycle;
        let mut changed = 0;
        loop {
            let users = self
                .store
                .lifecycle_candidates(now, (lc.new_days, lc.active_days, lc.churn_days), 500)
                .await?;
            if users.is_empty() {
                return Ok(changed);
            }
            let user_refs: Vec<&str> = users.iter().map(String::as_str).collect();
            let mut tx = self.store.db().begin_write().await?;
            let mut records = self
                .store
                .load_profiles_for_update(&mut tx, &user_refs)
                .await?;
            let mut touched = Vec::new();
            for record in records.values_mut() {
                let state = record.state.clone().unwrap_or_default();
                let segment =
                    Lifecycle::at(state.first_seen_at, state.last_event_at, now, model).as_str();
                if record.lifecycle != segment {
                    events::enqueue_segment_change(
                        &mut tx,
                        &record.user_id,
                        &record.lifecycle,
                        segment,
                    )
                    .await?;
                    segment.clone_into(&mut record.lifecycle);
                    touched.push(record.user_id.clone());
                }
            }
            let to_save: Vec<&ProfileRecord> = records.values().collect();
            self.store.save_profiles(&mut tx, &to_save, now).await?;
            tx.commit().await?;
            let keys: Vec<&str> = touched.iter().map(String::as_str).collect();
            self.forget(&keys).await;
            self.relay.wake();
            changed += touched.len();
            if touched.is_empty() {
                // Candidates whose segment is already right would come back forever.
                return Ok(changed);
            }
        }
    }

    /// One page of everything stored about a user: the profile first, then events.
    pub async fn export(
        &self,
        user_id: &str,
        after: Option<&str>,
        page_size: usize,
        now: Micros,
    ) -> Result<ExportPage> {
        let profile = match after {
            None => self
                .store
                .get_profile(user_id)
                .await?
                .map(|r| r.view(now, &self.settings.model)),
            Some(_) => None,
        };
        let events = self
            .store
            .user_events(user_id, after.unwrap_or(""), page_size)
            .await?;
        let next_after = (events.len() == page_size)
            .then(|| events.last().map(|e| e.event.event_id.clone()))
            .flatten();
        Ok(ExportPage {
            profile,
            events,
            next_after,
        })
    }

    /// Erases a user; returns (events, profiles) removed.
    pub async fn erase(&self, user_id: &str) -> Result<(u64, u64)> {
        let mut tx = self.store.db().begin_write().await?;
        let removed = self.store.erase_user(&mut tx, user_id).await?;
        tx.commit().await?;
        self.forget(&[user_id]).await;
        Ok(removed)
    }
}

fn check_window(field: &str, start: Micros, end: Micros, max: Micros) -> Result<()> {
    if end <= start {
        return Err(Error::invalid(field, "end_time must be after start_time"));
    }
    if end - start > max {
        return Err(Error::invalid(
            field,
            format!("must span at most {} days", max / DAY),
        ));
    }
    Ok(())
}
