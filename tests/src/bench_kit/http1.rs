//! One kept-alive HTTP/1.1 client connection with as little work per request as the protocol
//! allows, for an open-loop load generator that must cost far less than what it measures: the
//! caller writes each request's bytes into a buffer it reuses (see [`Http1::request`]), the
//! answer is read into a buffer the connection reuses, and only the status line, the
//! `Content-Length` / `Transfer-Encoding: chunked` framing and `Connection: close` are looked
//! at. No allocation per request once the buffers have grown, no pool, no URL parsing.
//!
//! Not a general client: no pipelining, no `Expect`, no redirects, no TLS; a response to a
//! `HEAD` or a `1xx` is not expected (the benchmarks send `POST`s to the gateway).

use anyhow::{Context, bail, ensure};
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest a response header block may be.
const MAX_HEAD: usize = 64 * 1024;

/// One connection to `addr`, opened again when the server closed it.
pub struct Http1 {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    /// Bytes read and not yet consumed.
    buf: Vec<u8>,
    /// Where the last response's body is in `buf`.
    body: std::ops::Range<usize>,
    last_used: Instant,
}

/// A request's bytes, built by [`Http1::request`] into a buffer the caller reuses.
pub struct RequestBytes<'a>(&'a [u8]);

impl Http1 {
    /// Opens a connection to `addr` (`TCP_NODELAY` on).
    ///
    /// # Errors
    /// When the connection fails.
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let mut c = Self {
            addr,
            stream: None,
            buf: Vec::with_capacity(4096),
            body: 0..0,
            last_used: Instant::now(),
        };
        c.reconnect().await?;
        Ok(c)
    }

    async fn reconnect(&mut self) -> anyhow::Result<()> {
        self.stream = None;
        self.buf.clear();
        let stream = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("connecting to {}", self.addr))?;
        stream.set_nodelay(true)?;
        self.stream = Some(stream);
        self.last_used = Instant::now();
        Ok(())
    }

    /// Writes `POST`-style request bytes into `out` (cleared first): `head` (the request line
    /// and the fixed headers, each ending in `\r\n`, e.g. built once per driver by
    /// [`request_head`]), `Content-Length`, the blank line and `body`.
    pub fn request<'a>(out: &'a mut Vec<u8>, head: &[u8], body: &[u8]) -> RequestBytes<'a> {
        out.clear();
        out.extend_from_slice(head);
        // Writing into a Vec cannot fail.
        let _ = write!(out, "content-length: {}\r\n\r\n", body.len());
        out.extend_from_slice(body);
        RequestBytes(out)
    }

    /// Sends `request` and reads the whole answer: its status (the body is then
    /// [`Self::body`]). A connection idle for longer than `idle` (servers close idle ones),
    /// closed by the server, or failed is opened again before the request is written; a
    /// request is never sent twice.
    ///
    /// # Errors
    /// When the connection fails or the answer is not HTTP/1.1 as this client reads it; the
    /// connection is opened again for the next request.
    pub async fn send(&mut self, request: RequestBytes<'_>, idle: Duration) -> anyhow::Result<u16> {
        if self.stream.is_none() || self.last_used.elapsed() > idle {
            self.reconnect().await?;
        }
        let result = self.exchange(request.0).await;
        self.last_used = Instant::now();
        match result {
            Ok((status, keep)) => {
                if !keep {
                    self.stream = None;
                }
                Ok(status)
            }
            Err(e) => {
                self.stream = None;
                Err(e)
            }
        }
    }

    /// The body of the last answer.
    pub fn body(&self) -> &[u8] {
        self.buf.get(self.body.clone()).unwrap_or_default()
    }

    /// Writes the request, reads the answer: (status, whether the connection stays open).
    async fn exchange(&mut self, request: &[u8]) -> anyhow::Result<(u16, bool)> {
        let stream = self.stream.as_mut().context("no connection")?;
        stream.write_all(request).await?;
        self.buf.clear();
        let head_end = loop {
            if let Some(at) = find(&self.buf, b"\r\n\r\n") {
                break at + 4;
            }
            ensure!(
                self.buf.len() < MAX_HEAD,
                "a response head over {MAX_HEAD} bytes"
            );
            read_more(stream, &mut self.buf).await?;
        };
        let head = Head::parse(&self.buf[..head_end])?;
        let body_start = head_end;
        match head.framing {
            Framing::Length(n) => {
                while self.buf.len() < body_start + n {
                    read_more(stream, &mut self.buf).await?;
                }
                ensure!(
                    self.buf.len() == body_start + n,
                    "bytes after the response (this client does not pipeline)"
                );
                self.body = body_start..body_start + n;
            }
            Framing::Chunked => {
                // Decode in place: chunk data moved down to follow the previous chunk's.
                let mut at = body_start;
                let mut out = body_start;
                loop {
                    let line_end = loop {
                        if let Some(e) = find(&self.buf[at..], b"\r\n") {
                            break at + e;
                        }
                        read_more(stream, &mut self.buf).await?;
                    };
                    let size_text = std::str::from_utf8(&self.buf[at..line_end])?;
                    let size_text = size_text.split(';').next().unwrap_or("").trim();
                    let size = usize::from_str_radix(size_text, 16)
                        .with_context(|| format!("chunk size {size_text:?}"))?;
                    at = line_end + 2;
                    if size == 0 {
                        // Trailers (none expected) end with a blank line.
                        loop {
                            if let Some(e) = find(&self.buf[at..], b"\r\n") {
                                let blank = e == 0;
                                at += e + 2;
                                if blank {
                                    break;
                                }
                            } else {
                                read_more(stream, &mut self.buf).await?;
                            }
                        }
                        break;
                    }
                    while self.buf.len() < at + size + 2 {
                        read_more(stream, &mut self.buf).await?;
                    }
                    self.buf.copy_within(at..at + size, out);
                    out += size;
                    at += size + 2;
                }
                ensure!(
                    self.buf.len() == at,
                    "bytes after the response (this client does not pipeline)"
                );
                self.body = body_start..out;
            }
            Framing::UntilClose => {
                while read_more(stream, &mut self.buf).await.is_ok() {}
                self.body = body_start..self.buf.len();
                return Ok((head.status, false));
            }
        }
        Ok((head.status, !head.close))
    }
}

/// The fixed part of a request to `path` on `host`: request line, `host`, `content-type:
/// application/json` and `extra` headers (`name: value` each, no line ends).
pub fn request_head(method: &str, host: &str, path: &str, extra: &[&str]) -> Vec<u8> {
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n");
    for h in extra {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.into_bytes()
}

/// Reads what is there into `buf`; fails at the end of the stream.
async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<()> {
    let len = buf.len();
    buf.resize(len + 4096, 0);
    let n = stream.read(&mut buf[len..]).await;
    let n = match n {
        Ok(n) => n,
        Err(e) => {
            buf.truncate(len);
            return Err(e.into());
        }
    };
    buf.truncate(len + n);
    if n == 0 {
        bail!("the server closed the connection");
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

struct Head {
    status: u16,
    framing: Framing,
    close: bool,
}

impl Head {
    fn parse(head: &[u8]) -> anyhow::Result<Self> {
        let text = std::str::from_utf8(head).context("a response head that is not UTF-8")?;
        let mut lines = text.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        ensure!(
            version == "HTTP/1.1" || version == "HTTP/1.0",
            "not an HTTP/1 response: {status_line:?}"
        );
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("no status in {status_line:?}"))?;
        let mut framing = Framing::UntilClose;
        let mut close = version == "HTTP/1.0";
        for line in lines.filter(|l| !l.is_empty()) {
            let Some((name, value)) = line.split_once(':') else {
                bail!("a header line without a colon: {line:?}");
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                if !matches!(framing, Framing::Chunked) {
                    framing = Framing::Length(
                        value
                            .parse()
                            .with_context(|| format!("content-length {value:?}"))?,
                    );
                }
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                ensure!(
                    value.eq_ignore_ascii_case("chunked"),
                    "transfer-encoding {value:?}"
                );
                framing = Framing::Chunked;
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
        // 204 and 304 have no body whatever the headers say.
        if status == 204 || status == 304 {
            framing = Framing::Length(0);
        }
        Ok(Self {
            status,
            framing,
            close,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::http::{Response, StatusCode};
    use axum::routing::post;

    async fn server() -> SocketAddr {
        let app = Router::new()
            .route(
                "/json",
                post(|body: String| async move {
                    (StatusCode::ACCEPTED, format!("{{\"got\":{}}}", body.len()))
                }),
            )
            .route(
                "/chunked",
                post(|| async {
                    let chunks = futures::stream::iter(["ab", "", "cde"].map(|c| {
                        Ok::<_, std::io::Error>(axum::body::Bytes::from_static(c.as_bytes()))
                    }));
                    Response::builder()
                        .status(StatusCode::TOO_MANY_REQUESTS)
                        .body(Body::from_stream(chunks))
                        .unwrap()
                }),
            )
            .route(
                "/close",
                post(|| async {
                    Response::builder()
                        .status(StatusCode::OK)
                        .header("connection", "close")
                        .body(Body::from("bye"))
                        .unwrap()
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    /// Sends one `POST path` with `body` on `c`: the status and the body read.
    async fn send_post(
        c: &mut Http1,
        buf: &mut Vec<u8>,
        path: &str,
        headers: &[&str],
        body: &[u8],
    ) -> (u16, Vec<u8>) {
        let host = c.addr.to_string();
        let head = request_head("POST", &host, path, headers);
        let status = c
            .send(Http1::request(buf, &head, body), Duration::from_secs(5))
            .await
            .unwrap();
        (status, c.body().to_vec())
    }

    #[tokio::test]
    async fn requests_on_one_connection_read_length_chunked_and_close() {
        let mut c = Http1::connect(server().await).await.unwrap();
        let mut buf = Vec::new();
        for n in 0..3 {
            let body = "x".repeat(n * 1000);
            let got = send_post(
                &mut c,
                &mut buf,
                "/json",
                &["authorization: Bearer t"],
                body.as_bytes(),
            )
            .await;
            assert_eq!(got, (202, format!("{{\"got\":{}}}", n * 1000).into_bytes()));
        }
        let got = send_post(&mut c, &mut buf, "/chunked", &[], b"{}").await;
        assert_eq!(got, (429, b"abcde".to_vec()));
        let got = send_post(&mut c, &mut buf, "/close", &[], b"").await;
        assert_eq!(got, (200, b"bye".to_vec()));
        // The server closed it: the next request opens a new connection.
        let got = send_post(&mut c, &mut buf, "/json", &[], b"12").await;
        assert_eq!(got, (202, b"{\"got\":2}".to_vec()));
    }
}
