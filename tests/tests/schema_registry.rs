//! The schema registry at run time, through the `doorstep` binary and the pipeline assembly:
//! `doorstep topics ensure` registers this build's schemas and refuses, naming the subject
//! and the registry's reason, a schema its subject's compatibility rule (BACKWARD) forbids;
//! with `schemas.auto_register` off a pipeline refuses to start until they are registered;
//! `doorstep check` reports the registry; a registry outage while decoding makes the batch
//! wait instead of rejecting. Needs the services (`scripts/services up`).

use anyhow::{Context, ensure};
use doorstep_pipelines::assemble::{self, StatusOptions};
use doorstep_schemas::avro::SCHEMA_FILES;
use doorstep_schemas::events::topics;
use doorstep_tests::pipeline_harness::Scope;
use doorstep_tests::process::doorstep_binary;
use serde_json::{Value, json};
use std::process::Output;

/// Runs `doorstep ARGS` with the scope's settings.
fn doorstep(scope: &Scope, args: &[&str], extra: &[(&str, &str)]) -> anyhow::Result<Output> {
    let mut cmd = std::process::Command::new(doorstep_binary()?);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(&scope.env)
        .env("DOORSTEP_LOG", "warn");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.output().context("running doorstep")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Registers `schema` under `subject` directly (as another deployment would have).
async fn register(registry: &str, subject: &str, schema: &Value) -> anyhow::Result<()> {
    let url = format!("{registry}/subjects/{subject}/versions");
    let answer = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/vnd.schemaregistry.v1+json")
        .json(&json!({ "schema": schema.to_string() }))
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    ensure!(
        answer.status().is_success(),
        "registering under {subject}: {}",
        answer.text().await?
    );
    Ok(())
}

/// The subject holds a version of `orders.status.v1` with a field removed (no default); this
/// build's schema has the field without a default, so records written with the registered
/// version could not be read with it. `topics ensure` refuses, with subject and reason, and
/// exits non-zero; on a subject that holds nothing it registers every schema.
#[tokio::test]
async fn topics_ensure_refuses_an_incompatible_schema_with_subject_and_reason() -> anyhow::Result<()>
{
    let scope = Scope::new("sr_incompatible", &[]).await?;
    let registry = scope.config.endpoints.schema_registry_url.clone();
    let subject = format!("{}-value", scope.topic(topics::ORDER_STATUS));
    let current = SCHEMA_FILES
        .iter()
        .rfind(|f| f.topic == topics::ORDER_STATUS)
        .context("no status schema")?;
    let mut without: Value = serde_json::from_str(current.text)?;
    let fields = without["fields"]
        .as_array_mut()
        .context("status schema fields")?;
    let removed = fields
        .iter()
        .position(|f| f["name"] == "customer_id" && f.get("default").is_none())
        .context("the status schema has customer_id without a default")?;
    fields.remove(removed);
    register(&registry, &subject, &without).await?;

    let out = doorstep(&scope, &["topics", "ensure"], &[])?;
    let said = text(&out);
    ensure!(!out.status.success(), "topics ensure succeeded: {said}");
    ensure!(said.contains(&subject), "the subject is not named: {said}");
    ensure!(
        said.contains("incompatible") && said.contains("customer_id"),
        "the reason is not given: {said}"
    );

    // A fresh scope: every subject registered, with ids.
    let fresh = Scope::new("sr_fresh", &[]).await?;
    let out = doorstep(&fresh, &["topics", "ensure"], &[])?;
    let said = text(&out);
    ensure!(out.status.success(), "topics ensure failed: {said}");
    for topic in topics::ALL {
        let subject = format!("{}-value", fresh.topic(topic));
        ensure!(
            said.contains(&format!("schema {subject} registered (id ")),
            "{subject} not registered: {said}"
        );
    }
    Ok(())
}

/// With `schemas.auto_register` off, a pipeline whose subjects lack this build's schemas
/// refuses to start and names the subject; `doorstep check` says the same without failing;
/// after `topics ensure` it starts.
#[tokio::test]
async fn without_auto_register_a_pipeline_refuses_until_the_schemas_are_registered()
-> anyhow::Result<()> {
    let off = [("DOORSTEP_SCHEMA_AUTO_REGISTER", "false")];
    let scope = Scope::new("sr_refuse", &off).await?;
    let registry = prometheus::Registry::new();
    let options = StatusOptions {
        side_effects: false,
        ..StatusOptions::default()
    };
    let err = match assemble::status_pipeline(&scope.config, options, &registry).await {
        Ok(_) => anyhow::bail!("the status pipeline started without its schemas registered"),
        Err(e) => e.to_string(),
    };
    let subject = format!("{}-value", scope.topic(topics::ORDER_EVENTS));
    ensure!(
        err.contains(&subject) && err.contains("doorstep topics ensure"),
        "{err}"
    );

    let check = doorstep(&scope, &["check"], &[])?;
    let said = text(&check);
    ensure!(
        said.lines()
            .any(|l| l.starts_with("registry") && l.contains(&subject)),
        "check does not report the registry: {said}"
    );

    let ensure_out = doorstep(&scope, &["topics", "ensure"], &[])?;
    ensure!(ensure_out.status.success(), "{}", text(&ensure_out));
    let registry = prometheus::Registry::new();
    assemble::status_pipeline(&scope.config, options, &registry)
        .await
        .context("the status pipeline after topics ensure")?;
    Ok(())
}

/// A registry that goes away is an outage, not bad bytes: a record whose writer schema must be
/// fetched then is a retriable error (the batch waits), never a reject; an id the registry
/// answers "not found" for is a reject reason. Runs a registry of its own in this process.
#[tokio::test]
async fn a_registry_outage_while_decoding_retries_and_an_unknown_id_rejects() -> anyhow::Result<()>
{
    use doorstep_devservices::registry::{self, AppState, Registry};
    use doorstep_pipelines::runtime::decode;
    use doorstep_schemas::avro::Catalog;
    use doorstep_schemas::avro::registry::RegistryConfig;
    use doorstep_schemas::events::OrderEvent;
    use std::time::Duration;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let app = registry::router(AppState::new(Registry::new(), None));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let config = RegistryConfig::new(&url).with_timeout(Duration::from_secs(2));
    let catalog = Catalog::connect(&config).await?;

    let unknown = [0, 0, 0, 0x30, 0x39, 2, b'x'];
    let reason = decode::<OrderEvent>(&catalog, &unknown)
        .await
        .map_err(|e| anyhow::anyhow!("an unknown id is not an outage: {e}"))?
        .err()
        .context("an unknown id decoded")?;
    ensure!(
        reason.to_string().contains("unknown schema id 12345"),
        "{reason}"
    );

    server.abort();
    let _ = server.await;
    match decode::<OrderEvent>(&catalog, &unknown).await {
        Err(e) => ensure!(e.is_retriable(), "{e}"),
        Ok(r) => anyhow::bail!("a registry outage became a verdict on the record: {r:?}"),
    }
    Ok(())
}
