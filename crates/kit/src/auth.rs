//! Service-to-service authentication and the [`Caller`] every handler receives.
//!
//! A service calls another with `authorization: Bearer <token>`, a short-lived JWT it mints
//! for itself: `sub` is its name, `scope` what it may do. Tokens are signed with a shared
//! secret (HS256, development) or with the service's private key (RS256 / ES256), whose public
//! half receivers trust by key id and bind to the service name. An end user's id travels in
//! `x-tailor-user-id` and is believed only when the token verifies: an unauthenticated caller's
//! user id is ignored.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tonic::metadata::MetadataMap;

use crate::config::{ConfigError, Validate, key};

/// Metadata key carrying the end user a service acts for.
pub const USER_ID_HEADER: &str = "x-tailor-user-id";

/// The development shared secret. Refused when `environment = "production"`.
pub const DEV_SECRET: &str = "tailor-dev-secret-do-not-use-in-production";

/// How services authenticate each other.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// `iss` of service tokens.
    pub issuer: String,
    /// `aud` of service tokens.
    pub audience: String,
    /// Shared HS256 secret; enough for development, where every service holds it.
    // Secrets are never written out; a missing one comes from this section's default.
    #[serde(skip_serializing)]
    pub service_secret: Option<SecretString>,
    /// PEM private key (PKCS#8) this process signs its tokens with, instead of the secret.
    pub signing_key_file: Option<PathBuf>,
    /// `kid` put in tokens signed with `signing_key_file`.
    pub signing_key_id: String,
    /// `RS256` or `ES256`, for `signing_key_file`.
    pub signing_algorithm: String,
    /// Public keys of other services, trusted for the service they are bound to.
    pub trusted_keys: Vec<TrustedKey>,
    /// Lifetime of minted tokens.
    #[serde(with = "humantime_serde")]
    pub token_ttl: Duration,
    /// Clock skew tolerated when checking `exp` and `nbf`.
    #[serde(with = "humantime_serde")]
    pub leeway: Duration,
}

/// A public key another service signs its tokens with.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedKey {
    /// The `kid` its tokens carry.
    pub kid: String,
    /// The only service (`sub`) this key may speak for.
    pub service: String,
    /// `RS256` or `ES256`.
    pub algorithm: String,
    /// PEM public key file.
    pub public_key_file: PathBuf,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            issuer: "tailor".to_owned(),
            audience: "tailor-services".to_owned(),
            service_secret: Some(SecretString::from(DEV_SECRET)),
            signing_key_file: None,
            signing_key_id: String::new(),
            signing_algorithm: "ES256".to_owned(),
            trusted_keys: Vec::new(),
            token_ttl: Duration::from_secs(900),
            leeway: Duration::from_secs(30),
        }
    }
}

impl AuthSettings {
    /// Whether the shared secret is the well-known development one.
    pub fn uses_dev_secret(&self) -> bool {
        self.service_secret
            .as_ref()
            .is_some_and(|s| s.expose_secret() == DEV_SECRET)
    }
}

impl Validate for AuthSettings {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        if let Some(secret) = &self.service_secret
            && secret.expose_secret().len() < 32
        {
            return Err(ConfigError::invalid(
                key(prefix, "service_secret"),
                "must be at least 32 characters",
            ));
        }
        if self.service_secret.is_none() && self.signing_key_file.is_none() {
            return Err(ConfigError::invalid(
                key(prefix, "service_secret"),
                "set a shared secret or a signing_key_file",
            ));
        }
        if self.signing_key_file.is_some() {
            parse_asymmetric(&self.signing_algorithm)
                .map_err(|reason| ConfigError::invalid(key(prefix, "signing_algorithm"), reason))?;
            if self.signing_key_id.is_empty() {
                return Err(ConfigError::invalid(
                    key(prefix, "signing_key_id"),
                    "required with signing_key_file",
                ));
            }
        }
        for (i, trusted) in self.trusted_keys.iter().enumerate() {
            parse_asymmetric(&trusted.algorithm).map_err(|reason| {
                ConfigError::invalid(key(prefix, &format!("trusted_keys[{i}].algorithm")), reason)
            })?;
        }
        if self.token_ttl < Duration::from_secs(60) {
            return Err(ConfigError::invalid(
                key(prefix, "token_ttl"),
                "must be at least 60s",
            ));
        }
        Ok(())
    }
}

fn parse_asymmetric(name: &str) -> Result<Algorithm, String> {
    match name {
        "RS256" => Ok(Algorithm::RS256),
        "ES256" => Ok(Algorithm::ES256),
        other => Err(format!("`{other}` is not supported, use RS256 or ES256")),
    }
}

/// Claims of a service token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceClaims {
    /// Issuer.
    pub iss: String,
    /// The calling service.
    pub sub: String,
    /// Audience.
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at.
    pub iat: u64,
    /// Space-separated scopes.
    #[serde(default)]
    pub scope: String,
}

/// Why a caller was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// No valid service credential.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// Authenticated, but not allowed to do this.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
}

impl From<AuthError> for tonic::Status {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Unauthenticated(reason) => tonic::Status::unauthenticated(reason),
            AuthError::PermissionDenied(reason) => tonic::Status::permission_denied(reason),
        }
    }
}

/// Who is calling: an authenticated service (maybe acting for an end user), or nobody.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// The calling service; `None` when the call carried no credential.
    pub service: Option<String>,
    /// What the service may do on its own.
    pub scopes: BTreeSet<String>,
    /// The end user the service acts for; never set for an unauthenticated caller.
    pub user: Option<String>,
}

impl Caller {
    /// A caller with no credential.
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// An authenticated service (tests and in-process calls).
    pub fn service(name: &str, scopes: &[&str], user: Option<&str>) -> Self {
        Self {
            service: Some(name.to_owned()),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            user: user.map(str::to_owned),
        }
    }

    /// Fails unless the caller is an authenticated service.
    pub fn require_service(&self) -> Result<&str, AuthError> {
        self.service
            .as_deref()
            .ok_or(AuthError::Unauthenticated("missing service credential"))
    }

    /// Fails unless the caller is a service holding `scope` on its own (not for a user).
    pub fn require_scope(&self, scope: &str) -> Result<(), AuthError> {
        self.require_service()?;
        if self.user.is_none() && self.scopes.contains(scope) {
            Ok(())
        } else {
            Err(AuthError::PermissionDenied(format!(
                "requires scope {scope}"
            )))
        }
    }

    /// Allows access to `user_id`'s data: a service acting for that very user, or one acting
    /// on its own with `scope`. A service acting for user A never reaches user B.
    pub fn authorize_user(&self, user_id: &str, scope: &str) -> Result<(), AuthError> {
        self.require_service()?;
        match &self.user {
            Some(user) if user == user_id => Ok(()),
            Some(_) => Err(AuthError::PermissionDenied(
                "a caller acting for one user cannot reach another user's data".to_owned(),
            )),
            None => self.require_scope(scope),
        }
    }
}

/// Checks service tokens.
#[derive(Clone)]
pub struct Verifier {
    secret: Option<DecodingKey>,
    keys: Arc<HashMap<String, (Algorithm, DecodingKey, String)>>,
    issuer: String,
    audience: String,
    leeway: u64,
    /// Tokens already verified: a caller reuses its token for many calls, and checking the
    /// signature again on each was a measurable share of a backend's CPU under load.
    verified: moka::sync::Cache<String, ServiceClaims>,
}

/// Distinct tokens remembered; a token not seen for this long is verified again.
const VERIFIED_TOKENS: u64 = 4096;
const VERIFIED_IDLE: Duration = Duration::from_secs(300);

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.issuer)
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Loads the secret and trusted public keys.
    pub fn new(settings: &AuthSettings) -> anyhow::Result<Self> {
        let mut keys = HashMap::new();
        for trusted in &settings.trusted_keys {
            let alg = parse_asymmetric(&trusted.algorithm).map_err(anyhow::Error::msg)?;
            let pem = std::fs::read(&trusted.public_key_file)
                .with_context(|| format!("reading {}", trusted.public_key_file.display()))?;
            let key = match alg {
                Algorithm::RS256 => DecodingKey::from_rsa_pem(&pem)?,
                _ => DecodingKey::from_ec_pem(&pem)?,
            };
            keys.insert(trusted.kid.clone(), (alg, key, trusted.service.clone()));
        }
        Ok(Self {
            secret: settings
                .service_secret
                .as_ref()
                .map(|s| DecodingKey::from_secret(s.expose_secret().as_bytes())),
            keys: Arc::new(keys),
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            leeway: settings.leeway.as_secs(),
            verified: moka::sync::Cache::builder()
                .max_capacity(VERIFIED_TOKENS)
                .time_to_idle(VERIFIED_IDLE)
                .build(),
        })
    }

    /// Verifies signature, issuer, audience and lifetime; returns the claims.
    pub fn verify(&self, token: &str) -> Result<ServiceClaims, AuthError> {
        if let Some(claims) = self.verified.get(token) {
            let now = jsonwebtoken::get_current_timestamp();
            if claims.exp.saturating_add(self.leeway) > now {
                return Ok(claims);
            }
            self.verified.invalidate(token);
        }
        let claims = self.verify_signed(token)?;
        self.verified.insert(token.to_owned(), claims.clone());
        Ok(claims)
    }

    fn verify_signed(&self, token: &str) -> Result<ServiceClaims, AuthError> {
        const INVALID: AuthError = AuthError::Unauthenticated("invalid service credential");
        let header = jsonwebtoken::decode_header(token).map_err(|_| INVALID)?;
        let (alg, key, bound_service) = match header.alg {
            Algorithm::HS256 => (Algorithm::HS256, self.secret.as_ref().ok_or(INVALID)?, None),
            Algorithm::RS256 | Algorithm::ES256 => {
                let kid = header.kid.as_deref().ok_or(INVALID)?;
                let (alg, key, service) = self.keys.get(kid).ok_or(INVALID)?;
                if *alg != header.alg {
                    return Err(INVALID);
                }
                (*alg, key, Some(service.as_str()))
            }
            _ => return Err(INVALID),
        };
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = self.leeway;
        let data = jsonwebtoken::decode::<ServiceClaims>(token, key, &validation).map_err(
            |err| match err.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    AuthError::Unauthenticated("expired service credential")
                }
                _ => INVALID,
            },
        )?;
        if bound_service.is_some_and(|service| service != data.claims.sub) {
            return Err(INVALID);
        }
        Ok(data.claims)
    }

    /// The caller described by request metadata. No credential gives an anonymous caller
    /// (whose user id header is ignored); a bad credential is an error.
    pub fn authenticate(&self, metadata: &MetadataMap) -> Result<Caller, AuthError> {
        let Some(value) = metadata.get("authorization") else {
            return Ok(Caller::anonymous());
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(AuthError::Unauthenticated("malformed authorization header"))?;
        let claims = self.verify(token.trim())?;
        let user = metadata
            .get(USER_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned);
        Ok(Caller {
            service: Some(claims.sub),
            scopes: claims.scope.split_whitespace().map(str::to_owned).collect(),
            user,
        })
    }
}

/// A tonic interceptor that admits authenticated services only and puts their [`Caller`] in
/// the request extensions. Mount it on a service's API, not on health or reflection.
#[derive(Clone, Debug)]
pub struct Authenticate {
    verifier: Verifier,
}

impl Authenticate {
    /// An interceptor checking tokens with `verifier`.
    pub fn new(verifier: Verifier) -> Self {
        Self { verifier }
    }
}

impl tonic::service::Interceptor for Authenticate {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        let caller = self.verifier.authenticate(request.metadata())?;
        caller.require_service()?;
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}

/// The caller of a request that went through [`Authenticate`].
pub fn caller<T>(request: &tonic::Request<T>) -> Result<Caller, AuthError> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or(AuthError::Unauthenticated("missing service credential"))
}

/// Mints this process's service tokens.
#[derive(Clone)]
pub struct TokenIssuer {
    key: Arc<EncodingKey>,
    header: Header,
    service: String,
    scopes: String,
    issuer: String,
    audience: String,
    ttl: Duration,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("service", &self.service)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    /// An issuer for `service` with `scopes`, signing as configured.
    pub fn new(settings: &AuthSettings, service: &str, scopes: &[&str]) -> anyhow::Result<Self> {
        let (key, header) = match &settings.signing_key_file {
            Some(file) => {
                let alg =
                    parse_asymmetric(&settings.signing_algorithm).map_err(anyhow::Error::msg)?;
                let pem =
                    std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
                let key = match alg {
                    Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem)?,
                    _ => EncodingKey::from_ec_pem(&pem)?,
                };
                let mut header = Header::new(alg);
                header.kid = Some(settings.signing_key_id.clone());
                (key, header)
            }
            None => {
                let secret = settings
                    .service_secret
                    .as_ref()
                    .context("no service secret or signing key configured")?;
                (
                    EncodingKey::from_secret(secret.expose_secret().as_bytes()),
                    Header::new(Algorithm::HS256),
                )
            }
        };
        Ok(Self {
            key: Arc::new(key),
            header,
            service: service.to_owned(),
            scopes: scopes.join(" "),
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            ttl: settings.token_ttl,
        })
    }

    /// The service this issuer speaks for.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// A fresh token valid for the configured TTL.
    pub fn mint(&self) -> anyhow::Result<(String, u64)> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = ServiceClaims {
            iss: self.issuer.clone(),
            sub: self.service.clone(),
            aud: self.audience.clone(),
            iat: now,
            exp: now + self.ttl.as_secs(),
            scope: self.scopes.clone(),
        };
        let token = jsonwebtoken::encode(&self.header, &claims, &self.key)?;
        Ok((token, claims.exp))
    }
}

/// A token as its `authorization` header, and its expiry (seconds since the epoch).
type CachedToken = Option<(http::HeaderValue, u64)>;

/// A cached service token, re-minted when a third of its life is left. Cheap to clone
/// (clients are cloned per call): the clones share the issuer and the cached token.
#[derive(Clone, Debug)]
pub struct TokenSource {
    issuer: Arc<TokenIssuer>,
    current: Arc<Mutex<CachedToken>>,
}

impl TokenSource {
    /// Tokens from `issuer`.
    pub fn new(issuer: TokenIssuer) -> Self {
        Self {
            issuer: Arc::new(issuer),
            current: Arc::new(Mutex::new(None)),
        }
    }

    /// The `authorization` header of a valid token (`Bearer …`, marked sensitive so it is
    /// never logged). Built once per token: a call only clones it (a reference count).
    pub fn authorization(&self) -> anyhow::Result<http::HeaderValue> {
        let now = jsonwebtoken::get_current_timestamp();
        let refresh_margin = self.issuer.ttl.as_secs() / 3;
        let mut current = self
            .current
            .lock()
            .map_err(|_| anyhow::anyhow!("token cache poisoned"))?;
        if let Some((header, exp)) = current.as_ref()
            && *exp > now + refresh_margin
        {
            return Ok(header.clone());
        }
        let (token, exp) = self.issuer.mint()?;
        let header = bearer_header(&token)?;
        *current = Some((header.clone(), exp));
        Ok(header)
    }
}

/// `authorization: Bearer <token>` for `token`, marked sensitive so it is never logged.
/// Fails when the token is not printable ASCII.
pub fn bearer_header(token: &str) -> anyhow::Result<http::HeaderValue> {
    let mut header = http::HeaderValue::try_from(format!("Bearer {token}"))
        .context("a bearer token must be printable ASCII")?;
    header.set_sensitive(true);
    Ok(header)
}

#[cfg(test)]
mod tests {
    use tonic::metadata::MetadataValue;

    use super::*;

    fn settings() -> AuthSettings {
        AuthSettings::default()
    }

    fn metadata(token: Option<&str>, user: Option<&str>) -> MetadataMap {
        let mut map = MetadataMap::new();
        if let Some(token) = token {
            map.insert(
                "authorization",
                MetadataValue::try_from(format!("Bearer {token}")).unwrap(),
            );
        }
        if let Some(user) = user {
            map.insert(USER_ID_HEADER, MetadataValue::try_from(user).unwrap());
        }
        map
    }

    #[test]
    fn a_valid_token_authenticates_the_service_and_its_user() {
        let issuer = TokenIssuer::new(&settings(), "gateway", &["profile:write"]).unwrap();
        let verifier = Verifier::new(&settings()).unwrap();
        let (token, _) = issuer.mint().unwrap();
        let caller = verifier
            .authenticate(&metadata(Some(&token), Some("u1")))
            .unwrap();
        assert_eq!(
            caller,
            Caller::service("gateway", &["profile:write"], Some("u1"))
        );
    }

    #[test]
    fn a_user_id_without_credential_is_ignored() {
        let verifier = Verifier::new(&settings()).unwrap();
        let caller = verifier.authenticate(&metadata(None, Some("u1"))).unwrap();
        assert_eq!(caller.user, None);
        assert_eq!(caller.service, None);
        assert!(caller.require_service().is_err());
    }

    #[test]
    fn a_forged_token_is_rejected() {
        let mut other = settings();
        other.service_secret = Some(SecretString::from(
            "another-secret-that-is-long-enough-0123",
        ));
        let forged = TokenIssuer::new(&other, "gateway", &["profile:read"]).unwrap();
        let verifier = Verifier::new(&settings()).unwrap();
        let (token, _) = forged.mint().unwrap();
        assert_eq!(
            verifier.authenticate(&metadata(Some(&token), None)),
            Err(AuthError::Unauthenticated("invalid service credential"))
        );
        assert!(
            verifier
                .authenticate(&metadata(Some("not.a.jwt"), None))
                .is_err()
        );
    }

    /// A correctly signed token that expired an hour ago, and its claims.
    fn expired_token(s: &AuthSettings) -> (String, ServiceClaims) {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = ServiceClaims {
            iss: s.issuer.clone(),
            sub: "gateway".into(),
            aud: s.audience.clone(),
            iat: now - 7200,
            exp: now - 3600,
            scope: String::new(),
        };
        let key = EncodingKey::from_secret(DEV_SECRET.as_bytes());
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap();
        (token, claims)
    }

    #[test]
    fn an_expired_token_is_rejected() {
        let s = settings();
        let (token, _) = expired_token(&s);
        let verifier = Verifier::new(&s).unwrap();
        assert_eq!(
            verifier.authenticate(&metadata(Some(&token), None)),
            Err(AuthError::Unauthenticated("expired service credential"))
        );
    }

    #[test]
    fn a_remembered_token_is_refused_once_it_expires() {
        let s = settings();
        let issuer = TokenIssuer::new(&s, "gateway", &["profile:read"]).unwrap();
        let (token, _) = issuer.mint().unwrap();
        let verifier = Verifier::new(&s).unwrap();
        assert!(verifier.authenticate(&metadata(Some(&token), None)).is_ok());
        assert!(verifier.verified.get(&token).is_some(), "remembered");

        // A token verified while it was valid, remembered past its expiry.
        let (expired, claims) = expired_token(&s);
        verifier.verified.insert(expired.clone(), claims);
        assert_eq!(
            verifier.authenticate(&metadata(Some(&expired), None)),
            Err(AuthError::Unauthenticated("expired service credential"))
        );
        assert!(verifier.verified.get(&expired).is_none(), "forgotten");
    }

    #[test]
    fn a_token_for_another_audience_is_rejected() {
        let mut other = settings();
        other.audience = "someone-else".into();
        let issuer = TokenIssuer::new(&other, "gateway", &[]).unwrap();
        let (token, _) = issuer.mint().unwrap();
        let verifier = Verifier::new(&settings()).unwrap();
        assert!(
            verifier
                .authenticate(&metadata(Some(&token), None))
                .is_err()
        );
    }

    #[test]
    fn a_caller_acting_for_one_user_cannot_reach_another() {
        let caller = Caller::service("gateway", &["profile:read"], Some("alice"));
        assert!(caller.authorize_user("alice", "profile:read").is_ok());
        assert!(matches!(
            caller.authorize_user("bob", "profile:read"),
            Err(AuthError::PermissionDenied(_))
        ));
        // Scopes are for services acting on their own, not for one user's session.
        assert!(caller.require_scope("profile:read").is_err());
        let service = Caller::service("marketing", &["profile:read"], None);
        assert!(service.authorize_user("bob", "profile:read").is_ok());
        assert!(service.authorize_user("bob", "profile:write").is_err());
    }

    #[test]
    fn tokens_are_cached_until_near_expiry_as_a_sensitive_bearer_header() {
        let issuer = TokenIssuer::new(&settings(), "gateway", &["profile:read"]).unwrap();
        let source = TokenSource::new(issuer);
        let header = source.authorization().unwrap();
        assert_eq!(header, source.authorization().unwrap());
        assert!(header.is_sensitive());
        let token = header.to_str().unwrap().strip_prefix("Bearer ").unwrap();
        let claims = Verifier::new(&settings()).unwrap().verify(token).unwrap();
        assert_eq!(claims.sub, "gateway");
    }
}
