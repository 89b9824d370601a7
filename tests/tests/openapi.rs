//! `docs/openapi.yaml` describes exactly the gateway's HTTP routes: every route registered in
//! the gateway's source (`.route("path", method(...))` in `pipelines/src/gateway/**` and the ops
//! router) is documented with the same method, nothing else is documented, and every
//! documented route answers from a real gateway (with the demo page mounted) instead of falling
//! through to the `not_found` / `method_not_allowed` fallbacks — the ops routes (the paths
//! with their own `servers`, the ops listener) from the ops router, and never from the public
//! port. No broker is needed: requests without a token are refused before anything is
//! produced.

use doorstep_pipelines::auth::TokenKey;
use doorstep_pipelines::config::{Config, Source};
use doorstep_pipelines::gateway::Gateway;
use doorstep_pipelines::gateway::page::{DemoPage, RecentOrders};
use doorstep_pipelines::gateway::track::TrackingConfig;
use doorstep_pipelines::shutdown;
use serde_norway::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

const SECRET: &str = "openapi-test-secret-of-at-least-32-bytes";
const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// (METHOD, path) of every operation in the document.
fn documented() -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(repo_root().join("docs/openapi.yaml")).unwrap();
    let doc: Value = serde_norway::from_str(&text).unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "an OpenAPI 3 document"
    );
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_mapping().unwrap() {
        let path = path.as_str().unwrap();
        for (method, op) in item.as_mapping().unwrap() {
            let method = method.as_str().unwrap();
            if method == "servers" {
                continue; // a path served elsewhere (the ops listener)
            }
            assert!(METHODS.contains(&method), "{path}: unexpected key {method}");
            assert!(
                op["responses"].as_mapping().is_some_and(|r| !r.is_empty()),
                "{method} {path} documents its responses"
            );
            out.insert((method.to_uppercase(), path.to_owned()));
        }
    }
    out
}

/// Paths documented on their own `servers` (the ops listener).
fn ops_paths() -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo_root().join("docs/openapi.yaml")).unwrap();
    let doc: Value = serde_norway::from_str(&text).unwrap();
    doc["paths"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, item)| item.get("servers").is_some())
        .map(|(p, _)| p.as_str().unwrap().to_owned())
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// (METHOD, path) of every `.route("...", method(...).method(...))` in `source`.
fn routes_in(source: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = source;
    while let Some(i) = rest.find(".route(") {
        rest = &rest[i + ".route(".len()..];
        let trimmed = rest.trim_start();
        let Some(lit) = trimmed.strip_prefix('"') else {
            continue;
        };
        let Some(end) = lit.find('"') else { break };
        let path = &lit[..end];
        // The handler expression, up to the `)` closing `.route(`.
        let after = &lit[end + 1..];
        let (mut depth, mut stop) = (1usize, after.len());
        for (j, c) in after.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        stop = j;
                        break;
                    }
                }
                _ => {}
            }
        }
        let handler = &after[..stop];
        for m in METHODS {
            let needle = format!("{m}(");
            let mut k = 0;
            while let Some(pos) = handler[k..].find(&needle) {
                let at = k + pos;
                let before = handler[..at].chars().last();
                if !before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    out.push((m.to_uppercase(), path.to_owned()));
                }
                k = at + needle.len();
            }
        }
    }
    out
}

fn registered() -> BTreeSet<(String, String)> {
    let root = repo_root().join("pipelines/src");
    let mut files = Vec::new();
    rust_files(&root.join("gateway"), &mut files);
    files.push(root.join("ops/server.rs"));
    let mut out = BTreeSet::new();
    for f in files {
        if f.ends_with("tests.rs") || f.to_string_lossy().contains("/tests/") {
            continue;
        }
        let src = std::fs::read_to_string(&f).unwrap();
        out.extend(routes_in(&src));
    }
    out
}

#[test]
fn the_route_scanner_reads_single_and_multi_line_registrations() {
    let src = r#"router.route("/a/{id}", get(x::y)).route(
            "/b",
            post(handlers::b).get(other),
        ).route("/c", axum::routing::delete(f(1)))"#;
    let found: BTreeSet<_> = routes_in(src).into_iter().collect();
    let want: BTreeSet<_> = [
        ("GET", "/a/{id}"),
        ("POST", "/b"),
        ("GET", "/b"),
        ("DELETE", "/c"),
    ]
    .into_iter()
    .map(|(m, p)| (m.to_owned(), p.to_owned()))
    .collect();
    assert_eq!(found, want);
}

#[test]
fn the_document_lists_exactly_the_registered_routes() {
    let documented = documented();
    let registered = registered();
    assert!(registered.len() >= 10, "scanner found {registered:?}");
    let undocumented: Vec<_> = registered.difference(&documented).collect();
    let phantom: Vec<_> = documented.difference(&registered).collect();
    assert!(
        undocumented.is_empty() && phantom.is_empty(),
        "registered but not in docs/openapi.yaml: {undocumented:?}\n\
         in docs/openapi.yaml but not registered: {phantom:?}"
    );
}

#[tokio::test]
async fn every_documented_route_is_served() {
    let mut env = doorstep_tests::service_env();
    env.insert("DOORSTEP_AUTH_SECRET".into(), SECRET.into());
    let config = Config::from_source(&Source::from_parts(None, env).unwrap()).unwrap();
    let gateway = Gateway::from_config(&config, Duration::from_secs(1))
        .await
        .unwrap()
        .with_order_store(&config)
        .with_live_tracking(&config, TrackingConfig::default())
        .unwrap();
    let page = DemoPage::new(
        TokenKey::new(SECRET.as_bytes()).unwrap(),
        RecentOrders::new(),
        gateway.registry().clone(),
        vec![],
    );
    let gateway = gateway.with_routes(page.router());
    let ops_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ops_base = format!("http://{}", ops_listener.local_addr().unwrap());
    let ops_router = gateway.ops_router();
    let ops_server = tokio::spawn(async move { axum::serve(ops_listener, ops_router).await });
    let ops = ops_paths();
    assert_eq!(
        ops,
        BTreeSet::from(["/healthz".to_owned(), "/metrics".to_owned()]),
        "the ops routes are documented on the ops listener"
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, signal) = shutdown::channel();
    let server = tokio::spawn(gateway.serve(listener, signal));
    let http = reqwest::Client::new();

    // The fallbacks answer like this; a served route never does.
    let fallback = http.get(format!("{base}/v1/nowhere")).send().await.unwrap();
    assert_eq!(fallback.status(), 404);
    assert!(fallback.text().await.unwrap().contains("\"not_found\""));

    for path in &ops {
        let public = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(public.status(), 404, "{path} is not on the public port");
    }
    for (method, path) in documented() {
        let on = if ops.contains(&path) {
            &ops_base
        } else {
            &base
        };
        let url = format!(
            "{on}{}",
            path.replace("{order_id}", "o-openapi")
                .replace("{driver_id}", "d-openapi")
        );
        let req = match method.as_str() {
            "GET" => http.get(&url),
            "POST" => http
                .post(&url)
                .header("content-type", "application/json")
                .body("{}"),
            other => panic!("no probe for {other}"),
        };
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        assert_ne!(status, 405, "{method} {path}: method not allowed ({body})");
        assert!(
            !body.contains("\"error\":\"not_found\""),
            "{method} {path}: fell through to not_found ({status} {body})"
        );
    }
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    ops_server.abort();
}
