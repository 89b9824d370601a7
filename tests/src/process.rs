//! Running the real `doorstep` binary as a child process, so a test can kill it for real
//! (`SIGKILL`: no drain, no commit, no destructor) and start it again.
//!
//! The binary is found next to the test executable (`<target>/<profile>/doorstep`, since the
//! test runs from `<target>/<profile>/deps/`). When cargo runs the test, it is first brought
//! up to date with `cargo build -p doorstep-pipelines --bin doorstep` (a no-op when fresh; a
//! stale binary would test yesterday's code), and the path cargo reports is used.
//! `DOORSTEP_TEST_BINARY` overrides all of this.

use anyhow::{Context, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// The variable that names a `doorstep` binary to use instead of the workspace's.
pub const BINARY_VAR: &str = "DOORSTEP_TEST_BINARY";

/// The `doorstep` binary of this workspace, built if needed (once per test process).
///
/// # Errors
/// When no binary is found and building one fails.
pub fn doorstep_binary() -> anyhow::Result<PathBuf> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FOUND
        .get_or_init(|| locate().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow::anyhow!(e))
}

fn locate() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(BINARY_VAR) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("{BINARY_VAR}={} is not a file", path.display());
        }
        return Ok(path);
    }
    let sibling = sibling_binary();
    // Under cargo (`CARGO` is set for the processes it runs), make sure the binary matches
    // the sources; otherwise use whatever is there.
    if let Some(cargo) = std::env::var_os("CARGO") {
        match cargo_build(Path::new(&cargo)) {
            Ok(path) => return Ok(path),
            Err(e) if sibling.as_ref().is_some_and(|p| p.is_file()) => {
                tracing::warn!(error = %e, "could not rebuild doorstep; using the existing binary");
            }
            Err(e) => return Err(e),
        }
    }
    match sibling {
        Some(p) if p.is_file() => Ok(p),
        Some(p) => bail!(
            "no doorstep binary at {} (build it with `cargo build -p doorstep-pipelines --bin doorstep`, or set {BINARY_VAR})",
            p.display()
        ),
        None => bail!("cannot tell where the doorstep binary is; set {BINARY_VAR}"),
    }
}

/// `<target>/<profile>/doorstep` for a test executable at `<target>/<profile>/deps/<test>`.
fn sibling_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?.parent()?;
    Some(profile_dir.join(format!("doorstep{}", std::env::consts::EXE_SUFFIX)))
}

/// Runs `cargo build -p doorstep-pipelines --bin doorstep` in the workspace and returns the
/// executable cargo reports.
fn cargo_build(cargo: &Path) -> anyhow::Result<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("the tests crate has no parent directory")?;
    let started = Instant::now();
    let mut command = std::process::Command::new(cargo);
    command.current_dir(workspace).args([
        "build",
        "-p",
        "doorstep-pipelines",
        "--bin",
        "doorstep",
        "--message-format=json",
    ]);
    // Same profile as the test itself.
    if sibling_binary()
        .and_then(|p| p.parent()?.file_name().map(|n| n == "release"))
        .unwrap_or(false)
    {
        command.arg("--release");
    }
    let out = command
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .context("running cargo build")?;
    if !out.status.success() {
        bail!(
            "cargo build -p doorstep-pipelines --bin doorstep failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let executable = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "doorstep")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .context("cargo build reported no doorstep executable")?;
    tracing::info!(path = %executable.display(), took = ?started.elapsed(), "doorstep binary ready");
    Ok(executable)
}

/// A running `doorstep` child process. Killed (SIGKILL) when dropped.
pub struct DoorstepProcess {
    child: Child,
    log: PathBuf,
    started: Instant,
}

impl DoorstepProcess {
    /// Starts `doorstep <args>` with exactly `env` as its `DOORSTEP_*` environment (inherited
    /// `DOORSTEP_*` variables are removed, so the child's configuration is the test's), stdout
    /// and stderr appended to `log`.
    ///
    /// # Errors
    /// When the binary cannot be found or started, or the log cannot be opened.
    pub fn spawn(
        args: &[&str],
        env: &BTreeMap<String, String>,
        log: &Path,
    ) -> anyhow::Result<Self> {
        let binary = doorstep_binary()?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let mut command = Command::new(&binary);
        command.args(args);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("DOORSTEP_") {
                command.env_remove(k);
            }
        }
        command
            .envs(env)
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .kill_on_drop(true);
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        Ok(Self {
            child,
            log: log.to_owned(),
            started: Instant::now(),
        })
    }

    /// The process id.
    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// How long ago it was started.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Whether it has exited (and how), without waiting.
    ///
    /// # Errors
    /// When the status cannot be read.
    pub fn exited(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// Kills it with SIGKILL (`Child::start_kill` sends SIGKILL on Unix) and reaps it.
    /// Returns the exit status; fails if it had already exited on its own.
    ///
    /// # Errors
    /// When it had already exited, or killing or reaping fails.
    pub async fn kill9(mut self) -> anyhow::Result<ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "doorstep exited on its own ({status}) before the kill; log tail:\n{}",
                self.log_tail(40)
            );
        }
        self.child.start_kill().context("sending SIGKILL")?;
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .context("doorstep did not die within 10 s of SIGKILL")??;
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            anyhow::ensure!(
                status.signal() == Some(9),
                "doorstep ended with {status}, not by SIGKILL"
            );
        }
        Ok(status)
    }

    /// The last `lines` lines of the log (for failure messages).
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }
}

/// The last `lines` lines of the file at `path` (empty when unreadable).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
