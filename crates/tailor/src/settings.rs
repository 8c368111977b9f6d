//! The binary's settings: what every role shares (telemetry, auth, Redis, events) plus one
//! section per service. Loaded from defaults, an optional TOML file (`--config` or
//! `TAILOR_CONFIG`) and `TAILOR_<SECTION>__<KEY>` environment variables.

use serde::{Deserialize, Serialize};
use tailor_kit::auth::AuthSettings;
use tailor_kit::config::{ConfigError, Validate, key};
use tailor_kit::events::EventSettings;
use tailor_kit::redis::RedisSettings;
use tailor_kit::telemetry::TelemetrySettings;

/// Where the process runs; production refuses development shortcuts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Local development: the well-known dev secret is allowed.
    #[default]
    Development,
    /// Production: secrets must be real.
    Production,
}

/// Settings that are not in a section: `TAILOR_ENVIRONMENT`.
pub const TOP_LEVEL_KEYS: &[&str] = &["environment"];

/// Every setting of the binary.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
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
        if self.environment == Environment::Production && self.auth.uses_dev_secret() {
            return Err(ConfigError::invalid(
                key(prefix, "auth.service_secret"),
                "the development secret is refused in production; set TAILOR_AUTH__SERVICE_SECRET",
            ));
        }
        Ok(())
    }
}

impl Settings {
    /// Checks that only matter to the roles a process runs: the gateway's user-token
    /// secret and dev tokens are refused in production, but a profile replica (or
    /// `tailor migrate`) never reads them and must not need them.
    pub fn validate_roles(&self, roles: &[crate::roles::Role]) -> Result<(), ConfigError> {
        let production = self.environment == Environment::Production;
        if production && roles.contains(&crate::roles::Role::Gateway) {
            if self.gateway.jwt.uses_dev_secret() {
                return Err(ConfigError::invalid(
                    "gateway.jwt.hs256_secret",
                    "the development user-token secret is refused in production; set it or use a JWKS",
                ));
            }
            if self.gateway.dev_tokens {
                return Err(ConfigError::invalid(
                    "gateway.dev_tokens",
                    "development tokens are refused in production; set TAILOR_GATEWAY__DEV_TOKENS=false",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roles::Role;

    fn production() -> Settings {
        let mut settings = Settings {
            environment: Environment::Production,
            ..Settings::default()
        };
        settings.auth.service_secret = Some("a-real-service-secret-0123456789abcdef".into());
        settings
    }

    #[test]
    fn the_gateway_secrets_are_checked_only_where_the_gateway_runs() {
        let settings = production();
        assert!(settings.validate("").is_ok());
        assert!(
            settings
                .validate_roles(&[Role::Profile, Role::Recommend])
                .is_ok()
        );
        let refused = settings.validate_roles(Role::ALL).unwrap_err();
        assert_eq!(refused.key, "gateway.jwt.hs256_secret");

        let mut gateway = production();
        gateway.gateway.jwt.hs256_secret = Some("a-real-user-token-secret-0123456789".into());
        assert_eq!(
            gateway.validate_roles(&[Role::Gateway]).unwrap_err().key,
            "gateway.dev_tokens"
        );
        gateway.gateway.dev_tokens = false;
        assert!(gateway.validate_roles(&[Role::Gateway]).is_ok());
    }

    #[test]
    fn production_refuses_the_development_service_secret() {
        let settings = Settings {
            environment: Environment::Production,
            ..Settings::default()
        };
        assert_eq!(
            settings.validate("").unwrap_err().key,
            "auth.service_secret"
        );
    }

    #[test]
    fn a_database_section_given_in_part_keeps_the_roles_own_file() {
        use secrecy::ExposeSecret as _;
        use tailor_kit::config::from_toml;

        let settings: Settings = from_toml(
            "[profile.database]\nmax_connections = 4\n[recommend.database]\nsqlite_cache_mib = 8\n",
        )
        .unwrap();
        assert_eq!(settings.profile.database.max_connections, 4);
        assert_eq!(
            settings.profile.database.url.expose_secret(),
            "sqlite://data/profile.db"
        );
        assert_eq!(
            settings.recommend.database.url.expose_secret(),
            "sqlite://data/recommend.db"
        );
        assert_eq!(
            settings.profile.server.listen,
            Settings::default().profile.server.listen
        );
    }
}
