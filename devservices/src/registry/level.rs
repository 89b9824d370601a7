//! Compatibility levels, spelled as in the Confluent API.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A subject's (or the global) compatibility level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Level {
    /// No check.
    None,
    /// The new schema can read data written with the latest one (the registry's default).
    #[default]
    Backward,
    /// Like `Backward`, against every earlier version.
    BackwardTransitive,
    /// The latest schema can read data written with the new one.
    Forward,
    /// Like `Forward`, against every earlier version.
    ForwardTransitive,
    /// Both `Backward` and `Forward` against the latest version.
    Full,
    /// Both `Backward` and `Forward` against every earlier version.
    FullTransitive,
}

impl Level {
    /// Whether the new schema must be able to read data written with the old ones.
    pub fn checks_backward(self) -> bool {
        matches!(
            self,
            Self::Backward | Self::BackwardTransitive | Self::Full | Self::FullTransitive
        )
    }

    /// Whether the old schemas must be able to read data written with the new one.
    pub fn checks_forward(self) -> bool {
        matches!(
            self,
            Self::Forward | Self::ForwardTransitive | Self::Full | Self::FullTransitive
        )
    }

    /// Whether every earlier version is checked, rather than only the latest.
    pub fn is_transitive(self) -> bool {
        matches!(
            self,
            Self::BackwardTransitive | Self::ForwardTransitive | Self::FullTransitive
        )
    }

    /// The API spelling, e.g. `BACKWARD_TRANSITIVE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Backward => "BACKWARD",
            Self::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Self::Forward => "FORWARD",
            Self::ForwardTransitive => "FORWARD_TRANSITIVE",
            Self::Full => "FULL",
            Self::FullTransitive => "FULL_TRANSITIVE",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = String;

    /// Parses the API spelling, case-insensitively (the real registry accepts `backward`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let all = [
            Self::None,
            Self::Backward,
            Self::BackwardTransitive,
            Self::Forward,
            Self::ForwardTransitive,
            Self::Full,
            Self::FullTransitive,
        ];
        all.into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("Invalid compatibility level: {s}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_case_insensitively_and_round_trips() {
        assert_eq!("backward".parse::<Level>(), Ok(Level::Backward));
        assert_eq!(
            "FULL_TRANSITIVE".parse::<Level>(),
            Ok(Level::FullTransitive)
        );
        assert!("SIDEWAYS".parse::<Level>().is_err());
        for l in [Level::None, Level::ForwardTransitive] {
            assert_eq!(l.as_str().parse::<Level>(), Ok(l));
        }
    }

    #[test]
    fn directions() {
        assert!(Level::Backward.checks_backward() && !Level::Backward.checks_forward());
        assert!(Level::Forward.checks_forward() && !Level::Forward.checks_backward());
        assert!(Level::Full.checks_backward() && Level::Full.checks_forward());
        assert!(!Level::None.checks_backward() && !Level::None.checks_forward());
        assert!(Level::FullTransitive.is_transitive() && !Level::Full.is_transitive());
    }
}
