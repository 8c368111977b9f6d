//! App users' identity: JWTs signed with a shared secret (development) or with keys from a
//! JWKS (file or URL, cached, refreshed when a token names a key id not seen yet, so key
//! rotation needs no restart). Anonymous visitors identify their device instead.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use jsonwebtoken::jwk::{JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;
use tokio::time::Instant;
use tonic::metadata::MetadataMap;

use crate::config::JwtSettings;
use crate::domain::Viewer;

/// Header naming an anonymous visitor's device.
pub const DEVICE_HEADER: &str = "x-device-id";

/// A JWKS refresh for an unknown key id happens at most this often (a flood of tokens with
/// random key ids must not turn into a flood of fetches).
const MIN_REFETCH: Duration = Duration::from_secs(30);

#[derive(Debug, Serialize, Deserialize)]
struct UserClaims {
    sub: String,
    iss: String,
    aud: String,
    exp: u64,
    #[serde(default)]
    nbf: Option<u64>,
    #[serde(default)]
    iat: Option<u64>,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unauthenticated(pub &'static str);

struct Keys {
    by_kid: HashMap<String, (Algorithm, DecodingKey)>,
    fetched: Option<Instant>,
}

/// Verifies users' tokens.
#[derive(Clone)]
pub struct UserAuth {
    settings: JwtSettings,
    secret: Option<DecodingKey>,
    keys: Arc<RwLock<Keys>>,
    http: reqwest::Client,
}

impl UserAuth {
    /// Loads the secret and the JWKS (failing if a configured JWKS cannot be read).
    pub async fn new(settings: &JwtSettings) -> anyhow::Result<Self> {
        let auth = Self {
            settings: settings.clone(),
            secret: settings
                .hs256_secret
                .as_ref()
                .map(|s| DecodingKey::from_secret(s.expose_secret().as_bytes())),
            keys: Arc::new(RwLock::new(Keys {
                by_kid: HashMap::new(),
                fetched: None,
            })),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .context("building the JWKS client")?,
        };
        if settings.jwks_file.is_some() || settings.jwks_url.is_some() {
            auth.refresh().await?;
        }
        Ok(auth)
    }

    /// Re-reads the JWKS from its file or URL.
    pub async fn refresh(&self) -> anyhow::Result<()> {
        let text = if let Some(file) = &self.settings.jwks_file {
            tokio::fs::read_to_string(file)
                .await
                .with_context(|| format!("reading {}", file.display()))?
        } else if let Some(url) = &self.settings.jwks_url {
            self.http
                .get(url)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .with_context(|| format!("fetching {url}"))?
                .text()
                .await?
        } else {
            return Ok(());
        };
        let set: JwkSet = serde_json::from_str(&text).context("parsing the JWKS")?;
        let mut by_kid = HashMap::new();
        for jwk in &set.keys {
            let (Some(kid), Some(alg)) = (&jwk.common.key_id, jwk.common.key_algorithm) else {
                continue;
            };
            let alg = match alg {
                KeyAlgorithm::RS256 => Algorithm::RS256,
                KeyAlgorithm::ES256 => Algorithm::ES256,
                // Only asymmetric algorithms are trusted from a JWKS.
                _ => continue,
            };
            by_kid.insert(kid.clone(), (alg, DecodingKey::from_jwk(jwk)?));
        }
        let mut keys = self.keys.write().await;
        keys.by_kid = by_kid;
        keys.fetched = Some(Instant::now());
        Ok(())
    }

    /// Keeps the JWKS fresh until `stop`.
    pub async fn refresh_periodically(self, stop: tailor_kit::shutdown::CancellationToken) {
        if self.settings.jwks_file.is_none() && self.settings.jwks_url.is_none() {
            return;
        }
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(self.settings.jwks_refresh) => {}
            }
            if let Err(err) = self.refresh().await {
                tracing::warn!(
                    error = format!("{err:#}"),
                    "JWKS refresh failed; keeping the previous keys"
                );
            }
        }
    }

    async fn key_for(&self, kid: &str, alg: Algorithm) -> Option<DecodingKey> {
        if let Some((known, key)) = self.keys.read().await.by_kid.get(kid)
            && *known == alg
        {
            return Some(key.clone());
        }
        let stale = self
            .keys
            .read()
            .await
            .fetched
            .is_none_or(|at| at.elapsed() >= MIN_REFETCH);
        if stale && let Err(err) = self.refresh().await {
            tracing::warn!(
                error = format!("{err:#}"),
                "JWKS refresh for a new key id failed"
            );
        }
        self.keys
            .read()
            .await
            .by_kid
            .get(kid)
            .filter(|(known, _)| *known == alg)
            .map(|(_, key)| key.clone())
    }

    /// The user a token belongs to.
    pub async fn verify(&self, token: &str) -> Result<String, Unauthenticated> {
        const INVALID: Unauthenticated = Unauthenticated("invalid token");
        let header = jsonwebtoken::decode_header(token).map_err(|_| INVALID)?;
        let key = match header.alg {
            Algorithm::HS256 => self.secret.clone().ok_or(INVALID)?,
            Algorithm::RS256 | Algorithm::ES256 => {
                let kid = header.kid.as_deref().ok_or(INVALID)?;
                self.key_for(kid, header.alg).await.ok_or(INVALID)?
            }
            _ => return Err(INVALID),
        };
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = self.settings.leeway.as_secs();
        let data =
            jsonwebtoken::decode::<UserClaims>(token, &key, &validation).map_err(
                |err| match err.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                        Unauthenticated("token expired")
                    }
                    jsonwebtoken::errors::ErrorKind::InvalidAudience => {
                        Unauthenticated("token is for another audience")
                    }
                    jsonwebtoken::errors::ErrorKind::InvalidIssuer => {
                        Unauthenticated("token from an unknown issuer")
                    }
                    jsonwebtoken::errors::ErrorKind::ImmatureSignature => {
                        Unauthenticated("token not valid yet")
                    }
                    _ => INVALID,
                },
            )?;
        if data.claims.sub.is_empty()
            || data.claims.sub.len() > 128
            || data.claims.sub.chars().any(char::is_control)
        {
            return Err(INVALID);
        }
        Ok(data.claims.sub)
    }

    /// Who is calling: the token's user, else the device, else nobody. A token that is
    /// present but bad is an error, never a fall-back to anonymous.
    pub async fn viewer(&self, metadata: &MetadataMap) -> Result<Viewer, Unauthenticated> {
        if let Some(value) = metadata.get("authorization") {
            let token = value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .ok_or(Unauthenticated("malformed authorization header"))?;
            return Ok(Viewer::User(self.verify(token.trim()).await?));
        }
        let device = metadata
            .get(DEVICE_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .ok_or(Unauthenticated(
                "sign in, or send an x-device-id header to browse anonymously",
            ))?;
        if device.len() > 64
            || !device
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(Unauthenticated(
                "x-device-id must be 1-64 letters, digits, '-' or '_'",
            ));
        }
        Ok(Viewer::Device(device.to_owned()))
    }

    /// A user token signed with the shared secret (development and tests).
    pub fn mint(&self, user: &str, ttl: Duration) -> anyhow::Result<String> {
        let secret = self
            .settings
            .hs256_secret
            .as_ref()
            .context("no HS256 secret configured for user tokens")?;
        let now = jsonwebtoken::get_current_timestamp();
        let claims = UserClaims {
            sub: user.to_owned(),
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
            exp: now + ttl.as_secs(),
            nbf: Some(now.saturating_sub(1)),
            iat: Some(now),
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.expose_secret().as_bytes()),
        )?)
    }
}
