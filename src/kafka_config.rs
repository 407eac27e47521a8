//! librdkafka settings from three places, so that no secret has to be on a command line:
//! a properties file, `ORCHESTRA_KAFKA_*` environment variables and `--kafka-config`
//! flags, in that order (a later source overrides an earlier one, key by key).
//!
//! * File (`--kafka-config-file PATH`, env `ORCHESTRA_KAFKA_CONFIG_FILE`): Java-properties
//!   style, one `key=value` (or `key: value`) per line; `#` and `!` start comments.
//! * Environment: `ORCHESTRA_KAFKA_SASL_PASSWORD=…` sets `sasl.password` — the rest of the
//!   name, lower-cased, with `_` read as `.` (`ORCHESTRA_KAFKA_CONFIG_FILE` itself is the
//!   file's path, not a setting).
//! * Flags: `--kafka-config KEY=VALUE`, repeatable.
//!
//! [`KafkaSettings`] prints secrets (any key naming a password, secret, key material or
//! JAAS config) as `[redacted]`, in `Display` and `Debug` alike. Client errors can quote a
//! setting's value (librdkafka's "invalid value" errors do), so the secret values of every
//! resolved settings are also remembered, and [`redact`] blanks them out of any text: the
//! binary passes its log lines and its final error message through it.
//!
//! ```
//! use orchestra::kafka_config::KafkaSettings;
//! let s = KafkaSettings::parse_properties("security.protocol=SASL_SSL\nsasl.password=hunter2\n", "client.properties").unwrap();
//! assert_eq!(s.get("sasl.password"), Some("hunter2"));
//! assert_eq!(s.to_string(), "security.protocol=SASL_SSL sasl.password=[redacted]");
//! ```

use std::path::Path;
use std::sync::{Mutex, PoisonError};

use anyhow::{bail, Context as _, Result};
use rdkafka::ClientConfig;

/// Environment variables with this prefix are librdkafka settings.
pub const ENV_PREFIX: &str = "ORCHESTRA_KAFKA_";
/// The environment variable naming the properties file (not a setting).
pub const FILE_ENV: &str = "ORCHESTRA_KAFKA_CONFIG_FILE";

/// Ordered librdkafka settings; setting a key again replaces its value in place.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KafkaSettings(Vec<(String, String)>);

impl KafkaSettings {
    /// Settings in the order given (a repeated key keeps its last value).
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut s = Self::default();
        for (k, v) in pairs {
            s.set(k, v);
        }
        s
    }

    /// Sets `key` (replacing an earlier value).
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let (key, value) = (key.into(), value.into());
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every setting, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// Adds every setting of `other` (its values win).
    pub fn merge(&mut self, other: KafkaSettings) {
        for (k, v) in other.0 {
            self.set(k, v);
        }
    }

    /// Parses a properties text; `origin` names it in errors (`origin:LINE`).
    pub fn parse_properties(text: &str, origin: &str) -> Result<Self> {
        let mut s = Self::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let Some(at) = line.find(['=', ':']) else {
                bail!("{origin}:{}: expected `key=value`, got `{line}`", i + 1);
            };
            let (key, value) = (line[..at].trim(), line[at + 1..].trim_start());
            if key.is_empty() {
                bail!("{origin}:{}: a setting without a key", i + 1);
            }
            s.set(key, value);
        }
        Ok(s)
    }

    /// Reads a properties file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the Kafka properties file {}", path.display()))?;
        Self::parse_properties(&text, &path.display().to_string())
    }

    /// The settings named by `ORCHESTRA_KAFKA_*` variables among `vars`.
    pub fn from_env_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut found: Vec<(String, String)> = vars
            .into_iter()
            .filter(|(name, _)| name != FILE_ENV)
            .filter_map(|(name, value)| {
                let rest = name.strip_prefix(ENV_PREFIX)?;
                (!rest.is_empty()).then(|| (rest.to_ascii_lowercase().replace('_', "."), value))
            })
            .collect();
        // The environment has no order; sorting makes the result not depend on it.
        found.sort();
        Self(found)
    }

    /// Settings from the file (if any), then the process environment, then `flags`.
    pub fn resolve(file: Option<&Path>, flags: &[(String, String)]) -> Result<Self> {
        let mut s = match file {
            Some(p) => Self::from_file(p)?,
            None => Self::default(),
        };
        s.merge(Self::from_env_vars(std::env::vars()));
        s.merge(Self::from_pairs(flags.iter().cloned()));
        s.remember_secrets();
        Ok(s)
    }

    /// Adds the values of this settings' secret keys to what [`redact`] blanks out.
    pub fn remember_secrets(&self) {
        let mut known = SECRETS.lock().unwrap_or_else(PoisonError::into_inner);
        for (k, v) in &self.0 {
            // Very short values would blank out unrelated text; they are no secrets anyway.
            if is_secret(k) && v.len() >= 4 && !known.contains(v) {
                known.push(v.clone());
            }
        }
    }

    /// A client config for `bootstrap` with these settings.
    pub fn client(&self, bootstrap: &str) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", bootstrap);
        for (k, v) in &self.0 {
            c.set(k, v);
        }
        c
    }
}

/// Built-in tuning an operator's own settings win over: a latency or batching value our
/// clients choose (`fetch.wait.max.ms`, `linger.ms`, timeouts) is set only where the
/// settings (`--kafka-config`, env, file) did not set it. What a client needs to be correct
/// (`group.id`, `isolation.level`, offset commits) is set with `set`, never this.
///
/// ```
/// use orchestra::kafka_config::{KafkaSettings, Tuning};
/// let mut s = KafkaSettings::default();
/// s.set("fetch.wait.max.ms", "1");
/// let mut c = s.client("127.0.0.1:9092");
/// c.tune("fetch.wait.max.ms", "20").tune("linger.ms", "2");
/// assert_eq!(c.get("fetch.wait.max.ms"), Some("1"));
/// assert_eq!(c.get("linger.ms"), Some("2"));
/// ```
pub trait Tuning {
    /// Sets `key` to `value` unless it is already set.
    fn tune(&mut self, key: &str, value: &str) -> &mut Self;
}

impl Tuning for ClientConfig {
    fn tune(&mut self, key: &str, value: &str) -> &mut Self {
        if self.get(key).is_none() {
            self.set(key, value);
        }
        self
    }
}

/// Secret values seen by [`KafkaSettings::remember_secrets`].
static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// `text` with every remembered secret value replaced by `[redacted]`.
pub fn redact(text: &str) -> std::borrow::Cow<'_, str> {
    let known = SECRETS.lock().unwrap_or_else(PoisonError::into_inner);
    let mut out = std::borrow::Cow::Borrowed(text);
    for secret in known.iter() {
        if out.contains(secret.as_str()) {
            out = std::borrow::Cow::Owned(out.replace(secret.as_str(), "[redacted]"));
        }
    }
    out
}

/// Whether the value of `key` is a secret that must never be printed.
pub fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["password", "secret", "jaas", "private", "key.pem", "token"]
        .iter()
        .any(|w| k.contains(w))
        || k.ends_with(".key")
}

impl std::fmt::Display for KafkaSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            if is_secret(k) {
                write!(f, "{k}=[redacted]")?;
            } else {
                write!(f, "{k}={v}")?;
            }
        }
        Ok(())
    }
}

impl std::fmt::Debug for KafkaSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KafkaSettings({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn environment_variables_name_settings_with_dots() {
        let s = KafkaSettings::from_env_vars(vars(&[
            ("ORCHESTRA_KAFKA_SASL_PASSWORD", "pw"),
            ("ORCHESTRA_KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
            ("ORCHESTRA_KAFKA_CONFIG_FILE", "/etc/client.properties"),
            ("ORCHESTRA_STATE_DIR", "/tmp"),
            ("KAFKA_BOOTSTRAP_SERVERS", "x:9092"),
        ]));
        assert_eq!(s.get("sasl.password"), Some("pw"));
        assert_eq!(s.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(s.pairs().len(), 2, "{s:?}");
    }

    #[test]
    fn properties_files_take_comments_colons_and_blank_lines() {
        let s = KafkaSettings::parse_properties(
            "# comment\n! also a comment\n\nsasl.mechanism = SCRAM-SHA-512\nssl.ca.location: /etc/ca.pem\nsasl.password=a=b\n",
            "f",
        )
        .unwrap();
        assert_eq!(s.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(s.get("ssl.ca.location"), Some("/etc/ca.pem"));
        assert_eq!(s.get("sasl.password"), Some("a=b"));
    }

    #[test]
    fn a_line_without_a_separator_is_an_error_naming_the_line() {
        let e = KafkaSettings::parse_properties("a=1\njunk\n", "client.properties").unwrap_err();
        assert!(e.to_string().starts_with("client.properties:2:"), "{e}");
    }

    #[test]
    fn later_sources_override_earlier_ones_key_by_key() {
        let mut s = KafkaSettings::parse_properties("a=file\nb=file\n", "f").unwrap();
        s.merge(KafkaSettings::from_env_vars(vars(&[(
            "ORCHESTRA_KAFKA_B",
            "env",
        )])));
        s.merge(KafkaSettings::from_pairs(vars(&[("a", "flag")])));
        assert_eq!(s.get("a"), Some("flag"));
        assert_eq!(s.get("b"), Some("env"));
    }

    #[test]
    fn remembered_secret_values_are_blanked_out_of_any_text() {
        KafkaSettings::from_pairs(vars(&[
            ("sasl.password", "s3cr3t-value"),
            ("client.id", "me-visible"),
        ]))
        .remember_secrets();
        let text = "invalid value for sasl.password: s3cr3t-value (client me-visible)";
        assert_eq!(
            redact(text),
            "invalid value for sasl.password: [redacted] (client me-visible)"
        );
    }

    #[test]
    fn secrets_are_redacted_in_display_and_debug() {
        let s = KafkaSettings::from_pairs(vars(&[
            ("sasl.password", "p1"),
            ("ssl.key.password", "p2"),
            ("sasl.oauthbearer.client.secret", "p3"),
            ("sasl.jaas.config", "p4"),
            ("ssl.key.pem", "p5"),
            ("sasl.username", "alice"),
        ]));
        for shown in [s.to_string(), format!("{s:?}")] {
            for secret in ["p1", "p2", "p3", "p4", "p5"] {
                assert!(!shown.contains(secret), "{shown}");
            }
            assert!(shown.contains("sasl.username=alice"), "{shown}");
        }
    }
}
