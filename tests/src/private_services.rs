//! Private service instances for tests that restart or cut a service: a `redis-server`
//! with an append-only file (its data survives a restart), a nisshi broker on SQLite storage
//! (its topics and committed offsets survive a restart), and a TCP proxy that makes any
//! service unreachable for a while without losing its data (the CQL server keeps its data
//! in memory only, so it is cut off rather than stopped).
//!
//! Each runs on a free loopback port with its files in a fresh temporary directory, and is
//! killed when dropped. The shared services other tests use are never touched.

use anyhow::{Context, bail};
use doorstep_connectors::redis::driver as redis;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::watch;

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

fn spawn_logged(program: &Path, args: &[String], log: &Path) -> anyhow::Result<Child> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    Command::new(program)
        .args(args)
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
        let child = spawn_logged(Path::new("redis-server"), &args, &dir.join("redis.log"))
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

/// The nisshi binary: `DOORSTEP_NISSHI_BIN`, `nisshi` on PATH, or `~/.cargo/bin/nisshi`.
fn nisshi_binary() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("DOORSTEP_NISSHI_BIN") {
        return Ok(PathBuf::from(p));
    }
    let candidates = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("nisshi"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .chain(std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo/bin/nisshi")));
    for c in candidates {
        if c.is_file() {
            return Ok(c);
        }
    }
    bail!("no nisshi binary (scripts/services up installs it; or set DOORSTEP_NISSHI_BIN)")
}

/// A private nisshi broker with SQLite storage.
pub struct PrivateBroker {
    port: u16,
    dir: PathBuf,
    child: Child,
}

impl PrivateBroker {
    /// Starts one on a free port.
    ///
    /// # Errors
    /// When nisshi is missing or does not start.
    pub async fn start() -> anyhow::Result<Self> {
        let port = free_port()?;
        let dir = scratch_dir("nisshi")?;
        let child = Self::spawn(port, &dir).await?;
        Ok(Self { port, dir, child })
    }

    async fn spawn(port: u16, dir: &Path) -> anyhow::Result<Child> {
        let url = format!("tcp://127.0.0.1:{port}");
        // Four slashes: an absolute path (see SERVICES.md).
        let storage = format!("sqlite:///{}", dir.join("nisshi.db").display());
        let args: Vec<String> = [
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
            "--storage-engine",
            &storage,
            "--group-initial-rebalance-delay",
            "100ms",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let child = spawn_logged(&nisshi_binary()?, &args, &dir.join("nisshi.log"))?;
        await_port(
            SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_secs(30),
            "nisshi",
        )
        .await?;
        Ok(child)
    }

    /// `127.0.0.1:<port>`.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL) and starts it again on the same port and storage after `down`.
    ///
    /// # Errors
    /// When it cannot be killed or restarted.
    pub async fn restart(&mut self, down: Duration) -> anyhow::Result<()> {
        kill(&mut self.child).await?;
        tokio::time::sleep(down).await;
        self.child = Self::spawn(self.port, &self.dir).await?;
        Ok(())
    }

    /// The last lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        crate::process::log_tail(&self.dir.join("nisshi.log"), lines)
    }
}

/// A TCP proxy in front of a service: [`cut`](Self::cut) closes every connection and
/// refuses new ones (the service looks unreachable), [`restore`](Self::restore) lets them
/// through again.
pub struct Blackout {
    addr: SocketAddr,
    open: Arc<AtomicBool>,
    generation: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Blackout {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Blackout {
    /// A proxy on a free port forwarding to `target` (`host:port`).
    ///
    /// # Errors
    /// When it cannot listen.
    pub async fn start(target: &str) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let open = Arc::new(AtomicBool::new(true));
        let (generation, _) = watch::channel(0u64);
        let (o, g, target) = (open.clone(), generation.clone(), target.to_owned());
        let task = tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    continue;
                };
                if !o.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let mut cut = g.subscribe();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let (mut ri, mut wi) = inbound.into_split();
                    let (mut ro, mut wo) = outbound.into_split();
                    tokio::select! {
                        _ = tokio::io::copy(&mut ri, &mut wo) => {}
                        _ = tokio::io::copy(&mut ro, &mut wi) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Ok(Self {
            addr,
            open,
            generation,
            task,
        })
    }

    /// `127.0.0.1:<port>` of the proxy.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// Closes every open connection and refuses new ones.
    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}
