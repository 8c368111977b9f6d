//! Which database errors a caller may retry, seen on the real server (`DATABASE_URL`).
#![allow(clippy::unwrap_used)]

mod common;

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
