//! Database access shared by every service: connect by URL to SQLite (the embedded default,
//! one file per service, WAL mode) or PostgreSQL, apply the service's migrations together
//! with the kit's own tables (outbox, processed events), and open write transactions.
//!
//! Stores run the same SQL on both backends through `sqlx::Any`, with `$1` placeholders and
//! portable column types (integers, floats, text, blobs; timestamps as integer microseconds).
//! Limits are written `LIMIT CAST($n AS BIGINT)`: SQLite plans a bare `LIMIT $n` with the
//! bound value, so every new binding expires the prepared statement and each execution is
//! parsed and planned again (a test in `tests/db.rs` keeps it so). Multi-row statements take
//! their rows in [`statement_chunks`], so that batches of any size reuse a few prepared
//! statements.

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::Once;
use std::time::Duration;

use anyhow::Context as _;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, Migrator};
use sqlx::{Any, AnyPool, Executor, Transaction};

use crate::config::{ConfigError, Validate, check_range, key};

mod batch;

pub use batch::statement_chunks;

/// The kit's own tables (outbox, processed events), migrated with every service's schema.
static KIT_SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
static KIT_POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");

/// Which database engine a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file: the embedded default.
    Sqlite,
    /// A PostgreSQL database: production.
    Postgres,
}

impl Backend {
    /// The backend of a connection (e.g. inside a transaction).
    pub fn of_connection(conn: &sqlx::AnyConnection) -> Self {
        if conn.backend_name().eq_ignore_ascii_case("sqlite") {
            Self::Sqlite
        } else {
            Self::Postgres
        }
    }

    /// The `n`th bind parameter (from 1) in this backend's fastest form: `$n` on PostgreSQL,
    /// anonymous `?` on SQLite. sqlx looks up the name of every numbered parameter, a linear
    /// scan in SQLite, so binding a statement with n `$n` parameters costs O(n²): two thirds
    /// of the profile service's ingestion time with 8,500-parameter inserts, 8 % of the
    /// recommend service's samples at 3,000 requests/s with 1,000-row exposure batches.
    /// `?` are numbered by position, so every placeholder of a statement that uses them must
    /// come from these methods, in binding order; the numbered forms are therefore private.
    pub fn placeholder(self, n: usize) -> String {
        match self {
            Self::Postgres => format!("${n}"),
            Self::Sqlite => "?".to_owned(),
        }
    }

    /// `($1, $2, $3), ($4, $5, $6), …` for a multi-row `VALUES` list of `rows` rows of
    /// `columns` columns, numbering from `$first` (see [`Backend::placeholder`]).
    pub fn values_placeholders(self, rows: usize, columns: usize, first: usize) -> String {
        match self {
            Self::Postgres => values_placeholders(rows, columns, first),
            Self::Sqlite => {
                let row = format!("({})", vec!["?"; columns].join(", "));
                vec![row.as_str(); rows].join(", ")
            }
        }
    }

    /// `$first, $first+1, …` for an `IN (…)` list of `count` values (see
    /// [`Backend::placeholder`]).
    pub fn list_placeholders(self, count: usize, first: usize) -> String {
        match self {
            Self::Postgres => list_placeholders(count, first),
            Self::Sqlite => vec!["?"; count].join(", "),
        }
    }

    /// `INSERT INTO`, for a statement of a transaction that is rolled back whole when the
    /// statement fails. On SQLite it reads `INSERT OR FAIL INTO`: a failing statement then
    /// stops without undoing its own earlier rows, which spares SQLite the statement journal
    /// it otherwise keeps to undo them (a copy of every page the statement changes); the
    /// transaction's rollback undoes them anyway. Conflicts an `ON CONFLICT` clause handles
    /// are unaffected. (An upsert's `DO UPDATE` part still keeps one: the profile writer's
    /// event insert stopped journaling, its profile upsert did not.)
    pub fn insert_into(self) -> &'static str {
        match self {
            Self::Postgres => "INSERT INTO",
            Self::Sqlite => "INSERT OR FAIL INTO",
        }
    }

    /// The backend a URL selects.
    pub fn of_url(url: &str) -> Result<Self, String> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Self::Postgres)
        } else {
            Err("must start with sqlite:// or postgres://".to_owned())
        }
    }
}

/// Where and how to connect.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://path/to/file.db` or `postgres://user:password@host:port/database`.
    #[serde(serialize_with = "serialize_url_without_credentials")]
    pub url: SecretString,
    /// Upper bound of pooled connections.
    pub max_connections: u32,
    /// How long to wait for a connection before failing the request.
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
    /// SQLite: page cache per connection, MiB.
    pub sqlite_cache_mib: u32,
    /// SQLite: how much of the file is read through a memory map, MiB (0: none).
    pub sqlite_mmap_mib: u32,
    /// SQLite: how often the write-ahead log is looked at, to be copied back into the
    /// database file off the writer's path once it holds `sqlite_checkpoint_pages` pages not
    /// yet copied (`checkpoint_behind` in this module). 0 leaves checkpoints to the writer,
    /// inside its commits, every 10,000 pages.
    #[serde(with = "humantime_serde")]
    pub sqlite_checkpoint_interval: Duration,
    /// SQLite: pages of log not yet copied back that start a checkpoint behind the writer.
    /// Copying by size rather than every interval keeps the copies (and their syncs) as few as
    /// the writer's own: a page rewritten by many commits is copied once (docs/performance.md).
    pub sqlite_checkpoint_pages: u32,
}

/// Settings are serialized only to layer a service's defaults under the configured values
/// (see [`crate::config::load`]); the defaults are SQLite files, but a URL that could carry a
/// password is never written out.
fn serialize_url_without_credentials<S: serde::Serializer>(
    url: &SecretString,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let url = url.expose_secret();
    if url.contains('@') {
        serializer.serialize_str("(redacted)")
    } else {
        serializer.serialize_str(url)
    }
}

impl DatabaseSettings {
    /// Settings for a SQLite file (the embedded default).
    pub fn sqlite(path: &str) -> Self {
        Self {
            url: SecretString::from(format!("sqlite://{path}")),
            ..Self::default()
        }
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: SecretString::from("sqlite://data/tailor.db"),
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
            sqlite_cache_mib: 64,
            sqlite_mmap_mib: 0,
            sqlite_checkpoint_interval: Duration::from_millis(200),
            sqlite_checkpoint_pages: WRITER_CHECKPOINT_PAGES,
        }
    }
}

impl Validate for DatabaseSettings {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        Backend::of_url(self.url.expose_secret())
            .map_err(|reason| ConfigError::invalid(key(prefix, "url"), reason))?;
        check_range(prefix, "max_connections", self.max_connections, 1..=1000)?;
        check_range(prefix, "sqlite_cache_mib", self.sqlite_cache_mib, 1..=65536)?;
        check_range(
            prefix,
            "sqlite_mmap_mib",
            self.sqlite_mmap_mib,
            0..=1_048_576,
        )?;
        if self.sqlite_checkpoint_interval > Duration::from_secs(60) {
            return Err(ConfigError::invalid(
                key(prefix, "sqlite_checkpoint_interval"),
                "must be at most 60s (0 lets the writer checkpoint)",
            ));
        }
        check_range(
            prefix,
            "sqlite_checkpoint_pages",
            self.sqlite_checkpoint_pages,
            1..=1_000_000,
        )?;
        Ok(())
    }
}

/// A service's migrations, one directory per backend (same schema, each backend's DDL).
pub struct Migrations {
    /// `migrations/sqlite`, via `sqlx::migrate!`.
    pub sqlite: &'static Migrator,
    /// `migrations/postgres`, via `sqlx::migrate!`.
    pub postgres: &'static Migrator,
}

/// A connection pool and the backend it talks to. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    /// SQLite: a one-connection pool every write goes through (see [`Db::begin_write`]).
    writer: Option<AnyPool>,
    backend: Backend,
}

impl Db {
    /// Connects (retrying briefly, so a database that starts alongside us is waited for). On
    /// SQLite it also starts `checkpoint_behind` on the current Tokio runtime.
    pub async fn connect(settings: &DatabaseSettings) -> anyhow::Result<Self> {
        install_drivers();
        let url = settings.url.expose_secret();
        let backend =
            Backend::of_url(url).map_err(|reason| anyhow::anyhow!("database url {reason}"))?;
        let url = match backend {
            Backend::Sqlite => prepare_sqlite_url(url)?,
            Backend::Postgres => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url).context("parsing the database url")?;
        // WAL lets readers proceed while one writer commits; NORMAL synchronisation is durable
        // across process crashes in WAL mode. A large page cache (`sqlite_cache_mib`; SQLite's
        // default is 2 MiB) keeps a write transaction's pages in memory instead of spilling
        // them to the WAL mid-transaction and re-reading index pages from the file.
        // Checkpoints (copying the WAL back into the file) run behind the writer
        // (`checkpoint_behind`); SQLite's automatic one, inside the writer's commits, is then
        // only a backstop, at four times the pages that start one behind. Without them
        // (interval 0) the writer checkpoints every `WRITER_CHECKPOINT_PAGES`. Statement
        // journals (every multi-row insert inside a transaction opens one) stay in memory
        // instead of a temporary file.
        let checkpoint_every = settings.sqlite_checkpoint_interval;
        let autocheckpoint = if checkpoint_every.is_zero() {
            WRITER_CHECKPOINT_PAGES
        } else {
            4 * settings
                .sqlite_checkpoint_pages
                .max(WRITER_CHECKPOINT_PAGES)
        };
        let pragmas = (backend == Backend::Sqlite).then(|| {
            format!(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                 PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; \
                 PRAGMA cache_size = -{}; PRAGMA mmap_size = {}; \
                 PRAGMA wal_autocheckpoint = {autocheckpoint}; PRAGMA temp_store = MEMORY;",
                u64::from(settings.sqlite_cache_mib) * 1024,
                u64::from(settings.sqlite_mmap_mib) << 20,
            )
        });
        let pool_options = AnyPoolOptions::new()
            .max_connections(settings.max_connections)
            // A ping before lending a connection finds PostgreSQL connections the server
            // dropped; an SQLite file cannot drop, and the ping costs a hand-off to the
            // connection's thread and back on every query.
            .test_before_acquire(backend == Backend::Postgres)
            .acquire_timeout(settings.acquire_timeout)
            .after_connect(move |conn, _meta| {
                let pragmas = pragmas.clone();
                Box::pin(async move {
                    if let Some(pragmas) = pragmas {
                        conn.execute(sqlx::AssertSqlSafe(pragmas)).await?;
                    }
                    Ok(())
                })
            });
        let mut attempt = 0;
        let pool = loop {
            match pool_options.clone().connect_with(options.clone()).await {
                Ok(pool) => break pool,
                Err(err) if attempt < 10 => {
                    attempt += 1;
                    tracing::warn!(error = %err, attempt, "database not reachable yet, retrying");
                    tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                }
                Err(err) => return Err(err).context("connecting to the database"),
            }
        };
        // SQLite admits one writer at a time. Writers that race for the lock wait in
        // SQLite's busy handler, which polls with sleeps of up to 100 ms: under load most of
        // their time is spent asleep while the lock is free. Queueing them for the one writer
        // connection instead hands the lock over the moment it is released.
        let writer = match backend {
            Backend::Sqlite => Some(
                pool_options
                    .max_connections(1)
                    .connect_with(options)
                    .await
                    .context("connecting the SQLite writer")?,
            ),
            Backend::Postgres => None,
        };
        if let Some(writer) = &writer
            && !checkpoint_every.is_zero()
        {
            tokio::spawn(checkpoint_behind(
                pool.clone(),
                writer.clone(),
                checkpoint_every,
                Backlog::of_file(
                    sqlite_file_and_query(&url).0,
                    settings.sqlite_checkpoint_pages,
                ),
            ));
        }
        Ok(Self {
            pool,
            writer,
            backend,
        })
    }

    /// Applies the kit's tables and the service's migrations for this backend.
    pub async fn migrate(&self, migrations: &Migrations) -> anyhow::Result<()> {
        let (kit, service) = match self.backend {
            Backend::Sqlite => (&KIT_SQLITE, migrations.sqlite),
            Backend::Postgres => (&KIT_POSTGRES, migrations.postgres),
        };
        let mut all: Vec<Migration> = kit.iter().chain(service.iter()).cloned().collect();
        all.sort_by_key(|m| m.version);
        let migrator = Migrator::with_migrations(all);
        migrator
            .run(&self.pool)
            .await
            .context("applying migrations")?;
        Ok(())
    }

    /// The pool, for reads and single statements.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The backend behind the pool.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool for statements that write outside [`Db::begin_write`]: the writer
    /// connection on SQLite, the pool on PostgreSQL.
    pub fn writer(&self) -> &AnyPool {
        self.writer.as_ref().unwrap_or(&self.pool)
    }

    /// Begins a transaction that will write. On SQLite it runs on the one writer connection
    /// (writers queue for it) and takes the write lock up front (`BEGIN IMMEDIATE`): a
    /// deferred transaction that reads first and writes later can fail with SQLITE_BUSY when
    /// another writer committed in between, without waiting. Do not begin a second write
    /// transaction while holding one: on SQLite it would wait for the first forever.
    pub async fn begin_write(&self) -> Result<Transaction<'static, Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.writer().begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    /// `FOR UPDATE` on PostgreSQL, nothing on SQLite (whose write transactions hold the
    /// database lock anyway): appended to a read whose rows the transaction will rewrite.
    pub fn for_update(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }

    /// Checks the database answers (health checks).
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    /// Closes every connection (shutdown, tests).
    pub async fn close(&self) {
        if let Some(writer) = &self.writer {
            writer.close().await;
        }
        self.pool.close().await;
    }
}

/// Log pages after which the writer checkpoints itself when nothing runs behind it (SQLite's
/// default is 1,000): a page rewritten by many commits is copied back once rather than at
/// nearly every commit. Also the default backlog that starts a [`checkpoint_behind`].
const WRITER_CHECKPOINT_PAGES: u32 = 10_000;

/// Copies SQLite's write-ahead log back into the database file off the writer's path (a
/// checkpoint inside the writer's commit took 14 % of the profile writer's time), looking
/// every `every` and copying once `backlog` says enough is waiting. Ends when the pools
/// close.
async fn checkpoint_behind(
    readers: AnyPool,
    writer: AnyPool,
    every: Duration,
    mut backlog: Backlog,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if readers.is_closed() || writer.is_closed() {
            return;
        }
        if !backlog.is_due() {
            continue;
        }
        match checkpoint_round(&readers, &writer).await {
            Ok(()) => {}
            Err(sqlx::Error::PoolClosed) => return,
            Err(err) => tracing::warn!(error = %err, "WAL checkpoint failed"),
        }
    }
}

/// How much of a database's write-ahead log waits to be copied back, read from the header
/// of its shared-memory index (the `-shm` file, "WAL-index format" in SQLite's file format
/// documentation): `mxFrame`, the frames committed to the log, less `nBackfill`, those
/// already copied. Reading it costs one small read, where asking SQLite
/// (`PRAGMA wal_checkpoint`) would copy and sync.
struct Backlog {
    index: std::path::PathBuf,
    due_at_pages: u32,
    /// The index file and its inode, kept open from the first look on. Closing a handle on a
    /// file drops every POSIX lock the process holds on it, SQLite's included: without the
    /// lock that marks the index in use, the next process to open the database (a CLI, a
    /// backup) takes itself for the first, truncates the index and rebuilds it under this
    /// one's memory mapping (SIGBUS, or a corrupt index). A new inode means SQLite deleted
    /// the index (when its last connection closed) and made another: the old handle, which
    /// nothing uses any more, is then let go.
    open: Option<(std::fs::File, u64)>,
}

impl Backlog {
    fn of_file(database: &str, due_at_pages: u32) -> Self {
        Self {
            index: format!("{database}-shm").into(),
            due_at_pages,
            open: None,
        }
    }

    /// Whether at least `due_at_pages` pages wait. An index that cannot be read (not yet
    /// created, or of another format) counts as due: checkpointing is then as before.
    fn is_due(&mut self) -> bool {
        self.waiting()
            .is_none_or(|pages| pages >= self.due_at_pages)
    }

    fn waiting(&mut self) -> Option<u32> {
        use std::os::unix::fs::{FileExt as _, MetadataExt as _};
        let inode = std::fs::metadata(&self.index).ok()?.ino();
        if self.open.as_ref().is_none_or(|(_, held)| *held != inode) {
            self.open = Some((std::fs::File::open(&self.index).ok()?, inode));
        }
        let (file, _) = self.open.as_ref()?;
        let mut header = [0u8; 100];
        file.read_exact_at(&mut header, 0).ok()?;
        // Native byte order; a torn read (SQLite updates the header as we read) only moves
        // the next checkpoint by a tick.
        let field = |at: usize| header[at..at + 4].try_into().ok().map(u32::from_ne_bytes);
        const VERSION: u32 = 3_007_000;
        if field(0)? != VERSION {
            return None;
        }
        let (committed, copied) = (field(16)?, field(96)?);
        Some(committed.saturating_sub(copied))
    }
}

/// Passes over the log from a reader connection after the first, at most, while commits
/// keep landing during them.
const EXTRA_READER_PASSES: usize = 3;

/// One round of [`checkpoint_behind`]. The bulk is copied from a reader connection while
/// writes go on (`PASSIVE` never blocks them), again while commits landed during the pass
/// before. That alone never completes under steady writes, so the log would never start
/// over and would grow without bound; the pages committed since are therefore copied on the
/// writer connection, between two write transactions: the checkpoint then completes and
/// the next write starts the log over.
async fn checkpoint_round(readers: &AnyPool, writer: &AnyPool) -> Result<(), sqlx::Error> {
    let (mut log, _) = checkpoint(readers).await?;
    for _ in 0..EXTRA_READER_PASSES {
        let (next, _) = checkpoint(readers).await?;
        if next == log {
            break;
        }
        log = next;
    }
    checkpoint(writer).await?;
    Ok(())
}

/// A `PASSIVE` checkpoint on a connection of `pool`: (pages in the log, pages copied).
async fn checkpoint(pool: &AnyPool) -> Result<(i64, i64), sqlx::Error> {
    use sqlx::Row as _;
    let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(pool)
        .await?;
    Ok((row.try_get(1)?, row.try_get(2)?))
}

/// Whether a database error is the moment's, not the request's: the pool is exhausted or
/// closed, the connection broke, or the database aborted the transaction to resolve a
/// deadlock or a serialization conflict. Nothing was committed, so the caller may retry.
pub fn is_transient(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        // PostgreSQL's deadlock_detected and serialization_failure.
        sqlx::Error::Database(db) => matches!(db.code().as_deref(), Some("40P01" | "40001")),
        _ => false,
    }
}

fn values_placeholders(rows: usize, columns: usize, first: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 5);
    let mut n = first;
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&n.to_string());
            n += 1;
        }
        sql.push(')');
    }
    sql
}

fn list_placeholders(count: usize, first: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn install_drivers() {
    static ONCE: Once = Once::new();
    ONCE.call_once(sqlx::any::install_default_drivers);
}

/// The file of a SQLite URL and its query string.
fn sqlite_file_and_query(url: &str) -> (&str, &str) {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    rest.split_once('?').unwrap_or((rest, ""))
}

/// Creates the file's directory and lets SQLite create the file.
fn prepare_sqlite_url(url: &str) -> anyhow::Result<String> {
    let (path, query) = sqlite_file_and_query(url);
    if path.is_empty() || path == ":memory:" {
        anyhow::bail!("an in-memory SQLite database cannot be shared by a pool; give a file path");
    }
    if let Some(dir) = std::path::Path::new(path).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut params: Vec<Cow<'_, str>> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(Cow::Borrowed)
        .collect();
    if !params.iter().any(|p| p.starts_with("mode=")) {
        params.push(Cow::Borrowed("mode=rwc"));
    }
    Ok(format!("sqlite://{path}?{}", params.join("&")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_rows_and_columns() {
        assert_eq!(values_placeholders(2, 2, 1), "($1, $2), ($3, $4)");
        assert_eq!(values_placeholders(1, 3, 5), "($5, $6, $7)");
        assert_eq!(list_placeholders(3, 2), "$2, $3, $4");
    }

    #[test]
    fn backend_placeholders_match_the_generic_ones_on_postgres() {
        let pg = Backend::Postgres;
        assert_eq!(
            pg.values_placeholders(2, 2, 1),
            values_placeholders(2, 2, 1)
        );
        assert_eq!(pg.list_placeholders(3, 2), "$2, $3, $4");
        let lite = Backend::Sqlite;
        assert_eq!(lite.values_placeholders(2, 3, 1), "(?, ?, ?), (?, ?, ?)");
        assert_eq!(lite.list_placeholders(3, 1), "?, ?, ?");
    }

    #[test]
    fn sqlite_urls_get_create_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/x.db");
        let url = prepare_sqlite_url(&format!("sqlite://{}", path.display())).unwrap();
        assert!(url.ends_with("?mode=rwc"), "{url}");
        assert!(path.parent().unwrap().exists());
        assert!(prepare_sqlite_url("sqlite::memory:").is_err());
    }

    #[test]
    fn checkpoints_behind_the_writer_run_at_most_a_minute_apart() {
        let every = |secs| DatabaseSettings {
            sqlite_checkpoint_interval: Duration::from_secs(secs),
            ..DatabaseSettings::default()
        };
        assert!(every(0).validate("db").is_ok(), "0: the writer checkpoints");
        assert!(every(60).validate("db").is_ok());
        let err = every(61).validate("db").unwrap_err().to_string();
        assert!(err.contains("db.sqlite_checkpoint_interval"), "{err}");
    }

    #[test]
    fn a_checkpoint_behind_needs_at_least_one_page() {
        let pages = |pages| DatabaseSettings {
            sqlite_checkpoint_pages: pages,
            ..DatabaseSettings::default()
        };
        assert!(pages(1).validate("db").is_ok());
        let err = pages(0).validate("db").unwrap_err().to_string();
        assert!(err.contains("db.sqlite_checkpoint_pages"), "{err}");
    }

    /// A SQLite database in `dir` with a table `page`, where nothing copies the log behind
    /// the writer (and the writer itself not before 10,000 pages); with its file's path.
    async fn sqlite_with_a_table(dir: &tempfile::TempDir) -> (Db, String) {
        let file = dir.path().join("test.db").display().to_string();
        let settings = DatabaseSettings {
            sqlite_checkpoint_interval: Duration::ZERO,
            ..DatabaseSettings::sqlite(&file)
        };
        let db = Db::connect(&settings).await.unwrap();
        sqlx::query("CREATE TABLE page (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
            .execute(db.writer())
            .await
            .unwrap();
        (db, file)
    }

    /// The backlog read from the index file is what SQLite reports: the pages committed to
    /// the log and not yet copied back, none once a checkpoint copied them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_backlog_is_read_from_the_log_index() {
        let dir = tempfile::tempdir().unwrap();
        let (db, file) = sqlite_with_a_table(&dir).await;
        let mut backlog = Backlog::of_file(&file, 1);
        for id in 0..50 {
            sqlx::query("INSERT INTO page (id, body) VALUES ($1, $2)")
                .bind(id)
                .bind(vec![1u8; 4000])
                .execute(db.writer())
                .await
                .unwrap();
        }
        let waiting = backlog.waiting().expect("a readable index");
        // Each insert commits its row's page and the tree's pages it changed.
        assert!(waiting >= 50, "{waiting} pages waiting after 50 commits");
        backlog.due_at_pages = waiting;
        assert!(backlog.is_due());
        backlog.due_at_pages = waiting + 1;
        assert!(!backlog.is_due());

        let (log, copied) = checkpoint(db.writer()).await.unwrap();
        assert_eq!(i64::from(waiting), log, "the index and SQLite agree");
        assert_eq!(copied, log, "nothing else was reading");
        assert_eq!(backlog.waiting(), Some(0));
        db.close().await;
    }

    /// Looking at the backlog leaves SQLite's locks on the index alone: the shared lock on
    /// its byte 128 tells another process opening the database that the index is in use.
    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn looking_at_the_backlog_keeps_sqlites_lock_on_the_index() {
        use std::os::unix::fs::MetadataExt as _;
        let dir = tempfile::tempdir().unwrap();
        let (db, file) = sqlite_with_a_table(&dir).await;
        let inode = std::fs::metadata(format!("{file}-shm")).unwrap().ino();
        let (me, index) = (std::process::id().to_string(), format!(":{inode}"));
        // This process's POSIX locks on the index, from the kernel's table.
        let index_locks = || {
            std::fs::read_to_string("/proc/locks")
                .unwrap()
                .lines()
                .filter(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    fields.get(4) == Some(&me.as_str())
                        && fields.get(5).is_some_and(|id| id.ends_with(&index))
                })
                .map(|line| {
                    line.split_whitespace()
                        .skip(6)
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect::<Vec<String>>()
        };
        let before = index_locks();
        assert!(before.contains(&"128 128".to_owned()), "{before:?}");
        let mut backlog = Backlog::of_file(&file, 1);
        for _ in 0..3 {
            backlog.is_due();
        }
        assert_eq!(index_locks(), before);
        db.close().await;
    }

    #[test]
    fn an_unreadable_index_counts_as_due() {
        let dir = tempfile::tempdir().unwrap();
        let mut missing = Backlog::of_file(&dir.path().join("none.db").display().to_string(), 1);
        assert!(missing.is_due());
        let foreign = dir.path().join("foreign.db");
        std::fs::write(format!("{}-shm", foreign.display()), [0u8; 200]).unwrap();
        let mut foreign = Backlog::of_file(&foreign.display().to_string(), u32::MAX);
        assert!(
            foreign.is_due(),
            "not SQLite's index format: checkpoint as before"
        );
    }

    #[test]
    fn backend_is_chosen_by_url() {
        assert_eq!(Backend::of_url("sqlite://a.db"), Ok(Backend::Sqlite));
        assert_eq!(Backend::of_url("postgres://h/db"), Ok(Backend::Postgres));
        assert!(Backend::of_url("mysql://h/db").is_err());
    }
}
