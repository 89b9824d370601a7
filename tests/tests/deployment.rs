//! Static checks of the production deployment: `docker-compose.yml`, the `Dockerfile`,
//! `.dockerignore` and everything under `deploy/` (Prometheus, Grafana, init scripts).
//!
//! The machines that build and test Doorstep have no Docker engine, so the stack cannot be
//! started here. These tests read the files instead and check what a typo would silently
//! break: pinned images, dependencies that exist, the `DOORSTEP_*` settings every process
//! needs, scrape targets, the exact topic list (from `doorstep_schemas`), the dashboard's
//! metric names, and the builder's Rust version. `scripts/compose-check` stands in for
//! `docker compose config`: it loads the file with compose-go (the Compose CLI's own loader:
//! the Compose Specification's schema, interpolation, required variables), and
//! `doorstep config check` then tells whether each Doorstep service has every setting it needs
//! (the settings table's validation and the checks of `assemble.rs`). A missing Go toolchain
//! or binary fails those tests; they never skip.
//!
//! Compose `${VAR:-default}` interpolation is resolved to the default, never from the
//! environment, so the checks do not depend on who runs them.

use doorstep_tests::metrics_catalogue::{self, Catalogue};
use serde_json::Value as Json;
use serde_norway::{Mapping, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Doorstep processes and the subcommand each runs.
const DOORSTEP_SERVICES: [(&str, &[&str]); 5] = [
    ("gateway", &["gateway"]),
    ("pipeline-status", &["pipeline", "status"]),
    ("pipeline-location", &["pipeline", "location"]),
    ("pipeline-eta", &["pipeline", "eta"]),
    ("pipeline-notify", &["pipeline", "notify"]),
];

/// The one-shot Doorstep services and the subcommand each runs.
const DOORSTEP_ONE_SHOTS: [(&str, &[&str]); 1] = [("schemas-init", &["topics", "ensure"])];

/// What every Doorstep process must be told, and the value on the compose network.
const REQUIRED_ENV: [(&str, &str); 6] = [
    ("DOORSTEP_KAFKA_BROKERS", "kafka:9092"),
    (
        "DOORSTEP_SCHEMA_REGISTRY_URL",
        "http://schema-registry:8081",
    ),
    ("DOORSTEP_REDIS_URL", "redis://redis:6379"),
    ("DOORSTEP_CQL_NODES", "scylla:9042"),
    ("DOORSTEP_OSRM_URL", "http://osrm:5000"),
    // Containers must listen beyond loopback, or neither Prometheus nor the health check
    // reaches /metrics and /healthz.
    ("DOORSTEP_OPS_LISTEN", "0.0.0.0:9100"),
];

/// The ops port (`/metrics`, `/healthz`) of every Doorstep process.
const OPS_PORT: u16 = 9100;

/// Labels Prometheus adds to every scraped series (`service` by `deploy/prometheus/prometheus.yml`).
const TARGET_LABELS: [&str; 3] = ["job", "instance", "service"];

// ---------------------------------------------------------------- helpers

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives in the workspace root")
        .to_path_buf()
}

fn read(rel: &str) -> String {
    let path = repo_root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn yaml(rel: &str) -> Value {
    let mut value: Value = serde_norway::from_str(&read(rel))
        .unwrap_or_else(|e| panic!("{rel} is not valid YAML: {e}"));
    // `<<: *anchor` merge keys, as Compose applies them.
    value
        .apply_merge()
        .unwrap_or_else(|e| panic!("{rel}: bad YAML merge key: {e}"));
    value
}

fn compose() -> Value {
    yaml("docker-compose.yml")
}

fn services(compose: &Value) -> &Mapping {
    compose
        .get("services")
        .and_then(Value::as_mapping)
        .expect("docker-compose.yml has a `services` mapping")
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    services(compose)
        .get(name)
        .unwrap_or_else(|| panic!("docker-compose.yml has no service `{name}`"))
}

fn service_names(compose: &Value) -> BTreeSet<String> {
    services(compose)
        .keys()
        .map(|k| k.as_str().expect("service names are strings").to_owned())
        .collect()
}

/// Compose interpolation with every variable unset: `${X:-d}` and `${X-d}` become `d`,
/// `${X}`, `${X:?message}` and `$X` become empty, `$$` is a literal `$`.
fn interpolate(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .unwrap_or_else(|| panic!("unclosed ${{ in {s:?}"));
            let expr = &body[..end];
            if expr.contains('?') {
                // `${X:?message}`: required, no default.
            } else if let Some((_, default)) =
                expr.split_once(":-").or_else(|| expr.split_once('-'))
            {
                out.push_str(default);
            }
            rest = &body[end + 1..];
        } else {
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            rest = &after[len..];
        }
    }
    out.push_str(rest);
    out
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        other => panic!("expected a scalar, found {other:?}"),
    }
}

/// A service's environment, map or `KEY=VALUE` list form, interpolated.
fn environment(svc: &Value) -> BTreeMap<String, String> {
    match svc.get("environment") {
        None => BTreeMap::new(),
        Some(Value::Mapping(m)) => m
            .iter()
            .map(|(k, v)| (scalar(k), interpolate(&scalar(v))))
            .collect(),
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|item| {
                let item = scalar(item);
                let (k, v) = item.split_once('=').unwrap_or((&item, ""));
                (k.to_owned(), interpolate(v))
            })
            .collect(),
        Some(other) => panic!("environment must be a mapping or a list, found {other:?}"),
    }
}

/// `depends_on` as (target, condition), short (list) or long (mapping) form.
fn depends_on(svc: &Value) -> Vec<(String, String)> {
    match svc.get("depends_on") {
        None => Vec::new(),
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|t| (scalar(t), "service_started".to_owned()))
            .collect(),
        Some(Value::Mapping(m)) => m
            .iter()
            .map(|(k, v)| {
                let condition = v
                    .get("condition")
                    .map(scalar)
                    .unwrap_or_else(|| "service_started".to_owned());
                (scalar(k), condition)
            })
            .collect(),
        Some(other) => panic!("depends_on must be a list or a mapping, found {other:?}"),
    }
}

/// A list of strings (`command`, `entrypoint`, `healthcheck.test`); a plain string is one item.
fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        None => Vec::new(),
        Some(Value::Sequence(items)) => items.iter().map(scalar).collect(),
        Some(other) => vec![scalar(other)],
    }
}

/// The interpolated image reference of a service, if it names one.
fn image(svc: &Value) -> Option<String> {
    svc.get("image").map(|v| interpolate(&scalar(v)))
}

/// Short-syntax volumes as (source, target).
fn volumes(svc: &Value) -> Vec<(String, String)> {
    strings(svc.get("volumes"))
        .iter()
        .map(|v| {
            let v = interpolate(v);
            let mut parts = v.splitn(3, ':');
            let source = parts.next().unwrap_or_default().to_owned();
            let target = parts
                .next()
                .unwrap_or_else(|| panic!("volume {v:?} has no target"))
                .to_owned();
            (source, target)
        })
        .collect()
}

/// The tag (or digest) of an image reference: after the last `:` of the last path segment.
fn image_tag(image: &str) -> Option<&str> {
    if let Some((_, digest)) = image.split_once('@') {
        return Some(digest);
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    last.split_once(':').map(|(_, tag)| tag)
}

// ---------------------------------------------------------------- compose structure

#[test]
fn every_service_has_a_pinned_image_or_a_build() {
    let compose = compose();
    for (name, svc) in services(&compose) {
        let name = scalar(name);
        let built = svc.get("build").is_some();
        let Some(image) = image(svc) else {
            assert!(built, "service {name} has neither `image` nor `build`");
            continue;
        };
        let tag = image_tag(&image)
            .unwrap_or_else(|| panic!("service {name}: image {image} has no tag: pin a version"));
        assert!(
            !tag.is_empty(),
            "service {name}: image {image} has an empty tag"
        );
        assert_ne!(
            tag, "latest",
            "service {name}: image {image} must be pinned, not `latest`"
        );
        if !built {
            assert!(
                tag.chars().any(|c| c.is_ascii_digit()),
                "service {name}: image {image} should be pinned to a version, tag `{tag}` has no number"
            );
        }
    }
}

#[test]
fn every_dependency_exists_and_can_be_satisfied() {
    let compose = compose();
    let names = service_names(&compose);
    for (name, svc) in services(&compose) {
        let name = scalar(name);
        for (target, condition) in depends_on(svc) {
            assert!(
                names.contains(&target),
                "service {name} depends on unknown service {target}"
            );
            assert_ne!(target, name, "service {name} depends on itself");
            let dep = service(&compose, &target);
            match condition.as_str() {
                "service_started" => {}
                "service_healthy" => assert!(
                    dep.get("healthcheck").is_some(),
                    "{name} waits for {target} to be healthy, but {target} has no healthcheck"
                ),
                "service_completed_successfully" => {
                    let restart = dep
                        .get("restart")
                        .map(scalar)
                        .unwrap_or_else(|| "no".to_owned());
                    assert_eq!(
                        restart, "no",
                        "{name} waits for {target} to complete, but {target} restarts ({restart}) and never completes"
                    );
                }
                other => {
                    panic!("service {name}: unknown depends_on condition {other} for {target}")
                }
            }
        }
    }
    // No cycles: a depth-first walk never meets a service on its own path.
    fn visit(compose: &Value, name: &str, path: &mut Vec<String>, done: &mut BTreeSet<String>) {
        if done.contains(name) {
            return;
        }
        assert!(
            !path.iter().any(|p| p == name),
            "dependency cycle: {} -> {name}",
            path.join(" -> ")
        );
        path.push(name.to_owned());
        for (target, _) in depends_on(service(compose, name)) {
            visit(compose, &target, path, done);
        }
        path.pop();
        done.insert(name.to_owned());
    }
    let mut done = BTreeSet::new();
    for name in &names {
        visit(&compose, name, &mut Vec::new(), &mut done);
    }
}

/// `docker compose up --wait` counts a one-shot container that exited 0 as a failure unless
/// a long-running service waits for it with `service_completed_successfully`.
#[test]
fn every_one_shot_service_is_awaited_by_a_long_running_one() {
    let compose = compose();
    let one_shot = |svc: &Value| svc.get("restart").map(scalar).as_deref() == Some("no");
    for (name, svc) in services(&compose) {
        if !one_shot(svc) {
            continue;
        }
        let name = scalar(name);
        let awaited = services(&compose).iter().any(|(_, other)| {
            !one_shot(other)
                && depends_on(other)
                    .iter()
                    .any(|(t, c)| *t == name && c == "service_completed_successfully")
        });
        assert!(
            awaited,
            "one-shot service {name} must be a service_completed_successfully dependency of a \
             long-running service, or `docker compose up --wait` fails when it exits"
        );
    }
}

#[test]
fn every_bind_mount_exists_and_every_named_volume_is_declared() {
    let compose = compose();
    let declared: BTreeSet<String> = compose
        .get("volumes")
        .and_then(Value::as_mapping)
        .map(|m| m.keys().map(scalar).collect())
        .unwrap_or_default();
    for (name, svc) in services(&compose) {
        let name = scalar(name);
        for (source, target) in volumes(svc) {
            assert!(
                target.starts_with('/'),
                "service {name}: volume target {target} is not absolute"
            );
            if source.starts_with("./") || source.starts_with("../") {
                let path = repo_root().join(&source);
                assert!(
                    path.exists(),
                    "service {name} mounts {source}, which does not exist in the repository"
                );
            } else {
                assert!(
                    !source.starts_with('/'),
                    "service {name} mounts the host path {source}: keep the project free of machine paths"
                );
                assert!(
                    declared.contains(&source),
                    "service {name} uses volume {source}, not declared under `volumes`"
                );
            }
        }
    }
}

// ---------------------------------------------------------------- Doorstep processes

#[test]
fn doorstep_services_run_the_built_image_with_the_required_settings() {
    let compose = compose();
    let names = service_names(&compose);
    let built: BTreeSet<String> = services(&compose)
        .iter()
        .filter(|(_, svc)| svc.get("build").is_some())
        .map(|(k, _)| scalar(k))
        .collect();
    let expected: BTreeSet<String> = DOORSTEP_SERVICES
        .iter()
        .chain(&DOORSTEP_ONE_SHOTS)
        .map(|(n, _)| (*n).to_owned())
        .collect();
    assert_eq!(
        built, expected,
        "exactly the Doorstep processes are built from the Dockerfile"
    );

    let known = known_settings();
    let mut images = BTreeSet::new();
    for (name, command) in DOORSTEP_SERVICES {
        let svc = service(&compose, name);
        images.insert(image(svc).unwrap_or_default());
        let build = svc.get("build").expect("built");
        let dockerfile = build
            .get("dockerfile")
            .map(scalar)
            .unwrap_or_else(|| "Dockerfile".to_owned());
        let context = build
            .get("context")
            .map(scalar)
            .unwrap_or_else(|| scalar(build));
        assert!(
            repo_root().join(&context).join(&dockerfile).is_file(),
            "{name}: {context}/{dockerfile} does not exist"
        );
        assert_eq!(
            strings(svc.get("command")),
            command,
            "{name} runs `doorstep {}`",
            command.join(" ")
        );

        let env = environment(svc);
        for (key, value) in REQUIRED_ENV {
            assert_eq!(
                env.get(key).map(String::as_str),
                Some(value),
                "{name} must set {key}={value}"
            );
        }
        for key in env.keys().filter(|k| k.starts_with("DOORSTEP_")) {
            assert!(
                known.contains(key),
                "{name} sets {key}, which Doorstep does not read (settings.rs)"
            );
        }
        // The addresses in those settings name services of this file.
        for host in ["kafka", "schema-registry", "redis", "scylla", "osrm"] {
            assert!(
                names.contains(host),
                "{name}'s settings point at {host}, which is not a service"
            );
        }

        let deps: BTreeMap<String, String> = depends_on(svc).into_iter().collect();
        for (target, condition) in [
            ("kafka", "service_healthy"),
            ("kafka-init", "service_completed_successfully"),
            ("schema-registry", "service_healthy"),
            ("schemas-init", "service_completed_successfully"),
            ("redis", "service_healthy"),
            ("scylla", "service_healthy"),
            ("scylla-init", "service_completed_successfully"),
        ] {
            assert_eq!(
                deps.get(target).map(String::as_str),
                Some(condition),
                "{name} must wait for {target} ({condition})"
            );
        }

        let health = strings(svc.get("healthcheck").and_then(|h| h.get("test"))).join(" ");
        assert!(
            health.contains(&format!("127.0.0.1:{OPS_PORT}/healthz"))
                || health.contains(&format!("localhost:{OPS_PORT}/healthz")),
            "{name}'s healthcheck must probe /healthz on the ops port {OPS_PORT}: {health}"
        );
    }
    for (name, command) in DOORSTEP_ONE_SHOTS {
        let svc = service(&compose, name);
        images.insert(image(svc).unwrap_or_default());
        assert_eq!(strings(svc.get("command")), command, "{name}");
        assert_eq!(
            svc.get("restart").map(scalar).as_deref(),
            Some("no"),
            "{name} runs once"
        );
    }
    assert_eq!(
        images.len(),
        1,
        "every Doorstep process runs the same image: {images:?}"
    );
    assert!(
        service(&compose, "pipeline-eta")
            .get("depends_on")
            .and_then(|d| d.get("osrm"))
            .is_some(),
        "pipeline-eta waits for the routing engine"
    );

    let gateway = environment(service(&compose, "gateway"));
    assert_eq!(
        gateway.get("DOORSTEP_GATEWAY_LISTEN").map(String::as_str),
        Some("0.0.0.0:8080")
    );
    let secret = gateway
        .get("DOORSTEP_AUTH_SECRET")
        .expect("the gateway needs DOORSTEP_AUTH_SECRET");
    // `${DOORSTEP_AUTH_SECRET:?...}`: Compose refuses to start without one; interpolated
    // here without the variable set, it has no default to fall back on.
    assert!(
        secret.is_empty(),
        "DOORSTEP_AUTH_SECRET must be required, with no published default: {secret:?}"
    );
    let ports = strings(service(&compose, "gateway").get("ports"));
    assert!(
        ports.iter().any(|p| p.ends_with(":8080")),
        "the gateway publishes port 8080: {ports:?}"
    );
}

/// Every `DOORSTEP_*` variable Doorstep reads: the settings table in the pipelines crate.
fn known_settings() -> BTreeSet<String> {
    let source = read("pipelines/src/config/settings.rs");
    let known: BTreeSet<String> = source
        .split('"')
        .filter(|s| {
            s.starts_with("DOORSTEP_") && s.chars().all(|c| c.is_ascii_uppercase() || c == '_')
        })
        .map(str::to_owned)
        .collect();
    assert!(
        known.contains("DOORSTEP_KAFKA_BROKERS"),
        "pipelines/src/config/settings.rs no longer lists the settings: update known_settings()"
    );
    known
}

// ---------------------------------------------------------------- Kafka and ScyllaDB

#[test]
fn kafka_runs_kraft_with_an_internal_listener() {
    let compose = compose();
    let kafka = service(&compose, "kafka");
    let img = image(kafka).unwrap_or_default();
    assert!(
        img.starts_with("apache/kafka:"),
        "Kafka is the official apache/kafka image: {img}"
    );
    let env = environment(kafka);
    let get = |k: &str| {
        env.get(k)
            .unwrap_or_else(|| panic!("kafka must set {k}"))
            .as_str()
    };

    let roles: BTreeSet<&str> = get("KAFKA_PROCESS_ROLES")
        .split(',')
        .map(str::trim)
        .collect();
    assert_eq!(
        roles,
        BTreeSet::from(["broker", "controller"]),
        "one combined KRaft node"
    );
    let node = get("KAFKA_NODE_ID");
    let voters = get("KAFKA_CONTROLLER_QUORUM_VOTERS");
    assert_eq!(
        voters,
        format!("{node}@kafka:9093"),
        "the node is its own controller quorum"
    );
    let controller = get("KAFKA_CONTROLLER_LISTENER_NAMES");
    assert!(get("KAFKA_LISTENERS").contains(&format!("{controller}://:9093")));
    assert!(
        get("KAFKA_ADVERTISED_LISTENERS")
            .split(',')
            .any(|l| l == "PLAINTEXT://kafka:9092"),
        "the internal listener kafka:9092 is advertised"
    );
    let cluster_id = get("CLUSTER_ID");
    assert!(
        cluster_id.len() == 22
            && cluster_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "CLUSTER_ID must be a base64url-encoded 16-byte id (22 characters): {cluster_id}"
    );
    assert_eq!(
        get("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"),
        "1",
        "a single broker cannot hold 3 replicas"
    );
    assert!(
        kafka.get("healthcheck").is_some(),
        "Kafka has a healthcheck"
    );
}

#[test]
fn kafka_init_creates_exactly_the_schema_topics() {
    let compose = compose();
    let init = service(&compose, "kafka-init");
    assert_eq!(
        image(init),
        image(service(&compose, "kafka")),
        "kafka-init uses the broker's own CLI"
    );
    let env = environment(init);
    let spec = env
        .get("DOORSTEP_TOPICS")
        .expect("kafka-init lists DOORSTEP_TOPICS");

    let mut topics = BTreeMap::new();
    for line in spec
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let mut words = line.split_whitespace();
        let name = words.next().expect("a topic name");
        let partitions: u32 = words
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("topic {name}: no partition count"));
        let configs: BTreeMap<String, String> = words
            .map(|c| {
                let (k, v) = c
                    .split_once('=')
                    .unwrap_or_else(|| panic!("topic {name}: bad config {c}"));
                (k.to_owned(), v.to_owned())
            })
            .collect();
        assert!(
            topics
                .insert(name.to_owned(), (partitions, configs))
                .is_none(),
            "topic {name} listed twice"
        );
    }

    let created: BTreeSet<&str> = topics.keys().map(String::as_str).collect();
    let wanted: BTreeSet<&str> = doorstep_schemas::events::topics::ALL.into_iter().collect();
    assert_eq!(
        created, wanted,
        "kafka-init creates exactly doorstep_schemas::events::topics::ALL"
    );
    for (name, (partitions, _)) in &topics {
        assert_eq!(*partitions, 12, "topic {name} has 12 partitions");
    }
    let rejected = &topics[doorstep_schemas::events::topics::ORDER_REJECTED].1;
    let retention: i64 = rejected
        .get("retention.ms")
        .and_then(|r| r.parse().ok())
        .expect("the dead-letter topic sets retention.ms");
    assert!(
        retention == -1 || retention >= 30 * 24 * 3600 * 1000,
        "orders.rejected.v1 keeps records at least 30 days (or forever): {retention} ms"
    );

    // The entrypoint runs the mounted script, which uses the image's kafka-topics.sh.
    let entry = strings(init.get("entrypoint")).join(" ");
    let (script, target) = volumes(init)
        .into_iter()
        .find(|(_, target)| entry.contains(target.as_str()))
        .unwrap_or_else(|| panic!("kafka-init's entrypoint ({entry}) runs no mounted script"));
    let text = read(script.trim_start_matches("./"));
    assert!(
        text.contains("/opt/kafka/bin") && text.contains("kafka-topics.sh"),
        "{target} uses kafka-topics.sh"
    );
    assert!(
        text.contains("--if-not-exists"),
        "{target} must be idempotent"
    );
    assert_eq!(init.get("restart").map(scalar).as_deref(), Some("no"));
}

#[test]
fn scylla_runs_in_developer_mode_and_its_init_applies_the_schema() {
    let compose = compose();
    let scylla = service(&compose, "scylla");
    assert!(
        image(scylla)
            .unwrap_or_default()
            .starts_with("scylladb/scylla:")
    );
    let command = strings(scylla.get("command")).join(" ");
    for flag in [
        "--smp 1",
        "--memory 1G",
        "--overprovisioned 1",
        "--developer-mode 1",
    ] {
        assert!(command.contains(flag), "scylla runs with {flag}: {command}");
    }
    let health = strings(scylla.get("healthcheck").and_then(|h| h.get("test"))).join(" ");
    assert!(
        health.contains("cqlsh"),
        "scylla's healthcheck asks cqlsh: {health}"
    );

    let init = service(&compose, "scylla-init");
    let entry = strings(init.get("entrypoint")).join(" ");
    let (source, _) = volumes(init)
        .into_iter()
        .find(|(_, target)| entry.contains(&format!("-f {target}")))
        .unwrap_or_else(|| panic!("scylla-init ({entry}) applies no mounted file with cqlsh -f"));
    assert_eq!(source, "./deploy/cql/schema.cql");
    let cql = read("deploy/cql/schema.cql");
    assert!(
        cql.contains("CREATE KEYSPACE IF NOT EXISTS doorstep"),
        "schema.cql creates the doorstep keyspace"
    );
    let statements = cql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    for statement in statements
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let upper = statement.to_ascii_uppercase();
        if upper.starts_with("CREATE") {
            assert!(
                upper.contains("IF NOT EXISTS"),
                "schema.cql runs on every start: {statement}"
            );
        }
    }
    let keyspace = environment(service(&compose, "gateway"));
    assert_eq!(
        keyspace.get("DOORSTEP_CQL_KEYSPACE").map(String::as_str),
        Some("doorstep")
    );
}

// ---------------------------------------------------------------- Prometheus and Grafana

#[test]
fn prometheus_scrapes_every_doorstep_process_and_only_existing_services() {
    let compose = compose();
    let names = service_names(&compose);
    let prometheus = service(&compose, "prometheus");
    assert!(
        volumes(prometheus)
            .iter()
            .any(|(s, t)| s == "./deploy/prometheus/prometheus.yml"
                && t == "/etc/prometheus/prometheus.yml"),
        "the prometheus service mounts deploy/prometheus/prometheus.yml"
    );

    let config = yaml("deploy/prometheus/prometheus.yml");
    let jobs = config
        .get("scrape_configs")
        .and_then(Value::as_sequence)
        .expect("prometheus.yml has scrape_configs");
    let mut scraped: BTreeSet<(String, u16)> = BTreeSet::new();
    for job in jobs {
        let job_name = job.get("job_name").map(scalar).expect("every job is named");
        let path = job
            .get("metrics_path")
            .map(scalar)
            .unwrap_or_else(|| "/metrics".to_owned());
        assert_eq!(path, "/metrics", "job {job_name} scrapes /metrics");
        for sc in job
            .get("static_configs")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            for target in strings(sc.get("targets")) {
                let (host, port) = target
                    .rsplit_once(':')
                    .unwrap_or_else(|| panic!("{target} has no port"));
                let port: u16 = port
                    .parse()
                    .unwrap_or_else(|_| panic!("{target}: bad port"));
                if host != "localhost" {
                    assert!(
                        names.contains(host),
                        "job {job_name} scrapes {host}, which is not a service"
                    );
                }
                scraped.insert((host.to_owned(), port));
            }
        }
        for dns in job
            .get("dns_sd_configs")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            assert_eq!(
                dns.get("type").map(scalar).as_deref(),
                Some("A"),
                "job {job_name}: A records"
            );
            let port: u16 = dns
                .get("port")
                .map(scalar)
                .and_then(|p| p.parse().ok())
                .expect("a port");
            for host in strings(dns.get("names")) {
                assert!(
                    names.contains(&host),
                    "job {job_name} discovers {host}, which is not a service"
                );
                scraped.insert((host, port));
            }
        }
    }
    for (name, _) in DOORSTEP_SERVICES {
        assert!(
            scraped.contains(&(name.to_owned(), OPS_PORT)),
            "Prometheus must scrape {name} on its ops port {OPS_PORT}"
        );
    }
}

#[test]
fn grafana_provisions_the_datasource_and_a_valid_dashboard() {
    let compose = compose();
    let grafana = service(&compose, "grafana");
    let mounts: BTreeMap<String, String> =
        volumes(grafana).into_iter().map(|(s, t)| (t, s)).collect();
    assert_eq!(
        mounts.get("/etc/grafana/provisioning").map(String::as_str),
        Some("./deploy/grafana/provisioning")
    );

    let datasources = yaml("deploy/grafana/provisioning/datasources/prometheus.yml");
    let ds = &datasources["datasources"][0];
    assert_eq!(scalar(&ds["type"]), "prometheus");
    let ds_uid = scalar(&ds["uid"]);
    let url = scalar(&ds["url"]);
    assert!(
        url.starts_with("http://prometheus:"),
        "the datasource points at the prometheus service: {url}"
    );

    let providers = yaml("deploy/grafana/provisioning/dashboards/doorstep.yml");
    let path = scalar(&providers["providers"][0]["options"]["path"]);
    let source = mounts.get(&path).unwrap_or_else(|| {
        panic!("the dashboard provider reads {path}, which grafana does not mount")
    });
    let dir = repo_root().join(source);
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert!(!files.is_empty(), "{} holds no dashboard", dir.display());

    let catalogue = metrics_catalogue::load();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable dashboard");
        let dashboard: Json = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", file.display()));
        check_dashboard(&dashboard, &ds_uid, &catalogue);
    }
}

fn check_dashboard(dashboard: &Json, ds_uid: &str, catalogue: &Catalogue) {
    assert!(
        dashboard["uid"].as_str().is_some_and(|u| !u.is_empty()),
        "the dashboard has a uid"
    );
    assert!(
        dashboard["title"].as_str().is_some_and(|t| !t.is_empty()),
        "the dashboard has a title"
    );
    let panels = dashboard["panels"]
        .as_array()
        .expect("the dashboard has panels");
    let mut ids = BTreeSet::new();
    let mut queries = Vec::new();
    for panel in panels {
        let id = panel["id"].as_u64().expect("every panel has a numeric id");
        assert!(ids.insert(id), "panel id {id} is used twice");
        let title = panel["title"].as_str().unwrap_or_default();
        let grid = &panel["gridPos"];
        let (x, w) = (
            grid["x"].as_u64().unwrap_or(99),
            grid["w"].as_u64().unwrap_or(99),
        );
        assert!(x + w <= 24, "panel {title} does not fit the 24-column grid");
        if panel["type"] == "row" {
            continue;
        }
        let targets = panel["targets"]
            .as_array()
            .unwrap_or_else(|| panic!("panel {title} has no targets"));
        assert!(!targets.is_empty(), "panel {title} has no queries");
        for target in targets {
            for ds in [&panel["datasource"], &target["datasource"]] {
                if !ds.is_null() {
                    assert_eq!(
                        ds["uid"].as_str(),
                        Some(ds_uid),
                        "panel {title} uses the provisioned datasource"
                    );
                }
            }
            let expr = target["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("panel {title}: a query without expr"));
            queries.push((title.to_owned(), expr.to_owned()));
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let definition = variable["definition"].as_str().unwrap_or_default();
        if let Some(args) = definition
            .strip_prefix("label_values(")
            .and_then(|a| a.strip_suffix(')'))
        {
            let metric = args.split(',').next().unwrap_or_default().trim();
            queries.push((format!("variable {}", variable["name"]), metric.to_owned()));
        }
    }
    assert!(
        queries.len() >= 10,
        "a real dashboard: only {} queries",
        queries.len()
    );

    let mut used = BTreeSet::new();
    for (title, expr) in &queries {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "panel {title}: no metric in {expr}");
        let mut labels: BTreeSet<String> = TARGET_LABELS.iter().map(|l| l.to_string()).collect();
        for name in names {
            let (base, entry) =
                metrics_catalogue::metric_of(catalogue, &name).unwrap_or_else(|| {
                    panic!("panel {title} queries {name}, which deploy/METRICS.md does not list")
                });
            labels.extend(entry.series_labels(&name));
            if base.starts_with("doorstep_") {
                used.insert(base.to_owned());
            }
        }
        for label in label_names(expr) {
            assert!(
                labels.contains(&label),
                "panel {title} filters or groups by {label}, which no metric of {expr} has \
                 (deploy/METRICS.md)"
            );
        }
    }
    assert!(
        used.len() >= 10,
        "the dashboard covers the catalogue: only {used:?}"
    );
}

/// The index just past the quoted PromQL string that starts at `chars[i]` (backslash escapes).
fn skip_quoted(chars: &[char], mut i: usize) -> usize {
    let quote = chars[i];
    i += 1;
    while i < chars.len() && chars[i] != quote {
        i += if chars[i] == '\\' { 2 } else { 1 };
    }
    i + 1
}

/// The label names a PromQL expression filters by (`{label="..."}`) or groups by
/// (`by (...)`, `without (...)`, `on (...)`, `ignoring (...)`).
fn label_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let word = |from: usize| -> String {
        chars[from..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
            .collect()
    };
    let mut labels = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '"' | '\'' | '`' => i = skip_quoted(&chars, i),
            '{' => {
                // Matchers: `label op "value"`, comma separated.
                i += 1;
                while i < chars.len() && chars[i] != '}' {
                    while i < chars.len() && (chars[i] == ',' || chars[i].is_whitespace()) {
                        i += 1;
                    }
                    let name = word(i);
                    i += name.len();
                    if !name.is_empty() {
                        labels.insert(name);
                    }
                    while i < chars.len() && !matches!(chars[i], '"' | '\'' | '`' | '}') {
                        i += 1;
                    }
                    if i < chars.len() && chars[i] != '}' {
                        i = skip_quoted(&chars, i);
                    }
                }
                i += 1;
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let w = word(i);
                i += w.len();
                if ["by", "without", "on", "ignoring"].contains(&w.as_str()) {
                    let mut j = i;
                    while j < chars.len() && chars[j].is_whitespace() {
                        j += 1;
                    }
                    if j < chars.len() && chars[j] == '(' {
                        let close = chars[j..]
                            .iter()
                            .position(|c| *c == ')')
                            .map_or(chars.len(), |p| j + p);
                        let list: String = chars[j + 1..close].iter().collect();
                        labels.extend(
                            list.split(',')
                                .map(str::trim)
                                .filter(|l| !l.is_empty())
                                .map(str::to_owned),
                        );
                        i = close + 1;
                    }
                }
            }
            _ => i += 1,
        }
    }
    labels
}

#[test]
fn label_names_are_found_in_promql() {
    assert_eq!(
        label_names(
            r#"histogram_quantile(0.99, sum by (le, sink) (rate(x_bucket{pipeline=~"$p", result!="a,b}"}[5m]))) / on(sink) y"#
        ),
        ["le", "pipeline", "result", "sink"]
            .map(str::to_owned)
            .into_iter()
            .collect::<BTreeSet<_>>()
    );
    assert!(label_names("sum(rate(z_total[5m]))").is_empty());
}

/// The metric names a PromQL expression reads: identifiers outside strings, label matchers
/// (`{...}`), ranges (`[...]`) and grouping clauses, that are not functions, aggregations
/// or keywords.
fn metric_names(expr: &str) -> BTreeSet<String> {
    const KEYWORDS: [&str; 11] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "offset",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => i = skip_quoted(&chars, i),
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                while i < chars.len() && chars[i] != close {
                    i += 1;
                }
                i += 1;
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let mut j = i;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                let is_call = j < chars.len() && chars[j] == '(';
                // `sum by (...) (...)`: an aggregation with its grouping first.
                let next: String = chars[j..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                    .collect();
                let is_aggregation = next == "by" || next == "without";
                if KEYWORDS.contains(&word.as_str()) {
                    if is_call {
                        // Skip the label list of `by (...)`, `on (...)`, ...
                        while j < chars.len() && chars[j] != ')' {
                            j += 1;
                        }
                        i = j + 1;
                    }
                } else if !is_call && !is_aggregation {
                    names.insert(word);
                }
            }
            c if c.is_ascii_digit() => {
                // Numbers, including exponents like 1e3 and durations like 5m.
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    names
}

#[test]
fn metric_names_are_found_in_promql() {
    let found = metric_names(
        r#"histogram_quantile(0.99, sum by (le, sink) (rate(doorstep_sink_latency_seconds_bucket{pipeline=~"$p"}[$__rate_interval]))) / on (sink) group_left doorstep_x_total offset 5m > bool 1e3"#,
    );
    assert_eq!(
        found,
        BTreeSet::from([
            "doorstep_sink_latency_seconds_bucket".to_owned(),
            "doorstep_x_total".to_owned()
        ])
    );
    assert_eq!(
        metric_names(r#"up{job="doorstep"}"#),
        BTreeSet::from(["up".to_owned()])
    );
}

// ---------------------------------------------------------------- image build

#[test]
fn dockerfile_builder_rust_is_at_least_the_workspace_rust_version() {
    let dockerfile = read("Dockerfile");
    let from = dockerfile
        .lines()
        .map(str::trim)
        .find(|l| l.to_ascii_lowercase().starts_with("from rust:"))
        .expect("the Dockerfile builds on an official rust image");
    let tag = from
        .split_whitespace()
        .nth(1)
        .and_then(|i| i.split_once(':'))
        .map(|(_, t)| t)
        .unwrap_or_default();
    let builder = parse_version(tag.split('-').next().unwrap_or_default())
        .unwrap_or_else(|| panic!("the builder image must name a Rust version: {from}"));

    let manifest = read("Cargo.toml");
    let required = manifest
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("rust-version")
                .map(|v| v.trim_start_matches([' ', '=']).trim().trim_matches('"'))
        })
        .and_then(parse_version)
        .expect("the workspace sets rust-version");
    assert!(
        builder >= required,
        "Dockerfile builds with Rust {builder:?}, the workspace needs {required:?}: {from}"
    );

    assert!(
        dockerfile.contains("cargo build --release --locked -p doorstep-pipelines --bin doorstep"),
        "the image is the locked release build of the doorstep binary"
    );
    let runtime = dockerfile
        .rsplit_once("\nFROM ")
        .map(|(_, r)| r)
        .expect("a multi-stage build");
    assert!(
        runtime.starts_with("debian:bookworm-slim"),
        "runtime on debian:bookworm-slim"
    );
    let user = runtime
        .lines()
        .find_map(|l| l.trim().strip_prefix("USER "))
        .expect("the runtime stage drops root");
    assert!(
        !user.starts_with("root") && !user.starts_with("0"),
        "USER {user} is not root"
    );
    assert!(runtime.contains(r#"ENTRYPOINT ["doorstep"]"#));
    let expose: BTreeSet<&str> = runtime
        .lines()
        .filter_map(|l| l.trim().strip_prefix("EXPOSE "))
        .flat_map(str::split_whitespace)
        .collect();
    assert!(
        expose.contains("8080") && expose.contains("9100"),
        "EXPOSE 8080 9100: {expose:?}"
    );
    assert!(
        runtime.contains("curl"),
        "the runtime has curl for the /healthz check"
    );

    let ignore_file = read(".dockerignore");
    let ignore: BTreeSet<&str> = ignore_file
        .lines()
        .map(|l| l.trim().trim_end_matches('/'))
        .collect();
    for path in ["target", ".git", ".services"] {
        assert!(
            ignore.contains(path),
            ".dockerignore keeps {path} out of the build context"
        );
    }
}

/// `1.95` or `1.95.0` as (major, minor, patch).
fn parse_version(v: &str) -> Option<(u32, u32, u32)> {
    let mut parts = v.split('.').map(|p| p.parse::<u32>());
    let major = parts.next()?.ok()?;
    let minor = parts.next()?.ok()?;
    let patch = match parts.next() {
        Some(p) => p.ok()?,
        None => 0,
    };
    Some((major, minor, patch))
}

// ---------------------------------------------------------------- docker compose itself

/// A value for each variable the file requires (`${VAR:?message}`), found in the file: URLs
/// for `*_URL`, random text for the rest (secrets, ids), so no published value is ever used.
fn required_variables(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for part in text.split("${").skip(1) {
        let Some((name, _)) = part.split_once(":?") else {
            continue;
        };
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let value = if name.ends_with("_URL") {
            "http://stand-in.invalid:8080".to_owned()
        } else {
            uuid::Uuid::new_v4().simple().to_string().repeat(2)
        };
        out.insert(name.to_owned(), value);
    }
    out
}

/// `scripts/compose-check` (compose-go, the Docker Compose CLI's loader: the Compose
/// Specification's schema and interpolation) on `file` with exactly `env`: the resolved
/// project, or the loader's error.
fn compose_config(file: &Path, env: &BTreeMap<String, String>) -> Result<Json, String> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let env_file = dir.path().join("compose.env");
    let lines: String = env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(&env_file, lines).expect("the env file is written");
    let out = Command::new(repo_root().join("scripts/compose-check"))
        .arg("-f")
        .arg(file)
        .arg("-env-file")
        .arg(&env_file)
        .output()
        .unwrap_or_else(|e| panic!("scripts/compose-check does not run: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err(stderr);
    }
    serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("compose-check printed no project: {e}; {stderr}"))
}

/// The Doorstep services of a resolved project: (name, command, environment).
fn doorstep_services(project: &Json) -> Vec<(String, Vec<String>, BTreeMap<String, String>)> {
    let services = project["services"]
        .as_object()
        .expect("the resolved project has services");
    let mut out = Vec::new();
    for (name, svc) in services {
        if svc.get("build").is_none() {
            continue;
        }
        let command = svc["command"]
            .as_array()
            .map(|c| {
                c.iter()
                    .filter_map(|w| w.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let env = svc["environment"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        out.push((name.clone(), command, env));
    }
    out
}

/// `doorstep config check --container COMMAND` with exactly `env`: whether the process could
/// start (the settings table's validation and the checks its builders make), and what it said.
fn settings_check(command: &[String], env: &BTreeMap<String, String>) -> (bool, String) {
    let binary = doorstep_tests::process::doorstep_binary().expect("the doorstep binary");
    let out = Command::new(binary)
        .args(["config", "check", "--container"])
        .args(command)
        .env_clear()
        .envs(env)
        .output()
        .expect("doorstep runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The file as shipped, given a value for every variable it requires: compose-go accepts it,
/// and every Doorstep service (the long-running ones and the one-shots) has every setting it
/// needs to start in a container. This fails, never skips, when a tool is missing.
#[test]
fn compose_config_resolves_and_every_doorstep_service_can_start() {
    let file = repo_root().join("docker-compose.yml");
    let env = required_variables(&read("docker-compose.yml"));
    for name in [
        "DOORSTEP_AUTH_SECRET",
        "DOORSTEP_PAYMENTS_URL",
        "DOORSTEP_PUSH_URL",
    ] {
        assert!(
            env.contains_key(name),
            "{name} must be a required variable: {env:?}"
        );
    }
    let project = compose_config(&file, &env).unwrap_or_else(|e| panic!("compose config: {e}"));
    let doorstep = doorstep_services(&project);
    let names: BTreeSet<&str> = doorstep.iter().map(|(n, _, _)| n.as_str()).collect();
    let expected: BTreeSet<&str> = DOORSTEP_SERVICES
        .iter()
        .chain(&DOORSTEP_ONE_SHOTS)
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(names, expected);
    for (name, command, env) in &doorstep {
        let (ok, said) = settings_check(command, env);
        assert!(ok, "{name} cannot start with its compose settings: {said}");
    }
}

/// Without a value for any one required variable, compose-go refuses the file and names it.
#[test]
fn compose_config_refuses_a_missing_required_variable() {
    let file = repo_root().join("docker-compose.yml");
    let all = required_variables(&read("docker-compose.yml"));
    for name in all.keys() {
        let mut env = all.clone();
        env.remove(name);
        match compose_config(&file, &env) {
            Ok(_) => panic!("compose config accepted the file without {name}"),
            Err(e) => assert!(
                e.contains(name.as_str()),
                "the error does not name {name}: {e}"
            ),
        }
    }
}

/// Every Doorstep service's settings check fails when one setting it needs is taken away:
/// for each service, each `DOORSTEP_*` variable is removed in turn, and the ones whose removal
/// the check refuses must include the process's own requirements (payments for the status
/// pipeline, push for notify, the secret for the gateway, the endpoints for all).
#[test]
fn the_settings_check_fails_when_a_service_misses_a_required_setting() {
    let file = repo_root().join("docker-compose.yml");
    let env = required_variables(&read("docker-compose.yml"));
    let project = compose_config(&file, &env).unwrap_or_else(|e| panic!("compose config: {e}"));
    for (name, command, env) in doorstep_services(&project) {
        let mut refused = BTreeSet::new();
        for key in env.keys().filter(|k| k.starts_with("DOORSTEP_")) {
            let mut without = env.clone();
            without.remove(key);
            let (ok, said) = settings_check(&command, &without);
            if !ok {
                assert!(said.contains(key.as_str()), "{name} without {key}: {said}");
                refused.insert(key.clone());
            }
        }
        let mut must: Vec<&str> = vec!["DOORSTEP_KAFKA_BROKERS", "DOORSTEP_SCHEMA_REGISTRY_URL"];
        match name.as_str() {
            "gateway" => must.push("DOORSTEP_AUTH_SECRET"),
            "pipeline-status" => must.extend(["DOORSTEP_PAYMENTS_URL", "DOORSTEP_CQL_NODES"]),
            "pipeline-notify" => must.extend(["DOORSTEP_PUSH_URL", "DOORSTEP_PUSH_ACCESS_TOKEN"]),
            "pipeline-eta" => must.push("DOORSTEP_OSRM_URL"),
            _ => {}
        }
        for key in must {
            assert!(
                refused.contains(key),
                "{name}: removing {key} went unnoticed ({refused:?})"
            );
        }
    }

    // And in the file: a copy whose pipeline-notify lost its push URL still loads, but the
    // settings check of that service refuses it.
    let text = read("docker-compose.yml");
    let cut: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("DOORSTEP_PUSH_URL:"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(cut, text, "docker-compose.yml sets DOORSTEP_PUSH_URL");
    // Beside the original: its relative bind mounts resolve the same way.
    let copy = repo_root().join(format!(
        ".compose-check-{}.yml",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&copy, cut).expect("the copy is written");
    let project = compose_config(&copy, &required_variables(&read("docker-compose.yml")));
    let _ = std::fs::remove_file(&copy);
    let project = project.unwrap_or_else(|e| panic!("compose config of the copy: {e}"));
    let (_, command, env) = doorstep_services(&project)
        .into_iter()
        .find(|(n, _, _)| n == "pipeline-notify")
        .expect("pipeline-notify");
    let (ok, said) = settings_check(&command, &env);
    assert!(!ok && said.contains("DOORSTEP_PUSH_URL"), "{said}");
}
