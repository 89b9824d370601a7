//! Where a setting's value comes from: the environment, then the config file, then the
//! default.

use super::ConfigError;
use super::settings::{SETTINGS, Setting, by_env, by_key};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The merged raw values of every setting (strings, before typing).
#[derive(Debug, Clone, Default)]
pub struct Source {
    file: BTreeMap<String, String>,
    file_path: Option<PathBuf>,
    env: BTreeMap<String, String>,
}

impl Source {
    /// Reads `file` (if given) and the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let env = std::env::vars()
            .filter(|(k, _)| k.starts_with("DOORSTEP_"))
            .collect();
        Self::from_parts(file, env)
    }

    /// A source from an optional file and an explicit environment (tests).
    pub fn from_parts(
        file: Option<&Path>,
        env: BTreeMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let mut source = Self {
            env,
            ..Self::default()
        };
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            source.file = parse_file(&text).map_err(|reason| ConfigError::File {
                path: path.display().to_string(),
                reason,
            })?;
            source.file_path = Some(path.to_owned());
        }
        Ok(source)
    }

    /// The value of `setting`: environment, else file, else default; `None` when empty.
    pub fn get(&self, setting: &Setting) -> Option<String> {
        self.env
            .get(setting.env)
            .or_else(|| self.file.get(setting.key))
            .map(|v| v.trim().to_owned())
            .or_else(|| Some(setting.default.to_owned()))
            .filter(|v| !v.is_empty())
    }

    /// The value of the setting named by its environment variable.
    pub fn get_env_named(&self, env: &str) -> Option<String> {
        by_env(env).and_then(|s| self.get(s))
    }

    /// Where a setting's value came from, for `doorstep config show`.
    pub fn origin(&self, setting: &Setting) -> &'static str {
        if self.env.contains_key(setting.env) {
            "env"
        } else if self.file.contains_key(setting.key) {
            "file"
        } else {
            "default"
        }
    }

    /// Every setting with its effective value and origin (secrets masked).
    pub fn describe(&self) -> Vec<(&'static Setting, String, &'static str)> {
        SETTINGS
            .iter()
            .map(|s| {
                let v = self.get(s).unwrap_or_default();
                let v = if s.secret && !v.is_empty() {
                    super::secret::MASK.to_owned()
                } else {
                    v
                };
                (s, v, self.origin(s))
            })
            .collect()
    }
}

/// Flattens a TOML file into `section.key → value` and refuses unknown keys.
fn parse_file(text: &str) -> Result<BTreeMap<String, String>, String> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
    let mut out = BTreeMap::new();
    for (section, value) in table {
        let toml::Value::Table(inner) = value else {
            return Err(format!("`{section}` must be a [section]"));
        };
        for (name, value) in inner {
            let key = format!("{section}.{name}");
            if by_key(&key).is_none() {
                return Err(format!(
                    "unknown setting `{key}` (see `doorstep config reference`)"
                ));
            }
            let raw = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Array(items) => items
                    .into_iter()
                    .map(|i| match i {
                        toml::Value::String(s) => s,
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(","),
                other => return Err(format!("`{key}` has an unsupported value {other}")),
            };
            out.insert(key, raw);
        }
    }
    Ok(out)
}
