//! Minimal HTTP/1.1 probe: `GET` a plain `http://` URL, expect 200 (and optionally a string
//! in the body).

use anyhow::{Context, bail, ensure};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest body read by the probe.
const MAX_BODY: u64 = 1 << 20;

/// `GET url`; succeeds on status 200 whose body contains `needle` (when given).
pub async fn probe(url: &str, needle: Option<&str>) -> anyhow::Result<()> {
    let (authority, path) = split_url(url)?;
    let mut stream = TcpStream::connect(authority)
        .await
        .with_context(|| format!("cannot connect to {authority}"))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: doorstep-wait\r\n\
         Accept: */*\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.take(MAX_BODY).read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw);
    let status_line = text.lines().next().unwrap_or_default();
    let status = status_line.split_whitespace().nth(1).unwrap_or_default();
    ensure!(status == "200", "GET {url}: {status_line}");
    if let Some(needle) = needle {
        ensure!(
            text.contains(needle),
            "GET {url}: body does not contain {needle:?}"
        );
    }
    Ok(())
}

/// Splits `http://host:port/path?q` into `("host:port", "/path?q")`.
fn split_url(url: &str) -> anyhow::Result<(&str, &str)> {
    let Some(rest) = url.strip_prefix("http://") else {
        bail!("only http:// URLs are supported: {url}");
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    ensure!(authority.contains(':'), "URL needs an explicit port: {url}");
    Ok((authority, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_urls() {
        assert_eq!(
            split_url("http://127.0.0.1:5/a?b=c").ok(),
            Some(("127.0.0.1:5", "/a?b=c"))
        );
        assert_eq!(split_url("http://h:1").ok(), Some(("h:1", "/")));
        assert!(split_url("https://h:1/").is_err());
        assert!(split_url("http://h/").is_err());
    }
}
