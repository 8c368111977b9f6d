//! The gateway's settings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use tailor_kit::config::{ConfigError, Validate, check_range, key};
use tailor_kit::grpc::client::UpstreamSettings;
use tailor_kit::grpc::server::ServerSettings;

/// HS256 secret of development user tokens. Refused in production.
pub const DEV_JWT_SECRET: &str = "tailor-dev-user-jwt-secret-do-not-use-in-production";

/// Everything the gateway needs to know.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Listener (default 127.0.0.1:8080), shared by gRPC, gRPC-web and the storefront page.
    pub server: ServerSettings,
    /// Origins allowed to call from browsers (CORS), e.g. `https://m.shop.example`.
    pub allowed_origins: Vec<String>,
    /// How app users' tokens are checked.
    pub jwt: JwtSettings,
    /// Request rate limits.
    pub rate_limit: RateLimitSettings,
    /// Time budgets.
    pub deadlines: DeadlineSettings,
    /// The services the gateway calls.
    pub upstreams: Upstreams,
    /// Home feed layout rules.
    pub layout: crate::domain::layout::LayoutSettings,
    /// Serve `GET /dev/token?user=ID` minting user tokens (development only).
    pub dev_tokens: bool,
    /// Trust the first `x-forwarded-for` address as the client IP (behind a trusted proxy).
    pub trust_forwarded_for: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            server: ServerSettings {
                accept_http1: true,
                ..ServerSettings::on(SocketAddr::from(([127, 0, 0, 1], 8080)))
            },
            allowed_origins: vec![
                "http://localhost:8080".to_owned(),
                "http://127.0.0.1:8080".to_owned(),
            ],
            jwt: JwtSettings::default(),
            rate_limit: RateLimitSettings::default(),
            deadlines: DeadlineSettings::default(),
            upstreams: Upstreams::default(),
            layout: crate::domain::layout::LayoutSettings::default(),
            dev_tokens: true,
            trust_forwarded_for: false,
        }
    }
}

impl Validate for Settings {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        self.server.validate(&key(prefix, "server"))?;
        self.jwt.validate(&key(prefix, "jwt"))?;
        self.rate_limit.validate(&key(prefix, "rate_limit"))?;
        self.upstreams
            .profile
            .validate(&key(prefix, "upstreams.profile"))?;
        self.upstreams
            .recommend
            .validate(&key(prefix, "upstreams.recommend"))?;
        for (i, origin) in self.allowed_origins.iter().enumerate() {
            if http::HeaderValue::from_str(origin).is_err() || !origin.starts_with("http") {
                return Err(ConfigError::invalid(
                    key(prefix, &format!("allowed_origins[{i}]")),
                    "must be an origin such as https://m.shop.example",
                ));
            }
        }
        self.layout.validate(&key(prefix, "layout"))
    }
}

/// App users' JWTs: a shared secret (development) and/or a JWKS (production).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtSettings {
    /// Expected `iss`.
    pub issuer: String,
    /// Expected `aud`.
    pub audience: String,
    /// HS256 secret; unset to accept only asymmetric tokens.
    // Secrets are never written out; a missing one comes from this section's default.
    #[serde(skip_serializing)]
    pub hs256_secret: Option<SecretString>,
    /// JWKS file (RS256 / ES256 keys by `kid`).
    pub jwks_file: Option<PathBuf>,
    /// JWKS URL, fetched at start and again when a token names an unknown `kid`.
    pub jwks_url: Option<String>,
    /// How often the JWKS is refreshed anyway.
    #[serde(with = "humantime_serde")]
    pub jwks_refresh: Duration,
    /// Clock skew tolerated for `exp` and `nbf`.
    #[serde(with = "humantime_serde")]
    pub leeway: Duration,
}

impl Default for JwtSettings {
    fn default() -> Self {
        Self {
            issuer: "tailor-dev".to_owned(),
            audience: "tailor-mobile".to_owned(),
            hs256_secret: Some(SecretString::from(DEV_JWT_SECRET)),
            jwks_file: None,
            jwks_url: None,
            jwks_refresh: Duration::from_secs(3600),
            leeway: Duration::from_secs(30),
        }
    }
}

impl JwtSettings {
    /// Whether the user-token secret is the development one.
    pub fn uses_dev_secret(&self) -> bool {
        self.hs256_secret
            .as_ref()
            .is_some_and(|s| s.expose_secret() == DEV_JWT_SECRET)
    }
}

impl Validate for JwtSettings {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        if self.hs256_secret.is_none() && self.jwks_file.is_none() && self.jwks_url.is_none() {
            return Err(ConfigError::invalid(
                key(prefix, "hs256_secret"),
                "set a secret, a jwks_file or a jwks_url",
            ));
        }
        if let Some(secret) = &self.hs256_secret
            && secret.expose_secret().len() < 32
        {
            return Err(ConfigError::invalid(
                key(prefix, "hs256_secret"),
                "must be at least 32 characters",
            ));
        }
        if let Some(url) = &self.jwks_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(ConfigError::invalid(
                key(prefix, "jwks_url"),
                "must be an http(s) URL",
            ));
        }
        Ok(())
    }
}

/// Token-bucket limits per user (or device) and per client IP.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Sustained requests per second per user or device.
    pub per_user_per_second: u32,
    /// Burst per user or device.
    pub per_user_burst: u32,
    /// Sustained requests per second per client IP.
    pub per_ip_per_second: u32,
    /// Burst per client IP.
    pub per_ip_burst: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            per_user_per_second: 20,
            per_user_burst: 60,
            per_ip_per_second: 200,
            per_ip_burst: 400,
        }
    }
}

impl Validate for RateLimitSettings {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        check_range(
            prefix,
            "per_user_per_second",
            self.per_user_per_second,
            1..=1_000_000,
        )?;
        check_range(prefix, "per_user_burst", self.per_user_burst, 1..=1_000_000)?;
        check_range(
            prefix,
            "per_ip_per_second",
            self.per_ip_per_second,
            1..=1_000_000,
        )?;
        check_range(prefix, "per_ip_burst", self.per_ip_burst, 1..=1_000_000)
    }
}

/// Time budgets of screens and backend calls.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeadlineSettings {
    /// A screen (home feed, product page) answers within this, module by module degraded.
    #[serde(with = "humantime_serde")]
    pub screen: Duration,
    /// One backend call.
    #[serde(with = "humantime_serde")]
    pub backend_call: Duration,
}

impl Default for DeadlineSettings {
    fn default() -> Self {
        Self {
            screen: Duration::from_millis(800),
            backend_call: Duration::from_millis(500),
        }
    }
}

/// Where the services are.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Upstreams {
    /// The profile service.
    pub profile: UpstreamSettings,
    /// The recommend service.
    pub recommend: UpstreamSettings,
    /// Call a service running in this same process (`tailor serve all`) directly, without
    /// TCP and HTTP/2; `false` sends every call over the network to the URLs above.
    pub in_process: bool,
}

impl Default for Upstreams {
    fn default() -> Self {
        Self {
            profile: UpstreamSettings::at("http://127.0.0.1:50051"),
            recommend: UpstreamSettings::at("http://127.0.0.1:50052"),
            in_process: true,
        }
    }
}
