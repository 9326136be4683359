//! The kinds of values settings take: how each is parsed from a variable, a flag
//! or a default, read from TOML, and shown by `deploy-gate config`.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use serde::{Deserialize, Deserializer, de::DeserializeOwned};

use crate::secret::Secret;

/// A type a setting can have.
pub trait SettingValue: Sized {
    /// What the reference calls such a value.
    const KIND: &'static str;
    /// Whether the value is masked by `deploy-gate config`.
    const SECRET: bool = false;

    /// The value written in a variable, a flag or a built-in default.
    fn parse(text: &str) -> Result<Self, String>;

    /// The value written in the TOML file.
    fn from_toml(value: toml::Value) -> Result<Self, String>;

    /// The value as `deploy-gate config` shows it.
    fn to_toml(&self) -> toml::Value;
}

/// A setting in the TOML file, read as its type reads TOML.
pub(crate) fn deserialize_some<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: SettingValue,
{
    T::from_toml(toml::Value::deserialize(d)?)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// A TOML value read by the type's own `Deserialize`.
fn from_serde<T: DeserializeOwned>(value: toml::Value) -> Result<T, String> {
    value
        .try_into()
        .map_err(|err: toml::de::Error| err.to_string())
}

/// A value parsed by the type's own `FromStr`.
fn from_str<T: std::str::FromStr<Err: std::fmt::Display>>(text: &str) -> Result<T, String> {
    text.parse().map_err(|err: T::Err| err.to_string())
}

impl SettingValue for String {
    const KIND: &'static str = "text";

    fn parse(text: &str) -> Result<Self, String> {
        Ok(text.to_owned())
    }

    fn from_toml(value: toml::Value) -> Result<Self, String> {
        from_serde(value)
    }

    fn to_toml(&self) -> toml::Value {
        self.as_str().into()
    }
}

impl SettingValue for SocketAddr {
    const KIND: &'static str = "address:port";

    fn parse(text: &str) -> Result<Self, String> {
        from_str(text)
    }

    fn from_toml(value: toml::Value) -> Result<Self, String> {
        from_serde(value)
    }

    fn to_toml(&self) -> toml::Value {
        self.to_string().into()
    }
}

impl SettingValue for PathBuf {
    const KIND: &'static str = "path";

    fn parse(text: &str) -> Result<Self, String> {
        Ok(PathBuf::from(text))
    }

    fn from_toml(value: toml::Value) -> Result<Self, String> {
        from_serde(value)
    }

    fn to_toml(&self) -> toml::Value {
        self.display().to_string().into()
    }
}

impl SettingValue for u32 {
    const KIND: &'static str = "whole number";

    fn parse(text: &str) -> Result<Self, String> {
        from_str(text)
    }

    fn from_toml(value: toml::Value) -> Result<Self, String> {
        from_serde(value)
    }

    fn to_toml(&self) -> toml::Value {
        i64::from(*self).into()
    }
}

impl SettingValue for usize {
    const KIND: &'static str = "whole number";

    fn parse(text: &str) -> Result<Self, String> {
        from_str(text)
    }

    fn from_toml(value: toml::Value) -> Result<Self, String> {
        from_serde(value)
    }

    fn to_toml(&self) -> toml::Value {
        i64::try_from(*self).unwrap_or(i64::MAX).into()
    }
}

impl SettingValue for bool {
    const KIND: &'static str = "`true` or `false`";

    fn parse(text: &str) -> Result<Self, String> {
        match text {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(format!("expected true or false, found {other:?}")),
        }
    }

    fn from_toml(value: toml::Value) -> Result<Self, String> {
        from_serde(value)
    }

    fn to_toml(&self) -> toml::Value {
        (*self).into()
    }
}

impl SettingValue for Duration {
    const KIND: &'static str = "duration (`90s`, `48h`, `7d`)";

    fn parse(text: &str) -> Result<Self, String> {
        humantime::parse_duration(text).map_err(|err| err.to_string())
    }

    fn from_toml(value: toml::Value) -> Result<Self, String> {
        match value {
            toml::Value::String(text) => Self::parse(&text),
            other => Err(format!(
                "expected a duration such as \"90s\", found {}",
                other.type_str()
            )),
        }
    }

    fn to_toml(&self) -> toml::Value {
        humantime::format_duration(*self).to_string().into()
    }
}

impl SettingValue for Secret {
    const KIND: &'static str = "text";
    const SECRET: bool = true;

    fn parse(text: &str) -> Result<Self, String> {
        Ok(Secret::new(text))
    }

    fn from_toml(value: toml::Value) -> Result<Self, String> {
        from_serde(value)
    }

    fn to_toml(&self) -> toml::Value {
        "[redacted]".into()
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Pretty,
    /// One JSON object per line.
    Json,
}

impl SettingValue for LogFormat {
    const KIND: &'static str = "`pretty` or `json`";

    fn parse(text: &str) -> Result<Self, String> {
        <Self as clap::ValueEnum>::from_str(text, false)
    }

    fn from_toml(value: toml::Value) -> Result<Self, String> {
        from_serde(value)
    }

    fn to_toml(&self) -> toml::Value {
        match self {
            LogFormat::Pretty => "pretty",
            LogFormat::Json => "json",
        }
        .into()
    }
}

/// `Option<Duration>` as a humantime string (`"90s"`, `"48h"`) in TOML, for the
/// tables of the file (policies) that serde reads directly.
pub(crate) mod humantime_serde_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| humantime::parse_duration(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// How `deploy-gate config` shows a secret URL: as [`url_masked`] does.
pub(crate) fn secret_url_masked(url: &Secret) -> toml::Value {
    url_masked(&url.expose())
}

/// How `deploy-gate config` shows a URL: with `****` for the user name, the password
/// and the value of every query parameter whose name looks like a credential, so that
/// the output still says where things are but holds nothing to sign in with. A value
/// that is not a URL at all is `[redacted]`.
pub(crate) fn url_masked<T: std::ops::Deref<Target = str>>(url: &T) -> toml::Value {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return "[redacted]".into();
    };
    if !parsed.username().is_empty() {
        let _ = parsed.set_username(MASK);
    }
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some(MASK));
    }
    let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
    if pairs.iter().any(|(name, _)| looks_secret(name)) {
        parsed.query_pairs_mut().clear().extend_pairs(
            pairs
                .iter()
                .map(|(name, value)| (name, if looks_secret(name) { MASK } else { value })),
        );
    }
    parsed.to_string().into()
}

const MASK: &str = "****";

/// Whether a query parameter's name looks like it carries a credential (`password`,
/// `apikey`, `api_key`, `X-Amz-Signature`, `sig`, `auth_token`, `client_secret`, …).
fn looks_secret(name: &str) -> bool {
    const SECRET_WORDS: [&str; 13] = [
        "pass", "pwd", "secret", "token", "key", "auth", "sig", "cred", "session", "cookie",
        "private", "jwt", "bearer",
    ];
    let name: String = name
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    SECRET_WORDS.iter().any(|word| name.contains(word))
}

/// How `deploy-gate config` shows a comma-separated list of keys: one
/// `[redacted]` per key, so that a rotation's two keys show as two.
pub(crate) fn each_key_redacted(keys: &Secret) -> toml::Value {
    let masked = vec!["[redacted]"; keys.expose().split(',').count()];
    masked.join(",").into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_shown_without_user_info_or_secret_query_parameters() {
        for (given, shown) in [
            (
                "postgres://gate:pw@db:5432/gate?sslmode=require&Password=pw2",
                "postgres://****:****@db:5432/gate?sslmode=require&Password=****",
            ),
            (
                "https://ana@approvers.example.com/list?team=x&api_key=k&X-Amz-Signature=s",
                "https://****@approvers.example.com/list?team=x&api_key=****&X-Amz-Signature=****",
            ),
            ("smtp://mail.example.com:25", "smtp://mail.example.com:25"),
            ("sqlite://deploy-gate.db", "sqlite://deploy-gate.db"),
            ("not a url", "[redacted]"),
        ] {
            assert_eq!(
                url_masked(&given.to_owned()),
                toml::Value::from(shown),
                "{given}"
            );
        }
    }

    #[test]
    fn names_that_look_like_credentials_are_recognised() {
        for name in [
            "password",
            "pass",
            "passwd",
            "pwd",
            "secret",
            "client_secret",
            "token",
            "access-token",
            "key",
            "apikey",
            "api_key",
            "auth",
            "AuthSource",
            "sig",
            "signature",
            "credential",
            "sessionid",
        ] {
            assert!(looks_secret(name), "{name}");
        }
        for name in [
            "sslmode",
            "team",
            "user",
            "tls",
            "application_name",
            "timeout",
        ] {
            assert!(!looks_secret(name), "{name}");
        }
    }
}
