//! `doorstep config show|reference|check`.

use crate::assemble::{self, Process};
use crate::config::settings::{SETTINGS, by_key};
use crate::config::{Config, Source};
use anyhow::{Context, bail};
use clap::Subcommand;
use std::path::Path;

/// What `doorstep config` shows.
#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// The effective value of every setting and where it came from; validates it.
    Show,
    /// Every setting: file key, environment variable, default, meaning (Markdown table).
    Reference,
    /// Whether the configuration lets COMMAND start (e.g. `pipeline status`), without
    /// connecting to anything: it loads and validates, the settings the process refuses to
    /// run without are set, and (with `--container`) none of the endpoints it connects to is
    /// left to its loopback default. The compose test runs it on every service.
    Check {
        /// The endpoints must be set to non-loopback addresses (a container's loopback is
        /// its own).
        #[arg(long)]
        container: bool,
        /// The command the process runs, e.g. `gateway` or `pipeline notify`.
        #[arg(required = true, num_args = 1..)]
        command: Vec<String>,
    },
}

/// Runs `doorstep config`.
pub fn run(action: &ConfigAction, file: Option<&Path>) -> anyhow::Result<()> {
    match action {
        ConfigAction::Reference => {
            print!("{}", reference_markdown());
            Ok(())
        }
        ConfigAction::Check { container, command } => {
            let words: Vec<&str> = command.iter().map(String::as_str).collect();
            let process = Process::from_command(&words).with_context(|| {
                format!("`doorstep {}` is not a Doorstep process", words.join(" "))
            })?;
            let src = Source::load(file)?;
            let config = Config::from_source(&src)?;
            assemble::preflight(&config, process)?;
            if *container {
                for key in process.endpoints() {
                    let setting = by_key(key).with_context(|| format!("no setting {key}"))?;
                    let value = src.get(setting).unwrap_or_default();
                    let loopback = value.is_empty()
                        || value.contains("127.0.0.1")
                        || value.contains("localhost");
                    if loopback {
                        bail!(
                            "`doorstep {}` needs {key} ({}) set to an address other than loopback \
                             in a container; it is {:?}",
                            words.join(" "),
                            setting.env,
                            if value.is_empty() {
                                setting.default
                            } else {
                                value.as_str()
                            }
                        );
                    }
                }
            }
            println!(
                "`doorstep {}` can start with this configuration",
                words.join(" ")
            );
            Ok(())
        }
        ConfigAction::Show => {
            let src = Source::load(file)?;
            for (s, value, origin) in src.describe() {
                println!("{:<42} {:<32} = {value:?} ({origin})", s.key, s.env);
            }
            Config::from_source(&src)?;
            println!("configuration is valid");
            Ok(())
        }
    }
}

/// The configuration reference as a Markdown table (the README embeds this output).
pub fn reference_markdown() -> String {
    let mut out = String::from(
        "| file key | environment variable | default | meaning |\n|---|---|---|---|\n",
    );
    for s in SETTINGS {
        let default = if s.default.is_empty() {
            "(unset)".to_owned()
        } else {
            format!("`{}`", s.default)
        };
        let secret = if s.secret {
            "**Secret** (masked). "
        } else {
            ""
        };
        out.push_str(&format!(
            "| `{}` | `{}` | {default} | {secret}{} |\n",
            s.key, s.env, s.doc
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    /// The README's configuration reference is the output of `doorstep config reference`.
    #[test]
    fn readme_reference_matches_the_code() {
        let readme = include_str!("../../../README.md");
        let marker = "<!-- config-reference:start -->\n";
        let start = readme.find(marker).map(|i| i + marker.len());
        let end = readme.find("<!-- config-reference:end -->");
        let (Some(start), Some(end)) = (start, end) else {
            panic!("README lacks the config-reference markers")
        };
        assert_eq!(
            &readme[start..end],
            super::reference_markdown(),
            "README.md is stale: regenerate it with `doorstep config reference`"
        );
    }
}
