//! The one Redis connection of a process and its key namespace.
//!
//! Redis is optional: without a URL the cache and the event bus run in-process. Every key
//! and stream name carries the namespace (empty in production; unique per test), so tests
//! sharing one Redis never see each other's data.

use std::time::Duration;

use anyhow::Context as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, Validate, key};

/// Where Redis is, if anywhere.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://[user:password@]host:port/db`; unset means in-process cache and bus.
    /// Falls back to the `REDIS_URL` environment variable.
    // Secrets are never written out; a missing one comes from this section's default.
    #[serde(skip_serializing)]
    pub url: Option<SecretString>,
    /// Prefix of every key and stream, e.g. `staging:`.
    pub namespace: String,
}

impl RedisSettings {
    /// The configured URL, or `REDIS_URL` from the environment.
    pub fn effective_url(&self) -> Option<SecretString> {
        self.url.clone().or_else(|| {
            std::env::var("REDIS_URL")
                .ok()
                .filter(|url| !url.is_empty())
                .map(SecretString::from)
        })
    }
}

impl Validate for RedisSettings {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        if let Some(url) = &self.url
            && !(url.expose_secret().starts_with("redis://")
                || url.expose_secret().starts_with("rediss://"))
        {
            return Err(ConfigError::invalid(
                key(prefix, "url"),
                "must start with redis:// or rediss://",
            ));
        }
        Ok(())
    }
}

/// A shared, self-reconnecting Redis connection plus the key namespace. Cheap to clone.
#[derive(Clone)]
pub struct Redis {
    client: redis::Client,
    conn: ConnectionManager,
    namespace: String,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// Connects to `url`, retrying while Redis starts.
    pub async fn connect(url: &SecretString, namespace: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url.expose_secret()).context("parsing the Redis url")?;
        let conn = client
            .get_connection_manager_with_config(manager_config(Duration::from_secs(5)))
            .await
            .context("connecting to Redis")?;
        Ok(Self {
            client,
            conn,
            namespace: namespace.to_owned(),
        })
    }

    /// Connects if settings (or `REDIS_URL`) name a Redis; `None` means run in-process.
    pub async fn from_settings(settings: &RedisSettings) -> anyhow::Result<Option<Self>> {
        match settings.effective_url() {
            Some(url) => Ok(Some(Self::connect(&url, &settings.namespace).await?)),
            None => Ok(None),
        }
    }

    /// The shared multiplexed connection; never use it for blocking commands.
    pub fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// A connection of its own, for blocking reads (`XREADGROUP … BLOCK`) that would stall
    /// every other command pipelined on the shared one.
    pub async fn dedicated(
        &self,
        response_timeout: Duration,
    ) -> redis::RedisResult<ConnectionManager> {
        self.client
            .get_connection_manager_with_config(manager_config(response_timeout))
            .await
    }

    /// `name` with the namespace prefix.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.namespace)
    }

    /// Checks Redis answers (health checks).
    pub async fn ping(&self) -> redis::RedisResult<()> {
        let mut conn = self.conn();
        redis::cmd("PING").query_async::<()>(&mut conn).await
    }
}

fn manager_config(response_timeout: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(response_timeout))
        .set_number_of_retries(3)
        .set_max_delay(Duration::from_secs(2))
}
