//! Private service instances for tests that kill and restart a service: a `redis-server`
//! with an append-only file, an Apache Kafka node and an Apache Cassandra node (both through
//! the launchers `scripts/services` uses), each keeping its data over a restart.
//!
//! Each runs on a free loopback port with its files in a fresh temporary directory, and is
//! killed when dropped. The shared services other tests use are never touched.

use anyhow::{Context, bail};
use doorstep_connectors::redis::driver as redis;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// A loopback port nobody listens on right now.
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// A fresh directory under the system's temporary directory.
fn scratch_dir(name: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(crate::unique(name));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Waits until `addr` accepts TCP connections.
async fn await_port(addr: SocketAddr, timeout: Duration, what: &str) -> anyhow::Result<()> {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("{what} did not listen on {addr} within {timeout:?}")
}

fn spawn_logged(
    program: &Path,
    args: &[String],
    log: &Path,
    env: &[(&str, &str)],
) -> anyhow::Result<Child> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", program.display()))
}

async fn kill(child: &mut Child) -> anyhow::Result<()> {
    child.start_kill().ok();
    tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .context("a private service did not die within 10 s")??;
    Ok(())
}

/// A private `redis-server` with an append-only file fsynced on every write.
pub struct PrivateRedis {
    port: u16,
    dir: PathBuf,
    child: Child,
}

impl PrivateRedis {
    /// Starts one on a free port.
    ///
    /// # Errors
    /// When `redis-server` is missing or does not start.
    pub async fn start() -> anyhow::Result<Self> {
        let port = free_port()?;
        let dir = scratch_dir("redis")?;
        let child = Self::spawn(port, &dir, &[]).await?;
        Ok(Self { port, dir, child })
    }

    async fn spawn(port: u16, dir: &Path, extra: &[String]) -> anyhow::Result<Child> {
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--dir",
            &dir.display().to_string(),
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.extend_from_slice(extra);
        let child = spawn_logged(
            Path::new("redis-server"),
            &args,
            &dir.join("redis.log"),
            &[],
        )
        .context("redis-server must be on PATH (scripts/services up installs it)")?;
        await_port(
            SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_secs(10),
            "redis-server",
        )
        .await?;
        Ok(child)
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn connection(&self) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        let client = redis::Client::open(self.url())?;
        client.get_multiplexed_async_connection().await
    }

    /// Kills it (SIGKILL) and starts it again on the same port and files after `down`, like
    /// a crashed server that had rewritten its append-only file into a snapshot: it then
    /// reads its data back spread over about `load`, answering `LOADING` meanwhile (the
    /// window in which a client must wait rather than give up). Returns once it listens;
    /// [`until_loaded`](Self::until_loaded) waits for the end of the load.
    ///
    /// # Errors
    /// When it cannot be killed or restarted, or the rewrite fails.
    pub async fn restart(&mut self, down: Duration, load: Duration) -> anyhow::Result<()> {
        let mut conn = self.connection().await?;
        let keys: u64 = redis::cmd("DBSIZE").query_async(&mut conn).await?;
        let _: () = redis::cmd("BGREWRITEAOF").query_async(&mut conn).await?;
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            let info: String = redis::cmd("INFO")
                .arg("persistence")
                .query_async(&mut conn)
                .await?;
            let done = ["aof_rewrite_in_progress:0", "aof_rewrite_scheduled:0"]
                .iter()
                .all(|flag| info.contains(flag));
            if done {
                break;
            }
            if Instant::now() >= end {
                bail!("redis-server did not rewrite its append-only file within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        kill(&mut self.child).await?;
        tokio::time::sleep(down).await;
        // The server sleeps this long after each key it loads, and answers clients every
        // 1 KiB it reads.
        let per_key_us = (load.as_micros() / u128::from(keys.max(1))).max(1);
        let slow = [
            "--key-load-delay".to_owned(),
            per_key_us.to_string(),
            "--loading-process-events-interval-bytes".to_owned(),
            "1024".to_owned(),
        ];
        self.child = Self::spawn(self.port, &self.dir, &slow).await?;
        Ok(())
    }

    /// The fault the Redis-restart tests inject: [`restart`](Self::restart) with `down`
    /// seconds down and about 2 s of `LOADING`, then waits until it serves again.
    ///
    /// # Errors
    /// When the restart fails, or no `LOADING` answer was seen (the run would have missed
    /// the window it is about).
    pub async fn restart_through_loading(&mut self, down: Duration) -> anyhow::Result<()> {
        self.restart(down, Duration::from_secs(2)).await?;
        let loading = self.until_loaded().await?;
        if loading == 0 {
            bail!("the restarted Redis never answered LOADING: the run missed the window");
        }
        Ok(())
    }

    /// Waits until it has read its data back and serves commands; returns how many
    /// `LOADING` answers it gave this waiter meanwhile.
    ///
    /// # Errors
    /// When it does not serve within 60 s.
    pub async fn until_loaded(&self) -> anyhow::Result<u32> {
        let end = Instant::now() + Duration::from_secs(60);
        let mut loading = 0;
        loop {
            // A fresh connection each time: setting one up may meet LOADING too.
            let answer = async {
                let mut conn = self.connection().await?;
                redis::cmd("SET")
                    .arg("private-redis:probe")
                    .arg(1)
                    .query_async::<()>(&mut conn)
                    .await
            }
            .await;
            match answer {
                Ok(()) => return Ok(loading),
                Err(e)
                    if e.kind()
                        == redis::ErrorKind::Server(redis::ServerErrorKind::BusyLoading) =>
                {
                    loading += 1;
                }
                Err(e) if Instant::now() >= end => bail!("redis-server does not serve: {e}"),
                Err(_) => {}
            }
            if Instant::now() >= end {
                bail!("redis-server still loading after 60 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The launcher of a JVM service beside `scripts/services` (`scripts/lib/<name>/node`).
fn node_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts/lib")
        .join(name)
        .join("node")
}

/// Runs `probe` every 200 ms until it succeeds, the child exits, or `timeout` passes.
async fn await_probe<F, Fut>(
    child: &mut Child,
    timeout: Duration,
    what: &str,
    log: &Path,
    mut probe: F,
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let end = Instant::now() + timeout;
    loop {
        let last = match probe().await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if let Some(status) = child.try_wait()? {
            bail!(
                "{what} exited during start-up ({status}); log tail:\n{}",
                crate::process::log_tail(log, 20)
            );
        }
        if Instant::now() >= end {
            bail!(
                "{what} not ready within {timeout:?} ({last:#}); log tail:\n{}",
                crate::process::log_tail(log, 20)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A private Apache Kafka node (KRaft, `scripts/lib/kafka/node`) whose log directories
/// survive a restart, like a broker host that crashed.
pub struct PrivateBroker {
    port: u16,
    controller_port: u16,
    dir: PathBuf,
    child: Child,
}

impl PrivateBroker {
    /// Starts one on free ports; returns once it answers Kafka requests.
    ///
    /// # Errors
    /// When Java or the Kafka runtime is missing (`scripts/services up` fetches it), or the
    /// node does not become ready within 90 s.
    pub async fn start() -> anyhow::Result<Self> {
        let (port, controller_port) = (free_port()?, free_port()?);
        let dir = scratch_dir("kafka")?;
        let child = Self::spawn(port, controller_port, &dir).await?;
        Ok(Self {
            port,
            controller_port,
            dir,
            child,
        })
    }

    async fn spawn(port: u16, controller_port: u16, dir: &Path) -> anyhow::Result<Child> {
        let log = dir.join("kafka.log");
        let args = [
            "run".to_owned(),
            dir.display().to_string(),
            port.to_string(),
            controller_port.to_string(),
        ];
        let mut child = spawn_logged(
            &node_script("kafka"),
            &args,
            &log,
            &[("DOORSTEP_KAFKA_HEAP", "256m")],
        )?;
        let addr = format!("127.0.0.1:{port}");
        await_probe(
            &mut child,
            Duration::from_secs(90),
            "kafka",
            &log,
            || async {
                doorstep_devservices::probe::kafka::probe(&addr)
                    .await
                    .map(|_| ())
            },
        )
        .await?;
        Ok(child)
    }

    /// `127.0.0.1:<port>`.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL) and starts it again on the same ports and log directories after
    /// `down`; returns once it answers again.
    ///
    /// # Errors
    /// When it cannot be killed or restarted.
    pub async fn restart(&mut self, down: Duration) -> anyhow::Result<()> {
        kill(&mut self.child).await?;
        tokio::time::sleep(down).await;
        self.child = Self::spawn(self.port, self.controller_port, &self.dir).await?;
        Ok(())
    }

    /// The last lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        crate::process::log_tail(&self.dir.join("kafka.log"), lines)
    }
}

/// A private Apache Cassandra node (`scripts/lib/cassandra/node`) whose data and commit log
/// survive a restart, like a database host that crashed.
pub struct PrivateCassandra {
    port: u16,
    storage_port: u16,
    dir: PathBuf,
    child: Child,
}

impl PrivateCassandra {
    /// Starts one on free ports; returns once it answers CQL.
    ///
    /// # Errors
    /// When Java or the Cassandra runtime is missing (`scripts/services up` fetches it), or
    /// the node does not become ready within 120 s.
    pub async fn start() -> anyhow::Result<Self> {
        let (port, storage_port) = (free_port()?, free_port()?);
        let dir = scratch_dir("cassandra")?;
        let child = Self::spawn(port, storage_port, &dir).await?;
        Ok(Self {
            port,
            storage_port,
            dir,
            child,
        })
    }

    async fn spawn(port: u16, storage_port: u16, dir: &Path) -> anyhow::Result<Child> {
        let log = dir.join("cassandra.log");
        let args = [
            "run".to_owned(),
            dir.display().to_string(),
            port.to_string(),
            storage_port.to_string(),
        ];
        let mut child = spawn_logged(
            &node_script("cassandra"),
            &args,
            &log,
            // Its schema must survive a kill -9 (see scripts/lib/cassandra/node).
            &[
                ("DOORSTEP_CASSANDRA_HEAP", "512m"),
                ("DOORSTEP_CASSANDRA_FAST_SCHEMA", "0"),
            ],
        )?;
        let addr = format!("127.0.0.1:{port}");
        await_probe(
            &mut child,
            Duration::from_secs(120),
            "cassandra",
            &log,
            || async {
                doorstep_devservices::probe::cql::probe(&addr)
                    .await
                    .map(|_| ())
            },
        )
        .await?;
        Ok(child)
    }

    /// `127.0.0.1:<port>` (its native transport).
    pub fn nodes(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL) and starts it again on the same ports and data after `down`;
    /// returns once it answers CQL again (it replays its commit log first).
    ///
    /// # Errors
    /// When it cannot be killed or restarted.
    pub async fn restart(&mut self, down: Duration) -> anyhow::Result<()> {
        kill(&mut self.child).await?;
        tokio::time::sleep(down).await;
        self.child = Self::spawn(self.port, self.storage_port, &self.dir).await?;
        Ok(())
    }

    /// The last lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        crate::process::log_tail(&self.dir.join("cassandra.log"), lines)
    }
}
