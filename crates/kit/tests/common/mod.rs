//! What the kit's integration tests share: the test schema (`tests/migrations`).

use tailor_kit::db::Migrations;

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("tests/migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("tests/migrations/postgres");

/// The test schema on either backend.
pub(crate) const MIGRATIONS: Migrations = Migrations {
    sqlite: &SQLITE,
    postgres: &POSTGRES,
};
