//! `deploy/METRICS.md` against the code: every metric set a Doorstep process registers
//! (through `MetricSet`, the one way components register metrics) is built in a registry, and
//! its names, types and labels must equal the catalogue's, in both directions. The names the
//! demo page's operations panel reads must be catalogued too.

use doorstep_pipelines::gateway::GatewayMetrics;
use doorstep_pipelines::gateway::page::FAMILIES;
use doorstep_pipelines::gateway::track::TrackingMetrics;
use doorstep_pipelines::{
    eta::EtaMetrics, location::LocationMetrics, notify::NotifyMetrics, ops::MetricSet,
    runtime::RuntimeMetrics, status::StatusMetrics,
};
use doorstep_tests::metrics_catalogue::{self, Catalogue, Entry, Kind};
use prometheus::Registry;
use prometheus::core::Collector;
use prometheus::proto::MetricType;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every metric set, registered as `doorstep pipeline all` and `doorstep gateway` do.
fn metric_sets() -> Vec<(&'static str, Box<dyn MetricSet>)> {
    let registry = Registry::new();
    let runtime = |p| RuntimeMetrics::register(&registry, p).expect("runtime metrics");
    vec![
        (
            "RuntimeMetrics",
            Box::new(runtime("status")) as Box<dyn MetricSet>,
        ),
        (
            "StatusMetrics",
            Box::new(StatusMetrics::register(&registry).expect("status")),
        ),
        (
            "LocationMetrics",
            Box::new(LocationMetrics::register(&registry).expect("location")),
        ),
        (
            "EtaMetrics",
            Box::new(EtaMetrics::register(&registry).expect("eta")),
        ),
        (
            "NotifyMetrics",
            Box::new(NotifyMetrics::register(&registry).expect("notify")),
        ),
        (
            "GatewayMetrics",
            Box::new(GatewayMetrics::register(&registry).expect("gateway")),
        ),
        (
            "TrackingMetrics",
            Box::new(TrackingMetrics::register(&registry).expect("tracking")),
        ),
    ]
}

/// Name → (type, labels) of what the collectors declare.
fn declared(collectors: Vec<Box<dyn Collector>>) -> BTreeMap<String, Entry> {
    let mut found: BTreeMap<String, Entry> = BTreeMap::new();
    for collector in collectors {
        let kinds: Vec<Kind> = collector
            .collect()
            .iter()
            .map(|family| match family.get_field_type() {
                MetricType::COUNTER => Kind::Counter,
                MetricType::GAUGE => Kind::Gauge,
                MetricType::HISTOGRAM => Kind::Histogram,
                other => panic!("{}: unexpected metric type {other:?}", family.name()),
            })
            .collect();
        for (i, desc) in collector.desc().into_iter().enumerate() {
            let labels: BTreeSet<String> = desc
                .const_label_pairs
                .iter()
                .map(|p| p.name().to_owned())
                .chain(desc.variable_labels.iter().cloned())
                .collect();
            let kind = *kinds
                .get(i)
                .or(kinds.first())
                .unwrap_or_else(|| panic!("{} collects no family", desc.fq_name));
            let entry = Entry { kind, labels };
            // The same name registered by several components (a shared metric with a
            // different `pipeline` constant) must agree on type and labels.
            if let Some(seen) = found.get(&desc.fq_name) {
                assert_eq!(seen, &entry, "{} is declared two ways", desc.fq_name);
            }
            found.insert(desc.fq_name.clone(), entry);
        }
    }
    found
}

fn doorstep_part(catalogue: &Catalogue) -> Catalogue {
    catalogue
        .iter()
        .filter(|(n, _)| n.starts_with("doorstep_"))
        .map(|(n, e)| (n.clone(), e.clone()))
        .collect()
}

#[test]
fn the_catalogue_lists_exactly_the_metrics_the_code_registers() {
    let code = declared(
        metric_sets()
            .iter()
            .flat_map(|(_, set)| set.collectors())
            .collect(),
    );
    let catalogue = doorstep_part(&metrics_catalogue::load());
    let missing: Vec<_> = code
        .keys()
        .filter(|n| !catalogue.contains_key(*n))
        .collect();
    let stale: Vec<_> = catalogue
        .keys()
        .filter(|n| !code.contains_key(*n))
        .collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "deploy/METRICS.md lacks {missing:?} and lists {stale:?}, which no code registers"
    );
    for (name, entry) in &code {
        assert_eq!(
            &catalogue[name], entry,
            "{name}: deploy/METRICS.md says {:?}, the code registers {entry:?}",
            catalogue[name]
        );
    }
    for (name, entry) in &code {
        let unit_ok = match entry.kind {
            Kind::Counter => name.ends_with("_total"),
            Kind::Gauge | Kind::Histogram => !name.ends_with("_total"),
        };
        assert!(unit_ok, "{name}: counters end in _total, nothing else does");
    }
}

#[test]
fn every_metric_set_of_the_code_is_checked_here() {
    // A new `impl MetricSet for X` must be added to `metric_sets` above.
    let checked: BTreeSet<&str> = metric_sets().iter().map(|(n, _)| *n).collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pipelines/src");
    let mut implemented = BTreeSet::new();
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable source dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("readable source");
                for rest in text.split("impl MetricSet for ").skip(1) {
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    implemented.insert(name);
                }
            }
        }
    }
    let implemented: BTreeSet<&str> = implemented.iter().map(String::as_str).collect();
    assert_eq!(
        implemented, checked,
        "metric sets in the code vs in this test"
    );
}

#[test]
fn the_standard_process_metrics_are_served_and_catalogued() {
    let registry = doorstep_pipelines::ops::process_registry().expect("process registry");
    let served: BTreeSet<String> = registry
        .gather()
        .iter()
        .map(|f| f.name().to_owned())
        .collect();
    let catalogue = metrics_catalogue::load();
    let standard: BTreeSet<String> = catalogue
        .keys()
        .filter(|n| n.starts_with("process_"))
        .cloned()
        .collect();
    assert!(
        served.contains("process_resident_memory_bytes"),
        "the dashboard's memory panel needs process_resident_memory_bytes: {served:?}"
    );
    assert!(
        served.is_subset(&standard),
        "served but not catalogued: {:?}",
        served.difference(&standard).collect::<Vec<_>>()
    );
}

#[test]
fn the_operations_panel_reads_only_catalogued_metrics() {
    let catalogue = metrics_catalogue::load();
    for family in FAMILIES {
        assert!(
            catalogue.contains_key(*family),
            "the demo page's operations panel reads {family}, which deploy/METRICS.md lacks"
        );
    }
    let page = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../pipelines/src/gateway/page/assets/index.html"),
    )
    .expect("the demo page");
    for name in page
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("doorstep_"))
    {
        assert!(
            FAMILIES.contains(&name),
            "the page reads {name}, which the operations summary does not collect"
        );
    }
}
