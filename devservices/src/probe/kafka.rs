//! Kafka protocol probe: `ApiVersions` v0, then `Metadata` (v1–v8, non-flexible) to list
//! the brokers the cluster advertises.

use anyhow::{Context, bail, ensure};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::wire::Reader;

const API_METADATA: i16 = 3;
const API_VERSIONS: i16 = 18;
const CLIENT_ID: &str = "doorstep-wait";
/// Largest response accepted from a probe (metadata of a dev broker is tiny).
const MAX_RESPONSE: usize = 16 << 20;

/// A broker as advertised in a metadata response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    /// Broker id.
    pub node_id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
}

/// What a ready broker answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaReady {
    /// Number of API keys the broker supports.
    pub api_count: usize,
    /// Brokers from the metadata response; empty if no non-flexible `Metadata` version is
    /// supported (then only `ApiVersions` was checked).
    pub brokers: Vec<Broker>,
}

/// Probes the broker at `addr` (`host:port`).
pub async fn probe(addr: &str) -> anyhow::Result<KafkaReady> {
    let mut stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    let body = call(&mut stream, API_VERSIONS, 0, 1, &[]).await?;
    let apis = parse_api_versions(&body)?;
    let metadata = apis
        .iter()
        .find(|(key, _, _)| *key == API_METADATA)
        .map(|&(_, min, max)| (min, max.min(8)))
        .filter(|&(min, max)| min.max(1) <= max);
    let brokers = match metadata {
        Some((min, max)) => {
            let version = max.max(min.max(1));
            let body = call(
                &mut stream,
                API_METADATA,
                version,
                2,
                &metadata_request(version),
            )
            .await?;
            parse_metadata(version, &body)?
        }
        None => Vec::new(),
    };
    Ok(KafkaReady {
        api_count: apis.len(),
        brokers,
    })
}

/// Sends one request (header v1) and returns the response body after the correlation id.
async fn call(
    stream: &mut TcpStream,
    api_key: i16,
    version: i16,
    correlation: i32,
    body: &[u8],
) -> anyhow::Result<Vec<u8>> {
    let mut msg = Vec::with_capacity(14 + CLIENT_ID.len() + body.len());
    msg.extend_from_slice(&api_key.to_be_bytes());
    msg.extend_from_slice(&version.to_be_bytes());
    msg.extend_from_slice(&correlation.to_be_bytes());
    msg.extend_from_slice(&(CLIENT_ID.len() as i16).to_be_bytes());
    msg.extend_from_slice(CLIENT_ID.as_bytes());
    msg.extend_from_slice(body);
    stream.write_all(&(msg.len() as i32).to_be_bytes()).await?;
    stream.write_all(&msg).await?;

    let len = stream
        .read_i32()
        .await
        .context("connection closed before a response")?;
    ensure!(
        (4..=MAX_RESPONSE as i32).contains(&len),
        "implausible response size {len}"
    );
    let mut buf = vec![0; len as usize];
    stream.read_exact(&mut buf).await?;
    let mut r = Reader::new(&buf);
    let got = r.i32()?;
    ensure!(
        got == correlation,
        "correlation id {got}, expected {correlation}"
    );
    Ok(buf[4..].to_vec())
}

/// `(api_key, min_version, max_version)` from an `ApiVersions` v0 response.
fn parse_api_versions(body: &[u8]) -> anyhow::Result<Vec<(i16, i16, i16)>> {
    let mut r = Reader::new(body);
    let error = r.i16()?;
    ensure!(error == 0, "ApiVersions error code {error}");
    let count = r.i32()?;
    ensure!(
        (0..=10_000).contains(&count),
        "implausible API count {count}"
    );
    (0..count)
        .map(|_| Ok((r.i16()?, r.i16()?, r.i16()?)))
        .collect()
}

fn metadata_request(version: i16) -> Vec<u8> {
    let mut body = (-1_i32).to_be_bytes().to_vec(); // all topics
    if version >= 4 {
        body.push(0); // allow_auto_topic_creation = false
    }
    if version >= 8 {
        body.extend_from_slice(&[0, 0]); // no authorized-operations lists
    }
    body
}

fn parse_metadata(version: i16, body: &[u8]) -> anyhow::Result<Vec<Broker>> {
    let mut r = Reader::new(body);
    if version >= 3 {
        r.i32()?; // throttle_time_ms
    }
    let count = r.i32()?;
    ensure!(
        (0..=10_000).contains(&count),
        "implausible broker count {count}"
    );
    let mut brokers = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let node_id = r.i32()?;
        let host = r.string16()?;
        let port = r.i32()?;
        r.string16()?; // rack (v1+)
        brokers.push(Broker {
            node_id,
            host,
            port,
        });
    }
    if brokers.is_empty() {
        bail!("metadata lists no brokers");
    }
    Ok(brokers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_api_versions_and_metadata_bodies() -> anyhow::Result<()> {
        let mut body = vec![0, 0, 0, 0, 0, 1];
        body.extend_from_slice(&[0, 3, 0, 0, 0, 12]);
        assert_eq!(parse_api_versions(&body)?, vec![(3, 0, 12)]);
        assert!(parse_api_versions(&[0, 35, 0, 0, 0, 0]).is_err());

        let mut md = vec![0, 0, 0, 0]; // throttle
        md.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 7, 0, 9]);
        md.extend_from_slice(b"127.0.0.1");
        md.extend_from_slice(&[0, 0, 0x4a, 0xa4, 0xff, 0xff]);
        let brokers = parse_metadata(8, &md)?;
        assert_eq!(
            brokers,
            vec![Broker {
                node_id: 7,
                host: "127.0.0.1".to_owned(),
                port: 19108
            }]
        );
        assert_eq!(metadata_request(8).len(), 7);
        assert_eq!(metadata_request(1).len(), 4);
        Ok(())
    }
}
