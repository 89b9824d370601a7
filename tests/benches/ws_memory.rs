//! Benchmark (not a test: nothing here asserts on memory): the gateway's resident memory per
//! idle customer WebSocket with `CONNECTIONS` of them open, next to the same measurement for
//! plain idle TCP connections to a trivial tokio echo server, in the same run.
//!
//! 1. **Gateway.** The real `doorstep gateway` binary as a child process (the scope's
//!    environment, its own port), the order store's keyspace created beforehand. One socket is
//!    opened and closed first (Redis, the shared subscription and the CQL session connect on
//!    first use), then the gateway's `VmRSS` is read; then `CONNECTIONS` customer sockets are
//!    opened to `ORDERS` orders (tokens for each order; each socket reads its snapshot), and
//!    `VmRSS` is read again once they have all been open for `SETTLE_SECS`. Bytes per
//!    connection = growth / connections: the socket's task, buffers and outbox, and its share
//!    of the per-order subscription state (`CONNECTIONS / ORDERS` sockets per order). The
//!    sockets are read (heartbeats answered) by one task each in this process, so none is
//!    closed as silent.
//! 2. **Raw limit.** This bench binary again, as a child, in its echo role: a tokio
//!    (multi-thread) listener spawning one task per accepted connection that echoes through a
//!    256-byte buffer: about the least a tokio server holds per connection. `VmRSS` before and
//!    after `CONNECTIONS` idle connections (each having echoed one byte, so its task ran).
//!
//! Kernel socket buffers are not in `VmRSS` for either. File descriptors: each side needs
//! `CONNECTIONS` plus a few (`ulimit -n`).
//!
//! Output: human-readable lines, then `BENCH ...` lines for `scripts/bench`: bytes per
//! WebSocket against bytes per echo connection.
//!
//! Settings (environment): `DOORSTEP_BENCH_CONNECTIONS` [10000], `DOORSTEP_BENCH_ORDERS`
//! [1000], `DOORSTEP_BENCH_OPEN_CONCURRENCY` [64], `DOORSTEP_BENCH_SETTLE_SECS` [3], plus the
//! usual `DOORSTEP_*` service addresses (`eval "$(scripts/services env)"`). Logs: `RUST_LOG`;
//! the gateway logs to a file in the temporary directory, removed on success.

use anyhow::{Context, bail, ensure};
use doorstep_pipelines::auth::{Claims, TokenKey, unix_now};
use doorstep_schemas::model::ActorKind;
use doorstep_tests::bench_kit::{bench_line, init_bench_tracing, rss_bytes, setting};
use doorstep_tests::drain_kit::BenchProcess;
use doorstep_tests::live_client::{LiveClient, Received};
use doorstep_tests::pipeline_harness::Scope;
use futures::{StreamExt, TryStreamExt};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The scope's token secret (see `pipeline_harness`).
const SECRET: &str = "test-secret-test-secret-test-secret-0001";
/// Set in the child that plays the echo server.
const ECHO_ROLE: &str = "DOORSTEP_BENCH_ECHO_ROLE";

struct Settings {
    connections: usize,
    orders: usize,
    concurrency: usize,
    settle: Duration,
}

impl Settings {
    fn from_env() -> anyhow::Result<Self> {
        let s = Self {
            connections: setting("DOORSTEP_BENCH_CONNECTIONS", "10000")?,
            orders: setting("DOORSTEP_BENCH_ORDERS", "1000")?,
            concurrency: setting("DOORSTEP_BENCH_OPEN_CONCURRENCY", "64")?,
            settle: Duration::from_secs(setting("DOORSTEP_BENCH_SETTLE_SECS", "3")?),
        };
        ensure!(
            s.connections > 0 && s.orders > 0 && s.concurrency > 0,
            "connections, orders and concurrency must be positive"
        );
        Ok(s)
    }
}

fn order(i: usize) -> String {
    format!("bench-o{i:05}")
}

fn mib(bytes: f64) -> f64 {
    bytes / (1024.0 * 1024.0)
}

/// The echo role: listen on an ephemeral port, print it, echo forever.
async fn echo_server() -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let mut out = tokio::io::stdout();
    out.write_all(format!("{}\n", listener.local_addr()?.port()).as_bytes())
        .await?;
    out.flush().await?;
    loop {
        let (mut socket, _) = listener.accept().await?;
        tokio::spawn(async move {
            let mut buf = [0u8; 256];
            loop {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if socket.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            }
        });
    }
}

/// RSS growth of a process over `connections` idle connections: (before, after) bytes.
struct Growth {
    before: u64,
    after: u64,
}

impl Growth {
    fn per_connection(&self, connections: usize) -> f64 {
        (self.after as f64 - self.before as f64) / connections as f64
    }
}

/// Opens a customer socket to `order` and reads its snapshot.
async fn open(ws_base: &str, key: &TokenKey, i: usize, order: &str) -> anyhow::Result<LiveClient> {
    let mut claims = Claims::new(
        ActorKind::Customer,
        format!("bench-c{i}"),
        unix_now() + 3_600,
    );
    claims.order_id = Some(order.to_owned());
    let token = key.sign(&claims)?;
    let mut c = LiveClient::open(ws_base, order, &token).await?;
    let snapshot = c.frame(Duration::from_secs(30)).await?;
    ensure!(snapshot["type"] == "snapshot", "{snapshot}");
    Ok(c)
}

/// Reads a socket until `stop` (answering heartbeats); fails if the server closes it.
async fn idle_reader(mut c: LiveClient, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    while !stop.load(Ordering::Relaxed) {
        if let Some(Received::Closed(code, reason)) = c.next(Duration::from_millis(500)).await? {
            bail!("the gateway closed an idle socket: {code} {reason}");
        }
    }
    Ok(())
}

async fn gateway(s: &Settings) -> anyhow::Result<Growth> {
    let scope = Scope::new("bench_ws_memory", &[]).await?;
    // The order store's keyspace and tables (snapshots read it).
    scope.store().await?;
    // Many sockets from one machine and few tokens: the edge limits would refuse them.
    let mut gateway = BenchProcess::gateway(
        &scope,
        &[],
        "ws-memory",
        &[
            ("DOORSTEP_GATEWAY_MAX_CONNECTIONS", "200000"),
            ("DOORSTEP_GATEWAY_MAX_SOCKETS_PER_SUBJECT", "200000"),
            ("DOORSTEP_GATEWAY_RATE_LIMIT_PER_S", "1000000"),
            ("DOORSTEP_GATEWAY_RATE_LIMIT_BURST", "1000000"),
        ],
    )?;
    gateway.healthy(Duration::from_secs(60)).await?;
    let pid = gateway.pid()?;
    let ws_base = format!(
        "ws://{}",
        gateway.api.context("the gateway has no API address")?
    );
    let key = TokenKey::new(SECRET.as_bytes())?;
    // Warm-up: the first socket connects Redis, the shared subscription and the CQL session.
    open(&ws_base, &key, 0, &order(0)).await?.close().await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss_bytes(pid)?;

    let opening = Instant::now();
    let clients: Vec<LiveClient> = futures::stream::iter(0..s.connections)
        .map(|i| {
            let (ws_base, key) = (ws_base.as_str(), &key);
            async move { open(ws_base, key, i, &order(i % s.orders)).await }
        })
        .buffer_unordered(s.concurrency)
        .try_collect()
        .await?;
    let opened_in = opening.elapsed();
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = clients
        .into_iter()
        .map(|c| tokio::spawn(idle_reader(c, stop.clone())))
        .collect();
    tokio::time::sleep(s.settle).await;
    let after = rss_bytes(pid)?;
    let metrics = gateway.metrics().await?;
    let open_now: f64 = metrics
        .lines()
        .find(|l| l.starts_with("doorstep_gateway_websocket_connections{stream=\"track\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    let channels = metrics
        .lines()
        .find(|l| l.starts_with("doorstep_gateway_live_channels "))
        .unwrap_or("doorstep_gateway_live_channels ?");
    println!(
        "  gateway (pid {pid}): {} sockets to {} orders opened in {:.1} s; the gateway counts \
         {open_now} open ({channels}); VmRSS {:.1} MiB before, {:.1} MiB after",
        s.connections,
        s.orders,
        opened_in.as_secs_f64(),
        mib(before as f64),
        mib(after as f64),
    );
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.await??;
    }
    // Fails when the gateway had exited on its own (with its log's tail).
    gateway.stop().await?;
    ensure!(
        open_now == s.connections as f64,
        "the gateway reports {open_now} open sockets, not {}",
        s.connections
    );
    Ok(Growth { before, after })
}

async fn echo(s: &Settings) -> anyhow::Result<Growth> {
    let exe = std::env::current_exe()?;
    let mut child = tokio::process::Command::new(exe)
        .env(ECHO_ROLE, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("starting the echo server")?;
    let pid = child.id().context("the echo server has no pid")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        BufReader::new(stdout).read_line(&mut line),
    )
    .await
    .context("the echo server printed no port within 10 s")??;
    let addr = format!("127.0.0.1:{}", line.trim());
    let round_trip = |addr: String| async move {
        let mut c = TcpStream::connect(&addr).await?;
        c.write_all(b"x").await?;
        let mut b = [0u8; 1];
        c.read_exact(&mut b).await?;
        Ok::<_, anyhow::Error>(c)
    };
    // Warm-up, like the gateway's first socket.
    drop(round_trip(addr.clone()).await?);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss_bytes(pid)?;
    let clients: Vec<TcpStream> = futures::stream::iter(0..s.connections)
        .map(|_| round_trip(addr.clone()))
        .buffer_unordered(s.concurrency)
        .try_collect()
        .await?;
    tokio::time::sleep(s.settle).await;
    let after = rss_bytes(pid)?;
    println!(
        "  echo server (pid {pid}): {} connections; VmRSS {:.1} MiB before, {:.1} MiB after",
        clients.len(),
        mib(before as f64),
        mib(after as f64),
    );
    drop(clients);
    child.kill().await?;
    Ok(Growth { before, after })
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if std::env::var_os(ECHO_ROLE).is_some() {
        return runtime.block_on(echo_server());
    }
    // `cargo bench` passes `--bench` (and any filter); this binary has a single benchmark.
    init_bench_tracing();
    runtime.block_on(async {
        let s = Settings::from_env()?;
        println!(
            "ws_memory: {} idle connections ({} orders for the WebSockets), {} CPUs",
            s.connections,
            s.orders,
            std::thread::available_parallelism().map_or(0, usize::from)
        );
        let gw = gateway(&s).await?;
        let raw = echo(&s).await?;
        let per_ws = gw.per_connection(s.connections);
        let per_tcp = raw.per_connection(s.connections);
        println!(
            "  per connection: {per_ws:.0} bytes per idle customer WebSocket, {per_tcp:.0} bytes \
             per idle echo connection (ratio {:.1})",
            per_ws / per_tcp
        );
        bench_line(
            "ws_memory.bytes_per_socket",
            per_ws,
            "bytes/connection",
            Some(("tokio_echo_bytes/connection", per_tcp)),
        );
        Ok(())
    })
}
