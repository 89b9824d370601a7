//! Secret settings: a [`Secret`] never shows its value in `Debug`, `Display` or
//! `doorstep config show`, and [`check`] refuses a secret that ships with Doorstep (the demo's,
//! the compose file's, the docs' examples) or is too short to be one, unless the process was
//! started with `security.allow_insecure_secrets` (development and the demo only).

use super::{ConfigError, invalid};

/// A secret value (token key, API key, access token). Compare and use it through
/// [`Secret::expose`]; every formatting of it is masked.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

/// What every masked secret shows instead of its value.
pub const MASK: &str = "********";

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that needs it (signing, an `Authorization` header).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(MASK)
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(MASK)
    }
}

/// Secrets published with Doorstep itself (`scripts/demo`, `docker-compose.yml`, the README and
/// module docs): anyone can read them, so a process using one is not protected by it.
pub const KNOWN_DEFAULTS: &[&str] = &[
    "demo-only-secret-change-me-0123456789",
    "insecure-default-change-me-0123456789abcdef",
    "a secret of at least thirty-two bytes",
    "a secret of at least thirty-two bytes!",
    "sk_test_demo",
    "demo-access-token",
];

/// Why `value` cannot protect anything, if it cannot: a published default, a placeholder
/// (`change-me`), shorter than `min_len` bytes, or fewer than 8 distinct bytes.
pub fn weakness(value: &str, min_len: usize) -> Option<String> {
    let lower = value.to_ascii_lowercase();
    if KNOWN_DEFAULTS.contains(&value) {
        return Some("is a default published with Doorstep".to_owned());
    }
    if lower.contains("change-me") || lower.contains("changeme") {
        return Some("is a placeholder (contains `change-me`)".to_owned());
    }
    if value.len() < min_len {
        return Some(format!(
            "must be at least {min_len} bytes, got {}",
            value.len()
        ));
    }
    let mut distinct = value.bytes().collect::<Vec<_>>();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 8 {
        return Some("has fewer than 8 distinct characters".to_owned());
    }
    None
}

/// Refuses a weak secret for `key` unless `allow_insecure` (the error names the setting and
/// `security.allow_insecure_secrets`, never the value).
pub(super) fn check(
    key: &'static str,
    value: &str,
    min_len: usize,
    allow_insecure: bool,
) -> Result<(), ConfigError> {
    match weakness(value, min_len) {
        Some(why) if !allow_insecure => Err(invalid(
            key,
            MASK,
            &format!(
                "{why}; set a random one (e.g. `openssl rand -hex 32`), or set \
                 security.allow_insecure_secrets (DOORSTEP_ALLOW_INSECURE_SECRETS=true) on a \
                 development machine"
            ),
        )),
        Some(why) => {
            tracing::warn!(
                setting = key,
                why,
                "insecure secret accepted (security.allow_insecure_secrets)"
            );
            Ok(())
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_never_shows_the_value() {
        let s = Secret::new("hunter2-hunter2-hunter2");
        assert_eq!(format!("{s:?} {s}"), "******** ********");
        assert_eq!(s.expose(), "hunter2-hunter2-hunter2");
    }

    #[test]
    fn weak_secrets_are_named() {
        for known in KNOWN_DEFAULTS {
            assert!(weakness(known, 8).is_some(), "{known}");
        }
        assert!(weakness("my-Change-Me-secret-0123456789abcdef", 32).is_some());
        assert!(weakness("short", 32).is_some());
        assert!(weakness(&"ab".repeat(20), 32).is_some());
        assert_eq!(weakness("0f3a9c1e7b2d4f6a8c0e1b3d5f7a9c2e", 32), None);
    }
}
