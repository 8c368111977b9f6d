//! Which database errors a caller may retry, seen on the real server (`DATABASE_URL`), and
//! how the services' SQL must be written.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use tailor_kit::db::is_transient;
use tailor_kit::testing::{TestDb, init_for_tests};

#[tokio::test]
async fn a_deadlock_victim_may_retry_and_a_missing_row_may_not() {
    init_for_tests();
    assert!(!is_transient(&sqlx::Error::RowNotFound));
    assert!(is_transient(&sqlx::Error::PoolTimedOut));
    let Some(test) = TestDb::postgres(&common::MIGRATIONS).await.unwrap() else {
        return;
    };
    let pool = test.db.pool();
    sqlx::query("CREATE TABLE lock_order (id INT PRIMARY KEY)")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO lock_order VALUES (1), (2)")
        .execute(pool)
        .await
        .unwrap();
    // Two transactions take the same two row locks in opposite orders.
    let mut a = pool.begin().await.unwrap();
    let mut b = pool.begin().await.unwrap();
    const LOCK_1: &str = "UPDATE lock_order SET id = id WHERE id = 1";
    const LOCK_2: &str = "UPDATE lock_order SET id = id WHERE id = 2";
    sqlx::query(LOCK_1).execute(&mut *a).await.unwrap();
    sqlx::query(LOCK_2).execute(&mut *b).await.unwrap();
    let (first, second) = tokio::join!(
        sqlx::query(LOCK_2).execute(&mut *a),
        sqlx::query(LOCK_1).execute(&mut *b),
    );
    let victim = first
        .err()
        .or(second.err())
        .expect("PostgreSQL aborts one of them");
    assert!(is_transient(&victim), "{victim}");
}

/// SQLite plans a bare `LIMIT $n` with the value bound, which makes every binding expire the
/// prepared statement: each execution is parsed and planned again (4 % of `serve all`'s CPU
/// under the session mix, `docs/performance.md`). `LIMIT CAST($n AS BIGINT)` is planned once.
#[test]
fn no_statement_is_limited_by_a_bare_parameter() {
    fn visit(dir: &Path, found: &mut Vec<String>, files: &mut usize) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                visit(&path, found, files);
            } else if path.extension().is_some_and(|e| e == "rs") {
                *files += 1;
                let text = std::fs::read_to_string(&path).unwrap();
                for (n, line) in text.lines().enumerate() {
                    let code = !line.trim_start().starts_with("//");
                    if code && (line.contains("LIMIT $") || line.contains("OFFSET $")) {
                        found.push(format!("{}:{}", path.display(), n + 1));
                    }
                }
            }
        }
    }
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let (mut found, mut files) = (Vec::new(), 0);
    for krate in std::fs::read_dir(crates).unwrap() {
        let src = krate.unwrap().path().join("src");
        if src.is_dir() {
            visit(&src, &mut found, &mut files);
        }
    }
    assert!(
        files > 100,
        "only {files} source files under {}",
        crates.display()
    );
    assert!(
        found.is_empty(),
        "write LIMIT CAST($n AS BIGINT) at {found:?}"
    );
}

/// SQLite's write-ahead log is copied back off the writer's path once 500 pages wait, and
/// the log still starts over under writes that never pause. Without the checkpoints' last
/// step on the writer connection, it never does (and the writer's backstop, 160 MB, lets all
/// of this test's 24 MB pile up in the log).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_is_checkpointed_behind_the_writer_and_starts_over() {
    let started_over = log_restarts_while_writing_24_mb(500).await;
    // How often depends on the machine's load (twice, with other builds running on both
    // cores); never is the failure.
    assert!(
        started_over >= 1,
        "the log started over {started_over} times while 24 MB went through it"
    );
}

/// Checkpoints behind the writer wait for their backlog: with more pages asked for than the
/// 6,000 this writes, the log is never copied back (nor, under the writer's backstop, by the
/// writer) and never starts over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_is_not_checkpointed_behind_the_writer_before_its_backlog() {
    assert_eq!(log_restarts_while_writing_24_mb(20_000).await, 0);
}

/// How often the log starts over while 600 transactions of ten 4 KB rows go through it
/// back to back, checkpoints behind the writer looking every 20 ms and copying once `pages`
/// wait.
async fn log_restarts_while_writing_24_mb(pages: u32) -> u32 {
    use secrecy::ExposeSecret as _;
    use std::time::Duration;

    /// The log header's checkpoint sequence number: SQLite adds one each time the log
    /// starts over (file format, "WAL File Format").
    fn restarts(wal: &Path) -> u32 {
        let header = std::fs::read(wal).unwrap();
        u32::from_be_bytes(header[12..16].try_into().unwrap())
    }

    init_for_tests();
    let test = TestDb::sqlite_with(&common::MIGRATIONS, |settings| {
        settings.sqlite_checkpoint_interval = Duration::from_millis(20);
        settings.sqlite_checkpoint_pages = pages;
    })
    .await
    .unwrap();
    let db = &test.db;
    sqlx::query("CREATE TABLE page (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
        .execute(db.writer())
        .await
        .unwrap();
    let url = test.settings.url.expose_secret();
    let wal = format!("{}-wal", url.strip_prefix("sqlite://").unwrap());
    let wal = Path::new(&wal);
    let before = restarts(wal);
    // 600 transactions of ten 4 KB rows, back to back: 24 MB through the log.
    let body = vec![7u8; 4000];
    for round in 0..600 {
        let mut tx = db.begin_write().await.unwrap();
        for id in 0..10 {
            sqlx::query("INSERT OR REPLACE INTO page (id, body) VALUES ($1, $2)")
                .bind(id * 1000 + round % 50)
                .bind(&body)
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
    }
    let started_over = restarts(wal) - before;
    db.close().await;
    started_over
}
