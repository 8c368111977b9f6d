//! App users as the gateway sees them: signed-in users carry `authorization: Bearer <JWT>`
//! (HS256 tokens minted here as the identity provider would, from the gateway's `jwt`
//! settings), anonymous visitors an `x-device-id`. Minting signs and encodes JSON, which
//! is generator work, not the gateway's: each user's token is minted once and reused from a
//! bounded cache until a third of its life is left.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use tonic::metadata::{Ascii, MetadataValue};

/// The gateway's development user-token secret (`tailor_gateway::config::DEV_JWT_SECRET`;
/// the smoke tests check they agree).
pub const DEV_USER_JWT_SECRET: &str = "tailor-dev-user-jwt-secret-do-not-use-in-production";
/// The gateway's default `jwt.issuer`.
pub const DEV_USER_JWT_ISSUER: &str = "tailor-dev";
/// The gateway's default `jwt.audience`.
pub const DEV_USER_JWT_AUDIENCE: &str = "tailor-mobile";

/// Header naming an anonymous visitor's device (`tailor_gateway::auth::DEVICE_HEADER`).
pub const DEVICE_HEADER: &str = "x-device-id";

/// Most users with a cached token; beyond it, an arbitrary entry makes room (Zipf traffic
/// keeps asking for the hot users, so they are back at once).
const CACHE_CAPACITY: usize = 100_000;

/// How app users' tokens are signed: the gateway's `jwt` settings.
#[derive(Clone)]
pub struct UserJwt {
    /// HS256 secret (`jwt.hs256_secret`).
    pub secret: String,
    /// `iss` (`jwt.issuer`).
    pub issuer: String,
    /// `aud` (`jwt.audience`).
    pub audience: String,
    /// Lifetime of each token.
    pub ttl: Duration,
}

impl std::fmt::Debug for UserJwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserJwt")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Default for UserJwt {
    /// The gateway's development defaults.
    fn default() -> Self {
        Self {
            secret: DEV_USER_JWT_SECRET.to_owned(),
            issuer: DEV_USER_JWT_ISSUER.to_owned(),
            audience: DEV_USER_JWT_AUDIENCE.to_owned(),
            ttl: Duration::from_secs(3600),
        }
    }
}

/// The claims the gateway requires (`sub`, `iss`, `aud`, `exp`) and checks (`nbf`).
#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    iss: &'a str,
    aud: &'a str,
    exp: u64,
    nbf: u64,
    iat: u64,
}

/// Users' `authorization` values, minted on first use and cached.
pub struct UserTokens {
    key: EncodingKey,
    header: Header,
    issuer: String,
    audience: String,
    ttl: u64,
    cache: Mutex<HashMap<String, (MetadataValue<Ascii>, u64)>>,
}

impl std::fmt::Debug for UserTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserTokens")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl UserTokens {
    /// Tokens signed as `jwt` says.
    pub fn new(jwt: &UserJwt) -> anyhow::Result<Self> {
        // The gateway refuses shorter secrets; a typo here would only show as 100 % errors.
        if jwt.secret.len() < 32 {
            anyhow::bail!("the user-token secret must be at least 32 characters, as the gateway's");
        }
        if jwt.ttl < Duration::from_secs(60) {
            anyhow::bail!("user tokens must live at least 60s");
        }
        Ok(Self {
            key: EncodingKey::from_secret(jwt.secret.as_bytes()),
            header: Header::new(Algorithm::HS256),
            issuer: jwt.issuer.clone(),
            audience: jwt.audience.clone(),
            ttl: jwt.ttl.as_secs(),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// `Bearer <token>` for `user`.
    pub fn authorization(&self, user: &str) -> anyhow::Result<MetadataValue<Ascii>> {
        let now = jsonwebtoken::get_current_timestamp();
        let fresh_until = now + self.ttl / 3;
        {
            let cache = self
                .cache
                .lock()
                .map_err(|_| anyhow::anyhow!("user token cache poisoned"))?;
            if let Some((value, exp)) = cache.get(user)
                && *exp > fresh_until
            {
                return Ok(value.clone());
            }
        }
        // Minted outside the lock: other generator threads keep reading meanwhile.
        let exp = now + self.ttl;
        let claims = Claims {
            sub: user,
            iss: &self.issuer,
            aud: &self.audience,
            exp,
            nbf: now.saturating_sub(1),
            iat: now,
        };
        let token = jsonwebtoken::encode(&self.header, &claims, &self.key)
            .with_context(|| format!("minting a user token for {user}"))?;
        let mut value =
            MetadataValue::try_from(format!("Bearer {token}")).context("a JWT is always ASCII")?;
        value.set_sensitive(true);
        let mut cache = self
            .cache
            .lock()
            .map_err(|_| anyhow::anyhow!("user token cache poisoned"))?;
        if cache.len() >= CACHE_CAPACITY
            && !cache.contains_key(user)
            && let Some(evicted) = cache.keys().next().cloned()
        {
            cache.remove(&evicted);
        }
        cache.insert(user.to_owned(), (value.clone(), exp));
        Ok(value)
    }

    /// Users with a cached token.
    pub fn cached(&self) -> usize {
        self.cache.lock().map_or(0, |c| c.len())
    }
}

/// A device id the gateway accepts (1-64 letters, digits, '-' or '_'), from any text: other
/// characters become '-'.
pub fn device_id(raw: &str) -> String {
    raw.chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{DecodingKey, Validation};
    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize)]
    struct Decoded {
        sub: String,
        exp: u64,
        nbf: u64,
    }

    #[test]
    fn tokens_verify_as_the_gateway_checks_them_and_are_cached() {
        let tokens = UserTokens::new(&UserJwt::default()).unwrap();
        let value = tokens.authorization("lg-u0000007").unwrap();
        assert!(value.is_sensitive());
        let token = value.to_str().unwrap().strip_prefix("Bearer ").unwrap();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[DEV_USER_JWT_ISSUER]);
        validation.set_audience(&[DEV_USER_JWT_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        let claims = jsonwebtoken::decode::<Decoded>(
            token,
            &DecodingKey::from_secret(DEV_USER_JWT_SECRET.as_bytes()),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(claims.sub, "lg-u0000007");
        assert!(claims.exp > claims.nbf + 3000);

        assert_eq!(tokens.authorization("lg-u0000007").unwrap(), value);
        assert_eq!(tokens.cached(), 1);
        assert_ne!(tokens.authorization("lg-u0000008").unwrap(), value);
        assert_eq!(tokens.cached(), 2);
    }

    #[test]
    fn a_short_secret_is_refused() {
        let jwt = UserJwt {
            secret: "short".to_owned(),
            ..UserJwt::default()
        };
        assert!(UserTokens::new(&jwt).is_err());
    }

    #[test]
    fn device_ids_are_what_the_gateway_accepts() {
        assert_eq!(device_id("lg-d0000042"), "lg-d0000042");
        assert_eq!(device_id("a.b c/d"), "a-b-c-d");
        assert_eq!(device_id(&"x".repeat(100)).len(), 64);
    }
}
