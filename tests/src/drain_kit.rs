//! A `doorstep` child process run by a benchmark (`doorstep pipeline <name>`, or `doorstep
//! gateway`): spawned with its own ops listener and log, its `/metrics` scraped rarely (at the
//! start and the end of a measurement, never in a loop). The group's progress, the services'
//! processes and metric scraping are [`crate::bench_kit`]'s.

use crate::pipeline_harness::Scope;
use crate::process::DoorstepProcess;
use anyhow::Context;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One `doorstep` process of a benchmark (a pipeline or the gateway), with its ops listener
/// and log.
pub struct BenchProcess {
    /// The process.
    pub process: DoorstepProcess,
    /// Its `/metrics` and `/healthz` listener.
    pub ops: SocketAddr,
    /// Its public listener (the gateway's API and WebSockets); `None` for a pipeline.
    pub api: Option<SocketAddr>,
    /// Its log file.
    pub log: PathBuf,
}

impl BenchProcess {
    /// Starts `doorstep pipeline <pipeline>` in `scope` (its `DOORSTEP_*` environment plus
    /// `extra`), logging to a file named after the scope and `tag` in the temporary directory.
    ///
    /// # Errors
    /// When no port is free or the process cannot be started.
    pub fn spawn(
        scope: &Scope,
        pipeline: &str,
        tag: &str,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        Self::start(
            scope,
            &["pipeline", pipeline],
            None,
            &format!("{pipeline}-{tag}"),
            extra,
        )
    }

    /// Starts `doorstep gateway --listen <a free port> <args>` (e.g. `--no-order-store`) in
    /// `scope` (its `DOORSTEP_*` environment plus `extra`: a benchmark raises the edge's limits
    /// there), logging like [`Self::spawn`]. Its address is [`Self::api`]; wait for it with
    /// [`Self::healthy`].
    ///
    /// # Errors
    /// When no port is free or the process cannot be started.
    pub fn gateway(
        scope: &Scope,
        args: &[&str],
        tag: &str,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let api = crate::bench_kit::free_port()?;
        let listen = api.to_string();
        let mut all = vec!["gateway", "--listen", listen.as_str()];
        all.extend_from_slice(args);
        Self::start(scope, &all, Some(api), &format!("gateway-{tag}"), extra)
    }

    fn start(
        scope: &Scope,
        args: &[&str],
        api: Option<SocketAddr>,
        name: &str,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let ops = crate::bench_kit::free_port()?;
        let log =
            std::env::temp_dir().join(format!("{}-{name}.log", scope.env["DOORSTEP_GROUP_PREFIX"]));
        let mut env: BTreeMap<String, String> = scope.env.clone();
        env.insert("DOORSTEP_OPS_LISTEN".into(), ops.to_string());
        env.insert("DOORSTEP_LOG".into(), "info,scylla=off".into());
        crate::bench_kit::pipeline_settings(&mut env)?;
        for (k, v) in extra {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        let process = DoorstepProcess::spawn(args, &env, &log)?;
        Ok(Self {
            process,
            ops,
            api,
            log,
        })
    }

    /// The process id.
    ///
    /// # Errors
    /// When it has been reaped.
    pub fn pid(&self) -> anyhow::Result<u32> {
        self.process.id().context("the doorstep process has no pid")
    }

    /// Waits until its `/healthz` answers 200 (within `timeout`).
    ///
    /// # Errors
    /// When it does not in time, or exits; the message holds its log's tail.
    pub async fn healthy(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let url = format!("http://{}/healthz", self.ops);
        let started = std::time::Instant::now();
        loop {
            if let Ok(r) = reqwest::get(&url).await
                && r.status().is_success()
            {
                return Ok(());
            }
            if let Some(status) = self.process.exited()? {
                anyhow::bail!("doorstep exited on its own: {status}\n{}", self.tail(30));
            }
            if started.elapsed() > timeout {
                anyhow::bail!(
                    "doorstep did not answer {url} within {timeout:?}\n{}",
                    self.tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Its `/metrics` text.
    ///
    /// # Errors
    /// When it does not answer.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        Ok(reqwest::get(format!("http://{}/metrics", self.ops))
            .await?
            .error_for_status()?
            .text()
            .await?)
    }

    /// Its `/metrics` text once it answers (within `timeout`).
    ///
    /// # Errors
    /// When it does not answer in time, or exits.
    pub async fn metrics_when_up(&mut self, timeout: Duration) -> anyhow::Result<String> {
        let started = std::time::Instant::now();
        loop {
            if let Ok(text) = self.metrics().await {
                return Ok(text);
            }
            if let Some(status) = self.process.exited()? {
                anyhow::bail!("doorstep exited on its own: {status}\n{}", self.tail(30));
            }
            if started.elapsed() > timeout {
                anyhow::bail!("doorstep's /metrics did not answer within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The last `lines` lines of its log.
    pub fn tail(&self, lines: usize) -> String {
        crate::process::log_tail(&self.log, lines)
    }

    /// Kills it (SIGKILL) and removes its log.
    ///
    /// # Errors
    /// When it had exited on its own, or cannot be killed.
    pub async fn stop(self) -> anyhow::Result<()> {
        let log = self.log.clone();
        self.process.kill9().await.context("stopping doorstep")?;
        let _ = std::fs::remove_file(&log);
        Ok(())
    }
}

/// Whether the file at `path` mentions `needle` how many times (0 when unreadable).
pub fn log_mentions(path: &Path, needle: &str) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .matches(needle)
        .count()
}
