//! The profile service's SQL, one implementation for SQLite and PostgreSQL (`$n`
//! placeholders, portable types: integers, floats, text, blobs; times in microseconds).
//! Functions that belong to a use-case's transaction take it; reads take the pool.

use std::collections::{HashMap, HashSet};

use sqlx::any::AnyRow;
use sqlx::{Any, AssertSqlSafe, Row as _, Transaction};
use tailor_kit::db::{Db, statement_chunks};
use tailor_kit::time::{DAY, Micros};

use crate::domain::analytics::FunnelRow;
use crate::domain::event::{BehaviorEvent, BehaviorKind, Money};
use crate::domain::profile::{Attributes, ProfileRecord, ProfileState, SentimentStats, stored};
use crate::error::{Error, Result};

/// Separates tags in the `tags` column (the ASCII unit separator never appears in tags).
const TAG_SEPARATOR: char = '\u{1f}';

/// A database transaction of this service.
pub type Tx = Transaction<'static, Any>;

/// Access to the profile service's tables.
#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
}

/// Changes to one item's review sums.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SentimentDelta {
    /// Reviews added.
    pub reviews: i64,
    /// Σ polarity added.
    pub polarity_sum: f64,
    /// Positive reviews added.
    pub positive: i64,
    /// Negative reviews added.
    pub negative: i64,
    /// Σ ratings added.
    pub rating_sum: i64,
}

/// A stored event with its receipt time (exports).
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// The event.
    pub event: BehaviorEvent,
    /// When the service stored it.
    pub received_at: Micros,
}

/// The indexed columns of a profile row besides its key, as a write derives them from the
/// record: what decides whether the write must touch the row's indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedColumns {
    lifecycle: String,
    first_seen_at: Micros,
    /// The day (since the epoch) of the latest event: the lifecycle sweep needs no finer
    /// grain, and it changes at most once a day where the time changes with every event.
    last_event_day: i64,
}

impl IndexedColumns {
    /// The columns as `record` would be written.
    pub fn of(record: &ProfileRecord) -> Self {
        let (first_seen_at, last_event_at) = record
            .state
            .as_ref()
            .map_or((0, 0), |s| (s.first_seen_at, s.last_event_at));
        Self {
            lifecycle: record.lifecycle.clone(),
            first_seen_at,
            last_event_day: last_event_at.div_euclid(DAY),
        }
    }
}

const EVENT_COLUMNS: &str = "user_id, event_id, kind, occurred_at, item_id, category, brand, tags, query, \
     quantity, price_minor, currency, discounted, rating, review_text, session_id, received_at";
const EVENT_COLUMN_COUNT: usize = 17;
const PROFILE_COLUMNS: &str = "user_id, state, gender, age_band, region, occupation, lifecycle, \
     personalization_allowed, consent_version, revision";

impl Store {
    /// A store over `db`.
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Inserts events, skipping those already stored; returns the (user, event id) pairs
    /// that were new.
    #[tracing::instrument(name = "db", skip_all, fields(otel.kind = "client", db.operation = "insert_events"))]
    pub async fn insert_events(
        &self,
        tx: &mut Tx,
        events: &[&BehaviorEvent],
        received_at: Micros,
    ) -> Result<HashSet<(String, String)>> {
        let mut inserted = HashSet::with_capacity(events.len());
        for chunk in statement_chunks(events, EVENT_COLUMN_COUNT) {
            let query =
                self.insert_events_query(chunk, received_at, " RETURNING user_id, event_id");
            for row in query.fetch_all(&mut **tx).await? {
                inserted.insert((row.try_get(0)?, row.try_get(1)?));
            }
        }
        Ok(inserted)
    }

    /// Inserts events, skipping those already stored; returns how many were new. Cheaper than
    /// [`Self::insert_events`] when they all are: no row comes back.
    #[tracing::instrument(name = "db", skip_all, fields(otel.kind = "client", db.operation = "insert_new_events"))]
    pub async fn insert_new_events(
        &self,
        tx: &mut Tx,
        events: &[&BehaviorEvent],
        received_at: Micros,
    ) -> Result<usize> {
        let mut inserted = 0;
        for chunk in statement_chunks(events, EVENT_COLUMN_COUNT) {
            let query = self.insert_events_query(chunk, received_at, "");
            inserted += query.execute(&mut **tx).await?.rows_affected() as usize;
        }
        Ok(inserted)
    }

    /// One statement inserting `events` that are not stored yet, ending with `returning`.
    fn insert_events_query<'q>(
        &self,
        events: &'q [&BehaviorEvent],
        received_at: Micros,
        returning: &str,
    ) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
        let backend = self.db.backend();
        let sql = format!(
            "{} behavior_event ({EVENT_COLUMNS}) VALUES {} \
             ON CONFLICT (user_id, event_id) DO NOTHING{returning}",
            backend.insert_into(),
            backend.values_placeholders(events.len(), EVENT_COLUMN_COUNT, 1)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for e in events {
            query = query
                .bind(&e.user_id)
                .bind(&e.event_id)
                .bind(i64::from(e.kind.number()))
                .bind(e.occurred_at)
                .bind(e.item_id.as_deref())
                .bind(e.category.as_deref())
                .bind(e.brand.as_deref())
                .bind((!e.tags.is_empty()).then(|| e.tags.join(&TAG_SEPARATOR.to_string())))
                .bind(e.query.as_deref())
                .bind(i64::from(e.quantity))
                .bind(e.unit_price.as_ref().map(|p| p.amount_minor))
                .bind(e.unit_price.as_ref().map(|p| p.currency.as_str()))
                .bind(i64::from(e.discounted))
                .bind(e.rating.map(i64::from))
                .bind(e.review_text.as_deref())
                .bind(e.session_id.as_deref())
                .bind(received_at);
        }
        query
    }

    /// Revisions of the profiles of `user_ids` that exist, locking them for update on
    /// PostgreSQL: what a writer needs to tell which of its in-memory copies are current.
    #[tracing::instrument(name = "db", skip_all, fields(otel.kind = "client", db.operation = "lock_profile_revisions"))]
    pub async fn lock_profile_revisions(
        &self,
        tx: &mut Tx,
        user_ids: &[&str],
    ) -> Result<HashMap<String, i64>> {
        let rows = self
            .locked_profile_rows(tx, user_ids, "user_id, revision")
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect()
    }

    /// Profiles of `user_ids` that exist, locked for update on PostgreSQL.
    #[tracing::instrument(name = "db", skip_all, fields(otel.kind = "client", db.operation = "load_profiles_for_update"))]
    pub async fn load_profiles_for_update(
        &self,
        tx: &mut Tx,
        user_ids: &[&str],
    ) -> Result<HashMap<String, ProfileRecord>> {
        let rows = self
            .locked_profile_rows(tx, user_ids, PROFILE_COLUMNS)
            .await?;
        rows.iter()
            .map(|row| {
                let record = profile_from_row(row)?;
                Ok((record.user_id.clone(), record))
            })
            .collect()
    }

    /// `columns` of the profile rows of `user_ids` that exist, locked for update on PostgreSQL.
    async fn locked_profile_rows(
        &self,
        tx: &mut Tx,
        user_ids: &[&str],
        columns: &str,
    ) -> Result<Vec<AnyRow>> {
        let mut rows = Vec::with_capacity(user_ids.len());
        for chunk in statement_chunks(user_ids, 1) {
            let sql = format!(
                // Rows lock in the order returned: by key, so two batches sharing users take
                // their locks in the same order (heap order would let them deadlock).
                "SELECT {columns} FROM user_profile WHERE user_id IN ({}) ORDER BY user_id{}",
                self.db.backend().list_placeholders(chunk.len(), 1),
                self.db.for_update()
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for user in chunk {
                query = query.bind(*user);
            }
            rows.extend(query.fetch_all(&mut **tx).await?);
        }
        Ok(rows)
    }

    /// Writes profiles' derived state (attributes and consent are left as they are), each as
    /// the next revision of the one it was read at. Fails with [`Error::Conflict`] when
    /// another writer wrote one of them since (then nothing should be committed).
    pub async fn save_profiles(
        &self,
        tx: &mut Tx,
        records: &[&ProfileRecord],
        now: Micros,
    ) -> Result<()> {
        let states: Vec<Vec<u8>> = records.iter().map(|r| r.encoded_state()).collect();
        let profiles: Vec<(&ProfileRecord, &[u8])> = records
            .iter()
            .zip(&states)
            .map(|(record, state)| (*record, state.as_slice()))
            .collect();
        self.save_profiles_over(tx, &profiles, &HashMap::new(), now)
            .await
    }

    /// [`Self::save_profiles`] of profiles whose states are encoded already
    /// ([`ProfileRecord::encoded_state`]), over rows whose indexed columns were `stored` (by
    /// user): a profile whose indexed columns stay as they were is written without assigning
    /// them, which leaves their indexes alone (SQLite rewrites an index entry whenever its
    /// column is assigned, even to the value it had; PostgreSQL can then update the row in
    /// place).
    #[tracing::instrument(name = "db", skip_all, fields(otel.kind = "client", db.operation = "save_profiles"))]
    pub async fn save_profiles_over(
        &self,
        tx: &mut Tx,
        profiles: &[(&ProfileRecord, &[u8])],
        stored: &HashMap<String, IndexedColumns>,
        now: Micros,
    ) -> Result<()> {
        let (indexed_same, indexed_changed): (Vec<_>, Vec<_>) =
            profiles.iter().partition(|(record, _)| {
                stored.get(&record.user_id) == Some(&IndexedColumns::of(record))
            });
        self.write_profiles(tx, &indexed_same, "", now).await?;
        self.write_profiles(
            tx,
            &indexed_changed,
            "lifecycle = excluded.lifecycle, first_seen_at = excluded.first_seen_at, \
             last_event_day = excluded.last_event_day, ",
            now,
        )
        .await
    }

    /// Upserts `profiles` (with their encoded states) as the next revisions of the stored
    /// rows, assigning the state, the unindexed columns and `set_indexed` on conflict.
    async fn write_profiles(
        &self,
        tx: &mut Tx,
        profiles: &[&(&ProfileRecord, &[u8])],
        set_indexed: &str,
        now: Micros,
    ) -> Result<()> {
        const COLUMNS: usize = 8;
        for chunk in statement_chunks(profiles, COLUMNS) {
            let backend = self.db.backend();
            let sql = format!(
                "{} user_profile (user_id, state, lifecycle, first_seen_at, last_event_at, \
                 last_event_day, updated_at, revision) \
                 VALUES {} ON CONFLICT (user_id) DO UPDATE SET state = excluded.state, \
                 {set_indexed}last_event_at = excluded.last_event_at, \
                 updated_at = excluded.updated_at, revision = excluded.revision \
                 WHERE user_profile.revision = excluded.revision - 1",
                backend.insert_into(),
                backend.values_placeholders(chunk.len(), COLUMNS, 1)
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for (record, state) in chunk {
                let indexed = IndexedColumns::of(record);
                let last_event = record.state.as_ref().map_or(0, |s| s.last_event_at);
                query = query
                    .bind(&record.user_id)
                    .bind(*state)
                    .bind(&record.lifecycle)
                    .bind(indexed.first_seen_at)
                    .bind(last_event)
                    .bind(indexed.last_event_day)
                    .bind(now)
                    .bind(record.revision + 1);
            }
            let written = query.execute(&mut **tx).await?.rows_affected();
            if written != chunk.len() as u64 {
                return Err(Error::Conflict(format!(
                    "{} of {} profiles were written by another writer meanwhile",
                    chunk.len() as u64 - written,
                    chunk.len()
                )));
            }
        }
        Ok(())
    }

    /// Typical unit price (mean of purchases so far) of each category known.
    #[tracing::instrument(name = "db", skip_all, fields(otel.kind = "client", db.operation = "typical_prices"))]
    pub async fn typical_prices(
        &self,
        tx: &mut Tx,
        categories: &[&str],
    ) -> Result<HashMap<String, f64>> {
        let mut out = HashMap::new();
        for chunk in statement_chunks(categories, 1) {
            let sql = format!(
                "SELECT category, purchases, price_sum_minor FROM category_price WHERE category IN ({})",
                self.db.backend().list_placeholders(chunk.len(), 1)
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for c in chunk {
                query = query.bind(*c);
            }
            for row in query.fetch_all(&mut **tx).await? {
                let purchases: i64 = row.try_get(1)?;
                let sum: i64 = row.try_get(2)?;
                if purchases > 0 {
                    out.insert(row.try_get(0)?, sum as f64 / purchases as f64);
                }
            }
        }
        Ok(out)
    }

    /// Adds (purchases, Σ unit price) to categories' price statistics.
    #[tracing::instrument(name = "db", skip_all, fields(otel.kind = "client", db.operation = "add_category_prices"))]
    pub async fn add_category_prices(
        &self,
        tx: &mut Tx,
        deltas: &[(String, i64, i64)],
    ) -> Result<()> {
        let backend = self.db.backend();
        for chunk in statement_chunks(deltas, 3) {
            let sql = format!(
                "{} category_price (category, purchases, price_sum_minor) VALUES {} \
                 ON CONFLICT (category) DO UPDATE SET purchases = category_price.purchases + excluded.purchases, \
                 price_sum_minor = category_price.price_sum_minor + excluded.price_sum_minor",
                backend.insert_into(),
                backend.values_placeholders(chunk.len(), 3, 1)
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for (category, n, sum) in chunk {
                query = query.bind(category).bind(*n).bind(*sum);
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Adds review sums to items.
    #[tracing::instrument(name = "db", skip_all, fields(otel.kind = "client", db.operation = "add_item_sentiment"))]
    pub async fn add_item_sentiment(
        &self,
        tx: &mut Tx,
        deltas: &[(String, SentimentDelta)],
    ) -> Result<()> {
        for chunk in statement_chunks(deltas, 6) {
            let backend = self.db.backend();
            let sql = format!(
                "{} item_sentiment (item_id, reviews, polarity_sum, positive, negative, rating_sum) \
                 VALUES {} ON CONFLICT (item_id) DO UPDATE SET reviews = item_sentiment.reviews + excluded.reviews, \
                 polarity_sum = item_sentiment.polarity_sum + excluded.polarity_sum, \
                 positive = item_sentiment.positive + excluded.positive, \
                 negative = item_sentiment.negative + excluded.negative, \
                 rating_sum = item_sentiment.rating_sum + excluded.rating_sum",
                backend.insert_into(),
                backend.values_placeholders(chunk.len(), 6, 1)
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for (item, d) in chunk {
                query = query
                    .bind(item)
                    .bind(d.reviews)
                    .bind(d.polarity_sum)
                    .bind(d.positive)
                    .bind(d.negative)
                    .bind(d.rating_sum);
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// One user's profile, if any.
    #[tracing::instrument(name = "db", skip_all, fields(otel.kind = "client", db.operation = "get_profile"))]
    pub async fn get_profile(&self, user_id: &str) -> Result<Option<ProfileRecord>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {PROFILE_COLUMNS} FROM user_profile WHERE user_id = $1"
        )))
        .bind(user_id)
        .fetch_optional(self.db.pool())
        .await?;
        row.as_ref().map(profile_from_row).transpose()
    }

    /// Review sums of one item.
    #[tracing::instrument(name = "db", skip_all, fields(otel.kind = "client", db.operation = "item_sentiment"))]
    pub async fn item_sentiment(&self, item_id: &str) -> Result<SentimentStats> {
        let row = sqlx::query(
            "SELECT reviews, polarity_sum, positive, negative, rating_sum FROM item_sentiment WHERE item_id = $1",
        )
        .bind(item_id)
        .fetch_optional(self.db.pool())
        .await?;
        Ok(match row {
            Some(row) => SentimentStats {
                reviews: row.try_get(0)?,
                polarity_sum: row.try_get(1)?,
                positive: row.try_get(2)?,
                negative: row.try_get(3)?,
                rating_sum: row.try_get(4)?,
            },
            None => SentimentStats::default(),
        })
    }

    /// Writes a user's attributes, creating the profile row if needed.
    #[tracing::instrument(name = "db", skip_all, fields(otel.kind = "client", db.operation = "save_attributes"))]
    pub async fn save_attributes(
        &self,
        tx: &mut Tx,
        user_id: &str,
        a: &Attributes,
        now: Micros,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO user_profile (user_id, state, gender, age_band, region, occupation, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (user_id) DO UPDATE SET \
             gender = excluded.gender, age_band = excluded.age_band, region = excluded.region, \
             occupation = excluded.occupation, updated_at = excluded.updated_at, \
             revision = user_profile.revision + 1",
        )
        .bind(user_id)
        .bind(stored::encode(&ProfileState::default()))
        .bind(i64::from(a.gender))
        .bind(i64::from(a.age_band))
        .bind(&a.region)
        .bind(&a.occupation)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Records a consent decision unless a newer one was already applied; returns whether
    /// it was applied.
    #[tracing::instrument(name = "db", skip_all, fields(otel.kind = "client", db.operation = "save_consent"))]
    pub async fn save_consent(
        &self,
        tx: &mut Tx,
        user_id: &str,
        allowed: bool,
        version: i64,
        now: Micros,
    ) -> Result<bool> {
        let applied = sqlx::query(
            "INSERT INTO user_profile (user_id, state, personalization_allowed, consent_version, updated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id) DO UPDATE SET \
             personalization_allowed = excluded.personalization_allowed, \
             consent_version = excluded.consent_version, updated_at = excluded.updated_at, \
             revision = user_profile.revision + 1 \
             WHERE user_profile.consent_version < excluded.consent_version",
        )
        .bind(user_id)
        .bind(stored::encode(&ProfileState::default()))
        .bind(i64::from(allowed))
        .bind(version)
        .bind(now)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        Ok(applied > 0)
    }

    /// Profiles in user id order after `after`, at most `limit`.
    #[tracing::instrument(name = "db", skip_all, fields(otel.kind = "client", db.operation = "scan_profiles"))]
    pub async fn scan_profiles(&self, after: &str, limit: usize) -> Result<Vec<ProfileRecord>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {PROFILE_COLUMNS} FROM user_profile WHERE user_id > $1 ORDER BY user_id LIMIT CAST($2 AS BIGINT)"
        )))
        .bind(after)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(profile_from_row).collect()
    }

    /// Users whose stored segment may be outdated at `now` because time passed: new users
    /// past `new_days`, active ones idle past `active_days`, at-risk ones idle past
    /// `churn_days`.
    #[tracing::instrument(name = "db", skip_all, fields(otel.kind = "client", db.operation = "lifecycle_candidates"))]
    pub async fn lifecycle_candidates(
        &self,
        now: Micros,
        days: (u32, u32, u32),
        limit: usize,
    ) -> Result<Vec<String>> {
        let (new_days, active_days, churn_days) = days;
        let mut query = sqlx::query(
            "SELECT user_id FROM user_profile WHERE first_seen_at > 0 AND ( \
               (lifecycle = 'new' AND first_seen_at < $1) \
               OR (lifecycle IN ('new', 'active') AND last_event_day <= $3 AND last_event_at < $2) \
               OR (lifecycle IN ('new', 'active', 'at_risk') AND last_event_day <= $5 \
                   AND last_event_at < $4)) \
             ORDER BY user_id LIMIT CAST($6 AS BIGINT)",
        )
        .bind(now - i64::from(new_days) * DAY);
        // The index narrows by day (an event before the cutoff is on its day or earlier);
        // the time decides.
        for days in [active_days, churn_days] {
            let cutoff = now - i64::from(days) * DAY;
            query = query.bind(cutoff).bind(cutoff.div_euclid(DAY));
        }
        let rows = query
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    /// Events in [start, end) of the funnel's kinds (optionally under a category path),
    /// ordered by user, item and time.
    #[tracing::instrument(name = "db", skip_all, fields(otel.kind = "client", db.operation = "funnel_rows"))]
    pub async fn funnel_rows(
        &self,
        start: Micros,
        end: Micros,
        kinds: &[BehaviorKind],
        category: Option<&str>,
    ) -> Result<Vec<FunnelRow>> {
        let backend = self.db.backend();
        let mut sql = format!(
            "SELECT user_id, item_id, kind, category FROM behavior_event \
             WHERE occurred_at >= {} AND occurred_at < {} AND item_id IS NOT NULL AND kind IN ({})",
            backend.placeholder(1),
            backend.placeholder(2),
            backend.list_placeholders(kinds.len(), 3),
        );
        let next = 3 + kinds.len();
        if category.is_some() {
            sql.push_str(&format!(
                " AND (category = {} OR category LIKE {})",
                backend.placeholder(next),
                backend.placeholder(next + 1)
            ));
        }
        sql.push_str(" ORDER BY user_id, item_id, occurred_at, kind");
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(start).bind(end);
        for k in kinds {
            query = query.bind(i64::from(k.number()));
        }
        if let Some(category) = category {
            let escaped = category.replace(['%', '_'], "");
            query = query.bind(category.to_owned()).bind(format!("{escaped}/%"));
        }
        let rows = query.fetch_all(self.db.pool()).await?;
        rows.iter()
            .map(|r| {
                let kind: i64 = r.try_get(2)?;
                Ok(FunnelRow {
                    user_id: r.try_get(0)?,
                    item_id: r.try_get::<Option<String>, _>(1)?.unwrap_or_default(),
                    kind: BehaviorKind::from_number(kind).ok_or_else(|| {
                        anyhow::anyhow!("stored behaviour kind {kind} is unknown")
                    })?,
                    category: r.try_get::<Option<String>, _>(3)?.unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Distinct active users per epoch day in [start, end).
    #[tracing::instrument(name = "db", skip_all, fields(otel.kind = "client", db.operation = "daily_active_users"))]
    pub async fn daily_active_users(
        &self,
        start: Micros,
        end: Micros,
    ) -> Result<HashMap<i64, i64>> {
        let rows = sqlx::query(
            "SELECT occurred_at / $1 AS day, COUNT(DISTINCT user_id) FROM behavior_event \
             WHERE occurred_at >= $2 AND occurred_at < $3 GROUP BY 1",
        )
        .bind(DAY)
        .bind(start)
        .bind(end)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Users first seen in [start, end), with their first epoch day.
    #[tracing::instrument(name = "db", skip_all, fields(otel.kind = "client", db.operation = "first_seen_between"))]
    pub async fn first_seen_between(
        &self,
        start: Micros,
        end: Micros,
    ) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT user_id, first_seen_at / $1 FROM user_profile \
             WHERE first_seen_at >= $2 AND first_seen_at < $3 AND first_seen_at > 0",
        )
        .bind(DAY)
        .bind(start)
        .bind(end)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Every (user, epoch day) with activity in [start, end).
    #[tracing::instrument(name = "db", skip_all, fields(otel.kind = "client", db.operation = "active_days"))]
    pub async fn active_days(&self, start: Micros, end: Micros) -> Result<HashSet<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT DISTINCT user_id, occurred_at / $1 FROM behavior_event \
             WHERE occurred_at >= $2 AND occurred_at < $3",
        )
        .bind(DAY)
        .bind(start)
        .bind(end)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Event counts per (category, kind) in [previous_start, end), split at `start`.
    #[tracing::instrument(name = "db", skip_all, fields(otel.kind = "client", db.operation = "category_activity"))]
    pub async fn category_activity(
        &self,
        previous_start: Micros,
        start: Micros,
        end: Micros,
    ) -> Result<Vec<(String, BehaviorKind, bool, i64)>> {
        let rows = sqlx::query(
            "SELECT category, kind, CASE WHEN occurred_at >= $1 THEN 1 ELSE 0 END AS current_window, COUNT(*) \
             FROM behavior_event WHERE occurred_at >= $2 AND occurred_at < $3 AND category IS NOT NULL \
             GROUP BY 1, 2, 3",
        )
        .bind(start)
        .bind(previous_start)
        .bind(end)
        .fetch_all(self.db.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let kind: i64 = r.try_get(1)?;
            let Some(kind) = BehaviorKind::from_number(kind) else {
                continue;
            };
            let current: i64 = r.try_get(2)?;
            out.push((r.try_get(0)?, kind, current == 1, r.try_get(3)?));
        }
        Ok(out)
    }

    /// A page of a user's events in event id order, after `after`.
    #[tracing::instrument(name = "db", skip_all, fields(otel.kind = "client", db.operation = "user_events"))]
    pub async fn user_events(
        &self,
        user_id: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<StoredEvent>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {EVENT_COLUMNS} FROM behavior_event WHERE user_id = $1 AND event_id > $2 \
             ORDER BY event_id LIMIT CAST($3 AS BIGINT)"
        )))
        .bind(user_id)
        .bind(after)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    /// Deletes everything about a user; returns (events, profiles) removed.
    #[tracing::instrument(name = "db", skip_all, fields(otel.kind = "client", db.operation = "erase_user"))]
    pub async fn erase_user(&self, tx: &mut Tx, user_id: &str) -> Result<(u64, u64)> {
        let events = sqlx::query("DELETE FROM behavior_event WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut **tx)
            .await?
            .rows_affected();
        let profiles = sqlx::query("DELETE FROM user_profile WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut **tx)
            .await?
            .rows_affected();
        Ok((events, profiles))
    }
}

fn profile_from_row(row: &AnyRow) -> Result<ProfileRecord> {
    let state: Vec<u8> = row.try_get("state")?;
    let state = stored::decode(&state)
        .map_err(|err| anyhow::anyhow!("stored profile state is corrupt: {err}"))?;
    let narrow = |name: &str| -> Result<i32> {
        let value: i64 = row.try_get(name)?;
        Ok(i32::try_from(value).unwrap_or(0))
    };
    Ok(ProfileRecord {
        user_id: row.try_get("user_id")?,
        state: Some(state),
        attributes: Some(Attributes {
            gender: narrow("gender")?,
            age_band: narrow("age_band")?,
            region: row.try_get("region")?,
            occupation: row.try_get("occupation")?,
        }),
        lifecycle: row.try_get("lifecycle")?,
        personalization_allowed: row.try_get::<i64, _>("personalization_allowed")? != 0,
        consent_version: row.try_get("consent_version")?,
        revision: row.try_get("revision")?,
    })
}

fn event_from_row(row: &AnyRow) -> Result<StoredEvent> {
    let kind: i64 = row.try_get("kind")?;
    let price: Option<i64> = row.try_get("price_minor")?;
    let currency: Option<String> = row.try_get("currency")?;
    let tags: Option<String> = row.try_get("tags")?;
    let rating: Option<i64> = row.try_get("rating")?;
    Ok(StoredEvent {
        event: BehaviorEvent {
            event_id: row.try_get("event_id")?,
            user_id: row.try_get("user_id")?,
            kind: BehaviorKind::from_number(kind)
                .ok_or_else(|| anyhow::anyhow!("stored behaviour kind {kind} is unknown"))?,
            occurred_at: row.try_get("occurred_at")?,
            item_id: row.try_get("item_id")?,
            category: row.try_get("category")?,
            brand: row.try_get("brand")?,
            tags: tags
                .map(|t| t.split(TAG_SEPARATOR).map(str::to_owned).collect())
                .unwrap_or_default(),
            query: row.try_get("query")?,
            quantity: i32::try_from(row.try_get::<i64, _>("quantity")?).unwrap_or(1),
            unit_price: price.zip(currency).map(|(amount_minor, currency)| Money {
                amount_minor,
                currency,
            }),
            discounted: row.try_get::<i64, _>("discounted")? != 0,
            rating: rating.and_then(|r| u8::try_from(r).ok()),
            review_text: row.try_get("review_text")?,
            session_id: row.try_get("session_id")?,
        },
        received_at: row.try_get("received_at")?,
    })
}
