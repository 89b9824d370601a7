//! `doorstep config show|reference`.

use crate::config::{Config, Source, settings::SETTINGS};
use clap::Subcommand;
use std::path::Path;

/// What `doorstep config` shows.
#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// The effective value of every setting and where it came from; validates it.
    Show,
    /// Every setting: file key, environment variable, default, meaning (Markdown table).
    Reference,
}

/// Runs `doorstep config`.
pub fn run(action: &ConfigAction, file: Option<&Path>) -> anyhow::Result<()> {
    match action {
        ConfigAction::Reference => {
            print!("{}", reference_markdown());
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
