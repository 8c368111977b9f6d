//! The recommend service's SQL, one implementation for SQLite and PostgreSQL.

use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::{Any, AssertSqlSafe, Row as _, Transaction};
use tailor_kit::db::{Db, statement_chunks};
use tailor_kit::time::Micros;

use crate::domain::Touch;
use crate::domain::catalog::{Item, Money};
use crate::domain::models::TrainingRow;
use crate::error::Result;

/// A transaction of this service.
pub type Tx = Transaction<'static, Any>;

const SEPARATOR: char = '\u{1f}';
const ITEM_COLUMNS: &str = "item_id, kind, title, description, category, brand, tags, price_minor, currency, \
     available, stock, embedding, image_url, deleted, updated_at";
const ITEM_COLUMN_COUNT: usize = 15;

/// One interaction to store.
#[derive(Debug, Clone)]
pub struct NewInteraction {
    /// User.
    pub user_id: String,
    /// Event id (dedup key per user).
    pub event_id: String,
    /// Item.
    pub item_id: String,
    /// Behaviour number.
    pub kind: i32,
    /// Interest weight.
    pub weight: f32,
    /// When.
    pub occurred_at: Micros,
}

/// One exposure to store.
#[derive(Debug, Clone)]
pub struct Exposure {
    /// Id returned to the caller.
    pub recommendation_id: String,
    /// User.
    pub user_id: String,
    /// Placement name.
    pub placement: String,
    /// Experiment key ("" when none).
    pub experiment: String,
    /// Variant name ("" when none).
    pub variant: String,
    /// Model version.
    pub model_version: String,
    /// Items shown, in order.
    pub items: Vec<String>,
    /// When.
    pub created_at: Micros,
}

/// Metadata of a stored model version.
#[derive(Debug, Clone)]
pub struct ModelRow {
    /// Version id.
    pub version: String,
    /// When created.
    pub created_at: Micros,
    /// Serving now.
    pub active: bool,
    /// Holdout metrics (JSON object).
    pub metrics: String,
    /// Interactions trained on.
    pub interactions: i64,
    /// Users known.
    pub users: i64,
    /// Items known.
    pub items: i64,
    /// Seconds spent.
    pub train_seconds: f64,
}

/// What was erased for a user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Erased {
    /// Interactions.
    pub interactions: u64,
    /// Exposures.
    pub exposures: u64,
    /// Region and consent rows.
    pub settings: u64,
}

/// What serving needs of a user (see [`Store::user_state`]).
#[derive(Debug, Clone, Default)]
pub struct UserState {
    /// Personalization allowed (no consent decision counts as allowed).
    pub allowed: bool,
    /// Erased since the active model was trained.
    pub erased: bool,
    /// Most recent interactions, newest first; empty when personalization is not allowed.
    pub history: Vec<Touch>,
}

/// Access to the recommend service's tables.
#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
}

impl Store {
    /// A store over `db`.
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Creates or replaces items.
    #[tracing::instrument(name = "db", skip_all, fields(otel.kind = "client", db.operation = "upsert_items"))]
    pub async fn upsert_items(&self, tx: &mut Tx, items: &[Item], now: Micros) -> Result<()> {
        for chunk in statement_chunks(items, ITEM_COLUMN_COUNT) {
            let sql = format!(
                "INSERT INTO item ({ITEM_COLUMNS}) VALUES {} ON CONFLICT (item_id) DO UPDATE SET \
                 kind = excluded.kind, title = excluded.title, description = excluded.description, \
                 category = excluded.category, brand = excluded.brand, tags = excluded.tags, \
                 price_minor = excluded.price_minor, currency = excluded.currency, \
                 available = excluded.available, stock = excluded.stock, embedding = excluded.embedding, \
                 image_url = excluded.image_url, deleted = 0, updated_at = excluded.updated_at",
                self.db
                    .backend()
                    .values_placeholders(chunk.len(), ITEM_COLUMN_COUNT, 1)
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for item in chunk {
                let embedding: Vec<u8> = item
                    .embedding
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect();
                query = query
                    .bind(&item.item_id)
                    .bind(i64::from(item.kind))
                    .bind(&item.title)
                    .bind(&item.description)
                    .bind(&item.category)
                    .bind(&item.brand)
                    .bind(item.tags.join(&SEPARATOR.to_string()))
                    .bind(item.price.as_ref().map(|p| p.amount_minor))
                    .bind(item.price.as_ref().map(|p| p.currency.clone()))
                    .bind(i64::from(item.available))
                    .bind(item.stock)
                    .bind(embedding)
                    .bind(&item.image_url)
                    .bind(0i64)
                    .bind(now);
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Marks items deleted; returns how many were live.
    #[tracing::instrument(name = "db", skip_all, fields(otel.kind = "client", db.operation = "delete_items"))]
    pub async fn delete_items(&self, tx: &mut Tx, ids: &[String], now: Micros) -> Result<u64> {
        let mut deleted = 0;
        for chunk in statement_chunks(ids, 1) {
            let sql = format!(
                "UPDATE item SET deleted = 1, updated_at = {} WHERE deleted = 0 AND item_id IN ({})",
                self.db.backend().placeholder(1),
                self.db.backend().list_placeholders(chunk.len(), 2)
            );
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(now);
            for id in chunk {
                query = query.bind(id);
            }
            deleted += query.execute(&mut **tx).await?.rows_affected();
        }
        Ok(deleted)
    }

    /// Catalog changes stamped after `since`: live items and deletions.
    #[tracing::instrument(name = "db", skip_all, fields(otel.kind = "client", db.operation = "catalog_changes"))]
    pub async fn catalog_changes(
        &self,
        since: Micros,
    ) -> Result<Vec<(String, Option<Item>, Micros)>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {ITEM_COLUMNS} FROM item WHERE updated_at > $1 ORDER BY updated_at"
        )))
        .bind(since)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let item = item_from_row(row)?;
                let deleted: i64 = row.try_get("deleted")?;
                let stamp = item.updated_at;
                Ok((item.item_id.clone(), (deleted == 0).then_some(item), stamp))
            })
            .collect()
    }

    /// Stores interactions, skipping event ids already stored for the user.
    #[tracing::instrument(name = "db", skip_all, fields(otel.kind = "client", db.operation = "insert_interactions"))]
    pub async fn insert_interactions(&self, tx: &mut Tx, rows: &[NewInteraction]) -> Result<u64> {
        let mut inserted = 0;
        for chunk in statement_chunks(rows, 6) {
            let sql = format!(
                "INSERT INTO interaction (user_id, event_id, item_id, kind, weight, occurred_at) VALUES {} \
                 ON CONFLICT (user_id, event_id) DO NOTHING",
                self.db.backend().values_placeholders(chunk.len(), 6, 1)
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for r in chunk {
                query = query
                    .bind(&r.user_id)
                    .bind(&r.event_id)
                    .bind(&r.item_id)
                    .bind(i64::from(r.kind))
                    .bind(f64::from(r.weight))
                    .bind(r.occurred_at);
            }
            inserted += query.execute(&mut **tx).await?.rows_affected();
        }
        Ok(inserted)
    }

    /// What serving needs of a user, in one statement (each statement is a hand-off to the
    /// SQLite connection's thread): whether personalization is allowed, whether they were
    /// erased since the active model was trained, and, when allowed, their `limit` most
    /// recent interactions, newest first.
    #[tracing::instrument(name = "db", skip_all, fields(otel.kind = "client", db.operation = "user_state"))]
    pub async fn user_state(&self, user_id: &str, limit: usize) -> Result<UserState> {
        let rows = sqlx::query(
            "SELECT c.personalization_allowed, \
                    (SELECT COUNT(*) FROM erased_user WHERE user_id = $1), \
                    h.item_id, h.kind, h.weight, h.occurred_at \
             FROM (SELECT 1 AS one) o \
             LEFT JOIN user_consent c ON c.user_id = $1 \
             LEFT JOIN (SELECT item_id, kind, weight, occurred_at FROM interaction \
                        WHERE user_id = $1 ORDER BY occurred_at DESC LIMIT CAST($2 AS BIGINT)) h \
               ON COALESCE(c.personalization_allowed, 1) <> 0 \
             ORDER BY h.occurred_at DESC",
        )
        .bind(user_id)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.db.pool())
        .await?;
        let Some(first) = rows.first() else {
            return Err(anyhow::anyhow!("the user state query returned no row").into());
        };
        let allowed: Option<i64> = first.try_get(0)?;
        let erased: i64 = first.try_get(1)?;
        let mut history = Vec::with_capacity(rows.len());
        for r in &rows {
            let Some(item_id) = r.try_get::<Option<String>, _>(2)? else {
                continue;
            };
            history.push(Touch {
                item_id,
                kind: i32::try_from(r.try_get::<i64, _>(3)?).unwrap_or(0),
                weight: r.try_get::<f64, _>(4)? as f32,
                at: r.try_get(5)?,
            });
        }
        Ok(UserState {
            allowed: allowed.is_none_or(|a| a != 0),
            erased: erased > 0,
            history,
        })
    }

    /// Every interaction, for training.
    #[tracing::instrument(name = "db", skip_all, fields(otel.kind = "client", db.operation = "training_rows"))]
    pub async fn training_rows(&self) -> Result<Vec<TrainingRow>> {
        let rows =
            sqlx::query("SELECT user_id, item_id, kind, weight, occurred_at FROM interaction")
                .fetch_all(self.db.pool())
                .await?;
        rows.iter()
            .map(|r| {
                Ok(TrainingRow {
                    user_id: r.try_get(0)?,
                    item_id: r.try_get(1)?,
                    kind: i32::try_from(r.try_get::<i64, _>(2)?).unwrap_or(0),
                    weight: r.try_get::<f64, _>(3)? as f32,
                    occurred_at: r.try_get(4)?,
                })
            })
            .collect()
    }

    /// Known regions of users.
    #[tracing::instrument(name = "db", skip_all, fields(otel.kind = "client", db.operation = "regions"))]
    pub async fn regions(&self) -> Result<HashMap<String, String>> {
        let rows = sqlx::query("SELECT user_id, region FROM user_region")
            .fetch_all(self.db.pool())
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Exposures and users' regions in one write transaction: the recommend path defers them
    /// and writes a batch of requests' worth with one commit.
    #[tracing::instrument(name = "db", skip_all, fields(otel.kind = "client", db.operation = "save_deferred"))]
    pub async fn save_deferred(
        &self,
        exposures: &[Exposure],
        regions: &[(String, String)],
    ) -> Result<()> {
        if exposures.is_empty() && regions.is_empty() {
            return Ok(());
        }
        let mut tx = self.db.begin_write().await?;
        for chunk in statement_chunks(exposures, 8) {
            let sql = format!(
                "INSERT INTO exposure (recommendation_id, user_id, placement, experiment, variant, model_version, items, created_at) \
                 VALUES {} ON CONFLICT (recommendation_id) DO NOTHING",
                self.db.backend().values_placeholders(chunk.len(), 8, 1)
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for e in chunk {
                query = query
                    .bind(&e.recommendation_id)
                    .bind(&e.user_id)
                    .bind(&e.placement)
                    .bind(&e.experiment)
                    .bind(&e.variant)
                    .bind(&e.model_version)
                    .bind(e.items.join(&SEPARATOR.to_string()))
                    .bind(e.created_at);
            }
            query.execute(&mut *tx).await?;
        }
        for chunk in statement_chunks(regions, 2) {
            let sql = format!(
                "INSERT INTO user_region (user_id, region) VALUES {} \
                 ON CONFLICT (user_id) DO UPDATE SET region = excluded.region",
                self.db.backend().values_placeholders(chunk.len(), 2, 1)
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for (user, region) in chunk {
                query = query.bind(user).bind(region);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Stores a trained model set, makes it the active one, and drops all but the newest
    /// `keep` versions.
    #[tracing::instrument(name = "db", skip_all, fields(otel.kind = "client", db.operation = "save_model"))]
    pub async fn save_model(&self, row: &ModelRow, blob: &[u8], keep: usize) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        sqlx::query("UPDATE model_version SET active = 0 WHERE active = 1")
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO model_version (version, created_at, active, blob, metrics, interactions, users, items, train_seconds) \
             VALUES ($1, $2, 1, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&row.version)
        .bind(row.created_at)
        .bind(blob.to_vec())
        .bind(&row.metrics)
        .bind(row.interactions)
        .bind(row.users)
        .bind(row.items)
        .bind(row.train_seconds)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM model_version WHERE version NOT IN \
             (SELECT version FROM model_version ORDER BY created_at DESC LIMIT CAST($1 AS BIGINT))",
        )
        .bind(i64::try_from(keep).unwrap_or(5))
        .execute(&mut *tx)
        .await?;
        // Users erased before this training are no longer in any model.
        sqlx::query("DELETE FROM erased_user WHERE erased_at < $1")
            .bind(row.created_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The active version's id.
    #[tracing::instrument(name = "db", skip_all, fields(otel.kind = "client", db.operation = "active_version"))]
    pub async fn active_version(&self) -> Result<Option<String>> {
        let row = sqlx::query("SELECT version FROM model_version WHERE active = 1")
            .fetch_optional(self.db.pool())
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// The active version's blob.
    #[tracing::instrument(name = "db", skip_all, fields(otel.kind = "client", db.operation = "active_model"))]
    pub async fn active_model(&self) -> Result<Option<(String, Vec<u8>)>> {
        let row = sqlx::query("SELECT version, blob FROM model_version WHERE active = 1")
            .fetch_optional(self.db.pool())
            .await?;
        Ok(row
            .map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?)))
            .transpose()?)
    }

    /// Model versions, newest first, after `after` (a created_at), at most `limit`.
    #[tracing::instrument(name = "db", skip_all, fields(otel.kind = "client", db.operation = "models"))]
    pub async fn models(&self, after: Option<Micros>, limit: usize) -> Result<Vec<ModelRow>> {
        let rows = sqlx::query(
            "SELECT version, created_at, active, metrics, interactions, users, items, train_seconds \
             FROM model_version WHERE created_at < $1 ORDER BY created_at DESC LIMIT CAST($2 AS BIGINT)",
        )
        .bind(after.unwrap_or(i64::MAX))
        .bind(i64::try_from(limit).unwrap_or(100))
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ModelRow {
                    version: r.try_get(0)?,
                    created_at: r.try_get(1)?,
                    active: r.try_get::<i64, _>(2)? != 0,
                    metrics: r.try_get(3)?,
                    interactions: r.try_get(4)?,
                    users: r.try_get(5)?,
                    items: r.try_get(6)?,
                    train_seconds: r.try_get(7)?,
                })
            })
            .collect()
    }

    /// Takes (or renews) the training lease for `holder` until `until`; false when another
    /// holder's lease is still running.
    #[tracing::instrument(name = "db", skip_all, fields(otel.kind = "client", db.operation = "take_lease"))]
    pub async fn take_lease(&self, holder: &str, now: Micros, until: Micros) -> Result<bool> {
        let taken = sqlx::query(
            "INSERT INTO training_lease (name, holder, expires_at) VALUES ('training', $1, $2) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE training_lease.expires_at < $3 OR training_lease.holder = excluded.holder",
        )
        .bind(holder)
        .bind(until)
        .bind(now)
        .execute(self.db.writer())
        .await?
        .rows_affected();
        Ok(taken > 0)
    }

    /// Gives the training lease back.
    #[tracing::instrument(name = "db", skip_all, fields(otel.kind = "client", db.operation = "release_lease"))]
    pub async fn release_lease(&self, holder: &str) -> Result<()> {
        sqlx::query("DELETE FROM training_lease WHERE name = 'training' AND holder = $1")
            .bind(holder)
            .execute(self.db.writer())
            .await?;
        Ok(())
    }

    /// Records a consent decision unless a newer one was applied; returns whether applied.
    #[tracing::instrument(name = "db", skip_all, fields(otel.kind = "client", db.operation = "save_consent"))]
    pub async fn save_consent(
        &self,
        tx: &mut Tx,
        user_id: &str,
        allowed: bool,
        version: i64,
    ) -> Result<bool> {
        let applied = sqlx::query(
            "INSERT INTO user_consent (user_id, personalization_allowed, version) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id) DO UPDATE SET personalization_allowed = excluded.personalization_allowed, \
             version = excluded.version WHERE user_consent.version < excluded.version",
        )
        .bind(user_id)
        .bind(i64::from(allowed))
        .bind(version)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        Ok(applied > 0)
    }

    /// A page of a user's interactions in event id order after `after`.
    #[tracing::instrument(name = "db", skip_all, fields(otel.kind = "client", db.operation = "user_interactions"))]
    pub async fn user_interactions(
        &self,
        user_id: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<NewInteraction>> {
        let rows = sqlx::query(
            "SELECT event_id, item_id, kind, weight, occurred_at FROM interaction \
             WHERE user_id = $1 AND event_id > $2 ORDER BY event_id LIMIT CAST($3 AS BIGINT)",
        )
        .bind(user_id)
        .bind(after)
        .bind(i64::try_from(limit).unwrap_or(500))
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(NewInteraction {
                    user_id: user_id.to_owned(),
                    event_id: r.try_get(0)?,
                    item_id: r.try_get(1)?,
                    kind: i32::try_from(r.try_get::<i64, _>(2)?).unwrap_or(0),
                    weight: r.try_get::<f64, _>(3)? as f32,
                    occurred_at: r.try_get(4)?,
                })
            })
            .collect()
    }

    /// A user's exposures and region (exported with the first page).
    #[tracing::instrument(name = "db", skip_all, fields(otel.kind = "client", db.operation = "user_extras"))]
    pub async fn user_extras(&self, user_id: &str) -> Result<(Vec<Exposure>, Option<String>)> {
        let rows = sqlx::query(
            "SELECT recommendation_id, placement, experiment, variant, model_version, items, created_at \
             FROM exposure WHERE user_id = $1 ORDER BY created_at",
        )
        .bind(user_id)
        .fetch_all(self.db.pool())
        .await?;
        let exposures = rows
            .iter()
            .map(|r| {
                let items: String = r.try_get(5)?;
                Ok(Exposure {
                    recommendation_id: r.try_get(0)?,
                    user_id: user_id.to_owned(),
                    placement: r.try_get(1)?,
                    experiment: r.try_get(2)?,
                    variant: r.try_get(3)?,
                    model_version: r.try_get(4)?,
                    items: items
                        .split(SEPARATOR)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    created_at: r.try_get(6)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let region = sqlx::query("SELECT region FROM user_region WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(self.db.pool())
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
        Ok((exposures, region))
    }

    /// Erases a user and remembers that the trained models may still know them.
    #[tracing::instrument(name = "db", skip_all, fields(otel.kind = "client", db.operation = "erase_user"))]
    pub async fn erase_user(&self, tx: &mut Tx, user_id: &str, now: Micros) -> Result<Erased> {
        let interactions =
            delete_for(tx, "DELETE FROM interaction WHERE user_id = $1", user_id).await?;
        let exposures = delete_for(tx, "DELETE FROM exposure WHERE user_id = $1", user_id).await?;
        let settings = delete_for(tx, "DELETE FROM user_region WHERE user_id = $1", user_id)
            .await?
            + delete_for(tx, "DELETE FROM user_consent WHERE user_id = $1", user_id).await?;
        sqlx::query(
            "INSERT INTO erased_user (user_id, erased_at) VALUES ($1, $2) \
             ON CONFLICT (user_id) DO UPDATE SET erased_at = excluded.erased_at",
        )
        .bind(user_id)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(Erased {
            interactions,
            exposures,
            settings,
        })
    }
}

async fn delete_for(tx: &mut Tx, sql: &'static str, user_id: &str) -> Result<u64> {
    Ok(sqlx::query(sql)
        .bind(user_id)
        .execute(&mut **tx)
        .await?
        .rows_affected())
}

fn item_from_row(row: &AnyRow) -> Result<Item> {
    let tags: String = row.try_get("tags")?;
    let embedding: Vec<u8> = row.try_get("embedding")?;
    let price: Option<i64> = row.try_get("price_minor")?;
    let currency: Option<String> = row.try_get("currency")?;
    Ok(Item {
        item_id: row.try_get("item_id")?,
        kind: i32::try_from(row.try_get::<i64, _>("kind")?).unwrap_or(0),
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        category: row.try_get("category")?,
        brand: row.try_get("brand")?,
        tags: tags
            .split(SEPARATOR)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        price: price.zip(currency).map(|(amount_minor, currency)| Money {
            amount_minor,
            currency,
        }),
        available: row.try_get::<i64, _>("available")? != 0,
        stock: row.try_get("stock")?,
        embedding: embedding
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        image_url: row.try_get("image_url")?,
        updated_at: row.try_get("updated_at")?,
    })
}
