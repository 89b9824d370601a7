//! The operations panel's figures: totals of a few metric families, summed over label sets,
//! from this process's registry and from other processes' `/metrics` (Prometheus text).

use prometheus::{Encoder, Registry, TextEncoder};
use serde::Serialize;
use std::collections::BTreeMap;

/// The metric families the panel shows.
pub const FAMILIES: &[&str] = &[
    "doorstep_pipeline_records_in_total",
    "doorstep_pipeline_records_out_total",
    "doorstep_pipeline_records_rejected_total",
    "doorstep_kafka_consumer_lag_records",
    "doorstep_eta_routing_cache_hits_total",
    "doorstep_eta_routing_cache_misses_total",
    "doorstep_eta_recomputations_total",
    "doorstep_gateway_http_requests_total",
    "doorstep_gateway_websocket_connections",
];

/// One scrape's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Source {
    /// Where (`self` for this process).
    pub url: String,
    /// `ok` or the error.
    pub status: String,
}

/// Totals per family and where they came from.
#[derive(Debug, Clone, Serialize)]
pub struct OpsSummary {
    /// When, ms since the epoch (rates are differences between two summaries).
    pub at_ms: i64,
    /// Family → sum over its series and sources (absent families are 0).
    pub totals: BTreeMap<String, f64>,
    /// Routing cache hit ratio (hits / lookups), when there were lookups.
    pub routing_cache_hit_ratio: Option<f64>,
    /// The scrapes.
    pub sources: Vec<Source>,
}

/// Adds the samples of `text` (Prometheus exposition format) to `totals`.
pub fn add_samples(text: &str, totals: &mut BTreeMap<String, f64>) {
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let name = &line[..name_end];
        let Some(total) = totals.get_mut(name) else {
            continue;
        };
        let rest = match line[name_end..].rfind('}') {
            Some(i) if line[name_end..].starts_with('{') => &line[name_end + i + 1..],
            _ => &line[name_end..],
        };
        if let Some(v) = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            && v.is_finite()
        {
            *total += v;
        }
    }
}

/// Scrapes `urls` (bounded by the client's timeout) and this process's `registry`.
pub async fn summarize(http: &reqwest::Client, registry: &Registry, urls: &[String]) -> OpsSummary {
    let mut totals: BTreeMap<String, f64> =
        FAMILIES.iter().map(|f| ((*f).to_owned(), 0.0)).collect();
    let mut sources = Vec::new();
    let mut own = Vec::new();
    let status = match TextEncoder::new().encode(&registry.gather(), &mut own) {
        Ok(()) => {
            add_samples(&String::from_utf8_lossy(&own), &mut totals);
            "ok".to_owned()
        }
        Err(e) => e.to_string(),
    };
    sources.push(Source {
        url: "self".to_owned(),
        status,
    });
    let scrapes = futures::future::join_all(urls.iter().map(|u| async move {
        let r = async {
            let resp = http.get(u).send().await?.error_for_status()?;
            resp.text().await
        }
        .await;
        (u.clone(), r)
    }))
    .await;
    for (url, r) in scrapes {
        let status = match r {
            Ok(text) => {
                add_samples(&text, &mut totals);
                "ok".to_owned()
            }
            Err(e) => e.to_string(),
        };
        sources.push(Source { url, status });
    }
    let hits = totals["doorstep_eta_routing_cache_hits_total"];
    let lookups = hits + totals["doorstep_eta_routing_cache_misses_total"];
    OpsSummary {
        at_ms: doorstep_schemas::model::Timestamp::now().as_millis(),
        routing_cache_hit_ratio: (lookups > 0.0).then(|| hits / lookups),
        totals,
        sources,
    }
}
