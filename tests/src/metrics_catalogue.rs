//! `deploy/METRICS.md` read as data: every metric its tables list, with its type and labels,
//! for the tests that hold the code, the dashboard and the operations page to it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A metric's type, as the catalogue's `type` column writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// `C`.
    Counter,
    /// `G`.
    Gauge,
    /// `H`.
    Histogram,
}

/// One catalogued metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its type.
    pub kind: Kind,
    /// Its label names (constant and variable).
    pub labels: BTreeSet<String>,
}

impl Entry {
    /// The labels a series of this metric (or of a histogram's `_bucket` series) can carry.
    pub fn series_labels(&self, series: &str) -> BTreeSet<String> {
        let mut labels = self.labels.clone();
        if self.kind == Kind::Histogram && series.ends_with("_bucket") {
            labels.insert("le".to_owned());
        }
        labels
    }
}

/// The catalogue: metric name → entry.
pub type Catalogue = BTreeMap<String, Entry>;

/// Reads `deploy/METRICS.md` of the repository.
///
/// # Panics
/// When the file is missing or a table row is not `| `name` | C/G/H | `label`, ... | meaning |`.
pub fn load() -> Catalogue {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/METRICS.md");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse(&text)
}

/// Parses the catalogue's tables: rows whose first cell is a backticked metric name.
///
/// # Panics
/// On a malformed row or a name listed twice, naming the row.
pub fn parse(text: &str) -> Catalogue {
    let mut catalogue = Catalogue::new();
    for row in text.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        assert!(cells.len() >= 4, "catalogue row without 4 cells: {row}");
        let name = cells[0].trim_matches('`').to_owned();
        let kind = match cells[1] {
            "C" => Kind::Counter,
            "G" => Kind::Gauge,
            "H" => Kind::Histogram,
            other => panic!("catalogue row {name}: type {other:?} is not C, G or H"),
        };
        let labels = cells[2]
            .split(',')
            .map(|l| l.trim().trim_matches('`'))
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        let previous = catalogue.insert(name.clone(), Entry { kind, labels });
        assert!(
            previous.is_none(),
            "{name} is listed twice in the catalogue"
        );
    }
    catalogue
}

/// The catalogued metric a series name belongs to: the name itself, or a histogram's
/// `_bucket`, `_sum` or `_count` series.
pub fn metric_of<'a>(catalogue: &'a Catalogue, series: &str) -> Option<(&'a str, &'a Entry)> {
    if let Some((name, entry)) = catalogue.get_key_value(series) {
        return Some((name, entry));
    }
    ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
        let base = series.strip_suffix(suffix)?;
        catalogue
            .get_key_value(base)
            .filter(|(_, e)| e.kind == Kind::Histogram)
            .map(|(n, e)| (n.as_str(), e))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_names_types_and_labels() {
        let c = parse(
            "| name | type | labels | meaning |\n|---|---|---|---|\n\
             | `a_total` | C | `pipeline`, `sink` | x |\n| `b_seconds` | H | | y |\n",
        );
        assert_eq!(c.len(), 2);
        assert_eq!(c["a_total"].kind, Kind::Counter);
        assert_eq!(
            c["a_total"].labels,
            BTreeSet::from(["pipeline".to_owned(), "sink".to_owned()])
        );
        assert!(c["b_seconds"].labels.is_empty());
        assert_eq!(
            metric_of(&c, "b_seconds_bucket").map(|m| m.0),
            Some("b_seconds")
        );
        assert_eq!(metric_of(&c, "a_total_count"), None);
        assert!(
            c["b_seconds"]
                .series_labels("b_seconds_bucket")
                .contains("le")
        );
    }

    #[test]
    #[should_panic(expected = "listed twice")]
    fn refuses_a_name_listed_twice() {
        parse("| `a` | G | | x |\n| `a` | G | | y |\n");
    }
}
