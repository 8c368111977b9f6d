//! The binary's settings: what every role shares (telemetry, auth, Redis, events) plus one
//! section per service. Loaded from defaults, an optional TOML file (`--config` or
//! `TAILOR_CONFIG`) and `TAILOR_<SECTION>__<KEY>` environment variables.

use serde::Deserialize;
use tailor_kit::auth::AuthSettings;
use tailor_kit::config::{ConfigError, Validate, key};
use tailor_kit::events::EventSettings;
use tailor_kit::redis::RedisSettings;
use tailor_kit::telemetry::TelemetrySettings;

/// Where the process runs; production refuses development shortcuts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Local development: the well-known dev secret is allowed.
    #[default]
    Development,
    /// Production: secrets must be real.
    Production,
}

/// Every setting of the binary.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// development or production.
    pub environment: Environment,
    /// Logs, traces, metrics.
    pub telemetry: TelemetrySettings,
    /// Service-to-service authentication.
    pub auth: AuthSettings,
    /// Redis (cache and event bus); unset means in-process.
    pub redis: RedisSettings,
    /// Outbox relay and consumers.
    pub events: EventSettings,
    /// The profile service.
    pub profile: tailor_profile::Settings,
    /// The recommend service.
    pub recommend: tailor_recommend::Settings,
    /// The mobile gateway.
    pub gateway: tailor_gateway::Settings,
}

impl Validate for Settings {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        self.telemetry.validate(&key(prefix, "telemetry"))?;
        self.auth.validate(&key(prefix, "auth"))?;
        self.redis.validate(&key(prefix, "redis"))?;
        self.events.validate(&key(prefix, "events"))?;
        self.profile.validate(&key(prefix, "profile"))?;
        self.recommend.validate(&key(prefix, "recommend"))?;
        self.gateway.validate(&key(prefix, "gateway"))?;
        if self.environment == Environment::Production {
            if self.auth.uses_dev_secret() {
                return Err(ConfigError::invalid(
                    key(prefix, "auth.service_secret"),
                    "the development secret is refused in production; set TAILOR_AUTH__SERVICE_SECRET",
                ));
            }
            if self.gateway.jwt.uses_dev_secret() {
                return Err(ConfigError::invalid(
                    key(prefix, "gateway.jwt.hs256_secret"),
                    "the development user-token secret is refused in production; set it or use a JWKS",
                ));
            }
            if self.gateway.dev_tokens {
                return Err(ConfigError::invalid(
                    key(prefix, "gateway.dev_tokens"),
                    "development tokens are refused in production; set TAILOR_GATEWAY__DEV_TOKENS=false",
                ));
            }
        }
        Ok(())
    }
}
