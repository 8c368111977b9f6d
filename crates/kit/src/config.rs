//! Layered configuration: defaults in code, then an optional TOML file, then environment
//! variables `TAILOR_<SECTION>__<KEY>` (double underscore between levels).
//!
//! Settings structs derive `Deserialize` with `#[serde(default, deny_unknown_fields)]` and
//! implement `Default`, so every key is optional and a misspelt key is an error that names it.
//! They also derive `Serialize`: the root's defaults are the lowest layer, so a section given
//! in part keeps its *parent's* defaults for the rest (`profile.database.max_connections`
//! alone must not move the profile database to `DatabaseSettings::default()`'s file).
//! Secrets are [`SecretString`]: they never appear in `Debug` output, logs or serialized
//! settings.

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use secrecy::{ExposeSecret, SecretString};

/// Exit code for a configuration error (`EX_USAGE` from sysexits.h).
pub const EXIT_CONFIG: i32 = 64;

/// Environment variable prefix of every Tailor setting.
pub const ENV_PREFIX: &str = "TAILOR_";

/// A configuration problem, naming the offending key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {key}: {reason}")]
pub struct ConfigError {
    /// Dotted path of the key, e.g. `profile.server.listen`.
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ConfigError {
    /// A bad value for `key`.
    pub fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// Settings that can check themselves before anything binds or connects.
pub trait Validate {
    /// Checks every value; `prefix` is the dotted path of this section (empty at the root), so
    /// errors name the full key.
    fn validate(&self, prefix: &str) -> Result<(), ConfigError>;
}

/// Joins a section prefix and a key into a dotted path.
pub fn key(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Loads `T` from its defaults, the optional TOML `file`, then the process environment
/// (`TAILOR_…`), and validates it. Only `TAILOR_<SECTION>__<KEY>` variables and the
/// `top_level` keys (e.g. `environment` for `TAILOR_ENVIRONMENT`) are settings: other
/// `TAILOR_` variables belong to tools and scripts (`TAILOR_CI`) and are not misspelt keys.
pub fn load<T>(file: Option<&Path>, top_level: &[&str]) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Serialize + Default + Validate,
{
    let mut figment = defaults::<T>();
    if let Some(file) = file {
        if !file.exists() {
            return Err(ConfigError::invalid(
                "config file",
                format!("{} does not exist", file.display()),
            ));
        }
        figment = figment.merge(Toml::file(file));
    }
    figment = figment.merge(environment(top_level));
    extract(figment)
}

fn environment(top_level: &[&str]) -> Env {
    let top_level: Vec<String> = top_level.iter().map(|k| k.to_ascii_lowercase()).collect();
    Env::prefixed(ENV_PREFIX)
        .filter(move |key| {
            key.as_str().contains("__") || top_level.contains(&key.as_str().to_ascii_lowercase())
        })
        .split("__")
}

/// Loads `T` from TOML text only (tests, examples).
pub fn from_toml<T>(toml: &str) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Serialize + Default + Validate,
{
    extract(defaults::<T>().merge(Toml::string(toml)))
}

fn defaults<T: Serialize + Default>() -> Figment {
    Figment::from(Serialized::defaults(T::default()))
}

fn extract<T>(figment: Figment) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Validate,
{
    let settings: T = figment.extract().map_err(|err| {
        let key = if err.path.is_empty() {
            "(root)".to_owned()
        } else {
            err.path.join(".")
        };
        // figment's message repeats the key and, for type errors, the value; keep only the kind
        // so a secret given with the wrong type is not echoed.
        ConfigError::invalid(key, describe(&err.kind))
    })?;
    settings.validate("")?;
    Ok(settings)
}

fn describe(kind: &figment::error::Kind) -> String {
    use figment::error::Kind;
    match kind {
        Kind::UnknownField(field, expected) => {
            format!(
                "unknown key `{field}`, expected one of {}",
                expected.join(", ")
            )
        }
        Kind::InvalidType(_, expected) => format!("wrong type, expected {expected}"),
        Kind::InvalidValue(_, expected) => format!("invalid value, expected {expected}"),
        Kind::MissingField(field) => format!("missing key `{field}`"),
        other => other.to_string(),
    }
}

/// Fails with a message naming `key` unless `value` lies in `range`.
pub fn check_range<T>(
    prefix: &str,
    name: &str,
    value: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<(), ConfigError>
where
    T: PartialOrd + std::fmt::Display + Copy,
{
    if range.contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            key(prefix, name),
            format!(
                "{value} is out of range {}..={}",
                range.start(),
                range.end()
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, Serialize)]
    #[serde(default, deny_unknown_fields)]
    struct Inner {
        port: u16,
        host: String,
        #[serde(skip_serializing)]
        token: Option<SecretString>,
    }

    impl Default for Inner {
        fn default() -> Self {
            Self {
                port: 80,
                host: "localhost".to_owned(),
                token: None,
            }
        }
    }

    #[derive(Debug, Deserialize, Serialize)]
    #[serde(default, deny_unknown_fields)]
    struct Root {
        inner: Inner,
    }

    /// The root gives its section other defaults than the section's own, as a service
    /// gives its database its own file.
    impl Default for Root {
        fn default() -> Self {
            Self {
                inner: Inner {
                    port: 443,
                    host: "root.example".to_owned(),
                    token: None,
                },
            }
        }
    }

    impl Validate for Root {
        fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
            check_range(&key(prefix, "inner"), "port", self.inner.port, 1..=1024)
        }
    }

    #[test]
    fn defaults_apply_when_keys_are_missing() {
        let root: Root = from_toml("").unwrap();
        assert_eq!(root.inner.port, 443);
        assert_eq!(root.inner.host, "root.example");
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns figment::Error
    fn a_section_given_in_part_keeps_its_parents_defaults_for_the_rest() {
        let root: Root = from_toml("[inner]\nport = 444\n").unwrap();
        assert_eq!(root.inner.port, 444);
        assert_eq!(root.inner.host, "root.example", "not Inner::default()'s");
        figment::Jail::expect_with(|jail| {
            jail.set_env("TAILOR_INNER__PORT", "445");
            let root: Root = load(None, &[]).map_err(|e| e.to_string())?;
            assert_eq!(root.inner.port, 445);
            assert_eq!(root.inner.host, "root.example");
            Ok(())
        });
    }

    #[test]
    fn secrets_are_never_serialized() {
        let mut root = Root::default();
        root.inner.token = Some(SecretString::from("dev-token"));
        let value = figment::value::Value::serialize(root).unwrap();
        assert!(!format!("{value:?}").contains("dev-token"));
    }

    #[test]
    fn unknown_key_is_named() {
        let err = from_toml::<Root>("[inner]\nprot = 1\n").unwrap_err();
        assert_eq!(err.key, "inner.prot");
        assert!(err.reason.contains("unknown key"), "{err}");
    }

    #[test]
    fn wrong_type_is_named_without_echoing_the_value() {
        let err = from_toml::<Root>("[inner]\ntoken = 12345678\n").unwrap_err();
        assert_eq!(err.key, "inner.token");
        assert!(!err.to_string().contains("12345678"), "{err}");
    }

    #[test]
    fn validation_names_the_key() {
        let err = from_toml::<Root>("[inner]\nport = 5000\n").unwrap_err();
        assert_eq!(err.key, "inner.port");
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns figment::Error
    fn only_sections_and_top_level_keys_come_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("TAILOR_INNER__PORT", "81");
            jail.set_env("TAILOR_CI", "1");
            let root: Root = load(None, &[]).expect("TAILOR_CI is not a setting");
            assert_eq!(root.inner.port, 81);
            jail.set_env("TAILOR_INNER__PROT", "1");
            let err = load::<Root>(None, &[]).unwrap_err();
            assert_eq!(
                err.key, "inner.prot",
                "misspelt keys in a section are still caught"
            );
            Ok(())
        });
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let root: Root = from_toml("[inner]\ntoken = \"hunter2\"\n").unwrap();
        assert!(!format!("{root:?}").contains("hunter2"));
    }
}
