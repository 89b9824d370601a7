//! Customer-side WebSocket clients for live-tracking tests and benchmarks, and a gateway
//! served in-process on an ephemeral port.

use anyhow::Context;
use doorstep_pipelines::config::Config;
use doorstep_pipelines::gateway::Gateway;
use doorstep_pipelines::gateway::track::TrackingConfig;
use doorstep_pipelines::shutdown;
use futures::StreamExt;
use serde_json::Value;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A gateway (API + live tracking) running in this process.
pub struct GatewayUnderTest {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// `ws://127.0.0.1:<port>`.
    pub ws_base: String,
    /// Its metrics.
    pub registry: prometheus::Registry,
    stop: shutdown::Trigger,
    task: tokio::task::JoinHandle<Result<(), doorstep_pipelines::gateway::GatewayError>>,
}

impl GatewayUnderTest {
    /// Starts a gateway with the order store and live tracking of `config`.
    pub async fn start(config: &Config, tracking: TrackingConfig) -> anyhow::Result<Self> {
        // These tests are about live tracking (many sockets of one token, any restaurant),
        // not about the edge's limits, which `tests/tests/edge.rs` tests.
        let mut config = config.clone();
        config.edge = doorstep_pipelines::config::EdgeConfig::unlimited();
        let config = &config;
        let gateway = Gateway::from_config(config, Duration::from_secs(5))
            .await?
            .with_order_store(config)
            .with_live_tracking(config, tracking)?;
        let registry = gateway.registry().clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, signal) = shutdown::channel();
        let task = tokio::spawn(gateway.serve(listener, signal));
        Ok(Self {
            base: format!("http://{addr}"),
            ws_base: format!("ws://{addr}"),
            registry,
            stop,
            task,
        })
    }

    /// The metrics in the text format.
    pub fn metrics(&self) -> String {
        prometheus::TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }

    /// Stops it and waits (bounded).
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        tokio::time::timeout(Duration::from_secs(10), self.task).await???;
        Ok(())
    }
}

/// Why a connection was refused before the upgrade.
#[derive(Debug)]
pub struct Refused {
    /// HTTP status.
    pub status: u16,
    /// The JSON error body (`{error, message}`), when there was one.
    pub body: Value,
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A customer's live view.
pub struct LiveClient {
    ws: Ws,
}

/// What [`LiveClient::next`] got.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    /// A JSON frame.
    Frame(Value),
    /// The server closed, with this code and reason.
    Closed(u16, String),
}

impl LiveClient {
    /// Connects to `GET /v1/orders/{order}/track` with `token` in the subprotocol list, as a
    /// browser does (`doorstep.v1, bearer.<token>`). `Err(Ok(refused))` is an HTTP refusal,
    /// `Err(Err(_))` anything else.
    pub async fn connect(
        ws_base: &str,
        order: &str,
        token: &str,
    ) -> Result<Self, Result<Refused, anyhow::Error>> {
        Self::connect_to(track_request(ws_base, order, token)).await
    }

    /// Connects like [`Self::connect`] with `?since=<since>`: resuming after that `seq` (any
    /// string, to try malformed ones).
    pub async fn connect_since(
        ws_base: &str,
        order: &str,
        token: &str,
        since: &str,
    ) -> Result<Self, Result<Refused, anyhow::Error>> {
        let url = format!("{ws_base}/v1/orders/{order}/track?since={since}");
        Self::connect_to(browser_request(&url, token)).await
    }

    /// [`Self::connect_since`], failing on any refusal.
    pub async fn resume(
        ws_base: &str,
        order: &str,
        token: &str,
        since: u64,
    ) -> anyhow::Result<Self> {
        match Self::connect_since(ws_base, order, token, &since.to_string()).await {
            Ok(c) => Ok(c),
            Err(Ok(r)) => anyhow::bail!("refused: {} {}", r.status, r.body),
            Err(Err(e)) => Err(e),
        }
    }

    async fn connect_to(
        request: anyhow::Result<tokio_tungstenite::tungstenite::handshake::client::Request>,
    ) -> Result<Self, Result<Refused, anyhow::Error>> {
        let request = match request {
            Ok(r) => r,
            Err(e) => return Err(Err(e)),
        };
        match tokio_tungstenite::connect_async(request).await {
            Ok((ws, _)) => Ok(Self { ws }),
            Err(WsError::Http(resp)) => {
                let status = resp.status().as_u16();
                let body = resp
                    .body()
                    .as_ref()
                    .and_then(|b| serde_json::from_slice(b).ok())
                    .unwrap_or(Value::Null);
                Err(Ok(Refused { status, body }))
            }
            Err(e) => Err(Err(e.into())),
        }
    }

    /// Connects with [`Self::connect`] and fails on any refusal.
    pub async fn open(ws_base: &str, order: &str, token: &str) -> anyhow::Result<Self> {
        match Self::connect(ws_base, order, token).await {
            Ok(c) => Ok(c),
            Err(Ok(r)) => anyhow::bail!("refused: {} {}", r.status, r.body),
            Err(Err(e)) => Err(e),
        }
    }

    /// The next frame or close, answering pings on the way; `None` after `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> anyhow::Result<Option<Received>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let msg = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return Ok(None),
                Ok(None) => return Ok(Some(Received::Closed(1006, "no close frame".into()))),
                Ok(Some(m)) => m?,
            };
            match msg {
                Message::Text(t) => {
                    return Ok(Some(Received::Frame(
                        serde_json::from_str(t.as_str()).context("frame is not JSON")?,
                    )));
                }
                Message::Close(frame) => {
                    let (code, reason) = frame.map_or((1005, String::new()), |f| {
                        (u16::from(f.code), f.reason.as_str().to_owned())
                    });
                    return Ok(Some(Received::Closed(code, reason)));
                }
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                Message::Binary(_) => anyhow::bail!("unexpected binary frame"),
            }
        }
    }

    /// The next JSON frame; fails on a close or after `timeout`.
    pub async fn frame(&mut self, timeout: Duration) -> anyhow::Result<Value> {
        match self.next(timeout).await? {
            Some(Received::Frame(v)) => Ok(v),
            Some(Received::Closed(code, reason)) => {
                anyhow::bail!("closed with {code} {reason}")
            }
            None => anyhow::bail!("no frame within {timeout:?}"),
        }
    }

    /// Frames until one satisfies `want` (returned with everything before it).
    pub async fn until(
        &mut self,
        timeout: Duration,
        want: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Vec<Value>> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut got = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let f = self
                .frame(left)
                .await
                .with_context(|| format!("after {} frames: {got:?}", got.len()))?;
            let done = want(&f);
            got.push(f);
            if done {
                return Ok(got);
            }
        }
    }

    /// Closes from the client side.
    pub async fn close(mut self) -> anyhow::Result<()> {
        self.ws
            .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code: CloseCode::Normal,
                reason: "bye".into(),
            }))
            .await?;
        Ok(())
    }
}

/// A client that connects and then never reads: its socket's receive buffer is made tiny
/// (`SO_RCVBUF`), so the server's writes block as soon as a few kilobytes wait.
pub async fn stuck_client(ws_base: &str, order: &str, token: &str) -> anyhow::Result<Ws> {
    let addr = ws_base
        .strip_prefix("ws://")
        .context("a ws:// base")?
        .to_owned();
    let socket = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_recv_buffer_size(2048)?;
    let sockaddr: std::net::SocketAddr = addr.parse()?;
    socket.set_nonblocking(true)?;
    let stream = tokio::net::TcpSocket::from_std_stream(socket.into());
    let stream = stream.connect(sockaddr).await?;
    let request = track_request(ws_base, order, token)?;
    let (ws, _) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream)).await?;
    Ok(ws)
}

/// The upgrade request of `GET /v1/orders/{order}/track` carrying `token` as a browser does:
/// `Sec-WebSocket-Protocol: doorstep.v1, bearer.<token>`.
pub fn track_request(
    ws_base: &str,
    order: &str,
    token: &str,
) -> anyhow::Result<tokio_tungstenite::tungstenite::handshake::client::Request> {
    browser_request(&format!("{ws_base}/v1/orders/{order}/track"), token)
}

/// The upgrade request of `url` with `token` in the subprotocol list.
fn browser_request(
    url: &str,
    token: &str,
) -> anyhow::Result<tokio_tungstenite::tungstenite::handshake::client::Request> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = url.into_client_request()?;
    request.headers_mut().insert(
        "sec-websocket-protocol",
        format!("doorstep.v1, bearer.{token}").parse()?,
    );
    Ok(request)
}
