//! The schema registry at run time, through the `doorstep` binary and the pipeline assembly:
//! `doorstep topics ensure` registers this build's schemas and refuses, naming the subject
//! and the registry's reason, a schema its subject's compatibility rule (BACKWARD) forbids;
//! with `schemas.auto_register` off a pipeline refuses to start until they are registered;
//! `doorstep check` reports the registry. Needs the services (`scripts/services up`).

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
