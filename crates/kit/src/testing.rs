//! Test helpers: every test owns its resources — a fresh database (a new SQLite file, or a
//! new PostgreSQL database when `DATABASE_URL` is set), its own Redis namespace (when
//! `REDIS_URL` is set), servers on port 0 — so tests run in parallel and in any order.

use std::net::SocketAddr;
use std::sync::Once;

use anyhow::Context as _;
use secrecy::{ExposeSecret, SecretString};
use sqlx::Connection as _;
use sqlx::Executor as _;
use tonic::service::Routes;
use tonic::transport::Channel;

use crate::auth::{AuthSettings, TokenIssuer, TokenSource, Verifier};
use crate::db::{DatabaseSettings, Db, Migrations};
use crate::grpc::in_process::InProcess;
use crate::grpc::server::{Health, ServerSettings, serve};
use crate::redis::Redis;

/// Installs a test subscriber once; it prints only when `TEST_LOG` is set.
pub fn init_for_tests() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info".into()),
                )
                .with_test_writer()
                .try_init();
        }
    });
}

/// `DATABASE_URL` when set (CI sets it): PostgreSQL tests must then run, not skip.
pub fn postgres_url() -> Option<String> {
    std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty())
}

/// `REDIS_URL` when set (CI sets it): Redis tests must then run, not skip.
pub fn redis_url() -> Option<SecretString> {
    std::env::var("REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .map(SecretString::from)
}

/// A database of one test, removed when dropped.
pub struct TestDb {
    /// The connected, migrated database.
    pub db: Db,
    /// Settings that reach it (to reconnect, e.g. after a simulated restart).
    pub settings: DatabaseSettings,
    /// Which backend, for messages.
    pub label: &'static str,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

impl std::fmt::Debug for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDb")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl TestDb {
    /// A new SQLite file, migrated.
    pub async fn sqlite(migrations: &Migrations) -> anyhow::Result<Self> {
        Self::sqlite_with(migrations, |_| {}).await
    }

    /// A new SQLite file, migrated, connected with the settings `configure` leaves.
    pub async fn sqlite_with(
        migrations: &Migrations,
        configure: impl FnOnce(&mut DatabaseSettings),
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("test.db");
        let mut settings = DatabaseSettings::sqlite(&path.display().to_string());
        configure(&mut settings);
        let db = Db::connect(&settings).await?;
        db.migrate(migrations).await?;
        Ok(Self {
            db,
            settings,
            label: "sqlite",
            _dir: Some(dir),
            postgres: None,
        })
    }

    /// A new PostgreSQL database on the `DATABASE_URL` server, migrated; `None` without it.
    pub async fn postgres(migrations: &Migrations) -> anyhow::Result<Option<Self>> {
        let Some(admin_url) = postgres_url() else {
            return Ok(None);
        };
        sqlx::any::install_default_drivers();
        let name = format!("tailor_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::AnyConnection::connect(&admin_url)
            .await
            .context("connecting to DATABASE_URL")?;
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await?;
        admin.close().await?;
        let settings = DatabaseSettings {
            url: SecretString::from(with_database(&admin_url, &name)),
            max_connections: 8,
            ..DatabaseSettings::default()
        };
        let db = Db::connect(&settings).await?;
        db.migrate(migrations).await?;
        Ok(Some(Self {
            db,
            settings,
            label: "postgres",
            _dir: None,
            postgres: Some((admin_url, name)),
        }))
    }

    /// PostgreSQL when `DATABASE_URL` is set, else SQLite.
    pub async fn fresh(migrations: &Migrations) -> anyhow::Result<Self> {
        match Self::postgres(migrations).await? {
            Some(db) => Ok(db),
            None => Self::sqlite(migrations).await,
        }
    }

    /// SQLite always, plus PostgreSQL when `DATABASE_URL` is set: run a store's contract
    /// on every backend.
    pub async fn every_backend(migrations: &Migrations) -> anyhow::Result<Vec<Self>> {
        let mut all = vec![Self::sqlite(migrations).await?];
        match Self::postgres(migrations).await? {
            Some(pg) => all.push(pg),
            None => eprintln!("DATABASE_URL not set: PostgreSQL part skipped"),
        }
        Ok(all)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.postgres.take() else {
            return;
        };
        // Drop runs inside the test's runtime, which cannot block: use a thread of our own.
        let handle = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(mut admin) = sqlx::AnyConnection::connect(&admin_url).await {
                    let _ = admin
                        .execute(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        )))
                        .await;
                    let _ = admin.close().await;
                }
            });
        });
        let _ = handle.join();
    }
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

/// A Redis connection in a namespace of its own, deleted when dropped; `None` without
/// `REDIS_URL`.
pub struct TestRedis {
    /// The namespaced connection.
    pub redis: Redis,
    /// The namespace prefix, e.g. `test:3f2a…:`.
    pub namespace: String,
    url: SecretString,
}

impl TestRedis {
    /// Connects with a fresh namespace.
    pub async fn new() -> anyhow::Result<Option<Self>> {
        let Some(url) = redis_url() else {
            return Ok(None);
        };
        let namespace = format!("test:{}:", uuid::Uuid::new_v4().simple());
        let redis = Redis::connect(&url, &namespace).await?;
        Ok(Some(Self {
            redis,
            namespace,
            url,
        }))
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let url = self.url.expose_secret().to_owned();
        let pattern = format!("{}*", self.namespace);
        let handle = std::thread::spawn(move || {
            let Ok(client) = redis::Client::open(url) else {
                return;
            };
            let Ok(mut conn) = client.get_connection() else {
                return;
            };
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(&pattern)
                .query(&mut conn)
                .unwrap_or_default();
            if !keys.is_empty() {
                let _: redis::RedisResult<()> = redis::cmd("DEL").arg(&keys).query(&mut conn);
            }
        });
        let _ = handle.join();
    }
}

/// Service tokens signed with the default (development) settings, for calling a service
/// under test as `service` with `scopes`.
pub fn tokens(service: &str, scopes: &[&str]) -> TokenSource {
    let issuer = TokenIssuer::new(&AuthSettings::default(), service, scopes)
        .unwrap_or_else(|err| panic!("minting test tokens: {err}"));
    TokenSource::new(issuer)
}

/// The verifier matching [`tokens`].
pub fn verifier() -> Verifier {
    Verifier::new(&AuthSettings::default()).unwrap_or_else(|err| panic!("test verifier: {err}"))
}

/// A gRPC server on `127.0.0.1:0`, stopped when dropped.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    /// Serves `routes` with the standard stack; `services` are marked SERVING.
    pub async fn spawn(routes: Routes, services: &[&str]) -> anyhow::Result<Self> {
        let settings = ServerSettings::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let health = Health::new(services).await;
        health.set(true).await;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            serve(
                listener,
                &settings,
                routes,
                &health,
                &InProcess::new(),
                async {
                    let _ = stopped.await;
                },
            )
            .await
        });
        Ok(Self {
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// A lazily connected channel to the server.
    pub fn channel(&self) -> Channel {
        channel_to(self.addr)
    }

    /// Stops the server gracefully and waits for it.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await?,
            None => Ok(()),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A lazily connected channel to `addr`.
pub fn channel_to(addr: SocketAddr) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap_or_else(|err| panic!("endpoint for {addr}: {err}"))
        .connect_lazy()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/test?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "x"),
            "postgres://h:5432/x"
        );
    }
}
